"""Helpers shared by the test suites: free ports, signing like the CPaaS, logins, fresh caller
numbers, system tools, the app's clock. Suite-specific helpers are in this package's modules:
`app` (the app in process), `browser`, `bidders`, `edge`."""

from __future__ import annotations

import itertools
import os
import shutil
from datetime import datetime, timedelta
from typing import Any, NoReturn
from urllib.parse import urlencode

import pytest
from twilio.request_validator import RequestValidator

from chalicelib import clock
from tools.localaws import free_port

__all__ = ["free_port"]

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def signature(token: str, url: str, params: dict[str, str]) -> str:
    return str(RequestValidator(token).compute_signature(url, params))


def signed_form(token: str, url: str, params: dict[str, str]) -> tuple[dict[str, str], str]:
    """Headers and body of a webhook exactly as the CPaaS would send it."""
    headers = {**FORM, "X-Twilio-Signature": signature(token, url, params)}
    return headers, urlencode(params)


def call_params(call_sid: str, from_: str, to: str, **extra: str) -> dict[str, str]:
    params = {
        "AccountSid": "AC" + "0" * 32,
        "ApiVersion": "2010-04-01",
        "CallSid": call_sid,
        "CallStatus": "ringing",
        "Direction": "inbound",
        "From": from_,
        "To": to,
        "Caller": from_,
        "Called": to,
    }
    params.update(extra)
    return params


_callers = itertools.count(1000)


def caller() -> str:
    """A caller number no other test of this run has used (the local stack keeps its data)."""
    return f"+1312555{next(_callers):04d}"


def bearer(token: str) -> dict[str, Any]:
    return {"Authorization": f"Bearer {token}"}


def missing_system_package(message: str) -> NoReturn:
    """A Debian package a test needs is absent: fail in CI (tools/system_deps.sh installs
    everything in debian-packages.txt there), skip on a developer's machine."""
    message += ": run `bash tools/system_deps.sh` (debian-packages.txt)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def system_tool(name: str, package: str) -> str:
    """The path of a command from a Debian package, or fail/skip as above."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if found is None:
        missing_system_package(f"{name} is not installed (Debian package {package})")
    return found


class Clock:
    """Sets the time every module of the app reads (`chalicelib.clock`), for in-process tests.

    Use it through the `clock` fixture, which lets the wall clock run again after the test.
    """

    def now(self) -> datetime:
        return clock.utcnow()

    def stop(self) -> datetime:
        """Stop the clock where it stands; returns that moment."""
        return self.set(clock.utcnow())

    def set(self, moment: datetime) -> datetime:
        """Stop the clock at `moment` (an aware datetime) until set or advanced again."""
        clock.fix(moment)
        return moment

    def advance(self, by: timedelta) -> datetime:
        """Move the clock on by `by` from where it stands (from the wall clock if it runs)."""
        return self.set(clock.utcnow() + by)

    def run(self) -> None:
        """Let the wall clock run again."""
        clock.fix(None)
