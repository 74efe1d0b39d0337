"""Inbound pay-per-call end to end: the local stack over HTTP, the CPaaS played by the
call simulator, configuration made through the management API as a marketer would."""

from __future__ import annotations

import os
import secrets
import signal
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import httpx
import pytest

from tests.e2e.conftest import LocalStack, Marketer
from tests.support import call_params, caller
from tools.callsim import CallerScript, CallSimulator, Geo, PartyBehaviour

pytestmark = pytest.mark.e2e


def answer(talk: float = 120, after: float = 2) -> PartyBehaviour:
    return PartyBehaviour.answer(after=after, talk=talk)


def outcomes(call: dict[str, Any]) -> list[tuple[str, str]]:
    return [(t["target_id"], t["outcome"]) for t in call["routing"]["tried"]]


def test_priority_first_then_fall_through_on_busy_and_no_answer(
    marketer: Marketer, cpaas: CallSimulator
) -> None:
    buyer = marketer.buyer()
    busy = marketer.target(buyer, "+14155551001", priority=1)
    silent = marketer.target(buyer, "+14155551002", priority=2)
    taker = marketer.target(buyer, "+14155551003", priority=3)
    number = marketer.campaign([taker, busy, silent], max_attempts=3)
    transcript = cpaas.place_call(
        caller(),
        number,
        parties={
            "+14155551001": PartyBehaviour.busy(),
            "+14155551002": PartyBehaviour.no_answer(),
            "+14155551003": answer(),
        },
    )
    assert not transcript.application_error
    assert transcript.dialled() == ["+14155551001", "+14155551002", "+14155551003"]
    call = marketer.call(transcript.call_sid)
    assert outcomes(call) == [(busy, "busy"), (silent, "no-answer"), (taker, "connected")]
    assert call["target_id"] == taker
    assert marketer.live_targets().get(taker, 0) == 0


def test_weights_share_calls_within_a_priority(marketer: Marketer, cpaas: CallSimulator) -> None:
    buyer = marketer.buyer()
    heavy = marketer.target(buyer, "+14155551011")
    light = marketer.target(buyer, "+14155551012")
    number = marketer.campaign(
        [{"target_id": heavy, "weight": 9}, {"target_id": light, "weight": 1}]
    )
    firsts = [
        cpaas.place_call(caller(), number, default_party=answer(talk=5)).dialled()[0]
        for _ in range(20)
    ]
    assert firsts.count("+14155551011") > firsts.count("+14155551012")


def test_round_robin_rotates_through_targets(marketer: Marketer, cpaas: CallSimulator) -> None:
    buyer = marketer.buyer()
    targets = [marketer.target(buyer, f"+1415555102{n}") for n in range(3)]
    number = marketer.campaign(targets, strategy="round_robin")
    firsts = [
        cpaas.place_call(caller(), number, default_party=answer(talk=5)).dialled()[0]
        for _ in range(3)
    ]
    assert sorted(firsts) == ["+14155551020", "+14155551021", "+14155551022"]


def test_simultaneous_offer_goes_to_the_first_to_accept(
    marketer: Marketer, cpaas: CallSimulator
) -> None:
    buyers = [marketer.buyer(caps={"concurrency": 3}) for _ in range(3)]
    targets = [
        marketer.target(b, f"+1415555103{n}", caps={"concurrency": 1}) for n, b in enumerate(buyers)
    ]
    number = marketer.campaign(targets, strategy="simultaneous")
    transcript = cpaas.place_call(
        caller(),
        number,
        parties={
            "+14155551030": PartyBehaviour.answer(after=1, digits="2"),  # declines
            "+14155551031": PartyBehaviour.answer(after=2, digits="1", talk=100),
            "+14155551032": PartyBehaviour.answer(after=3, digits="1"),
        },
    )
    assert not transcript.application_error, transcript.to_text()
    assert sorted(transcript.dialled()) == ["+14155551030", "+14155551031", "+14155551032"]
    call = marketer.call(transcript.call_sid)
    assert call["target_id"] == targets[1]
    assert call["connected_seconds"] == 100
    live = marketer.live_targets()
    assert all(live.get(t, 0) == 0 for t in targets)


def test_closed_schedule_and_geo_filter_skip_targets(
    marketer: Marketer, cpaas: CallSimulator
) -> None:
    buyer = marketer.buyer()
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).strftime("%A").lower()
    closed = marketer.target(
        buyer,
        "+14155551041",
        schedule={
            "timezone": "UTC",
            "days": {tomorrow: [{"start": "00:00", "end": "24:00"}]},
        },
    )
    texas = marketer.target(buyer, "+14155551042", geo={"states": ["TX"]})
    anywhere = marketer.target(buyer, "+14155551043", priority=2)
    number = marketer.campaign([closed, texas, anywhere])
    transcript = cpaas.place_call(
        caller(), number, default_party=answer(), caller_geo=Geo("Fresno", "CA", "93650", "US")
    )
    assert transcript.dialled() == ["+14155551043"]
    call = marketer.call(transcript.call_sid)
    assert call["routing"]["excluded"] == {closed: "closed", texas: "geo"}


IVR = {
    "start": "age",
    "nodes": {
        "age": {
            "prompt": "Are you over 65? Press 1 for yes, 2 for no.",
            "tag": "age_over_65",
            "choices": [{"digits": "1", "value": "yes"}, {"digits": "2", "value": "no"}],
            "next": "zip",
        },
        "zip": {"prompt": "Please enter your ZIP code.", "tag": "zip", "num_digits": 5},
    },
}


def test_ivr_answers_become_tags_that_routing_filters_on(
    marketer: Marketer, cpaas: CallSimulator
) -> None:
    buyer = marketer.buyer()
    seniors = marketer.target(
        buyer,
        "+14155551051",
        tag_rules=[
            {"tag": "age_over_65", "op": "eq", "value": "yes"},
            {"tag": "zip", "op": "in", "value": ["90210", "10001"]},
        ],
    )
    number = marketer.campaign([seniors], ivr=IVR)
    qualified = cpaas.place_call(
        caller(), number, script=CallerScript(inputs=["1", "90210"]), default_party=answer()
    )
    assert qualified.dialled() == ["+14155551051"]
    call = marketer.call(qualified.call_sid)
    assert call["tags"]["age_over_65"] == "yes"
    assert call["tags"]["zip"] == "90210"
    # A caller who answers "no" is not offered to the seniors buyer
    young = cpaas.place_call(caller(), number, script=CallerScript(inputs=["2", "90210"]))
    assert young.dialled() == []
    assert marketer.call(young.call_sid)["routing"]["excluded"] == {seniors: "tags:age_over_65"}


def test_ivr_retries_then_takes_the_default(marketer: Marketer, cpaas: CallSimulator) -> None:
    buyer = marketer.buyer()
    target = marketer.target(buyer, "+14155551052")
    tree = {
        "start": "q",
        "nodes": {
            "q": {
                "prompt": "Press 1 to continue.",
                "tag": "intent",
                "retries": 1,
                "choices": [{"digits": "1", "value": "yes"}],
                "default": {"value": "unknown"},
            }
        },
    }
    number = marketer.campaign([target], ivr=tree)
    transcript = cpaas.place_call(
        caller(), number, script=CallerScript(inputs=["9", "8"]), default_party=answer()
    )
    assert sum("did not get that" in s for s in transcript.said()) == 1
    assert marketer.call(transcript.call_sid)["tags"]["intent"] == "unknown"
    assert transcript.dialled() == ["+14155551052"]


@pytest.mark.parametrize("counts", ["routed", "connected", "converted"])
def test_an_hourly_cap_skips_the_target_once_reached(
    marketer: Marketer, cpaas: CallSimulator, counts: str
) -> None:
    buyer = marketer.buyer()
    capped = marketer.target(buyer, "+14155551061", caps={"hourly": 1, "counts": counts})
    spare = marketer.target(buyer, "+14155551062", priority=2)
    number = marketer.campaign([capped, spare], conversion={"buffer_seconds": 60})
    first = cpaas.place_call(caller(), number, default_party=answer(talk=90))
    second = cpaas.place_call(caller(), number, default_party=answer(talk=90))
    assert first.dialled() == ["+14155551061"]
    assert second.dialled() == ["+14155551062"]
    assert outcomes(marketer.call(second.call_sid))[0] == (capped, "capped")


@pytest.mark.parametrize("period", ["daily", "monthly", "total"])
def test_buyer_caps_are_shared_by_its_targets(
    marketer: Marketer, cpaas: CallSimulator, period: str
) -> None:
    shared = marketer.buyer(caps={period: 1})
    one = marketer.target(shared, "+14155551071")
    two = marketer.target(shared, "+14155551072")
    other = marketer.target(marketer.buyer(), "+14155551073", priority=2)
    number = marketer.campaign([one, two, other])
    first = cpaas.place_call(caller(), number, default_party=answer(talk=5))
    second = cpaas.place_call(caller(), number, default_party=answer(talk=5))
    assert first.dialled()[0] in {"+14155551071", "+14155551072"}
    assert second.dialled() == ["+14155551073"]


def test_duplicates_route_but_pay_nothing(marketer: Marketer, cpaas: CallSimulator) -> None:
    target = marketer.target(marketer.buyer(), "+14155551081")
    number = marketer.campaign(
        [target], payout_cents=2000, revenue_cents=3500, duplicate_window_days=30
    )
    repeat = caller()
    first = cpaas.place_call(repeat, number, default_party=answer(talk=120))
    again = cpaas.place_call(repeat, number, default_party=answer(talk=120))
    one, two = marketer.call(first.call_sid), marketer.call(again.call_sid)
    assert (one["duplicate"], one["converted"], one["payout_cents"]) == (False, True, 2000)
    assert (two["duplicate"], two["converted"], two["payout_cents"]) == (True, True, 0)
    assert two["revenue_cents"] == 0
    assert again.dialled() == ["+14155551081"]


def test_blocklisted_callers_are_rejected(marketer: Marketer, cpaas: CallSimulator) -> None:
    target = marketer.target(marketer.buyer(), "+14155551091")
    number = marketer.campaign([target], blocklist=["+1900", "+13125550001"])
    transcript = cpaas.place_call("+19005550123", number)
    assert transcript.final_status in {"busy", "no-answer"}
    assert transcript.dialled() == []
    call = marketer.call(transcript.call_sid)
    assert call["tags"]["outcome"] == "blocked"


def test_no_eligible_target_goes_to_the_fallback_number(
    marketer: Marketer, cpaas: CallSimulator
) -> None:
    target = marketer.target(marketer.buyer(), "+14155551101", enabled=False)
    number = marketer.campaign([target], fallback_number="+18005550999")
    transcript = cpaas.place_call(caller(), number, default_party=answer(talk=30))
    assert transcript.dialled() == ["+18005550999"]
    call = marketer.call(transcript.call_sid)
    assert call["routing"]["fallback"] is True
    assert call["routing"]["excluded"] == {target: "disabled"}


def test_fallback_message_when_every_target_fails(marketer: Marketer, cpaas: CallSimulator) -> None:
    target = marketer.target(marketer.buyer(), "+14155551102")
    number = marketer.campaign([target], fallback_message="Nobody is free. Goodbye.")
    transcript = cpaas.place_call(caller(), number, default_party=PartyBehaviour.busy())
    assert "Nobody is free. Goodbye." in transcript.said()
    assert not transcript.application_error


def test_conversion_needs_the_buffer_and_status_is_applied_once(
    marketer: Marketer, cpaas: CallSimulator, stack: LocalStack
) -> None:
    target = marketer.target(marketer.buyer(), "+14155551111")
    publisher = marketer.post("/api/v1/publishers", {"name": "Pub"})["publisher"]["id"]
    marketer.number_extra = {"publisher_id": publisher}
    try:
        number = marketer.campaign(
            [target], payout_cents=1500, revenue_cents=3000, conversion={"buffer_seconds": 90}
        )
    finally:
        marketer.number_extra = {}
    short = cpaas.place_call(caller(), number, default_party=answer(talk=45))
    long = cpaas.place_call(caller(), number, default_party=answer(talk=95))
    assert marketer.call(short.call_sid)["converted"] is False
    converted = marketer.call(long.call_sid)
    assert (converted["converted"], converted["revenue_cents"], converted["payout_cents"]) == (
        True,
        3000,
        1500,
    )
    assert converted["publisher_id"] == publisher
    # The CPaaS retries the final status callback: nothing changes, nothing is counted twice
    assert long.status_callback is not None
    retry = cpaas_post(stack, "/voice/status", long.status_callback.params)
    assert retry.status_code == 200
    assert marketer.call(long.call_sid) == converted


def cpaas_post(stack: LocalStack, path: str, params: dict[str, str]) -> httpx.Response:
    from tests.support import signed_form

    headers, body = signed_form(stack.info["twilio_auth_token"], stack.url + path, params)
    return httpx.post(stack.url + path, headers=headers, content=body, timeout=60)


def concurrency_now(stack: LocalStack, target_id: str) -> int:
    table = boto3.resource(
        "dynamodb",
        endpoint_url=stack.info["aws_endpoint"],
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    ).Table(stack.info["env"]["APP_TABLE_NAME"])
    item = table.get_item(Key={"pk": f"ACCT#acc_demo#TGT#{target_id}", "sk": "CONC"}).get("Item")
    return int(item["n"]) if item else 0


def test_fifty_simultaneous_calls_against_a_concurrency_cap_of_five(
    marketer: Marketer, stack: LocalStack
) -> None:
    # Given a target that takes at most 5 calls at once, and an overflow target
    buyer = marketer.buyer()
    capped = marketer.target(buyer, "+14155551201", caps={"concurrency": 5})
    marketer.target(buyer, "+14155551202")
    overflow = marketer.target(marketer.buyer(), "+14155551203", priority=2)
    number = marketer.campaign([capped, overflow], duplicate_window_days=0)
    sids = ["CA" + secrets.token_hex(16) for _ in range(50)]

    def arrive(sid: str) -> str:
        params = call_params(sid, caller(), number)
        reply = cpaas_post(stack, "/voice/inbound", params)
        assert reply.status_code == 200
        dial = ET.fromstring(reply.text).find("Dial")
        assert dial is not None, reply.text
        return "".join(dial.itertext()).strip()

    # When 50 calls arrive at once
    with ThreadPoolExecutor(max_workers=16) as pool:
        dialled = list(pool.map(arrive, sids))
    # Then exactly 5 ring the capped target and the rest fall through to the overflow
    assert dialled.count("+14155551201") == 5
    assert dialled.count("+14155551203") == 45
    assert concurrency_now(stack, capped) == 5
    # And once their final status callbacks arrive, every slot is free again
    with ThreadPoolExecutor(max_workers=16) as pool:
        done = pool.map(
            lambda sid: cpaas_post(
                stack,
                "/voice/status",
                {
                    "CallSid": sid,
                    "CallStatus": "completed",
                    "CallDuration": "30",
                    "AccountSid": "AC" + "0" * 32,
                },
            ),
            sids,
        )
        assert all(reply.status_code == 200 for reply in done)
    assert concurrency_now(stack, capped) == 0
    assert concurrency_now(stack, overflow) == 0


def test_fifty_simultaneous_calls_never_connect_more_than_a_connected_cap_of_five(
    marketer: Marketer, stack: LocalStack
) -> None:
    # Given a target whose daily cap of 5 counts connected calls, and an overflow target
    capped = marketer.target(
        marketer.buyer(), "+14155551211", caps={"daily": 5, "counts": "connected"}
    )
    overflow = marketer.target(marketer.buyer(), "+14155551213", priority=2)
    number = marketer.campaign([capped, overflow], duplicate_window_days=0)
    sids = ["CA" + secrets.token_hex(16) for _ in range(50)]

    def arrive(sid: str) -> str:
        reply = cpaas_post(stack, "/voice/inbound", call_params(sid, caller(), number))
        dial = ET.fromstring(reply.text).find("Dial")
        assert dial is not None, reply.text
        return "".join(dial.itertext()).strip()

    def answered(sid: str) -> int:
        reply = cpaas_post(
            stack,
            "/voice/dial/1",
            {
                **call_params(sid, caller(), number, CallStatus="in-progress"),
                "DialCallStatus": "completed",
                "DialCallDuration": "60",
            },
        )
        return reply.status_code

    # When 50 calls arrive at once and every target that rings answers
    with ThreadPoolExecutor(max_workers=16) as pool:
        dialled = list(pool.map(arrive, sids))
        assert set(pool.map(answered, sids)) == {200}
    # Then no more than 5 were ever offered to (and connected at) the capped target
    assert dialled.count("+14155551211") == 5
    assert dialled.count("+14155551213") == 45
    connected = [marketer.call(sid).get("target_id") for sid in sids]
    assert connected.count(capped) == 5


def test_a_dial_result_while_the_table_is_down_is_kept_and_applied_once_it_is_back(
    marketer: Marketer, stack: LocalStack
) -> None:
    # Given a call ringing a target of a campaign that pays 3.00 for 10.00 of revenue
    target = marketer.target(marketer.buyer(), "+14155551231")
    number = marketer.campaign(
        [target],
        payout_cents=300,
        revenue_cents=1000,
        conversion={"buffer_seconds": 30},
        duplicate_window_days=0,
    )
    sid, who = "CA" + secrets.token_hex(16), caller()
    assert "<Dial" in cpaas_post(stack, "/voice/inbound", call_params(sid, who, number)).text
    # When the table's endpoint stops answering while the target's 60 s call ends
    assert stack.process is not None
    os.kill(stack.process.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        during = cpaas_post(
            stack,
            "/voice/dial/1",
            {
                **call_params(sid, who, number, CallStatus="in-progress"),
                "DialCallStatus": "completed",
                "DialCallDuration": "60",
            },
        )
        took = time.monotonic() - started
    finally:
        os.kill(stack.process.pid, signal.SIGCONT)
    # Then the CPaaS still got valid TwiML in time (Twilio waits 15 s)
    assert during.status_code == 200 and took < 15
    assert ET.fromstring(during.text).tag == "Response"
    # And once the table answers again, the final status and the kept result both count
    final = {"CallSid": sid, "CallStatus": "completed", "CallDuration": "75"}
    assert cpaas_post(stack, "/voice/status", {**final, "AccountSid": "AC" + "0" * 32}).is_success
    deadline = time.monotonic() + 30
    call = marketer.call(sid)
    while not call.get("converted") and time.monotonic() < deadline:
        time.sleep(0.5)
        call = marketer.call(sid)
    assert (call["target_id"], call["connected_seconds"]) == (target, 60)
    assert (call["converted"], call["revenue_cents"], call["payout_cents"]) == (True, 1000, 300)
    assert call["status"] == "completed" and call["ended_at"]
    # And the kept result was applied once and is gone from the queue
    env = stack.info["env"]
    queue = boto3.client(
        "sqs",
        endpoint_url=env["AWS_ENDPOINT_URL_SQS"],
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    left = queue.get_queue_attributes(
        QueueUrl=env["DEFERRED_QUEUE_URL"],
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    assert left == {
        "ApproximateNumberOfMessages": "0",
        "ApproximateNumberOfMessagesNotVisible": "0",
    }
    # And the money is in the reports
    rows = [
        line for line in marketer.http.get("/api/v1/calls/export").text.splitlines() if sid in line
    ]
    assert len(rows) == 1 and "1000" in rows[0] and "300" in rows[0]
