"""Dynamic number insertion in process: pools, visitor sessions, holds, overflow, source
numbers, attribution of calls to visits, the pool advisor and the Google Ads export."""

from __future__ import annotations

import csv
import io
import itertools
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from chalice.test import Client

from chalicelib.clock import utcnow
from tests.support import Clock
from tests.support.app import Setup, api, record
from tools.callsim import CallSimulator, PartyBehaviour

_numbers = itertools.count(1)
_callers = itertools.count(1)


def pool_number(area: str = "415") -> str:
    return f"+1{area}555{next(_numbers):04d}"


def new_caller() -> str:
    return f"+1646555{next(_callers):04d}"


class Dni:
    """A campaign with a pool of tracking numbers, set up through the API."""

    def __init__(self, setup: Setup, size: int = 3, **pool: Any) -> None:
        self.setup = setup
        target = setup.target(setup.buyer(), "+14155550901")
        self.campaign_id, _ = setup.campaign(
            [{"target_id": target}], conversion={"buffer_seconds": 10}, revenue_cents=2500
        )
        areas = pool.pop("areas", ["415"] * size)
        self.numbers = [self.add_number(area) for area in areas]
        body = {"name": "Pool", "campaign_id": self.campaign_id, "numbers": self.numbers, **pool}
        self.pool = setup.post("/api/v1/pools", body)["pool"]
        self.key = self.pool["public_key"]

    def add_number(self, area: str = "212") -> str:
        number = pool_number(area)
        self.setup.post("/api/v1/numbers", {"number": number, "campaign_id": self.campaign_id})
        return number

    def session(self, status: int = 200, key: str | None = None, **body: Any) -> dict[str, Any]:
        reply = api(
            self.setup.client,
            "POST",
            "/dni/v1/sessions",
            body=body,
            headers={"X-Pool-Key": key or self.key},
        )
        assert reply.status_code == status, reply.body
        assert reply.headers.get("Access-Control-Allow-Origin") == "*"
        return dict(reply.json_body)

    def heartbeat(self, session_id: str, key: str | None = None) -> Any:
        return api(
            self.setup.client,
            "POST",
            f"/dni/v1/sessions/{session_id}/heartbeat",
            body={},
            headers={"X-Pool-Key": key or self.key},
        )


# --- pools --------------------------------------------------------------------------------------


def test_a_pool_gets_a_public_key_and_refuses_numbers_it_cannot_use(setup: Setup) -> None:
    dni = Dni(setup, size=2)
    assert dni.key.startswith("pk_")
    assert dni.pool["idle_seconds"] == 300 and dni.pool["numbers"] == dni.numbers
    stranger = pool_number()
    in_use = dni.numbers[0]
    for body, field in [
        ({"numbers": [stranger]}, "numbers.0"),
        ({"numbers": [in_use]}, "numbers.0"),  # already in the first pool
        ({"numbers": [], "overflow_number": stranger}, "overflow_number"),
        ({"numbers": [], "source_numbers": {"Google": dni.add_number()}}, "source_numbers.Google"),
        ({"numbers": [], "idle_seconds": 5}, "idle_seconds"),
    ]:
        reply = api(
            setup.client,
            "POST",
            "/api/v1/pools",
            setup.token,
            {"name": "Other", "campaign_id": dni.campaign_id, **body},
        )
        assert reply.status_code == 400, (body, reply.body)
        assert any(name.startswith(field) for name in reply.json_body["fields"]), reply.body


def test_a_pool_can_be_edited_and_its_numbers_follow(setup: Setup) -> None:
    dni = Dni(setup, size=2)
    extra = dni.add_number()
    body = {"name": "Bigger", "campaign_id": dni.campaign_id, "numbers": [dni.numbers[1], extra]}
    reply = api(setup.client, "PUT", f"/api/v1/pools/{dni.pool['id']}", setup.token, body)
    assert reply.status_code == 200, reply.body
    numbers = {
        n["number"]: n
        for n in api(setup.client, "GET", "/api/v1/numbers", setup.token).json_body["numbers"]
    }
    assert numbers[extra]["pool_id"] == dni.pool["id"]
    assert numbers[dni.numbers[0]]["pool_id"] is None  # released from the pool
    handed = {dni.session()["number"] for _ in range(2)}
    assert handed == {dni.numbers[1], extra}


# --- sessions -----------------------------------------------------------------------------------


def test_each_visitor_gets_a_number_of_their_own_and_keeps_it_across_pages(setup: Setup) -> None:
    dni = Dni(setup, size=3)
    first = dni.session(page_url="https://shop.example/a?utm_source=google", utm_source="google")
    assert first["number"] in dni.numbers and first["kind"] == "pool"
    assert first["national"].startswith("(415) 555-")
    assert first["overflow"] is False and first["heartbeat_seconds"] <= 60
    second = dni.session()
    assert second["number"] != first["number"]
    # The first visitor opens another page: the same session, the same number.
    again = dni.session(session_id=first["session_id"], visitor_id=first["visitor_id"])
    assert (again["session_id"], again["number"]) == (first["session_id"], first["number"])


def test_an_exhausted_pool_hands_out_its_overflow_number(setup: Setup) -> None:
    dni = Dni(setup, size=1)
    overflow = dni.add_number()
    body = {
        **{k: dni.pool[k] for k in ("name", "campaign_id", "numbers")},
        "overflow_number": overflow,
    }
    assert (
        api(setup.client, "PUT", f"/api/v1/pools/{dni.pool['id']}", setup.token, body).status_code
        == 200
    )
    held = dni.session()
    assert held["kind"] == "pool"
    spill = dni.session()
    assert (spill["number"], spill["kind"], spill["overflow"]) == (overflow, "overflow", True)


def test_numbers_are_handed_out_least_recently_released_first_and_locally(
    setup: Setup, clock: Clock
) -> None:
    dni = Dni(setup, areas=["212", "415", "415"], idle_seconds=60)
    start = clock.now()
    handed = []
    for seconds in (0, 10, 20):  # three visitors take the three numbers, ten seconds apart
        clock.set(start + timedelta(seconds=seconds))
        handed.append(dni.session()["number"])
    assert sorted(handed) == sorted(dni.numbers)
    # All released by now; the one released first comes back first.
    clock.set(start + timedelta(minutes=10))
    assert dni.session()["number"] == handed[0]
    clock.set(start + timedelta(minutes=20))
    # Least recently released is now handed[1]; a visitor from 212 gets the 212 number.
    local = dni.session(area_code="212")["number"]
    assert local == dni.numbers[0] != handed[1]
    assert dni.session()["number"] == handed[1]


def test_no_two_live_sessions_ever_hold_the_same_number(setup: Setup) -> None:
    from chalicelib.dni import sessions
    from chalicelib.store import catalog
    from chalicelib.store.models import PoolItem

    dni = Dni(setup, size=12)
    pool = catalog.get(PoolItem, "acc_demo", dni.pool["id"])
    assert pool is not None
    now = utcnow()
    with ThreadPoolExecutor(16) as workers:
        handed = list(
            workers.map(lambda _: sessions.start_session(pool, sessions.Visit(), now), range(40))
        )
    held = [a.number for a in handed if a.kind == "pool"]
    assert len(held) == len(set(held)) == 12
    assert Counter(a.kind for a in handed) == {"pool": 12, "overflow": 28}


def test_a_new_visitor_costs_two_dynamodb_requests_and_the_session_comes_with_its_number(
    setup: Setup,
) -> None:
    from chalicelib.store import tables

    dni = Dni(setup, size=3)
    first = dni.session()  # the pool key and the campaign are cached now, as on a warm Lambda
    sent: list[str] = []

    def count(model: Any, **_: Any) -> None:
        sent.append(model.name)

    events = tables.connection().client.meta.events
    events.register("before-call.dynamodb", count, unique_id="test-dni-requests")
    try:
        visitor = dni.session()
    finally:
        events.unregister("before-call.dynamodb", unique_id="test-dni-requests")
    assert visitor["kind"] == "pool" and visitor["number"] != first["number"]
    assert sent == ["Query", "TransactWriteItems"]  # the leases; take the number + the session
    assert dni.heartbeat(visitor["session_id"]).status_code == 200


def test_source_numbers_win_over_the_pool(setup: Setup) -> None:
    dni = Dni(setup, size=2)
    google = dni.add_number()
    facebook = dni.add_number()
    body = {
        **{k: dni.pool[k] for k in ("name", "campaign_id", "numbers")},
        "source_numbers": {"gclid": google, "facebook": facebook},
    }
    assert (
        api(setup.client, "PUT", f"/api/v1/pools/{dni.pool['id']}", setup.token, body).status_code
        == 200
    )
    assert dni.session(gclid="Cj0KCQ")["number"] == google
    assert dni.session(utm_source="Facebook")["number"] == facebook
    assert dni.session(utm_source="bing")["kind"] == "pool"


def test_heartbeats_keep_the_number_and_an_expired_session_is_told_so(
    setup: Setup, clock: Clock
) -> None:
    dni = Dni(setup, size=1, idle_seconds=60)
    start = clock.stop()
    visitor = dni.session()
    for minutes in (0.5, 1.0, 1.5):  # each heartbeat extends the hold by the idle limit
        clock.set(start + timedelta(minutes=minutes))
        assert dni.heartbeat(visitor["session_id"]).status_code == 200
    clock.set(start + timedelta(minutes=2))
    assert dni.session()["kind"] == "overflow"  # still held by the first visitor
    clock.set(start + timedelta(minutes=5))
    gone = dni.heartbeat(visitor["session_id"])
    assert gone.status_code == 410 and gone.json_body["error"] == "session_expired"
    # The page asks again, as the same visitor: the number is free, so it gets it back.
    again = dni.session(visitor_id=visitor["visitor_id"], session_id=visitor["session_id"])
    assert again["number"] == visitor["number"] and again["visitor_id"] == visitor["visitor_id"]
    assert again["session_id"] != visitor["session_id"]


def test_bad_requests_get_clear_errors(setup: Setup) -> None:
    dni = Dni(setup, size=1)
    other = Dni(setup, size=1)
    foreign = other.session()["session_id"]
    assert dni.session(status=401, key="pk_doesnotexist")["error"] == "unauthorized"
    bad = dni.session(status=400, utm_source="a\x00b", gclid="has space", page_url="javascript:x")
    assert {"utm_source", "gclid", "page_url"} <= set(bad["fields"])
    assert dni.session(status=400, tags={f"t{n}": "x" for n in range(21)})["fields"]
    big = dni.session(status=413, referrer="https://x.example/" + "a" * 9000)
    assert big["error"] == "body_too_large"
    assert dni.heartbeat(foreign).status_code == 404  # another pool's session
    assert dni.heartbeat("dns_nosuchsession").status_code == 404
    no_key = api(setup.client, "POST", "/dni/v1/sessions", body={})
    assert no_key.status_code == 401


def test_a_paused_campaign_hands_out_no_numbers(setup: Setup) -> None:
    dni = Dni(setup, size=1)
    path = f"/api/v1/campaigns/{dni.campaign_id}"
    campaign = api(setup.client, "GET", path, setup.token).json_body["campaign"]
    body = {k: v for k, v in campaign.items() if k not in {"id", "created_at", "updated_at"}}
    paused = api(setup.client, "PUT", path, setup.token, {**body, "status": "paused"})
    assert paused.status_code == 200, paused.body
    assert dni.session(status=409)["error"] == "campaign_paused"


def test_the_snippet_is_served_as_javascript(client: Client) -> None:
    reply = client.http.get("/dni.js")
    assert reply.status_code == 200
    assert reply.headers["Content-Type"].startswith("application/javascript")
    assert b"/dni/v1/sessions" in reply.body


# --- attribution ----------------------------------------------------------------------------------


def test_a_call_is_attributed_to_the_visitor_holding_the_number(
    setup: Setup, cpaas: CallSimulator, client: Client, clock: Clock
) -> None:
    dni = Dni(setup, size=2, idle_seconds=60, attribution_grace_seconds=300)
    start = clock.stop()
    visit = dni.session(
        page_url="https://shop.example/landing",
        referrer="https://www.google.com/",
        utm_source="google",
        utm_medium="cpc",
        utm_campaign="spring",
        gclid="TeSt123",
        tags={"keyword": "debt relief"},
    )
    call = cpaas.place_call(
        new_caller(), visit["number"], default_party=PartyBehaviour.answer(talk=30)
    )
    tags = record(call.call_sid).tags
    assert tags["utm_source"] == "google" and tags["utm_campaign"] == "spring"
    assert tags["gclid"] == "TeSt123" and tags["keyword"] == "debt relief"
    assert tags["landing_page"] == "https://shop.example/landing"
    assert tags["dni_session_id"] == visit["session_id"]
    # Released a minute ago, inside the grace period: still this visitor's call.
    clock.set(start + timedelta(minutes=2))
    late = cpaas.place_call(new_caller(), visit["number"], default_party=PartyBehaviour.no_answer())
    assert record(late.call_sid).tags["dni_session_id"] == visit["session_id"]
    # Long after: nobody's.
    clock.set(start + timedelta(hours=1))
    cold = cpaas.place_call(new_caller(), visit["number"], default_party=PartyBehaviour.no_answer())
    assert "dni_session_id" not in record(cold.call_sid).tags.as_dict()
    # The converted call with a gclid is in the Google Ads offline conversion file.
    export = client.http.get(
        f"/api/v1/calls/google-ads-conversions?campaign_id={dni.campaign_id}",
        headers={"Authorization": f"Bearer {setup.token}"},
    )
    assert export.status_code == 200
    lines = export.body.decode().splitlines()
    assert lines[0] == "Parameters:TimeZone=+0000"
    rows = list(csv.DictReader(io.StringIO("\n".join(lines[1:]))))
    assert [(r["Google Click ID"], r["Conversion Value"]) for r in rows] == [("TeSt123", "25.00")]
    assert rows[0]["Conversion Name"] == "Phone call"


# --- the advisor ----------------------------------------------------------------------------------


def test_pool_stats_report_use_and_recommend_a_size(setup: Setup, clock: Clock) -> None:
    dni = Dni(setup, size=2, idle_seconds=600)
    start = clock.now() - timedelta(hours=2)
    for minute in (0, 1, 2, 3):  # four visitors within minutes: two get numbers, two overflow
        clock.set(start + timedelta(minutes=minute))
        dni.session()
    clock.set(start + timedelta(hours=2))
    reply = api(
        setup.client,
        "GET",
        f"/api/v1/pools/{dni.pool['id']}/stats?hours=3&target_overflow=0.01",
        setup.token,
    )
    assert reply.status_code == 200, reply.body
    stats = reply.json_body["stats"]
    assert (stats["size"], stats["sessions"], stats["overflow_sessions"]) == (2, 4, 2)
    assert stats["overflow_rate"] == 0.5
    assert stats["average_hold_seconds"] == pytest.approx(600, abs=1)  # no heartbeats
    assert stats["sessions_per_hour"] == pytest.approx(4 / 3, rel=0.01)
    assert (
        stats["recommended_size"] >= stats["size"]
        or stats["expected_overflow_at_current_size"] <= 0.01
    )
    bad = api(
        setup.client, "GET", f"/api/v1/pools/{dni.pool['id']}/stats?target_overflow=2", setup.token
    )
    assert bad.status_code == 400 and "target_overflow" in bad.json_body["fields"]
