"""DNI storage: pool keys, number leases, visitor sessions.

A pool number is held by at most one live session: `LeaseItem` changes only by conditional
writes (`held_until < now` to take a free number, `session_id = me` to keep one), so two
visitors racing for the last number cannot both get it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pynamodb.exceptions import DoesNotExist, UpdateError

from chalicelib.store import catalog, keys
from chalicelib.store.cache import forget_configuration
from chalicelib.store.errors import condition_failed
from chalicelib.store.models import DniSessionItem, LeaseItem, PoolItem, PoolKeyItem
from chalicelib.store.transactions import (
    Conflict,
    Lookup,
    Owned,
    Refused,
    labelled_transaction,
    write_with_lookups,
)

SESSION_RETENTION = timedelta(days=90)


@dataclass(frozen=True)
class Lease:
    number: str
    area_code: str | None
    session_id: str | None
    held_until: int
    attribution: dict[str, str]
    grace_seconds: int = 0


def _lease(item: LeaseItem) -> Lease:
    return Lease(
        item.number,
        item.area_code,
        item.session_id,
        int(item.held_until or 0),
        dict(item.attribution or {}),
        int(item.grace_seconds or 0),
    )


# --- pools ------------------------------------------------------------------------------------


def pool_for_key(public_key: str) -> PoolItem | None:
    """The pool a page's public key names (two GetItems), or None."""
    try:
        entry = PoolKeyItem.get(keys.pool_key_pk(public_key), keys.META)
    except DoesNotExist:
        return None
    return catalog.get(PoolItem, entry.account_id, entry.pool_id)


def create_pool(account_id: str, name: str, public_key: str, **fields: Any) -> PoolItem:
    """A new pool and the entry point from its public key, in one transaction."""
    pool = catalog.new(PoolItem, account_id, name, public_key=public_key, **fields)
    entry = PoolKeyItem(
        keys.pool_key_pk(public_key), keys.META, account_id=account_id, pool_id=pool.pool_id
    )
    write_with_lookups(Owned.new(pool), claim=[Lookup(entry, account_id)])
    forget_configuration()
    return pool


def sync_leases(account_id: str, pool_id: str, numbers: list[str]) -> None:
    """One lease per pool number: new numbers get a free lease, removed ones lose theirs
    (a session holding a removed number finds out at its next heartbeat)."""
    pk = keys.pool_pk(account_id, pool_id)
    existing = {lease.number for lease in leases(account_id, pool_id)}
    wanted = set(numbers)
    area_codes = area_codes_of(wanted)
    with LeaseItem.batch_write() as batch:
        for number in sorted(wanted - existing):
            batch.save(
                LeaseItem(
                    pk,
                    keys.lease_sk(number),
                    number=number,
                    area_code=area_codes.get(number),
                    held_until=0,
                )
            )
        for number in sorted(existing - wanted):
            batch.delete(LeaseItem(pk, keys.lease_sk(number)))


def leases(account_id: str, pool_id: str) -> list[Lease]:
    """Every number lease of a pool (one Query, consistent)."""
    pk = keys.pool_pk(account_id, pool_id)
    return [
        _lease(item)
        for item in LeaseItem.query(
            pk, LeaseItem.sk.startswith(keys.lease_sk("")), consistent_read=True
        )
    ]


def lease_of(account_id: str, pool_id: str, number: str) -> Lease | None:
    try:
        item = LeaseItem.get(keys.pool_pk(account_id, pool_id), keys.lease_sk(number))
    except DoesNotExist:
        return None
    return _lease(item)


def take(session: DniSessionItem, grace_seconds: int, now: int) -> bool:
    """Hold the free pool number `session.number` for the new `session` and store the session,
    in one transaction; False, and nothing written, when someone holds the number (or takes
    it at this moment) or it left the pool."""
    number = session.number or ""
    lease = LeaseItem(keys.pool_pk(session.account_id, session.pool_id), keys.lease_sk(number))
    try:
        with labelled_transaction() as tx:
            tx.update(
                "lease",
                lease,
                [
                    LeaseItem.session_id.set(session.session_id),
                    LeaseItem.held_until.set(session.held_until),
                    LeaseItem.attribution.set(session.attribution),
                    LeaseItem.grace_seconds.set(grace_seconds),
                ],
                LeaseItem.pk.exists() & (LeaseItem.held_until < now),
            )
            tx.save("session", session)
    except (Refused, Conflict):
        return False
    return True


def keep(
    account_id: str, pool_id: str, number: str, session_id: str, held_until: int, now: int
) -> bool:
    """Extend `session_id`'s hold; False when it no longer holds the number."""
    item = LeaseItem(keys.pool_pk(account_id, pool_id), keys.lease_sk(number))
    return _conditional(
        item,
        [LeaseItem.held_until.set(held_until)],
        LeaseItem.pk.exists()
        & (LeaseItem.session_id == session_id)
        & (LeaseItem.held_until >= now),
    )


def _conditional(item: LeaseItem, actions: list[Any], condition: Any) -> bool:
    try:
        item.update(actions=actions, condition=condition)
    except UpdateError as err:
        if condition_failed(err):
            return False
        raise
    return True


# --- sessions ---------------------------------------------------------------------------------


def new_session(
    *,
    account_id: str,
    session_id: str,
    visitor_id: str,
    pool: PoolItem,
    number: str | None,
    kind: str,
    attribution: dict[str, str],
    at: datetime,
    held_until: int,
) -> DniSessionItem:
    """A visitor session, not stored yet (`create_session` or `take` stores it)."""
    return DniSessionItem(
        keys.dni_session_pk(session_id),
        keys.META,
        account_id=account_id,
        session_id=session_id,
        visitor_id=visitor_id,
        pool_id=pool.pool_id,
        campaign_id=pool.campaign_id,
        publisher_id=pool.publisher_id,
        number=number,
        kind=kind,
        attribution=attribution,
        created_at=at,
        last_seen_at=at,
        held_until=held_until,
        gsi1pk=keys.pool_sessions_pk(account_id, pool.pool_id),
        gsi1sk=f"{at.isoformat()}#{session_id}",
        expires_at=at + SESSION_RETENTION,
    )


def create_session(item: DniSessionItem) -> None:
    """Store a new visitor session that holds no pool number (session ids are fresh, so no
    condition is needed)."""
    item.save()


def get_session(session_id: str) -> DniSessionItem | None:
    try:
        return DniSessionItem.get(keys.dni_session_pk(session_id), keys.META)
    except DoesNotExist:
        return None


def touch_session(item: DniSessionItem, at: datetime, held_until: int) -> None:
    """Record activity (last seen, hold) on a session; best effort, unconditional."""
    item.update(
        actions=[
            DniSessionItem.last_seen_at.set(at),
            DniSessionItem.held_until.set(held_until),
        ]
    )


def sessions_since(account_id: str, pool_id: str, since: datetime) -> Iterator[DniSessionItem]:
    """A pool's sessions created since `since`, oldest first (GSI1 query)."""
    partition = keys.pool_sessions_pk(account_id, pool_id)
    return iter(DniSessionItem.by_pool.query(partition, DniSessionItem.gsi1sk >= since.isoformat()))


def area_codes_of(numbers: Iterable[str]) -> dict[str, str | None]:
    """NANP area code of each +1 number (None elsewhere): local presence matches on it."""
    return {n: n[2:5] if n.startswith("+1") and len(n) == 12 else None for n in numbers}
