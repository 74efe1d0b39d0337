"""Ring trees end to end: `chalice local` over HTTP pings real loopback bidders, a publisher
pings before posting, and the call simulator places the call."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.conftest import LocalStack, Marketer
from tests.support import caller
from tests.support.bidders import BidderServer, destination_for
from tools.callsim import CallSimulator, PartyBehaviour

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def bidders() -> Iterator[BidderServer]:
    with BidderServer() as running:
        yield running


def test_a_published_ping_holds_the_best_bid_and_the_call_reroutes_down_the_bids(
    stack: LocalStack, marketer: Marketer, bidders: BidderServer, cpaas: CallSimulator
) -> None:
    buyer = marketer.buyer()

    def bidder(path: str) -> str:
        body = {"name": path, "buyer_id": buyer, "rtb": {"url": bidders.url(path)}}
        return str(marketer.post("/api/v1/targets", body)["target"]["id"])

    best, second, slow = bidder("/bid/15.00/50"), bidder("/bid/14.00/0"), bidder("/slow")
    campaign = marketer.post(
        "/api/v1/campaigns",
        {
            "name": "RTB",
            "plan": [{"target_id": t} for t in (best, second, slow)],
            "conversion": {"buffer_seconds": 10},
            "rtb": {"deadline_ms": 400, "margin": {"kind": "percent", "value": 20}},
        },
    )["campaign"]["id"]
    publisher = marketer.post("/api/v1/publishers", {"name": "Pub"})["publisher"]["id"]
    key = marketer.post(f"/api/v1/publishers/{publisher}/keys", {})["key"]["key"]
    number = "+18775559001"
    marketer.post(
        "/api/v1/numbers", {"number": number, "campaign_id": campaign, "publisher_id": publisher}
    )
    who = caller()
    ping = httpx.post(
        f"{stack.url}/rtb/v1/bid/{campaign}",
        json={"caller_id": who, "tags": {"debt": "20000"}},
        headers={"X-Api-Key": key},
    )
    assert ping.status_code == 200, ping.text
    assert ping.json()["bid_amount_cents"] == 1200  # $15.00 less 20%
    assert ping.json()["phone_number"] == number
    # The call comes; the held winner does not answer; the next bid takes it at its price.
    transcript = cpaas.place_call(
        who,
        number,
        parties={
            destination_for(1500): PartyBehaviour.no_answer(),
            destination_for(1400): PartyBehaviour.answer(talk=40),
        },
    )
    assert not transcript.application_error, transcript.to_text()
    assert transcript.dialled() == [destination_for(1500), destination_for(1400)]
    call = marketer.call(transcript.call_sid)
    assert call["target_id"] == second
    assert (call["revenue_cents"], call["payout_cents"]) == (1400, 1120)
    log = marketer.http.get("/api/v1/bids", params={"campaign_id": campaign}).json()["bids"]
    outcomes = {bid["bidder_id"]: bid["outcome"] for bid in log}
    assert outcomes == {best: "won", second: "lost", slow: "timeout"}
    export = marketer.http.get("/api/v1/bids/export", params={"campaign_id": campaign})
    assert export.status_code == 200 and export.text.count("\n") == 4  # header + 3 bids
