"""Pure rules of SIP devices: credentials (HA1), extensions, and online/offline status."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

# What the edge's renderer and its hand-built JSON reports accept (edge_sip/render.py).
EXTENSION = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
DOMAIN = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*$")
EDGE_SECRET_PREFIX = "edg"  # noqa: S105 - a prefix, not a secret


def ha1(extension: str, domain: str, password: str) -> str:
    """The digest-auth HA1, md5(user:realm:password), which is all the edge needs to check a
    REGISTER (RFC 2617's MD5 is what SIP phones speak; the HA1 is realm-bound)."""
    return hashlib.md5(f"{extension}:{domain}:{password}".encode()).hexdigest()  # noqa: S324


def new_password() -> str:
    """A SIP password typed into a phone's web page: 20 letters and digits (119 bits)."""
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"
    return "".join(secrets.choice(alphabet) for _ in range(20))


def new_edge_secret() -> str:
    """The edge's shared secret; fits the renderer's EDGE_SHARED_SECRET character set."""
    return f"{EDGE_SECRET_PREFIX}_{secrets.token_urlsafe(32)}"


# The header the CPaaS adds to an INVITE for a phone on an edge (Twilio: the <Sip> URI's
# `?X-...=` part); the edge relays only INVITEs carrying its own call token. The CPaaS's
# addresses alone do not tell one customer of the CPaaS (or one account) from another.
CALL_TOKEN_HEADER = "X-PPC-Edge-Token"  # noqa: S105 - a header name


def new_call_token() -> str:
    return secrets.token_urlsafe(24)


def dial_uri(extension: str, domain: str, call_token: str) -> str:
    """What routing puts in <Dial><Sip>: the phone's address and the edge's call token."""
    return f"{sip_uri(extension, domain)}?{CALL_TOKEN_HEADER}={call_token}"


def hash_secret(secret: str) -> str:
    # 256-bit random secrets: a fast hash is enough (nothing to brute-force).
    return hashlib.sha256(secret.encode()).hexdigest()


def sip_uri(extension: str, domain: str) -> str:
    """The destination routing dials (`<Dial><Sip>`) to ring this phone through the edge."""
    return f"sip:{extension}@{domain}"


@dataclass(frozen=True)
class Presence:
    """A device's registration state as the edge reported it."""

    registered: bool
    registered_until: float | None  # epoch seconds
    edge_stale_after: float | None = None  # epoch seconds; None: the edge sends no snapshots


def edge_is_stale(stale_after: float | None, now: datetime) -> bool:
    """The edge missed its snapshots (three intervals): it is down or cut off."""
    return stale_after is not None and stale_after < now.timestamp()


def is_online(presence: Presence, now: datetime) -> bool:
    """Registered, the registration not yet run out, and its edge still sending snapshots:
    an edge that stopped reporting cannot leave a phone "online"."""
    if not presence.registered or edge_is_stale(presence.edge_stale_after, now):
        return False
    if presence.registered_until is None:
        return True
    return presence.registered_until > now.timestamp()


def epoch(moment: float) -> datetime:
    return datetime.fromtimestamp(moment, UTC)
