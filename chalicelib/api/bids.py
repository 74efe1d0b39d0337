"""The RTB bid log: every bid of every auction, filtered and paged, and as CSV."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from chalice.app import Blueprint, Response

from chalicelib.api.http import json_response, user_view
from chalicelib.api.listing import bad_query, csv_response, first_page, newest_first, page_limit
from chalicelib.auth.roles import Principal, Role
from chalicelib.requests import current_request
from chalicelib.store import bids
from chalicelib.store.models import BidItem

bp = Blueprint(__name__)

FILTERS = ("campaign_id", "publisher_id", "buyer_id", "bidder_id", "call_sid", "auction_id")
CHOICES: Mapping[str, tuple[str, ...]] = {"outcome": bids.OUTCOMES, "kind": bids.KINDS}
# `<started iso>#<auction>#<position>`: positions have 2 digits, up to 4 in huge auctions.
POSITION = re.compile(rf"^\d{{4}}-\d{{2}}-\d{{2}}T[0-9:.+]+#{bids.AUCTION_ID.pattern}#\d{{2,4}}$")
CSV_COLUMNS = [
    "started_at", "auction_id", "position", "kind", "campaign_id", "publisher_id",
    "call_sid", "ping_bid_id", "bidder_id", "buyer_id", "outcome", "reason",
    "latency_ms", "http_status", "amount_cents", "bid_id",
]  # fmt: skip
# A spreadsheet runs a cell that starts with one of these as a formula; bidders choose
# their reject reasons and bid ids.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def bid(item: BidItem) -> dict[str, Any]:
    """A bid as the API shows it: integer cents, ISO 8601 UTC times, the bidder's place."""
    return {
        "auction_id": item.auction_id,
        "position": int(item.sk.rsplit("#", 1)[1]),
        "kind": item.kind,
        "started_at": item.started_at.isoformat(),
        "account_id": item.account_id,
        "campaign_id": item.campaign_id,
        "publisher_id": item.publisher_id,
        "call_sid": item.call_sid,
        "ping_bid_id": item.ping_bid_id,
        "bidder_id": item.bidder_id,
        "buyer_id": item.buyer_id,
        "outcome": item.outcome,
        "reason": item.reason,
        "latency_ms": None if item.latency_ms is None else float(item.latency_ms),
        "http_status": None if item.http_status is None else int(item.http_status),
        "amount_cents": None if item.amount_cents is None else int(item.amount_cents),
        "bid_id": item.bid_id,
        "created_at": item.created_at.isoformat(),
    }


def _filters(query: Mapping[str, str]) -> dict[str, str]:
    wanted = {name: query[name] for name in FILTERS if query.get(name)}
    for name, allowed in CHOICES.items():
        value = query.get(name)
        if value:
            if value not in allowed:
                raise bad_query(name, f"one of {', '.join(allowed)}")
            wanted[name] = value
    return wanted


def matching_bids(account_id: str, query: Mapping[str, str]) -> Iterator[BidItem]:
    """The account's bids in the asked days that pass the filters, newest first."""
    where = _filters(query)
    yield from newest_first(
        query, POSITION, lambda day, before: bids.bids_of_day(account_id, day, before, where=where)
    )


def _csv_cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


@bp.route("/bids", methods=["GET"])
@user_view(Role.AGENT)
def list_bids(principal: Principal) -> Response:
    """Filters: day or from/to, campaign_id, publisher_id, buyer_id, bidder_id, outcome,
    call_sid, auction_id, kind; paged with `limit` and the returned `cursor`."""
    query = dict(current_request().query_params or {})
    limit = page_limit(query.get("limit"))
    page, cursor = first_page(matching_bids(principal.account_id, query), limit, lambda b: b.sk)
    return json_response({"bids": [bid(item) for item in page], "cursor": cursor})


@bp.route("/bids/export", methods=["GET"])
@user_view(Role.AGENT)
def export_bids(principal: Principal) -> Response:
    """The filtered bid log as CSV (same filters as the listing)."""
    query = dict(current_request().query_params or {})
    rows = (
        {name: _csv_cell(value) for name, value in bid(item).items()}
        for item in matching_bids(principal.account_id, query)
    )
    return csv_response(rows, CSV_COLUMNS, "bids.csv")
