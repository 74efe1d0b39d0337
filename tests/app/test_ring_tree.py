"""Ring trees in the voice flow and the publisher bid API, against real loopback bidders."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from chalice.test import Client

from chalicelib.store import keys
from tests.support import Clock
from tests.support.app import Setup, api, counter, new_number, record
from tests.support.bidders import BidderServer, destination_for
from tools.callsim import CallSimulator, PartyBehaviour

_callers = itertools.count(100)


def new_caller() -> str:
    return f"+1310555{next(_callers):04d}"


@pytest.fixture(scope="module")
def bidders() -> Iterator[BidderServer]:
    with BidderServer() as running:
        yield running


def rtb_target(setup: Setup, buyer_id: str, url: str | None, **body: Any) -> str:
    rtb = {"url": url, **body.pop("rtb", {})}
    created = setup.post(
        "/api/v1/targets", {"name": url or "static", "buyer_id": buyer_id, "rtb": rtb, **body}
    )
    return str(created["target"]["id"])


def ring_tree(setup: Setup, target_ids: list[str], **body: Any) -> tuple[str, str]:
    """A campaign over these targets whose calls convert after 10 s of talk."""
    body.setdefault("conversion", {"buffer_seconds": 10})
    return setup.campaign([{"target_id": t} for t in target_ids], **body)


def bids_of(client: Client, token: str, **query: str) -> list[dict[str, Any]]:
    path = "/api/v1/bids?" + "&".join(f"{k}={v}" for k, v in query.items())
    reply = api(client, "GET", path, token)
    assert reply.status_code == 200, reply.body
    return list(reply.json_body["bids"])


def by_bidder(bids: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {bid["bidder_id"]: bid for bid in bids}


# --- bidders in the management API ------------------------------------------------------------


def test_bad_bidders_are_refused_with_the_field_named(setup: Setup, bidders: BidderServer) -> None:
    buyer = setup.buyer()
    cases: list[tuple[dict[str, Any], str]] = [
        ({"rtb": {"url": "ftp://bids.example.com/x"}}, "rtb.url"),
        ({"rtb": {"url": bidders.url("/x"), "timeout_ms": 10}}, "rtb.timeout_ms"),
        ({"rtb": {"url": bidders.url("/x"), "request_template": {"cid": "{callerid}"}}}, "body"),
        ({"rtb": {"static_bid_cents": 500}}, "body"),  # a static bid needs a destination
        ({"rtb": {"url": bidders.url("/x"), "static_bid_cents": 5}}, "body"),  # two prices
        ({"rtb": {"url": bidders.url("/x"), "response_map": {"bid_amount": "a..b"}}}, "body"),
        ({}, "body"),  # neither a destination nor a bidder
    ]
    for extra, field in cases:
        reply = api(
            setup.client,
            "POST",
            "/api/v1/targets",
            setup.token,
            {"name": "bad", "buyer_id": buyer, **extra},
        )
        assert reply.status_code == 400, (extra, reply.body)
        assert any(name.startswith(field) for name in reply.json_body["fields"]), reply.body


def test_bidder_urls_must_be_https_outside_local_mode(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OUTBOUND_ALLOW_PRIVATE", raising=False)
    buyer = setup.buyer()
    body = {"name": "b", "buyer_id": buyer, "rtb": {"url": "http://bids.example.com/ping"}}
    reply = api(setup.client, "POST", "/api/v1/targets", setup.token, body)
    assert reply.status_code == 400
    assert reply.json_body["fields"]["rtb.url"].endswith("bidder URLs must use https")
    body["rtb"] = {"url": "https://bids.example.com/ping"}
    assert api(setup.client, "POST", "/api/v1/targets", setup.token, body).status_code == 201


# --- ring trees on live calls -----------------------------------------------------------------


def test_the_highest_bid_gets_the_call_and_sets_revenue_and_payout(
    setup: Setup, bidders: BidderServer, cpaas: CallSimulator, client: Client, admin_token: str
) -> None:
    buyer = setup.buyer()
    low = rtb_target(setup, buyer, bidders.url("/bid/5.00/10"))
    high = rtb_target(setup, buyer, bidders.url("/bid/8.00/120"))
    broken = rtb_target(setup, buyer, bidders.url("/status/500"))
    static = setup.target(buyer, "+14155550301")
    campaign_id, number = ring_tree(
        setup,
        [low, high, broken, static],
        revenue_cents=1000,
        payout_cents=100,
        conversion={"buffer_seconds": 30},
        rtb={"margin": {"kind": "percent", "value": 25}},
    )
    transcript = cpaas.place_call(
        new_caller(), number, parties={destination_for(800): PartyBehaviour.answer(talk=60)}
    )
    assert not transcript.application_error, transcript.to_text()
    assert transcript.dialled() == [destination_for(800)]
    item = record(transcript.call_sid)
    assert item.target_id == high and item.converted is True
    # The buyer pays its bid; the publisher gets the bid less the 25% margin.
    assert (item.revenue_cents, item.payout_cents) == (800, 600)
    log = by_bidder(bids_of(client, admin_token, call_sid=transcript.call_sid))
    assert {b: log[b]["outcome"] for b in log} == {high: "won", low: "lost", broken: "error"}
    assert log[high]["amount_cents"] == 800 and log[high]["http_status"] == 200
    assert log[broken]["http_status"] == 500 and log[broken]["reason"] == "HTTP 500"
    assert log[high]["latency_ms"] >= 120 > log[low]["latency_ms"]
    assert {b["campaign_id"] for b in log.values()} == {campaign_id}
    assert {b["kind"] for b in log.values()} == {"call"}
    # The call's own record shows the auction and the bids in the order they were tried.
    detail = api(client, "GET", f"/api/v1/calls/{transcript.call_sid}", admin_token).json_body
    routing = detail["call"]["routing"]
    assert routing["auction_id"] == log[high]["auction_id"]
    assert [(b["target_id"], b["amount_cents"]) for b in routing["bids"]] == [
        (high, 800),
        (low, 500),
    ]


def test_a_winner_that_does_not_connect_reroutes_to_the_next_bid(
    setup: Setup, bidders: BidderServer, cpaas: CallSimulator
) -> None:
    buyer = setup.buyer()
    first = rtb_target(setup, buyer, bidders.url("/bid/9.10/0"))
    second = rtb_target(setup, buyer, bidders.url("/bid/7.10/0"))
    _, number = ring_tree(setup, [first, second], conversion={"buffer_seconds": 10})
    transcript = cpaas.place_call(
        new_caller(),
        number,
        parties={
            destination_for(910): PartyBehaviour.no_answer(),
            destination_for(710): PartyBehaviour.answer(talk=30),
        },
    )
    assert transcript.dialled() == [destination_for(910), destination_for(710)]
    item = record(transcript.call_sid)
    assert item.target_id == second
    assert item.revenue_cents == 710  # the bid of the buyer that took the call


def test_faulty_bidders_cost_no_more_than_the_deadline_and_static_targets_take_the_call(
    setup: Setup, bidders: BidderServer, cpaas: CallSimulator, client: Client, admin_token: str
) -> None:
    buyer = setup.buyer()
    faulty = [
        rtb_target(setup, buyer, bidders.url(path))
        for path in ("/slow", "/drip", "/huge", "/invalid-json", "/redirect", "/reject")
    ]
    static = setup.target(buyer, "+14155550311")
    _, number = ring_tree(setup, [*faulty, static], rtb={"deadline_ms": 300})
    started = time.monotonic()
    transcript = cpaas.place_call(new_caller(), number)
    assert transcript.dialled() == ["+14155550311"]
    # The whole call (every webhook) is simulated; the auction is the only slow part.
    assert time.monotonic() - started < 2.0
    log = by_bidder(bids_of(client, admin_token, call_sid=transcript.call_sid))
    outcomes = [log[t]["outcome"] for t in faulty]
    assert outcomes == ["timeout", "timeout", "error", "error", "error", "rejected"]
    assert record(transcript.call_sid).target_id == static


def test_a_failing_auction_still_routes_to_the_static_targets(
    setup: Setup, bidders: BidderServer, cpaas: CallSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.rtb import ringtree

    def broken(*_: Any, **__: Any) -> Any:
        raise TimeoutError("auction loop stuck")

    monkeypatch.setattr(ringtree, "run_auction_sync", broken)
    buyer = setup.buyer()
    bidder = rtb_target(setup, buyer, bidders.url("/bid/9.00/0"))
    static = setup.target(buyer, "+14155550341")
    _, number = ring_tree(setup, [bidder, static])
    transcript = cpaas.place_call(new_caller(), number)
    assert not transcript.application_error
    assert transcript.dialled() == ["+14155550341"]
    item = record(transcript.call_sid)
    assert item.target_id == static and item.routing["excluded"]["ring_tree"] == "auction failed"


def test_static_bidders_compete_without_an_endpoint(setup: Setup, cpaas: CallSimulator) -> None:
    buyer = setup.buyer()
    static_bid = rtb_target(
        setup, buyer, None, destination="+14155550321", rtb={"static_bid_cents": 650}
    )
    live = rtb_target(setup, buyer, "http://127.0.0.1:9/unreachable")  # nothing listens
    _, number = ring_tree(
        setup, [static_bid, live], rtb={"deadline_ms": 500}, conversion={"buffer_seconds": 10}
    )
    transcript = cpaas.place_call(new_caller(), number)
    assert transcript.dialled() == ["+14155550321"]
    assert record(transcript.call_sid).revenue_cents == 650


def test_capped_bidders_are_not_pinged_and_are_logged_as_capped(
    setup: Setup, bidders: BidderServer, cpaas: CallSimulator, client: Client, admin_token: str
) -> None:
    buyer = setup.buyer()
    daily = rtb_target(setup, buyer, bidders.url("/bid/6.01/0"), caps={"daily": 1})
    pings = rtb_target(setup, buyer, bidders.url("/bid/4.01/0"), rtb={"pings_per_minute": 1})
    _, number = ring_tree(setup, [daily, pings])
    first = cpaas.place_call(new_caller(), number)
    assert first.dialled() == [destination_for(601)]
    pinged = len(bidders.requests_to("/bid/6.01/0"))
    second = cpaas.place_call(new_caller(), number)
    # The daily cap is used up and the other bidder had its one ping of the minute.
    assert second.dialled() == []
    assert len(bidders.requests_to("/bid/6.01/0")) == pinged
    log = by_bidder(bids_of(client, admin_token, call_sid=second.call_sid))
    assert log[daily]["outcome"] == log[pings]["outcome"] == "capped"
    assert "D#" in log[daily]["reason"] and "pings per minute" in log[pings]["reason"]
    assert record(second.call_sid).routing["fallback"] is True


def test_a_bidders_concurrency_is_held_while_it_rings_and_freed_after(
    setup: Setup, bidders: BidderServer, cpaas: CallSimulator
) -> None:
    buyer = setup.buyer()
    bidder = rtb_target(setup, buyer, bidders.url("/bid/3.33/0"), caps={"concurrency": 1})
    _, number = ring_tree(setup, [bidder])
    transcript = cpaas.place_call(new_caller(), number)
    assert transcript.dialled() == [destination_for(333)]
    assert counter(keys.counter_pk("acc_demo", "TGT", bidder)) == 0


def test_ivr_answers_reach_bidders_as_tags(
    setup: Setup, bidders: BidderServer, cpaas: CallSimulator
) -> None:
    from tools.callsim import CallerScript

    buyer = setup.buyer()
    bidder = rtb_target(
        setup,
        buyer,
        bidders.url("/echo/ivr"),
        rtb={"request_template": {"age": "{tag.age}", "cid": "{caller_id}"}},
    )
    ivr = {
        "start": "age",
        "nodes": {"age": {"prompt": "Your age?", "tag": "age", "num_digits": 2}},
    }
    _, number = ring_tree(setup, [bidder], ivr=ivr)
    caller = new_caller()
    cpaas.place_call(caller, number, script=CallerScript(inputs=["67"]))
    import json

    sent = json.loads(bidders.requests_to("/echo/ivr")[-1].body)
    assert sent["age"] == "67"
    assert sent["cid"] != caller and sent["cid"].endswith("****")  # masked by default


def test_bidders_see_the_real_caller_id_only_where_the_campaign_allows_it(
    setup: Setup, bidders: BidderServer, cpaas: CallSimulator
) -> None:
    import json

    buyer = setup.buyer()
    template = {"request_template": {"cid": "{caller_id}"}}
    willing = rtb_target(setup, buyer, bidders.url("/echo/willing"), rtb=template)
    unwilling = rtb_target(
        setup, buyer, bidders.url("/echo/unwilling"), rtb={**template, "expose_caller_id": False}
    )
    _, masked_number = ring_tree(setup, [willing])
    _, open_number = ring_tree(setup, [willing, unwilling], rtb={"expose_caller_id": True})
    caller = new_caller()
    cpaas.place_call(caller, masked_number)
    assert json.loads(bidders.requests_to("/echo/willing")[-1].body)["cid"] == caller[:-4] + "****"
    cpaas.place_call(caller, open_number)
    assert json.loads(bidders.requests_to("/echo/willing")[-1].body)["cid"] == caller
    assert json.loads(bidders.requests_to("/echo/unwilling")[-1].body)["cid"].endswith("****")


# --- the publisher bid API (ping before post) ----------------------------------------------------


class Publisher:
    def __init__(self, setup: Setup) -> None:
        created = setup.post("/api/v1/publishers", {"name": "Pub"})
        self.publisher_id = created["publisher"]["id"]
        key = setup.post(f"/api/v1/publishers/{self.publisher_id}/keys", {"label": "rtb"})
        self.key = key["key"]["key"]
        self.setup = setup

    def number_for(self, campaign_id: str) -> str:
        number = new_number()
        body = {"number": number, "campaign_id": campaign_id, "publisher_id": self.publisher_id}
        self.setup.post("/api/v1/numbers", body)
        return number

    def ping(self, campaign_id: str, body: Any) -> Any:
        return api(
            self.setup.client,
            "POST",
            f"/rtb/v1/bid/{campaign_id}",
            body=body,
            headers={"X-Api-Key": self.key},
        )


def test_a_ping_is_held_answered_again_and_routes_the_call_at_its_price(
    setup: Setup, bidders: BidderServer, cpaas: CallSimulator, client: Client, admin_token: str
) -> None:
    buyer = setup.buyer()
    best = rtb_target(setup, buyer, bidders.url("/bid/12.00/20"))
    other = rtb_target(setup, buyer, bidders.url("/bid/11.00/0"))
    campaign_id, _ = ring_tree(
        setup, [best, other], rtb={"margin": {"kind": "fixed", "value": 300}, "hold_seconds": 90}
    )
    publisher = Publisher(setup)
    number = publisher.number_for(campaign_id)
    caller = new_caller()
    ping = publisher.ping(campaign_id, {"caller_id": caller, "tags": {"age": "70"}})
    assert ping.status_code == 200, ping.body
    answer = ping.json_body
    assert answer["bid_amount_cents"] == 900 and answer["bid_amount"] == 9.0
    assert answer["phone_number"] == number and answer["reject_reason"] is None
    assert 0 < answer["expire_in_seconds"] <= 30  # the buyer's own expiry is shorter than 90
    pinged = len(bidders.requests_to("/bid/12.00/20"))
    # A repeat ping (same caller, same tags) gets the held bid: no new auction.
    again = publisher.ping(campaign_id, {"CID": caller, "tags": {"age": "70"}}).json_body
    assert again["bid_id"] == answer["bid_id"]
    assert len(bidders.requests_to("/bid/12.00/20")) == pinged
    # The call is routed to the held winner at the held price, without pinging again.
    transcript = cpaas.place_call(caller, number)
    assert transcript.dialled() == [destination_for(1200)]
    assert len(bidders.requests_to("/bid/12.00/20")) == pinged
    item = record(transcript.call_sid)
    assert (item.revenue_cents, item.payout_cents) == (1200, 900)
    assert item.routing["held_bid"] == answer["bid_id"]
    # The held bid served its call: the same caller's next call holds a new auction.
    next_call = cpaas.place_call(caller, number)
    assert len(bidders.requests_to("/bid/12.00/20")) == pinged + 1
    assert record(next_call.call_sid).routing["held_bid"] is None
    log = bids_of(client, admin_token, kind="ping", campaign_id=campaign_id)
    assert {b["ping_bid_id"] for b in log} == {answer["bid_id"]}
    assert by_bidder(log)[best]["outcome"] == "won"


def test_new_tags_mean_a_new_auction_and_an_expired_bid_is_not_used(
    setup: Setup, bidders: BidderServer, cpaas: CallSimulator, clock: Clock
) -> None:
    buyer = setup.buyer()
    bidder = rtb_target(setup, buyer, bidders.url("/bid/2.50/0"))
    campaign_id, _ = ring_tree(setup, [bidder], rtb={"hold_seconds": 5})
    publisher = Publisher(setup)
    number = publisher.number_for(campaign_id)
    caller = new_caller()
    first = publisher.ping(campaign_id, {"caller_id": caller, "tags": {"a": "1"}}).json_body
    second = publisher.ping(campaign_id, {"caller_id": caller, "tags": {"a": "2"}}).json_body
    assert first["bid_id"] != second["bid_id"] and second["expire_in_seconds"] <= 5
    # Ten minutes later the hold is over: the call holds its own auction.
    clock.advance(timedelta(minutes=10))
    transcript = cpaas.place_call(caller, number)
    assert record(transcript.call_sid).routing["held_bid"] is None
    assert record(transcript.call_sid).routing["auction_id"]


def test_pings_past_the_publishers_rate_limit_get_429(
    setup: Setup, bidders: BidderServer, clock: Clock
) -> None:
    bidder = rtb_target(setup, setup.buyer(), bidders.url("/bid/1.00/0"))
    campaign_id, _ = ring_tree(setup, [bidder], rtb={"publisher_pings_per_minute": 2})
    publisher = Publisher(setup)
    publisher.number_for(campaign_id)
    # All three pings in one minute (20 s into it), whenever the test runs.
    clock.set(clock.now().replace(second=20, microsecond=0))
    replies = [publisher.ping(campaign_id, {"caller_id": new_caller()}) for _ in range(3)]
    assert [r.status_code for r in replies] == [200, 200, 429]
    assert replies[-1].headers["Retry-After"] == "40"
    assert replies[-1].json_body["error"] == "rate_limited"
    # The next minute opens a new window.
    clock.advance(timedelta(minutes=1))
    assert publisher.ping(campaign_id, {"caller_id": new_caller()}).status_code == 200


def test_bad_pings_get_clear_errors(setup: Setup, bidders: BidderServer) -> None:
    bidder = rtb_target(setup, setup.buyer(), bidders.url("/bid/1.00/0"))
    campaign_id, _ = ring_tree(setup, [bidder])
    static_only, _ = setup.campaign([{"target_id": setup.target(setup.buyer(), "+14155550331")}])
    publisher = Publisher(setup)
    assert publisher.ping("cmp_nope", {"caller_id": new_caller()}).status_code == 404
    no_number = publisher.ping(campaign_id, {"caller_id": new_caller()})
    assert no_number.status_code == 409 and no_number.json_body["error"] == "no_tracking_number"
    publisher.number_for(campaign_id)
    publisher.number_for(static_only)
    not_rtb = publisher.ping(static_only, {"caller_id": new_caller()})
    assert not_rtb.status_code == 409 and not_rtb.json_body["error"] == "no_ring_tree"
    bad = publisher.ping(campaign_id, {"caller_id": "12", "tags": {"bad tag": "x"}})
    assert bad.status_code == 400
    assert set(bad.json_body["fields"]) >= {"caller_id"}
    unauthenticated = api(setup.client, "POST", f"/rtb/v1/bid/{campaign_id}", body={})
    assert unauthenticated.status_code == 401


def test_a_ping_that_no_buyer_bids_on_is_rejected_and_not_held(
    setup: Setup, bidders: BidderServer, cpaas: CallSimulator
) -> None:
    bidder = rtb_target(setup, setup.buyer(), bidders.url("/reject"))
    campaign_id, _ = ring_tree(setup, [bidder])
    publisher = Publisher(setup)
    number = publisher.number_for(campaign_id)
    caller = new_caller()
    answer = publisher.ping(campaign_id, {"caller_id": caller}).json_body
    assert answer["bid_amount_cents"] == 0 and answer["reject_reason"] == "no valid bid"
    transcript = cpaas.place_call(caller, number)
    assert record(transcript.call_sid).routing["held_bid"] is None
