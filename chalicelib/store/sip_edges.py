"""SIP edges, operators' SIP credentials (HA1 only) and the presence the edges report."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pynamodb.exceptions import DoesNotExist, PutError, TransactWriteError, UpdateError
from pynamodb.expressions.update import Action
from pynamodb.transactions import TransactWrite

from chalicelib.clock import utcnow
from chalicelib.edge import devices
from chalicelib.store import keys
from chalicelib.store.errors import condition_failed
from chalicelib.store.models import (
    EdgeSecretLookupItem,
    SipDeviceItem,
    SipDomainItem,
    SipEdgeItem,
)
from chalicelib.store.rtb import read_items
from chalicelib.store.tables import connection
from chalicelib.store.tenants import AlreadyExists

# A snapshot's expiry (from ul.dump's seconds left) may differ from a report's by this much.
EXPIRY_SLACK_SECONDS = 30
# An edge that missed this many snapshots in a row is taken to be gone.
STALE_AFTER_INTERVALS = 3


@dataclass(frozen=True)
class EdgePrincipal:
    """Which account's edge a presented shared secret belongs to."""

    account_id: str
    edge_id: str
    domain: str
    call_token: str


@dataclass(frozen=True)
class EdgePhone:
    """A routing target that is a phone on one of the account's edges."""

    edge_id: str
    extension: str
    domain: str
    call_token: str

    def dial_uri(self) -> str:
        return devices.dial_uri(self.extension, self.domain, self.call_token)


@dataclass(frozen=True)
class Registration:
    """One extension's registration state, from an edge report or snapshot."""

    extension: str
    registered: bool
    contact_count: int
    registered_until: float | None
    user_agent: str | None
    source: str | None


@dataclass(frozen=True)
class SnapshotResult:
    devices: int
    online: int
    changed: int
    unknown: tuple[str, ...]  # registered extensions the app has no credential for


def _lookup(secret_hash: str, edge: SipEdgeItem) -> EdgeSecretLookupItem:
    return EdgeSecretLookupItem(
        keys.edge_secret_pk(secret_hash),
        keys.META,
        account_id=edge.account_id,
        edge_id=edge.edge_id,
        domain=edge.domain,
        call_token=edge.call_token,
    )


def create_edge(account_id: str, name: str, domain: str) -> tuple[SipEdgeItem, str]:
    """A new edge and its shared secret (returned once, stored hashed).

    Raises AlreadyExists when the account has an edge for this domain: routing finds a
    phone's edge by the domain of its SIP address."""
    edge_id = keys.new_id("edge")
    secret = devices.new_edge_secret()
    digest = devices.hash_secret(secret)
    edge = SipEdgeItem(
        keys.account_pk(account_id),
        keys.sip_edge_sk(edge_id),
        account_id=account_id,
        edge_id=edge_id,
        name=name,
        domain=domain,
        secret_prefix=secret[:8],
        secret_hash=digest,
        call_token=devices.new_call_token(),
        created_at=utcnow(),
    )
    # The domain is claimed by an item of its own, in the same transaction, so two edges of
    # one account can never share it.
    claim = SipDomainItem(keys.account_pk(account_id), keys.sip_domain_sk(domain), edge_id=edge_id)
    try:
        with TransactWrite(connection=connection()) as tx:
            tx.save(claim, condition=SipDomainItem.pk.does_not_exist())
            tx.save(edge, condition=SipEdgeItem.pk.does_not_exist())
            tx.save(_lookup(digest, edge), condition=EdgeSecretLookupItem.pk.does_not_exist())
    except TransactWriteError as err:
        if condition_failed(err):
            raise AlreadyExists(domain) from err
        raise
    return edge, secret


def list_edges(account_id: str) -> list[SipEdgeItem]:
    return list(
        SipEdgeItem.query(
            keys.account_pk(account_id), SipEdgeItem.sk.startswith(keys.sip_edge_sk(""))
        )
    )


def get_edge(account_id: str, edge_id: str) -> SipEdgeItem | None:
    try:
        return SipEdgeItem.get(keys.account_pk(account_id), keys.sip_edge_sk(edge_id))
    except DoesNotExist:
        return None


def rotate_edge_secret(edge: SipEdgeItem) -> str:
    """A new shared secret, and a new call token with it; the old secret stops working at
    once, the old token when the edge pulls the new one (and routing's cache renews)."""
    secret = devices.new_edge_secret()
    digest = devices.hash_secret(secret)
    old = EdgeSecretLookupItem(keys.edge_secret_pk(edge.secret_hash), keys.META)
    now = utcnow()
    token = devices.new_call_token()
    with TransactWrite(connection=connection()) as tx:
        tx.update(
            edge,
            actions=[
                SipEdgeItem.secret_hash.set(digest),
                SipEdgeItem.secret_prefix.set(secret[:8]),
                SipEdgeItem.call_token.set(token),
                SipEdgeItem.secret_rotated_at.set(now),
            ],
            condition=SipEdgeItem.secret_hash == edge.secret_hash,
        )
        tx.delete(old)
        edge.call_token = token
        tx.save(_lookup(digest, edge), condition=EdgeSecretLookupItem.pk.does_not_exist())
    edge.secret_hash, edge.secret_prefix, edge.secret_rotated_at = digest, secret[:8], now
    return secret


def delete_edge(edge: SipEdgeItem) -> None:
    """The edge, its domain claim and its secret's lookup, in one transaction."""
    claim = SipDomainItem(keys.account_pk(edge.account_id), keys.sip_domain_sk(edge.domain))
    lookup = EdgeSecretLookupItem(keys.edge_secret_pk(edge.secret_hash), keys.META)
    with TransactWrite(connection=connection()) as tx:
        tx.delete(edge, condition=SipEdgeItem.secret_hash == edge.secret_hash)
        tx.delete(claim)
        tx.delete(lookup)


def authenticate_edge(secret: str) -> EdgePrincipal | None:
    """The edge presenting this secret, or None (one GetItem)."""
    if not secret.startswith(f"{devices.EDGE_SECRET_PREFIX}_") or len(secret) > 128:
        return None
    try:
        found = EdgeSecretLookupItem.get(
            keys.edge_secret_pk(devices.hash_secret(secret)), keys.META
        )
    except DoesNotExist:
        return None
    return EdgePrincipal(found.account_id, found.edge_id, found.domain, found.call_token)


def add_device(
    edge: SipEdgeItem, extension: str, label: str | None, user_id: str | None
) -> tuple[SipDeviceItem, str]:
    """A credential for `extension` on the edge; returns it and its password (shown once)."""
    password = devices.new_password()
    item = SipDeviceItem(
        keys.account_pk(edge.account_id),
        keys.sip_device_sk(edge.edge_id, extension),
        account_id=edge.account_id,
        edge_id=edge.edge_id,
        extension=extension,
        domain=edge.domain,
        label=label,
        user_id=user_id,
        ha1=devices.ha1(extension, edge.domain, password),
        created_at=utcnow(),
    )
    try:
        item.save(condition=SipDeviceItem.pk.does_not_exist())
    except PutError as err:
        if condition_failed(err):
            raise AlreadyExists(extension) from err
        raise
    return item, password


def get_device(account_id: str, edge_id: str, extension: str) -> SipDeviceItem | None:
    try:
        return SipDeviceItem.get(
            keys.account_pk(account_id), keys.sip_device_sk(edge_id, extension)
        )
    except DoesNotExist:
        return None


def list_devices(account_id: str, edge_id: str = "") -> list[SipDeviceItem]:
    """An edge's devices, or with no edge every device of the account (one Query)."""
    prefix = keys.sip_device_sk(edge_id) if edge_id else keys.sip_device_sk()
    condition = SipDeviceItem.sk.startswith(prefix)
    return list(SipDeviceItem.query(keys.account_pk(account_id), condition))


def rotate_password(device: SipDeviceItem) -> str:
    """A new password: the old one stops registering once the edge pulls the new HA1."""
    password = devices.new_password()
    ha1 = devices.ha1(device.extension, device.domain, password)
    device.update(
        actions=[SipDeviceItem.ha1.set(ha1), SipDeviceItem.password_rotated_at.set(utcnow())],
        condition=SipDeviceItem.pk.exists(),
    )
    return password


def revoke_device(account_id: str, edge_id: str, extension: str) -> bool:
    """Deletes the credential (the edge drops it and its registration on its next pull)."""
    device = get_device(account_id, edge_id, extension)
    if device is None:
        return False
    device.delete()
    return True


def apply_report(principal: EdgePrincipal, report: Registration, at: float) -> str:
    """Records a registration change unless a newer one is recorded already.

    Returns "applied", "stale" (an older report arriving late) or "unknown" (no such
    credential: revoked, or never created)."""
    item = SipDeviceItem(
        keys.account_pk(principal.account_id),
        keys.sip_device_sk(principal.edge_id, report.extension),
    )
    actions: list[Action] = [
        SipDeviceItem.registered.set(report.registered),
        SipDeviceItem.contact_count.set(report.contact_count),
        SipDeviceItem.reported_at.set(at),
    ]
    if report.registered:
        actions += [
            SipDeviceItem.last_seen.set(devices.epoch(at)),
            SipDeviceItem.user_agent.set(report.user_agent or ""),
            SipDeviceItem.source.set(report.source or ""),
        ]
    if report.registered and report.registered_until is not None:
        actions.append(SipDeviceItem.registered_until.set(report.registered_until))
    else:
        actions.append(SipDeviceItem.registered_until.remove())
    try:
        item.update(
            actions=actions,
            condition=SipDeviceItem.pk.exists()
            & (SipDeviceItem.reported_at.does_not_exist() | (SipDeviceItem.reported_at <= at)),
        )
    except UpdateError as err:
        if not condition_failed(err):
            raise
        known = get_device(principal.account_id, principal.edge_id, report.extension)
        return "stale" if known is not None else "unknown"
    return "applied"


def _needs_write(device: SipDeviceItem, seen: Registration | None) -> bool:
    if seen is None:
        return bool(device.registered)
    if not device.registered or device.contact_count != seen.contact_count:
        return True
    # Still registered: reports keep the expiry fresh, so write only when the edge holds a
    # clearly later one (a re-register whose report was lost) or none at all.
    until = device.registered_until
    if seen.registered_until is None:
        return until is not None
    return until is None or until < seen.registered_until - EXPIRY_SLACK_SECONDS


def apply_snapshot(
    principal: EdgePrincipal,
    registrations: Sequence[Registration],
    at: float,
    interval: int | None = None,
) -> SnapshotResult:
    """Makes the app's presence match the edge's own registration table taken at `at`:
    listed extensions online, every other device of the edge offline. Devices changed after
    `at` by a report are left alone (the report is newer). With the edge's snapshot
    `interval`, the edge counts as gone (its phones offline) if three snapshots go missing."""
    seen = {registration.extension: registration for registration in registrations}
    known = list_devices(principal.account_id, principal.edge_id)
    changed = 0
    for device in known:
        registration = seen.get(device.extension)
        if not _needs_write(device, registration):
            continue
        offline = Registration(device.extension, False, 0, None, None, None)
        if apply_report(principal, registration or offline, at) == "applied":
            changed += 1
    edge = SipEdgeItem(keys.account_pk(principal.account_id), keys.sip_edge_sk(principal.edge_id))
    freshness = (
        SipEdgeItem.stale_after.set(at + STALE_AFTER_INTERVALS * interval + EXPIRY_SLACK_SECONDS)
        if interval
        else SipEdgeItem.stale_after.remove()
    )
    try:
        edge.update(
            actions=[SipEdgeItem.last_sync_at.set(devices.epoch(at)), freshness],
            condition=SipEdgeItem.pk.exists()
            & (
                SipEdgeItem.last_sync_at.does_not_exist()
                | (SipEdgeItem.last_sync_at <= devices.epoch(at))
            ),
        )
    except UpdateError as err:
        if not condition_failed(err):
            raise
    names = {device.extension for device in known}
    return SnapshotResult(
        devices=len(known),
        online=len(set(seen) & names),
        changed=changed,
        unknown=tuple(sorted(set(seen) - names)),
    )


def credentials_of(principal: EdgePrincipal) -> list[tuple[str, str]]:
    """(extension, HA1) of every device of the edge, sorted: what the edge may authenticate."""
    return sorted(
        (device.extension, device.ha1)
        for device in list_devices(principal.account_id, principal.edge_id)
    )


def edge_phones(account_id: str, destinations: dict[str, str]) -> dict[str, EdgePhone]:
    """The destinations (by target id) that are phones on one of the account's edges
    (`sip:EXT@edge-domain`); other destinations are not in the answer."""
    by_domain = {edge.domain: edge for edge in list_edges(account_id)}
    found: dict[str, EdgePhone] = {}
    for target_id, destination in destinations.items():
        scheme, _, address = destination.partition(":")
        extension, _, host = address.partition("@")
        edge = by_domain.get(host.split(";", 1)[0].split(":", 1)[0].lower())
        if scheme.lower() == "sip" and edge and devices.EXTENSION.match(extension):
            found[target_id] = EdgePhone(edge.edge_id, extension, edge.domain, edge.call_token)
    return found


def offline_targets(account_id: str, phones: dict[str, EdgePhone], now: datetime) -> set[str]:
    """The target ids whose phone cannot ring now: not registered, registration run out, its
    credential revoked, or its edge gone quiet. One BatchGetItem (the phones and their edges)."""
    keys_wanted = {
        target_id: (keys.account_pk(account_id), keys.sip_device_sk(p.edge_id, p.extension))
        for target_id, p in phones.items()
    }
    edge_keys = {
        target_id: (keys.account_pk(account_id), keys.sip_edge_sk(p.edge_id))
        for target_id, p in phones.items()
    }
    found = read_items([*keys_wanted.values(), *edge_keys.values()])
    offline = set()
    for target_id, key in keys_wanted.items():
        raw = found.get(key)
        edge = found.get(edge_keys[target_id])
        stale_after = _number(edge, "stale_after") if edge else None
        if raw is None or not devices.is_online(
            presence_of(SipDeviceItem.from_raw_data(raw), stale_after), now
        ):
            offline.add(target_id)
    return offline


def _number(raw: dict[str, Any], name: str) -> float | None:
    value = raw.get(name, {}).get("N")
    return float(value) if value is not None else None


def presence_of(item: SipDeviceItem, edge_stale_after: float | None = None) -> devices.Presence:
    until = item.registered_until
    return devices.Presence(
        bool(item.registered), float(until) if until is not None else None, edge_stale_after
    )
