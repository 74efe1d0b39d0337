"""Helpers shared by the test suites: free ports, signing like the CPaaS, logins."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from twilio.request_validator import RequestValidator

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


def bearer(token: str) -> dict[str, Any]:
    return {"Authorization": f"Bearer {token}"}
