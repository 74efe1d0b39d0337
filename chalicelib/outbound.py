"""Outbound HTTP to addresses our users give us (pixels, later RTB bidders), guarded
against SSRF: public addresses only, https only, no redirects, bounded size and time.

The host is resolved once, every address is checked, and the connection goes to the
checked address (TLS still verifies the certificate for the host name), so a DNS answer
that changes between the check and the connection (rebinding) cannot redirect it.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

MAX_BODY_BYTES = 64 * 1024
# IPv6 ranges that carry an IPv4 address inside (NAT64, 6to4, IPv4-compatible): judged by it.
_EMBEDDING = (
    ipaddress.ip_network("64:ff9b::/96"),
    ipaddress.ip_network("64:ff9b:1::/48"),
    ipaddress.ip_network("::/96"),
)


class Refused(Exception):
    """The URL may not be called (scheme, host or address not allowed)."""


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect, and the name to present and verify."""

    url: str
    connect_url: str
    host: str


def allow_private() -> bool:
    # Only the local stack and tests set this: their receivers live on loopback.
    return os.environ.get("OUTBOUND_ALLOW_PRIVATE", "").lower() == "true"


def is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and any(address in net for net in _EMBEDDING):
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return is_public(embedded)
        if address.teredo:
            return False
    return address.is_global and not address.is_multicast


def check_url(url: str) -> Target:
    """Resolve and check the URL; Refused unless every address it resolves to is allowed."""
    parts = urlsplit(url)
    private_ok = allow_private()
    if parts.scheme != "https" and not (private_ok and parts.scheme == "http"):
        raise Refused("only https URLs may be called")
    if not parts.hostname or parts.username or parts.password:
        raise Refused("the URL needs a host and no credentials")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(parts.hostname, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as err:
        raise Refused(f"cannot resolve {parts.hostname}") from err
    addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    if not addresses or not (private_ok or all(is_public(a) for a in addresses)):
        raise Refused(f"{parts.hostname} resolves to a non-public address")
    pinned = addresses[0]
    literal = f"[{pinned}]" if pinned.version == 6 else str(pinned)
    connect_url = urlunsplit(parts._replace(netloc=f"{literal}:{port}"))
    return Target(url, connect_url, parts.hostname)


def call(
    method: str,
    url: str,
    *,
    headers: dict[str, str],
    content: bytes | None = None,
    timeout: float = 3.0,
) -> Reply:
    """One request: no redirects, at most 64 KB read, `timeout` seconds in all."""
    # Imported here: the calls that send nothing (most of them) do not load httpx on a
    # cold start.
    import httpx

    target = check_url(url)
    deadline = time.monotonic() + timeout
    per_step = httpx.Timeout(timeout, connect=min(timeout, 2.0))
    request_headers = {**headers, "Host": urlsplit(url).netloc.rsplit("@", 1)[-1]}
    with (
        httpx.Client(follow_redirects=False, timeout=per_step, trust_env=False) as client,
        client.stream(
            method,
            target.connect_url,
            headers=request_headers,
            content=content,
            extensions={"sni_hostname": target.host},
        ) as response,
    ):
        body = b""
        for chunk in response.iter_bytes():
            body += chunk
            # A slow drip of bytes must not hold us past the deadline either.
            if len(body) > MAX_BODY_BYTES or time.monotonic() > deadline:
                break
        return Reply(response.status_code, body[:MAX_BODY_BYTES])
