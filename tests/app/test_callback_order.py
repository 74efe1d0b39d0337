"""Any order of a call's CPaaS callbacks (duplicates, replays, a final status before its dial
result, results after the sweep closed the call) ends as the in-order sequence does."""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from chalice.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.clock import utcnow
from chalicelib.store import deferred, keys
from chalicelib.store.calls import call_by_sid
from chalicelib.store.models import CallItem, CounterItem
from chalicelib.voice.sweep import close_if_stale
from tests.support import call_params
from tests.support.app import api, new_sid, post_signed

Event = tuple[Any, ...]  # ("dial", attempt, status, seconds) | ("final",) | ("sweep",)
_callers = itertools.count(1000)
FIRST, SECOND = "+14155550301", "+14155550302"


@dataclass(frozen=True)
class Campaign:
    number: str
    first: str
    second: str


@pytest.fixture(scope="module")
def campaign(client: Client, admin_token: str) -> Campaign:
    def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        reply = api(client, "POST", path, admin_token, body)
        assert reply.status_code == 201, reply.body
        return dict(reply.json_body)

    buyer = post("/api/v1/buyers", {"name": "Order buyer"})["buyer"]["id"]
    caps = {"concurrency": 50, "daily": 100_000, "counts": "connected"}
    first = post(
        "/api/v1/targets",
        {"name": "First", "buyer_id": buyer, "destination": FIRST, "priority": 1, "caps": caps},
    )["target"]["id"]
    second = post(
        "/api/v1/targets",
        {"name": "Second", "buyer_id": buyer, "destination": SECOND, "priority": 2},
    )["target"]["id"]
    created = post(
        "/api/v1/campaigns",
        {
            "name": "Callback order",
            "plan": [{"target_id": first}, {"target_id": second}],
            "payout_cents": 300,
            "revenue_cents": 1000,
            "conversion": {"buffer_seconds": 30},
            "duplicate_window_days": 0,
        },
    )
    number = "+18885559901"
    post("/api/v1/numbers", {"number": number, "campaign_id": created["campaign"]["id"]})
    return Campaign(number, first, second)


@st.composite
def callbacks(draw: st.DrawFn) -> tuple[list[Event], list[Event]]:
    """The in-order callbacks of one call and a reordering the CPaaS could produce."""
    talk = draw(st.sampled_from([10, 60]))
    first = draw(st.sampled_from(["busy", "no-answer", "completed"]))
    results = [("dial", 1, first, talk if first == "completed" else 0)]
    if first != "completed":
        second = draw(st.sampled_from(["no-answer", "completed"]))
        results.append(("dial", 2, second, talk if second == "completed" else 0))
    in_order: list[Event] = [*results, ("final", talk + 20)]
    events = list(in_order)
    # A dial's result may come after the call's final status...
    if draw(st.booleans()):
        events[-1], events[-2] = events[-2], events[-1]
    # ...or after the sweep closed the call (earlier attempts led to the last one).
    if draw(st.booleans()):
        events.insert(draw(st.integers(len(results) - 1, len(events))), ("sweep",))
    # Any callback may be repeated (a retry, a replay) up to three times, later.
    for index in draw(st.lists(st.integers(0, len(events) - 1), max_size=4)):
        at = draw(st.integers(index + 1, len(events)))
        events.insert(at, events[index])
    return in_order, events


def _play(client: Client, platform: Any, campaign: Campaign, events: list[Event]) -> str:
    sid, caller = new_sid(), f"+1312777{next(_callers):04d}"
    reply = post_signed(
        client, platform, "/voice/inbound", call_params(sid, caller, campaign.number)
    )
    assert reply.status_code == 200
    for event in events:
        if event[0] == "dial":
            _, attempt, status, seconds = event
            params = call_params(
                sid,
                caller,
                campaign.number,
                CallStatus="in-progress",
                DialCallStatus=status,
                DialCallDuration=str(seconds),
            )
            reply = post_signed(client, platform, f"/voice/dial/{attempt}", params)
        elif event[0] == "final":
            params = {"CallSid": sid, "CallStatus": "completed", "CallDuration": str(event[1])}
            reply = post_signed(client, platform, "/voice/status", params)
        else:
            # The sweep, as it treats this call (its other calls are not this test's).
            item = call_by_sid(sid)
            assert item is not None
            close_if_stale(item, utcnow() + timedelta(hours=5))
            continue
        assert reply.status_code == 200
    return sid


def _counters(campaign: Campaign) -> dict[str, int]:
    day = f"D#{utcnow():%Y%m%d}"
    found = {}
    for name, target, sk in (
        ("first_now", campaign.first, "CONC"),
        ("first_connected_today", campaign.first, day),
    ):
        try:
            found[name] = int(CounterItem.get(keys.counter_pk("acc_demo", "TGT", target), sk).n)
        except CounterItem.DoesNotExist:
            found[name] = 0
    return found


def _outcome(sid: str) -> dict[str, Any]:
    item = CallItem.get(keys.call_pk(sid), keys.META)
    return {
        "ended": item.ended_at is not None,
        "status": item.status,
        "duration_seconds": item.duration_seconds,
        "connected_seconds": int(item.connected_seconds or 0),
        "target_id": item.target_id,
        "converted": bool(item.converted),
        "revenue_cents": item.revenue_cents,
        "payout_cents": item.payout_cents,
    }


def _run(client: Client, platform: Any, campaign: Campaign, events: list[Event]) -> Any:
    before = _counters(campaign)
    kept: list[Any] = []
    # A handler that fails still answers 200 (fallback TwiML) and keeps the callback: here
    # that would hide a failure, so any kept callback fails the test.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(deferred, "keep", kept.append)
        sid = _play(client, platform, campaign, events)
    assert kept == [], kept
    after = _counters(campaign)
    return _outcome(sid), {name: after[name] - before[name] for name in after}


@settings(
    max_examples=int(os.environ.get("ORDER_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(sequences=callbacks())
def test_any_callback_order_ends_as_the_in_order_sequence(
    client: Client, platform: Any, campaign: Campaign, sequences: tuple[list[Event], list[Event]]
) -> None:
    in_order, shuffled = sequences
    expected = _reference(client, platform, campaign, in_order)
    assert _run(client, platform, campaign, shuffled) == expected, shuffled
    # And the in-order outcome itself is right: no slot held, the connected cap counts the
    # call only if it connected at its target, and 60 s of talk (30 s buffer) pays.
    outcome, counted = expected
    connected_first = ("dial", 1, "completed", 60) in in_order or (
        "dial",
        1,
        "completed",
        10,
    ) in in_order
    assert counted == {"first_now": 0, "first_connected_today": int(connected_first)}
    converted = outcome["connected_seconds"] >= 30
    assert (outcome["converted"], outcome["revenue_cents"], outcome["payout_cents"]) == (
        (True, 1000, 300) if converted else (False, 0, 0)
    )
    assert outcome["ended"] and outcome["status"] == "completed"


_references: dict[tuple[Event, ...], Any] = {}


def _reference(client: Client, platform: Any, campaign: Campaign, in_order: list[Event]) -> Any:
    """The in-order outcome, played once per distinct sequence."""
    key = tuple(in_order)
    if key not in _references:
        _references[key] = _run(client, platform, campaign, in_order)
    return _references[key]
