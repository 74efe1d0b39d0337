"""SIP edges, operators' SIP credentials (HA1 only) and the presence the edges report.

Secrets, call tokens and HA1s are made on the domain side (`chalicelib.edge`); this module
keeps what it is given: a secret's hash and prefix, never the secret; an HA1, never a password.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pynamodb.exceptions import DoesNotExist, PutError, UpdateError
from pynamodb.expressions.update import Action

from chalicelib.clock import utcnow
from chalicelib.sip import dial_uri, phone_address
from chalicelib.store import keys
from chalicelib.store.errors import condition_failed
from chalicelib.store.models import (
    EdgeSecretLookupItem,
    SipDeviceItem,
    SipDomainItem,
    SipEdgeItem,
)
from chalicelib.store.rtb import read_items
from chalicelib.store.tenants import AlreadyExists
from chalicelib.store.transactions import Lookup, Owned, Refused, write_with_lookups

# A snapshot's expiry (from ul.dump's seconds left) may differ from a report's by this much.
EXPIRY_SLACK_SECONDS = 30


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
        return dial_uri(self.extension, self.domain, self.call_token)


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


@dataclass(frozen=True)
class DeviceOnEdge:
    """A stored phone credential with its presence, and when its edge counts as gone without
    a newer snapshot (epoch seconds; None: the edge sends no snapshots)."""

    device: SipDeviceItem
    edge_stale_after: float | None


def _secret_lookup(edge: SipEdgeItem, secret_hash: str, call_token: str) -> Lookup:
    item = EdgeSecretLookupItem(
        keys.edge_secret_pk(secret_hash),
        keys.META,
        account_id=edge.account_id,
        edge_id=edge.edge_id,
        domain=edge.domain,
        call_token=call_token,
    )
    return Lookup(item, edge.account_id)


def _domain_claim(edge: SipEdgeItem) -> Lookup:
    # Per account, not global: the claim holds the edge, so two edges of one account can
    # never share a domain.
    item = SipDomainItem(
        keys.account_pk(edge.account_id), keys.sip_domain_sk(edge.domain), edge_id=edge.edge_id
    )
    return Lookup(item, edge.edge_id, attribute="edge_id")


def create_edge(
    account_id: str,
    name: str,
    domain: str,
    *,
    secret_hash: str,
    secret_prefix: str,
    call_token: str,
) -> SipEdgeItem:
    """A new edge, its domain claim and its secret's lookup, in one transaction.

    Raises AlreadyExists when the account has an edge for this domain: routing finds a
    phone's edge by the domain of its SIP address."""
    edge_id = keys.new_id("edge")
    edge = SipEdgeItem(
        keys.account_pk(account_id),
        keys.sip_edge_sk(edge_id),
        account_id=account_id,
        edge_id=edge_id,
        name=name,
        domain=domain,
        secret_prefix=secret_prefix,
        secret_hash=secret_hash,
        call_token=call_token,
        created_at=utcnow(),
    )
    claims = [_domain_claim(edge), _secret_lookup(edge, secret_hash, call_token)]
    try:
        write_with_lookups(Owned.new(edge), claim=claims)
    except Refused as refused:
        raise AlreadyExists(domain) from refused
    return edge


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


def replace_secret(
    edge: SipEdgeItem, *, secret_hash: str, secret_prefix: str, call_token: str
) -> None:
    """The edge's new secret (its hash) and call token: the old secret's lookup goes and the
    new one's comes with them, in one transaction, if no one rotated it meanwhile."""
    old = _secret_lookup(edge, edge.secret_hash, edge.call_token)
    now = utcnow()
    write_with_lookups(
        Owned.changed(
            edge,
            [
                SipEdgeItem.secret_hash.set(secret_hash),
                SipEdgeItem.secret_prefix.set(secret_prefix),
                SipEdgeItem.call_token.set(call_token),
                SipEdgeItem.secret_rotated_at.set(now),
            ],
            SipEdgeItem.secret_hash == edge.secret_hash,
        ),
        release=[old],
        claim=[_secret_lookup(edge, secret_hash, call_token)],
    )
    edge.secret_hash, edge.secret_prefix = secret_hash, secret_prefix
    edge.call_token, edge.secret_rotated_at = call_token, now


def delete_edge(edge: SipEdgeItem) -> None:
    """The edge, its domain claim and its secret's lookup, in one transaction."""
    write_with_lookups(
        Owned.removed(edge, SipEdgeItem.secret_hash == edge.secret_hash),
        release=[_domain_claim(edge), _secret_lookup(edge, edge.secret_hash, edge.call_token)],
    )


def edge_for_secret(secret_hash: str) -> EdgePrincipal | None:
    """The edge whose secret has this hash, or None (one GetItem)."""
    try:
        found = EdgeSecretLookupItem.get(keys.edge_secret_pk(secret_hash), keys.META)
    except DoesNotExist:
        return None
    return EdgePrincipal(found.account_id, found.edge_id, found.domain, found.call_token)


def add_device(
    edge: SipEdgeItem, extension: str, label: str | None, user_id: str | None, ha1: str
) -> SipDeviceItem:
    """A credential for `extension` on the edge, stored as its HA1."""
    item = SipDeviceItem(
        keys.account_pk(edge.account_id),
        keys.sip_device_sk(edge.edge_id, extension),
        account_id=edge.account_id,
        edge_id=edge.edge_id,
        extension=extension,
        domain=edge.domain,
        label=label,
        user_id=user_id,
        ha1=ha1,
        created_at=utcnow(),
    )
    try:
        item.save(condition=SipDeviceItem.pk.does_not_exist())
    except PutError as err:
        if condition_failed(err):
            raise AlreadyExists(extension) from err
        raise
    return item


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


def replace_ha1(device: SipDeviceItem, ha1: str) -> None:
    """A new password's HA1: the old one stops registering once the edge pulls the new HA1."""
    device.update(
        actions=[SipDeviceItem.ha1.set(ha1), SipDeviceItem.password_rotated_at.set(utcnow())],
        condition=SipDeviceItem.pk.exists(),
    )


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
            SipDeviceItem.last_seen.set(_utc(at)),
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
    stale_after: float | None = None,
) -> SnapshotResult:
    """Makes the app's presence match the edge's own registration table taken at `at`:
    listed extensions online, every other device of the edge offline. Devices changed after
    `at` by a report are left alone (the report is newer). The edge records `stale_after`:
    when, without a newer snapshot, it counts as gone (None: it sends no snapshots)."""
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
        SipEdgeItem.stale_after.set(stale_after)
        if stale_after is not None
        else SipEdgeItem.stale_after.remove()
    )
    try:
        edge.update(
            actions=[SipEdgeItem.last_sync_at.set(_utc(at)), freshness],
            condition=SipEdgeItem.pk.exists()
            & (SipEdgeItem.last_sync_at.does_not_exist() | (SipEdgeItem.last_sync_at <= _utc(at))),
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
    (`sip:EXT@edge-domain`); other destinations are not in the answer. One Query."""
    by_domain = {edge.domain: edge for edge in list_edges(account_id)}
    found: dict[str, EdgePhone] = {}
    for target_id, destination in destinations.items():
        address = phone_address(destination)
        edge = by_domain.get(address[1]) if address else None
        if address and edge:
            found[target_id] = EdgePhone(edge.edge_id, address[0], edge.domain, edge.call_token)
    return found


def devices_on_edges(
    account_id: str, phones: Mapping[str, tuple[str, str]]
) -> dict[str, DeviceOnEdge]:
    """The credentials of the phones, given as (edge id, extension) by a key of the caller's,
    with their edges' snapshot deadlines; a phone without a credential is not in the answer.
    One BatchGetItem (the phones and their edges)."""
    pk = keys.account_pk(account_id)
    device_keys = {key: (pk, keys.sip_device_sk(*phone)) for key, phone in phones.items()}
    edge_keys = {key: (pk, keys.sip_edge_sk(edge_id)) for key, (edge_id, _) in phones.items()}
    found = read_items([*device_keys.values(), *edge_keys.values()])
    answer: dict[str, DeviceOnEdge] = {}
    for key, device_key in device_keys.items():
        raw = found.get(device_key)
        if raw is None:
            continue
        edge = found.get(edge_keys[key])
        stale_after = _number(edge, "stale_after") if edge else None
        answer[key] = DeviceOnEdge(SipDeviceItem.from_raw_data(raw), stale_after)
    return answer


def _number(raw: dict[str, Any], name: str) -> float | None:
    value = raw.get(name, {}).get("N")
    return float(value) if value is not None else None


def _utc(moment: float) -> datetime:
    return datetime.fromtimestamp(moment, UTC)
