"""RTB state: per-minute ping windows, cap counters read before an auction, held bids."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pynamodb.exceptions import UpdateError

from chalicelib.store import keys
from chalicelib.store.errors import condition_failed
from chalicelib.store.models import CounterItem, HeldBidItem
from chalicelib.store.tables import connection

HELD_PREFIX = "HELD#"
BATCH_GET_LIMIT = 100
UNPROCESSED_RETRIES = 5


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


def read_items(item_keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Raw items (any model) by (pk, sk), read consistently: one BatchGetItem per 100 keys,
    so reads that one step needs from different models cost one request."""
    wanted = sorted(set(item_keys))
    table = CounterItem.Meta.table_name
    client = connection().client
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for start in range(0, len(wanted), BATCH_GET_LIMIT):
        request: dict[str, Any] = {
            table: {
                "Keys": [
                    {"pk": {"S": pk}, "sk": {"S": sk}}
                    for pk, sk in wanted[start : start + BATCH_GET_LIMIT]
                ],
                "ConsistentRead": True,
            }
        }
        for attempt in range(UNPROCESSED_RETRIES):
            reply = client.batch_get_item(RequestItems=request)
            for raw in reply.get("Responses", {}).get(table, []):
                found[(raw["pk"]["S"], raw["sk"]["S"])] = raw
            request = reply.get("UnprocessedKeys") or {}
            if not request:
                break
            time.sleep(0.01 * 2**attempt)
        else:
            raise RuntimeError("DynamoDB left keys unprocessed after retries")
    return found


@dataclass(frozen=True)
class RingTreeReads:
    """What routing a call through a ring tree reads first, in one request."""

    call_exists: bool
    held: HeldBid | None
    counts: dict[tuple[str, str], int]


def read_for_ring_tree(
    call_sid: str | None, number: str, caller: str, counter_keys: Iterable[tuple[str, str]]
) -> RingTreeReads:
    """The call record's existence (a retried webhook), the caller's held bid on `number`,
    and cap counters (missing ones are 0)."""
    call_key = (keys.call_pk(call_sid), keys.META) if call_sid else None
    held_key = (keys.number_pk(number), HELD_PREFIX + caller)
    counter_keys = list(counter_keys)
    found = read_items([held_key, *counter_keys, *([call_key] if call_key else [])])
    held_raw = found.get(held_key)
    return RingTreeReads(
        call_exists=call_key is not None and call_key in found,
        held=_held(HeldBidItem.from_raw_data(held_raw), number, caller) if held_raw else None,
        counts={key: int(found[key]["n"]["N"]) if key in found else 0 for key in counter_keys},
    )


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
