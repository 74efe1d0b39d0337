"""RTB state: per-minute ping windows, cap counters read before an auction, held bids."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pynamodb.exceptions import DoesNotExist, UpdateError

from chalicelib.store import keys
from chalicelib.store.errors import condition_failed
from chalicelib.store.models import CounterItem, HeldBidItem

HELD_PREFIX = "HELD#"


def minute_sk(prefix: str, at: datetime) -> str:
    return f"{prefix}#{at:%Y%m%d%H%M}"


def take_from_window(pk: str, prefix: str, limit: int, at: datetime) -> bool:
    """Count one event in the current UTC minute unless `limit` were reached: one conditional
    UpdateItem, so concurrent Lambdas never let more than `limit` through a minute."""
    item = CounterItem(pk, minute_sk(prefix, at))
    try:
        item.update(
            actions=[CounterItem.n.add(1), CounterItem.expires_at.set(at + timedelta(hours=1))],
            condition=CounterItem.n.does_not_exist() | (CounterItem.n < limit),
        )
    except UpdateError as err:
        if condition_failed(err):
            return False
        raise
    return True


def counts(counter_keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """Current values of counters (missing ones are 0): one BatchGetItem per 100 keys."""
    wanted = sorted(set(counter_keys))
    found = {(item.pk, item.sk): int(item.n) for item in CounterItem.batch_get(wanted)}
    return {key: found.get(key, 0) for key in wanted}


def tags_key(tags: Mapping[str, str]) -> str:
    """The same tags in any order give the same key."""
    text = json.dumps(sorted(tags.items()), separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class HeldBid:
    """A publisher's ping bid as a call (or a repeat ping) needs it."""

    account_id: str
    bid_id: str
    campaign_id: str
    publisher_id: str
    number: str  # the tracking number the call must arrive on
    caller: str
    tags_key: str
    bids: list[dict[str, Any]]
    offer_cents: int
    held_until: int  # epoch seconds
    used_by: str | None

    def live(self, at: datetime) -> bool:
        return self.used_by is None and at.timestamp() < self.held_until


def _held(item: HeldBidItem, number: str, caller: str) -> HeldBid:
    return HeldBid(
        account_id=item.account_id,
        bid_id=item.bid_id,
        campaign_id=item.campaign_id,
        publisher_id=item.publisher_id,
        number=number,
        caller=caller,
        tags_key=item.tags_key,
        bids=list(item.bids or []),
        offer_cents=int(item.offer_cents),
        held_until=int(item.held_until),
        used_by=item.used_by,
    )


def hold(bid: HeldBid, at: datetime) -> None:
    """Hold (or replace) the caller's bid on this number until `bid.held_until`."""
    HeldBidItem(
        keys.number_pk(bid.number),
        HELD_PREFIX + bid.caller,
        account_id=bid.account_id,
        bid_id=bid.bid_id,
        campaign_id=bid.campaign_id,
        publisher_id=bid.publisher_id,
        tags_key=bid.tags_key,
        bids=bid.bids,
        offer_cents=bid.offer_cents,
        held_until=bid.held_until,
        created_at=at,
        # Kept a day past its hold so a late look-up can still tell "expired" from "never".
        expires_at=datetime.fromtimestamp(bid.held_until, at.tzinfo) + timedelta(days=1),
    ).save()


def held_bid(number: str, caller: str) -> HeldBid | None:
    """The bid held for `caller` on `number` (live or not), read consistently."""
    try:
        item = HeldBidItem.get(keys.number_pk(number), HELD_PREFIX + caller, consistent_read=True)
    except DoesNotExist:
        return None
    return _held(item, number, caller)


def use_held_bid(bid: HeldBid, call_sid: str, at: datetime) -> bool:
    """Mark the bid used by this call; False when another call used it or it expired."""
    item = HeldBidItem(keys.number_pk(bid.number), HELD_PREFIX + bid.caller)
    try:
        item.update(
            actions=[HeldBidItem.used_by.set(call_sid)],
            condition=HeldBidItem.used_by.does_not_exist()
            & (HeldBidItem.bid_id == bid.bid_id)
            & (HeldBidItem.held_until > int(at.timestamp())),
        )
    except UpdateError as err:
        if condition_failed(err):
            return False
        raise
    return True
