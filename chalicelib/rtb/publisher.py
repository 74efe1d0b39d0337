"""Ping before post: a publisher asks what a caller is worth before sending the call.

The campaign's ring tree holds an auction for the caller; the best bid, priced for the
publisher, is held on the publisher's tracking number for that caller until it expires.
A repeat ping with the same caller and tags gets the held bid back (no new auction); the
caller's call to that number before expiry is routed to the held bid's buyer at its price
(`voice.inbound`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from chalicelib.campaigns import CampaignConfig, load_campaign, publisher_terms
from chalicelib.config import get_settings
from chalicelib.observability import logger
from chalicelib.routing.callers import call_facts, caller_tags
from chalicelib.rtb.ringtree import read_state, run_ring_tree
from chalicelib.store import keys, numbers
from chalicelib.store import rtb as rtb_store
from chalicelib.store.cache import TTLCache

PING_WINDOW = "PINGS"


@dataclass(frozen=True)
class PingRequest:
    account_id: str
    publisher_id: str
    campaign_id: str
    caller_id: str  # E.164
    tags: dict[str, str] = field(default_factory=dict, hash=False)


class Unroutable(Exception):
    """The campaign cannot take this publisher's calls (paused, no number, no ring tree)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class RateLimited(Exception):
    def __init__(self, limit: int, retry_after: int) -> None:
        super().__init__(f"{limit} pings per minute")
        self.limit = limit
        self.retry_after = retry_after


_numbers: TTLCache[tuple[str, str, str], str | None] = TTLCache(
    ttl_seconds=get_settings().config_cache_seconds
)


def tracking_number(account_id: str, campaign_id: str, publisher_id: str) -> str | None:
    """The number the publisher sends this campaign's calls to (the first, if several)."""
    key = (account_id, campaign_id, publisher_id)
    hit, cached = _numbers.get(key)
    if hit:
        return cached
    found = sorted(
        item.e164
        for item in numbers.list_tracking_numbers(account_id)
        if item.campaign_id == campaign_id and item.publisher_id == publisher_id
    )
    number = found[0] if found else None
    _numbers.put(key, number)
    return number


def ping_campaign(request: PingRequest, now: datetime) -> dict[str, Any]:
    """The bid for this ping: the held one if this caller and tags pinged before, else a
    new auction. LookupError for an unknown campaign; Unroutable, RateLimited."""
    config = load_campaign(request.account_id, request.campaign_id)
    if config is None:
        raise LookupError(request.campaign_id)
    if not config.active:
        raise Unroutable("campaign_paused", "the campaign is paused")
    number = tracking_number(request.account_id, request.campaign_id, request.publisher_id)
    if number is None:
        raise Unroutable(
            "no_tracking_number", "no tracking number sends this publisher's calls here"
        )
    if not config.bidders:
        raise Unroutable("no_ring_tree", "the campaign has no RTB targets to bid")
    limit = config.settings.ring_tree.publisher_pings_per_minute
    counter = keys.counter_pk(request.account_id, "PUB", request.publisher_id)
    if not rtb_store.take_from_window(counter, f"{PING_WINDOW}#{config.campaign_id}", limit, now):
        raise RateLimited(limit, 60 - now.second)
    tags_key = rtb_store.tags_key(request.tags)
    reads = read_state(config, None, number, request.caller_id, now)
    held = reads.held
    if (
        held is not None
        and held.live(now)
        and held.tags_key == tags_key
        and (held.account_id, held.campaign_id, held.publisher_id)
        == (request.account_id, request.campaign_id, request.publisher_id)
    ):
        return _answer(held.bid_id, held.offer_cents, number, held.held_until, now)
    return _auction(config, request, number, tags_key, reads.counts, now)


def _auction(
    config: CampaignConfig,
    request: PingRequest,
    number: str,
    tags_key: str,
    counts: Mapping[tuple[str, str], int],
    now: datetime,
) -> dict[str, Any]:
    bid_id = keys.new_id("bid")
    tags = caller_tags(request.caller_id, {})
    facts = call_facts(request.caller_id, {**tags, **request.tags}, now)
    try:
        tree = run_ring_tree(
            config,
            facts,
            counts,
            call_id=bid_id,
            publisher_id=request.publisher_id,
            ping_bid_id=bid_id,
        )
    except Exception:  # noqa: BLE001 - the publisher gets a clear "no bid", not a 500
        logger.exception("ring tree failed for a publisher ping")
        return _rejection(bid_id, "auction unavailable, try again")
    if tree is None or tree.winner is None:
        reason = "no buyer takes this caller" if tree is None else "no valid bid"
        return _rejection(bid_id, reason)
    winner = tree.winner
    bids = list(tree.bids.values())
    offer = bids[0].payout_cents
    if offer is None:
        # No margin set: the publisher is paid as for the campaign's other calls.
        terms = publisher_terms(request.account_id, request.publisher_id)
        offer = terms.payouts.get(config.campaign_id, config.settings.payout_cents)
        bids[0] = replace(bids[0], payout_cents=offer)
    hold_seconds = config.settings.ring_tree.hold_seconds
    if winner.expires_in is not None:
        hold_seconds = min(hold_seconds, winner.expires_in)
    held_until = int((now + timedelta(seconds=hold_seconds)).timestamp())
    rtb_store.hold(
        rtb_store.HeldBid(
            account_id=request.account_id,
            bid_id=bid_id,
            campaign_id=config.campaign_id,
            publisher_id=request.publisher_id,
            number=number,
            caller=request.caller_id,
            tags_key=tags_key,
            bids=[bid.to_json() for bid in bids],
            offer_cents=int(offer),
            held_until=held_until,
            used_by=None,
        ),
        now,
    )
    return _answer(bid_id, int(offer), number, held_until, now)


def _answer(
    bid_id: str, offer_cents: int, number: str, held_until: int, now: datetime
) -> dict[str, Any]:
    return {
        "bid_id": bid_id,
        "bid_amount": offer_cents / 100,
        "bid_amount_cents": offer_cents,
        "phone_number": number,
        "sip_address": None,
        "expire_in_seconds": max(0, held_until - int(now.timestamp())),
        "reject_reason": None,
    }


def _rejection(bid_id: str, reason: str) -> dict[str, Any]:
    return {
        "bid_id": bid_id,
        "bid_amount": 0,
        "bid_amount_cents": 0,
        "phone_number": None,
        "sip_address": None,
        "expire_in_seconds": 0,
        "reject_reason": reason,
    }
