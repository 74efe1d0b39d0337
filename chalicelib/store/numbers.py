"""Tracking numbers: the tenant's copy and the global `NUM#<e164>` entry point for `To`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pynamodb.exceptions import DoesNotExist

from chalicelib.clock import utcnow
from chalicelib.config import get_settings
from chalicelib.store import keys
from chalicelib.store.cache import TTLCache, forget_configuration
from chalicelib.store.models import NumberLookupItem, TrackingNumberItem
from chalicelib.store.transactions import Lookup, Owned, Refused, write_with_lookups


class NumberTaken(Exception):
    """The number already belongs to an account."""


@dataclass(frozen=True)
class NumberRoute:
    """What the inbound webhook needs to know about a dialled number."""

    account_id: str
    e164: str
    greeting: str | None
    campaign_id: str | None = None
    publisher_id: str | None = None
    source: str | None = None
    pool_id: str | None = None


# Only numbers that exist are cached: a number added a moment ago must ring at once
# in every warm Lambda, not after a cached "not in service" expires.
_route_cache: TTLCache[str, NumberRoute] = TTLCache(ttl_seconds=get_settings().config_cache_seconds)


@dataclass(frozen=True)
class Attribution:
    """Where a number's calls go and who gets credit for them."""

    campaign_id: str | None = None
    publisher_id: str | None = None
    source: str | None = None
    pool_id: str | None = None


def add_tracking_number(
    account_id: str,
    e164: str,
    friendly_name: str | None = None,
    greeting: str | None = None,
    attribution: Attribution = Attribution(),
    cpaas_sid: str | None = None,
) -> TrackingNumberItem:
    fields: dict[str, Any] = {
        "campaign_id": attribution.campaign_id,
        "publisher_id": attribution.publisher_id,
        "source": attribution.source,
        "pool_id": attribution.pool_id,
    }
    item = TrackingNumberItem(
        keys.account_pk(account_id),
        keys.tracking_number_sk(e164),
        account_id=account_id,
        e164=e164,
        friendly_name=friendly_name,
        greeting=greeting,
        cpaas_sid=cpaas_sid,
        created_at=utcnow(),
        **fields,
    )
    lookup = NumberLookupItem(
        keys.number_pk(e164),
        keys.META,
        account_id=account_id,
        e164=e164,
        greeting=greeting,
        **fields,
    )
    try:
        write_with_lookups(Owned.new(item), claim=[Lookup(lookup, account_id)])
    except Refused as refused:
        raise NumberTaken(e164) from refused
    _route_cache.invalidate(e164)
    forget_configuration()  # e.g. which number a publisher pings for
    return item


def get_tracking_number(account_id: str, e164: str) -> TrackingNumberItem | None:
    try:
        return TrackingNumberItem.get(keys.account_pk(account_id), keys.tracking_number_sk(e164))
    except DoesNotExist:
        return None


def assign(account_id: str, e164: str, attribution: Attribution) -> TrackingNumberItem | None:
    """Point a number of this account at a campaign/publisher/source/pool (both items at once)."""
    item = get_tracking_number(account_id, e164)
    if item is None:
        return None
    values = {
        "campaign_id": attribution.campaign_id,
        "publisher_id": attribution.publisher_id,
        "source": attribution.source,
        "pool_id": attribution.pool_id,
    }
    lookup = Lookup(NumberLookupItem(keys.number_pk(e164), keys.META), account_id)
    write_with_lookups(
        Owned.changed(
            item,
            [getattr(TrackingNumberItem, k).set(v) for k, v in values.items()],
            TrackingNumberItem.account_id == account_id,
        ),
        update=[(lookup, [getattr(NumberLookupItem, k).set(v) for k, v in values.items()])],
    )
    for key, value in values.items():
        setattr(item, key, value)
    _route_cache.invalidate(e164)
    forget_configuration()  # e.g. which number a publisher pings for
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
    route = NumberRoute(
        lookup.account_id,
        lookup.e164,
        lookup.greeting,
        lookup.campaign_id,
        lookup.publisher_id,
        lookup.source,
        lookup.pool_id,
    )
    _route_cache.put(e164, route)
    return route


def forget_cached_routes() -> None:
    _route_cache.clear()
