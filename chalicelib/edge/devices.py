"""Pure rules of SIP devices and edges: credentials (HA1, secrets), online/offline status."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

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


def new_call_token() -> str:
    """The edge's call token, which the CPaaS sends with every INVITE for the edge."""
    return secrets.token_urlsafe(24)


def hash_secret(secret: str) -> str:
    # 256-bit random secrets: a fast hash is enough (nothing to brute-force).
    return hashlib.sha256(secret.encode()).hexdigest()


def looks_like_edge_secret(secret: str) -> bool:
    """Worth a lookup: the secret's prefix, and not so long that hashing it costs much."""
    return secret.startswith(f"{EDGE_SECRET_PREFIX}_") and len(secret) <= 128


@dataclass(frozen=True)
class Presence:
    """A device's registration state as the edge reported it."""

    registered: bool
    registered_until: float | None  # epoch seconds
    edge_stale_after: float | None = None  # epoch seconds; None: the edge sends no snapshots


# An edge that missed this many snapshots in a row is taken to be gone; a snapshot may come
# this late without counting as missed.
STALE_AFTER_INTERVALS = 3
SNAPSHOT_SLACK_SECONDS = 30


def edge_stale_after(at: float, interval: int | None) -> float | None:
    """When an edge whose snapshot of `at` says it sends one every `interval` seconds counts
    as gone without a newer one (epoch seconds); None: it sends no snapshots."""
    return at + STALE_AFTER_INTERVALS * interval + SNAPSHOT_SLACK_SECONDS if interval else None


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
