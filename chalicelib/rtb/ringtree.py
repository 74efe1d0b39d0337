"""A campaign's ring tree: the RTB targets that bid for a call before the static targets ring.

One auction per call (or per publisher ping): filter the bidders (schedule, geo, tags), leave
out those at a cap (accepted calls per hour/day/month/total, concurrency, pings per minute),
ping the rest in parallel, log every bid, and price the valid bids for the publisher.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from chalicelib.bidding.auction import (
    AuctionResult,
    Candidate,
    PricedBid,
    publisher_offer_cents,
    run_auction_sync,
)
from chalicelib.bidding.bidders import Bidder, PingContext, eligible_bidders
from chalicelib.campaigns import CampaignConfig
from chalicelib.observability import logger
from chalicelib.routing import CallFacts
from chalicelib.store import bids as bid_log
from chalicelib.store import keys
from chalicelib.store import rtb as rtb_store
from chalicelib.store.reservations import CapCheck

PING_WINDOW = "PINGS"


@dataclass(frozen=True)
class TreeResult:
    """The priced bids, best first (`bids` keeps that order), and what was left out."""

    auction_id: str
    auction: AuctionResult
    bids: dict[str, PricedBid]
    excluded: dict[str, str]

    @property
    def winner(self) -> Candidate | None:
        return self.auction.winner


def _route_checks(config: CampaignConfig, bidder_id: str, at: datetime) -> list[CapCheck]:
    return [check for _, check in config.route_checks([bidder_id], at)]


def counter_keys(config: CampaignConfig, at: datetime) -> list[tuple[str, str]]:
    """The cap counters of every bidder of the ring tree (and of their buyers)."""
    return sorted(
        {
            (check.pk, check.sk)
            for bidder in config.bidders
            for check in _route_checks(config, bidder.bidder_id, at)
        }
    )


def read_state(
    config: CampaignConfig, call_sid: str | None, number: str, caller: str, at: datetime
) -> rtb_store.RingTreeReads:
    """Everything a ring tree reads before its auction, in one BatchGetItem."""
    return rtb_store.read_for_ring_tree(call_sid, number, caller, counter_keys(config, at))


def capped_bidders(
    config: CampaignConfig,
    bidders: Sequence[Bidder],
    at: datetime,
    counts: Mapping[tuple[str, str], int],
) -> dict[str, str]:
    """Bidders left out by a cap, with the cap that stopped each.

    A bidder at an accepted-call cap or at its concurrency (from `counts`, read before the
    auction) is not pinged, since it could not take the call; the route transaction still
    enforces those caps when the call is offered. The ping rate is counted here, per bidder
    and minute, with one conditional update each.
    """
    capped: dict[str, str] = {}
    for bidder in bidders:
        for check in _route_checks(config, bidder.bidder_id, at):
            if check.limit is not None and counts.get((check.pk, check.sk), 0) >= check.limit:
                owner = "buyer" if "#BUY#" in check.pk else "target"
                capped[bidder.bidder_id] = f"{owner} cap {check.sk} of {check.limit} reached"
                break
    for bidder in bidders:
        limit = config.target_caps[bidder.bidder_id].caps.get("pings_per_minute")
        if bidder.bidder_id in capped or limit is None:
            continue
        pk = keys.counter_pk(config.account_id, "TGT", bidder.bidder_id)
        if not rtb_store.take_from_window(pk, PING_WINDOW, int(limit), at):
            capped[bidder.bidder_id] = f"{limit} pings per minute reached"
    return capped


def price_bids(config: CampaignConfig, candidates: Sequence[Candidate]) -> dict[str, PricedBid]:
    """Each valid bid with the publisher's offer for it (None: the campaign's usual payout)."""
    margin = config.settings.ring_tree.margin
    return {
        c.bidder_id: PricedBid(
            target_id=c.bidder_id,
            buyer_id=c.buyer_id,
            amount_cents=c.amount_cents,
            destination=c.destination,
            bid_id=c.bid_id,
            expires_in=c.expires_in,
            payout_cents=None if margin is None else publisher_offer_cents(c.amount_cents, margin),
        )
        for c in candidates
    }


def run_ring_tree(
    config: CampaignConfig,
    facts: CallFacts,
    counts: Mapping[tuple[str, str], int],
    *,
    call_id: str,
    publisher_id: str | None,
    call_sid: str | None = None,
    ping_bid_id: str | None = None,
) -> TreeResult | None:
    """Hold the auction for one call (`call_sid`) or one publisher ping (`ping_bid_id`);
    `counts` are the cap counters read by read_state().

    None when the campaign has no bidder that may bid on this call.
    """
    eligible, excluded = eligible_bidders(config.bidders, facts)
    if not eligible:
        return None
    capped = capped_bidders(config, eligible, facts.at, counts)
    ctx = PingContext(
        call_id=call_id,
        caller_id=facts.caller,
        caller_state=facts.state,
        caller_zip=facts.zip_code,
        area_code=facts.area_code,
        campaign_id=config.campaign_id,
        publisher_id=publisher_id or "",
        tags=facts.tags,
    )
    auction = run_auction_sync(
        eligible,
        ctx,
        deadline_ms=config.settings.ring_tree.deadline_ms,
        capped=capped,
        clock=lambda: facts.at,
    )
    auction_id = keys.new_id("auc")
    bid_log.record_auction(
        bid_log.AuctionRecord(
            account_id=config.account_id,
            auction_id=auction_id,
            kind="call" if call_sid else "ping",
            campaign_id=config.campaign_id,
            publisher_id=publisher_id,
            call_sid=call_sid,
            ping_bid_id=ping_bid_id,
            started_at=auction.started_at,
        ),
        auction.log,
    )
    winner = auction.winner
    logger.info(
        "ring tree auction",
        extra={
            "auction_id": auction_id,
            "bidders": len(eligible),
            "capped": len(capped),
            "valid_bids": len(auction.candidates),
            "winning_cents": winner.amount_cents if winner else None,
            "wall_ms": round(auction.wall_ms, 1),
        },
    )
    return TreeResult(auction_id, auction, price_bids(config, auction.candidates), excluded)
