"""Tracking numbers: the tenant's copy and the global `NUM#<e164>` entry point for `To`."""

from __future__ import annotations

from dataclasses import dataclass

from pynamodb.exceptions import DoesNotExist, TransactWriteError
from pynamodb.transactions import TransactWrite

from chalicelib.clock import utcnow
from chalicelib.config import get_settings
from chalicelib.store import keys
from chalicelib.store.cache import TTLCache
from chalicelib.store.errors import condition_failed
from chalicelib.store.models import NumberLookupItem, TrackingNumberItem
from chalicelib.store.tables import connection


class NumberTaken(Exception):
    """The number already belongs to an account."""


@dataclass(frozen=True)
class NumberRoute:
    """What the inbound webhook needs to know about a dialled number."""

    account_id: str
    e164: str
    greeting: str | None


# Only numbers that exist are cached: a number added a moment ago must ring at once
# in every warm Lambda, not after a cached "not in service" expires.
_route_cache: TTLCache[str, NumberRoute] = TTLCache(ttl_seconds=get_settings().config_cache_seconds)


def add_tracking_number(
    account_id: str, e164: str, friendly_name: str | None = None, greeting: str | None = None
) -> TrackingNumberItem:
    item = TrackingNumberItem(
        keys.account_pk(account_id),
        keys.tracking_number_sk(e164),
        account_id=account_id,
        e164=e164,
        friendly_name=friendly_name,
        greeting=greeting,
        created_at=utcnow(),
    )
    lookup = NumberLookupItem(
        keys.number_pk(e164), keys.META, account_id=account_id, e164=e164, greeting=greeting
    )
    try:
        with TransactWrite(connection=connection()) as tx:
            tx.save(item, condition=TrackingNumberItem.pk.does_not_exist())
            tx.save(lookup, condition=NumberLookupItem.pk.does_not_exist())
    except TransactWriteError as err:
        if condition_failed(err):
            raise NumberTaken(e164) from err
        raise
    _route_cache.invalidate(e164)
    return item


def list_tracking_numbers(account_id: str) -> list[TrackingNumberItem]:
    return list(
        TrackingNumberItem.query(
            keys.account_pk(account_id),
            TrackingNumberItem.sk.startswith(keys.tracking_number_sk("")),
        )
    )


def route_for_number(e164: str) -> NumberRoute | None:
    """The account behind a dialled number: one GetItem, then served from a short cache."""
    hit, cached = _route_cache.get(e164)
    if hit:
        return cached
    try:
        lookup = NumberLookupItem.get(keys.number_pk(e164), keys.META)
    except DoesNotExist:
        return None
    route = NumberRoute(lookup.account_id, lookup.e164, lookup.greeting)
    _route_cache.put(e164, route)
    return route


def forget_cached_routes() -> None:
    _route_cache.clear()
