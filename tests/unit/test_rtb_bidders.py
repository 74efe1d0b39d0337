"""RTB bidders: validation, ping templates, caller-id masking, response paths and bid parsing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.bidding.bidders import (
    DEFAULT_TIMEOUT_MS,
    MAX_BID_CENTS,
    Bidder,
    BidProblem,
    ParsedBid,
    PingContext,
    ResponseMap,
    bidder_exclusion,
    compile_path,
    eligible_bidders,
    lookup,
    mask_caller_id,
    parse_bid,
    render_request,
    static_bid,
    to_cents,
)
from chalicelib.routing import CallFacts, GeoFilter, OpenWindow, Schedule, TagRule

# No example database: these tests must not leave files in the working tree.
FAST = settings(max_examples=60, deadline=None, database=None)
DEST = "+14155550100"


def bidder(**overrides: Any) -> Bidder:
    fields: dict[str, Any] = {
        "bidder_id": "bd-1",
        "buyer_id": "buyer-1",
        "name": "Buyer one",
        "url": "https://bids.example.com/ping",
    }
    return Bidder(**(fields | overrides))


def answer(**document: Any) -> bytes:
    return json.dumps(document).encode()


CTX = PingContext(
    call_id="CA123",
    caller_id="+14155550123",
    caller_state="CA",
    caller_zip="94107",
    area_code="415",
    campaign_id="cmp-1",
    publisher_id="pub-1",
    tags={"ivr_age": "65", "dni_source": "google"},
)


# --- the bidder definition ---------------------------------------------------------------


def test_defaults_follow_ringba() -> None:
    b = bidder()
    assert b.timeout_ms == DEFAULT_TIMEOUT_MS == 2000
    assert b.method == "POST"
    assert b.response_map == ResponseMap(
        "bidAmount", ("phoneNumber", "sipAddress"), "bidId", "expireInSeconds", "rejectReason"
    )
    assert not b.expose_caller_id
    assert not b.is_static


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"timeout_ms": 49}, "timeout_ms"),
        ({"timeout_ms": True}, "timeout_ms"),
        ({"floor_cents": -1}, "floor_cents"),
        ({"priority": 0}, "priority"),
        ({"method": "PUT"}, "method"),
        ({"bidder_id": ""}, "bidder_id"),
        ({"url": "ftp://bids.example.com/"}, "https"),
        ({"static_bid_cents": 500}, "static_bid_cents must be None"),
        ({"url": None}, "needs static_bid_cents"),
        ({"url": None, "static_bid_cents": 500}, "needs static_destination"),
        ({"static_destination": "4155550100"}, "static_destination"),
        ({"request_template": {"CID": "{callerid}"}}, "unknown token {callerid}"),
        ({"request_template": {"x": "{tag.}"}}, "unknown token {tag.}"),
    ],
)
def test_invalid_bidders_are_refused(overrides: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match="bidder") as raised:
        bidder(**overrides)
    assert problem in str(raised.value)


def test_minimum_timeout_is_50_ms() -> None:
    assert bidder(timeout_ms=50).timeout_ms == 50


def test_the_template_is_frozen_against_later_changes() -> None:
    template = {"CID": "{caller_id}"}
    b = bidder(request_template=template)
    template["extra"] = "x"
    assert dict(b.request_template) == {"CID": "{caller_id}"}


def test_bidders_share_the_targets_schedule_geo_and_tag_filters() -> None:
    monday_evening = datetime(2024, 7, 15, 18, 0, tzinfo=UTC)
    facts = CallFacts("+14155550123", "US", "CA", "415", "94107", {"age": "40"}, monday_evening)
    office = Schedule("UTC", {0: (OpenWindow(time(9), time(17)),)})
    open_one = bidder(bidder_id="open")
    closed = bidder(bidder_id="closed", schedule=office)
    texas = bidder(bidder_id="texas", geo=GeoFilter(states=frozenset({"TX"})))
    seniors = bidder(bidder_id="seniors", tag_rules=(TagRule("age", "gte", "65"),))
    assert bidder_exclusion(open_one, facts) is None
    eligible, excluded = eligible_bidders([open_one, closed, texas, seniors], facts)
    assert eligible == [open_one]
    assert excluded == {"closed": "closed", "texas": "geo", "seniors": "tags:age"}


# --- the ping ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("caller", "masked"),
    [
        ("+14155550123", "+1415555****"),
        ("+447911123456", "+44791112****"),  # UK mobile: 4-digit destination code
        ("+442079460958", "+4420794*****"),
        ("anonymous", "anonymous"),
        ("sip:alice@example.com", "anonymous"),
        ("client:agent-7", "anonymous"),
        ("", "anonymous"),
    ],
)
def test_caller_ids_are_masked(caller: str, masked: str) -> None:
    assert mask_caller_id(caller) == masked


@FAST
@given(st.from_regex(r"\A\+1[2-9][0-9]{2}[2-9][0-9]{6}\Z"))
def test_a_masked_nanp_number_keeps_area_code_and_exchange_only(caller: str) -> None:
    assert mask_caller_id(caller) == caller[:8] + "****"


def test_post_renders_every_token_and_masks_the_caller() -> None:
    b = bidder(
        request_template={
            "CID": "{caller_id}",
            "call": "{call_id}",
            "where": "{caller_state}-{caller_zip}-{area_code}",
            "who": "{campaign_id}/{publisher_id}",
            "age": "{tag.ivr_age}",
            "source": "{tag.dni_source}",
            "missing": "{tag.nope}",
            "literal": "{not a token} stays",
        }
    )
    method, url, fields = render_request(b, CTX)
    assert (method, url) == ("POST", "https://bids.example.com/ping")
    assert dict(fields) == {
        "CID": "+1415555****",
        "call": "CA123",
        "where": "CA-94107-415",
        "who": "cmp-1/pub-1",
        "age": "65",
        "source": "google",
        "missing": "",
        "literal": "{not a token} stays",
    }


def test_an_exposing_bidder_sees_the_whole_caller_id() -> None:
    fields = render_request(bidder(expose_caller_id=True), CTX).fields
    assert fields["CID"] == "+14155550123"


def test_get_renders_the_same_fields_for_the_query() -> None:
    b = bidder(method="GET", request_template={"cid": "{caller_id}", "zip": "{caller_zip}"})
    rendered = render_request(b, PingContext("CA1", "anonymous"))
    assert rendered.method == "GET"
    assert dict(rendered.fields) == {"cid": "anonymous", "zip": ""}


def test_static_bidders_are_never_rendered() -> None:
    static = bidder(url=None, static_bid_cents=500, static_destination=DEST)
    with pytest.raises(ValueError, match="static"):
        render_request(static, CTX)


# --- response paths ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "steps"),
    [
        ("bidAmount", ("bidAmount",)),
        ("a.b.c", ("a", "b", "c")),
        ("a[0].b", ("a", 0, "b")),
        ("$.a[2][1].b-c", ("a", 2, 1, "b-c")),
        ("$[0].x", (0, "x")),
    ],
)
def test_paths_compile(path: str, steps: tuple[object, ...]) -> None:
    assert compile_path(path) == steps


@pytest.mark.parametrize("path", ["", "$", "a..b", "a.[0]", "a]b", "a[x]", "a b"])
def test_malformed_paths_are_refused(path: str) -> None:
    with pytest.raises(ValueError, match="path"):
        compile_path(path)


def test_a_malformed_path_is_refused_when_the_map_is_built() -> None:
    with pytest.raises(ValueError, match="path"):
        ResponseMap(bid_amount="data..amount")


def test_lookup_walks_objects_and_lists_and_misses_quietly() -> None:
    document = {"data": {"offers": [{"price": 7}, {"price": 9}]}, "null": None}
    assert lookup(document, "$.data.offers[1].price") == 9
    assert lookup(document, "data.offers[0]") == {"price": 7}
    assert lookup(document, "data.offers[5].price") is None
    assert lookup(document, "data.offers.price") is None
    assert lookup(document, "data[0]") is None
    assert lookup(document, "null.x") is None
    assert lookup([1, 2], "$[1]") == 2


# --- parsing answers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "cents"),
    [
        (5, 500),
        (5.0, 500),
        ("5.00", 500),
        (" 12.34 ", 1234),
        (5.005, 501),  # half up, read as the decimal the bidder wrote, not the float's binary
        ("0.015", 2),
        (12.344, 1234),
        ("1e1", 1000),
    ],
)
def test_dollar_amounts_become_cents_half_up(amount: object, cents: int) -> None:
    parsed = parse_bid(bidder(), 200, answer(bidAmount=amount, phoneNumber=DEST))
    assert parsed == ParsedBid(cents, DEST)


def test_amounts_already_in_cents() -> None:
    b = bidder(response_map=ResponseMap(amount_in_cents=True))
    assert parse_bid(b, 200, answer(bidAmount=725, phoneNumber=DEST)) == ParsedBid(725, DEST)
    assert parse_bid(b, 200, answer(bidAmount="72.5", phoneNumber=DEST)) == ParsedBid(73, DEST)


@FAST
@given(st.decimals(min_value=0, max_value=10_000, places=4, allow_nan=False))
def test_to_cents_rounds_any_decimal_text_half_up(dollars: Decimal) -> None:
    expected = int((dollars * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    assert to_cents(str(dollars), in_cents=False) == expected


def test_a_full_ringba_answer() -> None:
    body = answer(bidAmount="12.50", phoneNumber=DEST, bidId="b-77", expireInSeconds=30)
    assert parse_bid(bidder(), 200, body) == ParsedBid(1250, DEST, "b-77", 30)


def test_a_sip_destination_is_accepted() -> None:
    body = answer(bidAmount=3, sipAddress="sip:queue@sip.buyer.example.com", bidId=9)
    parsed = parse_bid(bidder(), 201, body)
    assert parsed == ParsedBid(300, "sip:queue@sip.buyer.example.com", "9")


def test_a_mapped_nested_answer() -> None:
    rmap = ResponseMap(
        bid_amount="$.result.offers[0].payout",
        destination=("$.result.offers[0].number",),
        bid_id="result.id",
        expires_in="$.result.ttl",
        reject_reason="result.error",
    )
    body = answer(result={"id": "r1", "ttl": "45", "offers": [{"payout": 8.5, "number": DEST}]})
    assert parse_bid(bidder(response_map=rmap), 200, body) == ParsedBid(850, DEST, "r1", 45)
    refused = answer(result={"error": "closed", "offers": []})
    assert parse_bid(bidder(response_map=rmap), 200, refused) == BidProblem("rejected", "closed")


def test_a_single_destination_path_may_be_given_as_a_string() -> None:
    rmap = ResponseMap(destination="route")  # type: ignore[arg-type]
    assert rmap.destination == ("route",)


def test_without_a_destination_the_configured_one_is_used() -> None:
    b = bidder(static_destination="+14155550199")
    assert parse_bid(b, 200, answer(bidAmount=4)) == ParsedBid(400, "+14155550199")


@pytest.mark.parametrize(
    ("status", "body", "outcome", "reason"),
    [
        (500, answer(bidAmount=5, phoneNumber=DEST), "error", "HTTP 500"),
        (204, b"", "error", "invalid JSON"),
        (302, b"", "error", "redirect not followed (HTTP 302)"),
        (200, b"<html>", "error", "invalid JSON"),
        (200, b"\xff\xfe", "error", "invalid JSON"),
        (200, b"[" * 100_000, "error", "invalid JSON"),
        (200, answer(phoneNumber=DEST), "error", "no bid amount"),
        (200, answer(bidAmount="lots", phoneNumber=DEST), "error", "not a usable amount"),
        (200, answer(bidAmount=True, phoneNumber=DEST), "error", "not a usable amount"),
        (200, b'{"bidAmount": NaN, "phoneNumber": "+14155550100"}', "error", "usable"),
        (200, answer(bidAmount="1e999999", phoneNumber=DEST), "error", "usable"),
        (200, answer(bidAmount=10_000.01, phoneNumber=DEST), "error", "implausibly large"),
        (200, answer(bidAmount=5), "error", "no destination"),
        (200, answer(bidAmount=5, phoneNumber="4155550100"), "error", "not E.164"),
        (200, answer(bidAmount=5, phoneNumber="+1415"), "error", "not E.164"),
        (200, answer(bidAmount=5, phoneNumber=DEST, expireInSeconds=0), "error", "expiry"),
        (200, answer(bidAmount=5, phoneNumber=DEST, expireInSeconds="x"), "error", "expiry"),
        (200, answer(rejectReason="no capacity", bidAmount=0), "rejected", "no capacity"),
        (200, answer(bidAmount=0, phoneNumber=DEST), "rejected", "no bid"),
        (200, answer(bidAmount=-3, phoneNumber=DEST), "rejected", "no bid"),
    ],
)
def test_answers_that_cannot_compete_say_why(
    status: int, body: bytes, outcome: str, reason: str
) -> None:
    problem = parse_bid(bidder(), status, body)
    assert isinstance(problem, BidProblem)
    assert problem.outcome == outcome
    assert reason in problem.reason


def test_a_bid_under_the_floor_keeps_its_amount_for_the_log() -> None:
    body = answer(bidAmount="2.99", phoneNumber=DEST, bidId="low")
    problem = parse_bid(bidder(floor_cents=300), 200, body)
    assert problem == BidProblem(
        "below_floor", "bid 299 cents is below the floor of 300 cents", 299, "low"
    )
    assert parse_bid(bidder(floor_cents=299), 200, body) == ParsedBid(299, DEST, "low")


def test_the_largest_plausible_bid_still_counts() -> None:
    body = answer(bidAmount=MAX_BID_CENTS / 100, phoneNumber=DEST)
    assert parse_bid(bidder(), 200, body) == ParsedBid(MAX_BID_CENTS, DEST)


def test_a_bidders_long_reason_is_clipped_for_the_log() -> None:
    problem = parse_bid(bidder(), 200, answer(rejectReason="x" * 5000))
    assert isinstance(problem, BidProblem)
    assert len(problem.reason) <= 201


def test_static_bids_face_the_same_floor() -> None:
    static = bidder(url=None, static_bid_cents=450, static_destination=DEST, bidder_id="st")
    assert static.is_static
    assert static_bid(static) == ParsedBid(450, DEST)
    low = bidder(url=None, static_bid_cents=450, static_destination=DEST, floor_cents=500)
    assert isinstance(static_bid(low), BidProblem)
    zero = bidder(url=None, static_bid_cents=0, static_destination=DEST)
    assert static_bid(zero) == BidProblem("rejected", "no bid (static amount is zero)", 0)
    with pytest.raises(ValueError, match="not static"):
        static_bid(bidder())
