"""Inbound pay-per-call through the app in process, the CPaaS played by the call simulator."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from chalice.test import Client

from chalicelib.store import keys
from tests.support import call_params
from tests.support.app import Setup, api, counter, new_sid, post_signed, record
from tools.callsim import CallSimulator, Geo, PartyBehaviour


def test_priority_routing_connects_converts_and_pays(setup: Setup, cpaas: CallSimulator) -> None:
    buyer = setup.buyer()
    first = setup.target(buyer, "+14155550201", caps={"concurrency": 2})
    setup.target(buyer, "+14155550202")
    campaign_id, number = setup.campaign(
        [{"target_id": first, "priority": 1}],
        payout_cents=2500,
        revenue_cents=4000,
        conversion={"buffer_seconds": 90},
        recording=True,
    )
    transcript = cpaas.place_call(
        "+13105550100",
        number,
        parties={"+14155550201": PartyBehaviour.answer(after=3, talk=120)},
        caller_geo=Geo("Los Angeles", "CA", "90001", "US"),
    )
    assert not transcript.application_error, transcript.to_text()
    assert transcript.dialled() == ["+14155550201"]
    item = record(transcript.call_sid)
    assert item.campaign_id == campaign_id
    assert item.source == "Google Ads"
    assert item.target_id == first
    assert item.connected_seconds == 120
    assert item.converted is True
    assert (item.revenue_cents, item.payout_cents) == (4000, 2500)
    assert counter(keys.counter_pk("acc_demo", "TGT", first)) == 0
    # Recorded, after the consent announcement
    assert transcript.said()[0].startswith("This call may be recorded")
    assert item.recording_url is not None
    assert item.recording_url.startswith("https://")
    assert item.recording_seconds == 120


def test_a_store_failure_while_routing_still_records_the_call_and_falls_back(
    setup: Setup, cpaas: CallSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.voice import inbound

    target = setup.target(setup.buyer(), "+14155550211")
    _, number = setup.campaign(
        [{"target_id": target}], fallback_message="Please call back later. Goodbye."
    )

    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("TransactWriteItems failed")

    monkeypatch.setattr(inbound, "advance", broken)
    transcript = cpaas.place_call("+13105550111", number)
    assert not transcript.application_error
    assert "Please call back later. Goodbye." in transcript.said()
    item = record(transcript.call_sid)
    assert item.tags["outcome"] == "error"
    assert item.status == "completed"  # the final status callback still applied


def test_a_paused_campaign_takes_no_calls_but_records_them(
    setup: Setup, cpaas: CallSimulator, client: Client, admin_token: str
) -> None:
    target = setup.target(setup.buyer(), "+14155550212")
    campaign_id, number = setup.campaign([{"target_id": target}], status="paused")
    transcript = cpaas.place_call("+13105550112", number)
    assert transcript.dialled() == []
    assert record(transcript.call_sid).tags["outcome"] == "campaign_paused"
    # Resumed, the next call routes (the cached configuration is refreshed on change)
    body = api(client, "GET", f"/api/v1/campaigns/{campaign_id}", admin_token).json_body["campaign"]
    body = {k: v for k, v in body.items() if k not in {"id", "created_at", "updated_at"}}
    resumed = api(
        client, "PUT", f"/api/v1/campaigns/{campaign_id}", admin_token, {**body, "status": "active"}
    )
    assert resumed.status_code == 200, resumed.body
    again = cpaas.place_call("+13105550113", number, default_party=PartyBehaviour.answer())
    assert again.dialled() == ["+14155550212"]


def test_a_call_whose_final_status_never_came_is_closed_by_the_sweep(
    setup: Setup, client: Client, platform: Any
) -> None:
    from datetime import timedelta

    from chalicelib.clock import utcnow
    from chalicelib.voice.sweep import sweep_account

    target = setup.target(setup.buyer(), "+14155550221", caps={"concurrency": 1})
    _, number = setup.campaign([{"target_id": target}])
    sid = new_sid()
    # Given a call that reserved the target's only slot and whose callbacks were lost
    post_signed(client, platform, "/voice/inbound", call_params(sid, "+13105550120", number))
    slot = keys.counter_pk("acc_demo", "TGT", target)
    assert counter(slot) == 1
    # When the sweep runs before the call could have ended, nothing changes
    assert sweep_account("acc_demo", utcnow()) == 0
    assert counter(slot) == 1
    # Then, hours later, the call is closed and its slot freed, once
    later = utcnow() + timedelta(hours=5)
    assert sweep_account("acc_demo", later) >= 1
    assert counter(slot) == 0
    assert record(sid).status == "no-callback"
    assert sweep_account("acc_demo", later) == 0


class Receiver:
    """A buyer's or publisher's webhook endpoint on loopback, recording what it gets."""

    def __init__(self) -> None:
        import http.server
        import threading
        import time

        self.requests: list[dict[str, Any]] = []
        self.fail = False
        self.delay = 0.0  # seconds each answer takes
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                receiver.requests.append(
                    {
                        "path": self.path,
                        "body": self.rfile.read(length),
                        "signature": self.headers.get("X-PPC-Signature"),
                    }
                )
                time.sleep(receiver.delay)
                self.send_response(500 if receiver.fail else 200)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def calls_from(self, caller: str) -> list[dict[str, Any]]:
        """The deliveries about calls from `caller` (each test uses its own caller)."""
        import json

        return [r for r in self.requests if json.loads(r["body"])["caller"] == caller]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    endpoint = Receiver()
    yield endpoint
    endpoint.close()


def test_pixels_are_signed_templated_and_retried_without_touching_the_call(
    setup: Setup, cpaas: CallSimulator, receiver: Receiver
) -> None:
    import hashlib
    import hmac
    import json
    from datetime import timedelta

    from chalicelib.clock import utcnow
    from chalicelib.voice.pixels import retry_due

    secret = "buyer-shared-secret-1"
    target = setup.target(setup.buyer(), "+14155550231")
    pixel = {
        "url": receiver.url + "/conv?call={call_sid}&payout={payout_cents}",
        "method": "POST",
        "events": ["converted"],
        "secret": secret,
    }
    _, number = setup.campaign(
        [{"target_id": target}], payout_cents=1200, revenue_cents=2000, pixels=[pixel]
    )
    # A converted call fires the pixel with the call's data, signed with the shared secret
    transcript = cpaas.place_call(
        "+13105550130", number, default_party=PartyBehaviour.answer(talk=100)
    )
    assert len(receiver.requests) == 1
    got = receiver.requests[0]
    assert got["path"] == f"/conv?call={transcript.call_sid}&payout=1200"
    body = json.loads(got["body"])
    assert (body["event"], body["converted"], body["revenue_cents"]) == ("converted", True, 2000)
    stamp, mac = (part.split("=", 1)[1] for part in got["signature"].split(","))
    expected = hmac.new(secret.encode(), stamp.encode() + b"." + got["body"], hashlib.sha256)
    assert mac == expected.hexdigest()
    # A call that does not convert fires nothing (the pixel wants conversions only)
    cpaas.place_call("+13105550131", number, default_party=PartyBehaviour.answer(talk=10))
    assert len(receiver.requests) == 1
    # The endpoint fails: the call is settled all the same, and the pixel is retried by the
    # next retry run (due at once; runs are a minute apart)
    receiver.fail = True
    failed = cpaas.place_call("+13105550132", number, default_party=PartyBehaviour.answer(talk=100))
    assert record(failed.call_sid).payout_cents == 1200
    assert len(receiver.requests) == 2
    receiver.fail = False
    assert retry_due("acc_demo", utcnow()) == 1
    assert len(receiver.requests) == 3
    assert json.loads(receiver.requests[2]["body"])["call_sid"] == failed.call_sid
    assert retry_due("acc_demo", utcnow() + timedelta(minutes=10)) == 0  # delivered once


class ProcessDied(BaseException):
    """The Lambda's process ending mid-delivery: no handler in the app can catch it."""


def test_a_pixel_whose_process_died_mid_delivery_is_delivered_later_exactly_once(
    setup: Setup, cpaas: CallSimulator, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import timedelta

    from chalicelib import outbound
    from chalicelib.clock import utcnow
    from chalicelib.voice.pixels import retry_due

    target = setup.target(setup.buyer(), "+14155550261")
    pixel = {"url": receiver.url + "/done", "secret": "died-mid-delivery-1"}
    _, number = setup.campaign([{"target_id": target}], pixels=[pixel])

    def dies(*args: Any, **kwargs: Any) -> Any:
        raise ProcessDied

    monkeypatch.setattr(outbound, "call", dies)
    with pytest.raises(ProcessDied):
        cpaas.place_call("+13105550160", number, default_party=PartyBehaviour.answer(talk=30))
    monkeypatch.undo()
    assert receiver.calls_from("+13105550160") == []
    # A retry run at once leaves it alone: the dead process may still have been delivering
    retry_due("acc_demo", utcnow())
    assert receiver.calls_from("+13105550160") == []
    # A minute later (that attempt's claim has run out) a run delivers it, and only once
    later = utcnow() + timedelta(minutes=1)
    retry_due("acc_demo", later)
    retry_due("acc_demo", later + timedelta(seconds=1))
    retry_due("acc_demo", later + timedelta(minutes=30))
    (delivered,) = receiver.calls_from("+13105550160")
    assert delivered["path"] == "/done"


def test_a_failed_pixel_is_retried_by_the_schedule_that_runs_every_minute(
    setup: Setup, cpaas: CallSimulator, receiver: Receiver, client: Client, platform: Any
) -> None:
    from chalice.app import ScheduledEventConfig

    target = setup.target(setup.buyer(), "+14155550262")
    pixel = {"url": receiver.url + "/retry", "secret": "retried-in-a-minute"}
    _, number = setup.campaign([{"target_id": target}], pixels=[pixel])
    receiver.fail = True
    cpaas.place_call("+13105550161", number, default_party=PartyBehaviour.answer(talk=30))
    assert len(receiver.calls_from("+13105550161")) == 1
    receiver.fail = False
    schedules = {
        source.name: source.schedule_expression
        for source in platform.app.event_sources
        if isinstance(source, ScheduledEventConfig)
    }
    every_minute = [
        name
        for name, rate in schedules.items()
        if (rate if isinstance(rate, str) else rate.to_string()) == "rate(1 minute)"
    ]
    assert every_minute, "no function runs every minute"
    event = client.events.generate_cw_event("aws.events", "Scheduled Event", {}, [])
    for name in every_minute:
        client.lambda_.invoke(name, event)
    assert len(receiver.calls_from("+13105550161")) == 2


def test_retriers_racing_on_one_due_pixel_deliver_it_once(
    setup: Setup, cpaas: CallSimulator, receiver: Receiver
) -> None:
    import threading
    from concurrent.futures import ThreadPoolExecutor
    from datetime import timedelta

    from chalicelib.clock import utcnow
    from chalicelib.voice.pixels import retry_due

    target = setup.target(setup.buyer(), "+14155550263")
    pixel = {"url": receiver.url + "/race", "secret": "raced-by-retriers"}
    _, number = setup.campaign([{"target_id": target}], pixels=[pixel])
    receiver.fail = True
    cpaas.place_call("+13105550162", number, default_party=PartyBehaviour.answer(talk=30))
    receiver.fail = False
    # A slow endpoint: every retrier has read the due job before the first delivery ends
    receiver.delay = 0.5
    later = utcnow() + timedelta(minutes=1)
    racers = 3
    start = threading.Barrier(racers)

    def retrier(_: int) -> int:
        start.wait()
        return retry_due("acc_demo", later)

    with ThreadPoolExecutor(racers) as pool:
        list(pool.map(retrier, range(racers)))
    assert len(receiver.calls_from("+13105550162")) == 2  # the failed attempt + one retry


def test_falling_through_to_another_target_of_the_same_buyer_keeps_one_buyer_slot(
    setup: Setup, cpaas: CallSimulator
) -> None:
    buyer = setup.buyer(caps={"concurrency": 2})
    first = setup.target(buyer, "+14155550241", caps={"concurrency": 1})
    second = setup.target(buyer, "+14155550242", priority=2)
    _, number = setup.campaign([{"target_id": first}, {"target_id": second}])
    transcript = cpaas.place_call(
        "+13105550140",
        number,
        parties={
            "+14155550241": PartyBehaviour.busy(),
            "+14155550242": PartyBehaviour.answer(talk=30),
        },
    )
    assert not transcript.application_error, transcript.to_text()
    assert transcript.dialled() == ["+14155550241", "+14155550242"]
    assert record(transcript.call_sid).target_id == second
    assert counter(keys.counter_pk("acc_demo", "BUY", buyer)) == 0
    assert counter(keys.counter_pk("acc_demo", "TGT", first)) == 0


def test_retried_and_late_webhooks_change_nothing(
    setup: Setup, client: Client, platform: Any
) -> None:

    target = setup.target(setup.buyer(), "+14155550251", caps={"concurrency": 1})
    _, number = setup.campaign(
        [{"target_id": target}],
        payout_cents=500,
        revenue_cents=900,
        conversion={"buffer_seconds": 60},
    )
    sid = new_sid()
    first = post_signed(
        client, platform, "/voice/inbound", call_params(sid, "+13105550150", number)
    )
    # The CPaaS retries the inbound webhook: same answer, no second reservation
    again = post_signed(
        client, platform, "/voice/inbound", call_params(sid, "+13105550150", number)
    )
    assert again.body == first.body
    slot = keys.counter_pk("acc_demo", "TGT", target)
    assert counter(slot) == 1
    bridged = {
        "CallSid": sid,
        "DialCallStatus": "completed",
        "DialCallDuration": "75",
        "CallStatus": "in-progress",
    }
    for _ in range(3):  # the dial result, then two retries of it
        post_signed(client, platform, "/voice/dial/1", bridged)
    item = record(sid)
    assert (item.target_id, item.connected_seconds) == (target, 75)
    assert [t["outcome"] for t in item.routing["tried"]] == ["connected"]
    assert counter(slot) == 0
    done = {"CallSid": sid, "CallStatus": "completed", "CallDuration": "80"}
    for _ in range(2):
        post_signed(client, platform, "/voice/status", done)
    item = record(sid)
    assert (item.converted, item.payout_cents, item.revenue_cents) == (True, 500, 900)
    assert counter(slot) == 0


def test_simultaneous_offer_frees_the_other_targets_when_one_accepts(
    setup: Setup, client: Client, platform: Any
) -> None:

    destinations = ["+14155550261", "+14155550262", "+14155550263"]
    targets = [setup.target(setup.buyer(), d, caps={"concurrency": 1}) for d in destinations]
    _, number = setup.campaign([{"target_id": t} for t in targets], strategy="simultaneous")
    sid = new_sid()
    post_signed(client, platform, "/voice/inbound", call_params(sid, "+13105550160", number))
    slots = [keys.counter_pk("acc_demo", "TGT", t) for t in targets]
    assert [counter(s) for s in slots] == [1, 1, 1]

    def press(destination: str) -> bytes:
        leg = {"CallSid": new_sid(), "ParentCallSid": sid, "To": destination, "Digits": "1"}
        return bytes(post_signed(client, platform, "/voice/whisper/1/accept", leg).body)

    assert b"Hangup" not in press(destinations[1])  # bridged
    assert [counter(s) for s in slots] == [0, 1, 0]
    assert b"Hangup" in press(destinations[2])  # too late
    assert record(sid).target_id == targets[1]
    assert [counter(s) for s in slots] == [0, 1, 0]


def test_the_cpaas_fallback_url_sends_callers_to_the_campaign_fallback(
    setup: Setup, client: Client, platform: Any
) -> None:

    target = setup.target(setup.buyer(), "+14155550271")
    _, number = setup.campaign([{"target_id": target}], fallback_number="+18005550998")
    reply = post_signed(
        client, platform, "/voice/fallback", call_params(new_sid(), "+13105550170", number)
    )
    assert b"<Number>+18005550998</Number>" in reply.body or b">+18005550998</Dial>" in reply.body
    unknown = post_signed(
        client, platform, "/voice/fallback", call_params(new_sid(), "+13105550170", "+18885559999")
    )
    assert b"sorry" in unknown.body


def test_call_log_filters_csv_summary_and_live(
    setup: Setup, cpaas: CallSimulator, client: Client, admin_token: str, platform: Any
) -> None:
    import csv
    import io

    target = setup.target(setup.buyer(), "+14155550281", caps={"concurrency": 5})
    campaign_id, number = setup.campaign(
        [{"target_id": target}],
        payout_cents=700,
        revenue_cents=1000,
        conversion={"buffer_seconds": 60},
    )
    converted = cpaas.place_call(
        "+13105550180", number, default_party=PartyBehaviour.answer(talk=90)
    )
    cpaas.place_call("+13105550181", number, default_party=PartyBehaviour.answer(talk=10))
    # The call log, filtered to the campaign and to converted calls
    mine = api(client, "GET", f"/api/v1/calls?campaign_id={campaign_id}", admin_token).json_body
    assert len(mine["calls"]) == 2
    only = api(
        client, "GET", f"/api/v1/calls?campaign_id={campaign_id}&converted=true", admin_token
    ).json_body["calls"]
    assert [c["call_sid"] for c in only] == [converted.call_sid]
    # The same as CSV
    export = client.http.get(
        f"/api/v1/calls/export?campaign_id={campaign_id}",
        headers={"Authorization": f"Bearer {admin_token}"},
    )
    assert export.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(export.body.decode())))
    assert {r["call_sid"] for r in rows} == {c["call_sid"] for c in mine["calls"]}
    assert sum(int(r["revenue_cents"] or 0) for r in rows) == 1000
    # Today's performance for the campaign, by source
    summary = api(
        client,
        "GET",
        f"/api/v1/reports/summary?group_by=source&campaign_id={campaign_id}",
        admin_token,
    ).json_body
    assert summary["totals"]["calls"] == 2
    assert summary["totals"]["converted"] == 1
    assert summary["totals"]["conversion_rate"] == 0.5
    assert (summary["totals"]["revenue_cents"], summary["totals"]["profit_cents"]) == (1000, 300)
    assert summary["groups"][0]["key"] == "Google Ads"
    assert summary["best_target"] == target
    # A call ringing right now shows in the live view
    sid = new_sid()
    post_signed(client, platform, "/voice/inbound", call_params(sid, "+13105550182", number))
    live = api(client, "GET", "/api/v1/live", admin_token).json_body
    assert live["campaigns"].get(campaign_id) == 1
    assert live["targets"].get(target) == 1
    post_signed(
        client,
        platform,
        "/voice/status",
        {"CallSid": sid, "CallStatus": "completed", "CallDuration": "5"},
    )
    assert api(client, "GET", "/api/v1/live", admin_token).json_body["targets"].get(target, 0) == 0
    bad = api(client, "GET", "/api/v1/reports/summary?group_by=planet", admin_token)
    assert bad.status_code == 400


def test_a_simultaneous_offer_counts_the_routed_cap_of_the_taker_only(
    setup: Setup, client: Client, platform: Any
) -> None:
    # Given three targets offered each call at once, each taking one routed call a day
    destinations = ["+14155550291", "+14155550292", "+14155550293"]
    targets = [setup.target(setup.buyer(), d, caps={"daily": 1}) for d in destinations]
    _, number = setup.campaign([{"target_id": t} for t in targets], strategy="simultaneous")
    sid = new_sid()
    post_signed(client, platform, "/voice/inbound", call_params(sid, "+13105550190", number))

    # When the second one presses 1
    leg = {"CallSid": new_sid(), "ParentCallSid": sid, "To": destinations[1], "Digits": "1"}
    post_signed(client, platform, "/voice/whisper/1/accept", leg)

    # Then only it keeps the day's count; the others can still take today's next call
    day = [counter(keys.counter_pk("acc_demo", "TGT", t), _today()) for t in targets]
    assert day == [0, 1, 0]
    reply = post_signed(
        client, platform, "/voice/inbound", call_params(new_sid(), "+13105550191", number)
    )
    body = bytes(reply.body).decode()
    assert destinations[0] in body and destinations[2] in body
    assert destinations[1] not in body


def _today() -> str:
    from datetime import UTC, datetime

    return f"D#{datetime.now(UTC):%Y%m%d}"


def test_an_ivr_answer_after_the_caller_hung_up_routes_nobody(
    setup: Setup, client: Client, platform: Any
) -> None:
    # Given a campaign that asks one question before routing to a capped target
    target = setup.target(setup.buyer(), "+14155550295", caps={"concurrency": 1})
    ivr = {
        "start": "ask",
        "nodes": {
            "ask": {
                "prompt": "Press 1 for sales.",
                "tag": "want",
                "choices": [{"digits": "1", "value": "sales"}],
            }
        },
    }
    _, number = setup.campaign([{"target_id": target}], ivr=ivr)
    sid = new_sid()
    asked = post_signed(
        client, platform, "/voice/inbound", call_params(sid, "+13105550196", number)
    )
    assert b"<Gather" in asked.body
    # When the caller hangs up, and only then does the answer's request arrive
    ended = {"CallSid": sid, "CallStatus": "completed", "CallDuration": "4"}
    post_signed(client, platform, "/voice/status", ended)
    late = post_signed(
        client,
        platform,
        "/voice/ivr/ask/0",
        {**call_params(sid, "+13105550196", number), "Digits": "1"},
    )
    # Then nobody is dialled and the target's slot stays free
    assert b"<Dial" not in late.body and b"<Hangup" in late.body
    assert counter(keys.counter_pk("acc_demo", "TGT", target)) == 0
    assert record(sid).ended_at is not None
