"""Outbound HTTP to addresses our users give us (pixels, later RTB bidders), guarded
against SSRF: public addresses only, https only, no redirects, bounded size and time."""

from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

MAX_BODY_BYTES = 64 * 1024


class Refused(Exception):
    """The URL may not be called (scheme, host or address not allowed)."""


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes


def _allow_private() -> bool:
    # Only the local stack and tests set this: their receivers live on loopback.
    return os.environ.get("OUTBOUND_ALLOW_PRIVATE", "").lower() == "true"


def check_url(url: str) -> str:
    """The URL's host when it may be called; Refused otherwise (checked after DNS)."""
    parts = urlsplit(url)
    allow_private = _allow_private()
    if parts.scheme != "https" and not (allow_private and parts.scheme == "http"):
        raise Refused("only https URLs may be called")
    if not parts.hostname or parts.username or parts.password:
        raise Refused("the URL needs a host and no credentials")
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except socket.gaierror as err:
        raise Refused(f"cannot resolve {parts.hostname}") from err
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global and not allow_private:
            raise Refused(f"{parts.hostname} resolves to a non-public address")
    return parts.hostname


def call(
    method: str,
    url: str,
    *,
    headers: dict[str, str],
    content: bytes | None = None,
    timeout: float = 3.0,
) -> Reply:
    """One request: no redirects followed, at most 64 KB read, `timeout` seconds in all."""
    check_url(url)
    limits = httpx.Timeout(timeout, connect=min(timeout, 2.0))
    with (
        httpx.Client(follow_redirects=False, timeout=limits, trust_env=False) as client,
        client.stream(method, url, headers=headers, content=content) as response,
    ):
        body = b""
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                break
        return Reply(response.status_code, body[:MAX_BODY_BYTES])
