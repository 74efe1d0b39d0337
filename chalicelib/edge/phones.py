"""Edges and their phones over the store: secrets and credentials minted, presence judged."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from chalicelib.edge import devices
from chalicelib.edge.devices import Presence
from chalicelib.store import sip_edges
from chalicelib.store.models import SipDeviceItem, SipEdgeItem
from chalicelib.store.sip_edges import EdgePhone, EdgePrincipal


@dataclass(frozen=True)
class _Secret:
    plaintext: str
    digest: str
    prefix: str


def _new_secret() -> _Secret:
    secret = devices.new_edge_secret()
    return _Secret(secret, devices.hash_secret(secret), secret[:8])


def create_edge(account_id: str, name: str, domain: str) -> tuple[SipEdgeItem, str]:
    """A new edge and its shared secret (returned once, stored hashed).

    Raises AlreadyExists when the account has an edge for this domain."""
    secret = _new_secret()
    edge = sip_edges.create_edge(
        account_id,
        name,
        domain,
        secret_hash=secret.digest,
        secret_prefix=secret.prefix,
        call_token=devices.new_call_token(),
    )
    return edge, secret.plaintext


def rotate_edge_secret(edge: SipEdgeItem) -> str:
    """A new shared secret, and a new call token with it; the old secret stops working at
    once, the old token when the edge pulls the new one (and routing's cache renews)."""
    secret = _new_secret()
    sip_edges.replace_secret(
        edge,
        secret_hash=secret.digest,
        secret_prefix=secret.prefix,
        call_token=devices.new_call_token(),
    )
    return secret.plaintext


def authenticate_edge(secret: str) -> EdgePrincipal | None:
    """The edge presenting this secret, or None (one GetItem, none for a malformed secret)."""
    if not devices.looks_like_edge_secret(secret):
        return None
    return sip_edges.edge_for_secret(devices.hash_secret(secret))


def add_device(
    edge: SipEdgeItem, extension: str, label: str | None, user_id: str | None
) -> tuple[SipDeviceItem, str]:
    """A credential for `extension` on the edge; returns it and its password (shown once).

    Raises AlreadyExists when the extension has a credential on the edge."""
    password = devices.new_password()
    ha1 = devices.ha1(extension, edge.domain, password)
    return sip_edges.add_device(edge, extension, label, user_id, ha1), password


def rotate_password(device: SipDeviceItem) -> str:
    """A new password (returned once): the old one stops registering once the edge pulls
    the new HA1."""
    password = devices.new_password()
    sip_edges.replace_ha1(device, devices.ha1(device.extension, device.domain, password))
    return password


def presence_of(item: SipDeviceItem, edge_stale_after: float | None = None) -> Presence:
    until = item.registered_until
    return Presence(
        bool(item.registered), float(until) if until is not None else None, edge_stale_after
    )


def offline_targets(account_id: str, phones: dict[str, EdgePhone], now: datetime) -> set[str]:
    """The target ids whose phone cannot ring now: not registered, registration run out, its
    credential revoked, or its edge gone quiet. One BatchGetItem (the phones and their edges)."""
    stored = sip_edges.devices_on_edges(
        account_id, {target_id: (p.edge_id, p.extension) for target_id, p in phones.items()}
    )
    return {
        target_id
        for target_id in phones
        if (found := stored.get(target_id)) is None
        or not devices.is_online(presence_of(found.device, found.edge_stale_after), now)
    }
