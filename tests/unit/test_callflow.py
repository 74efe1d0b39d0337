"""A routed call's decisions as pure functions: the next offer, dial results, settlement."""

from __future__ import annotations

from collections import Counter
from dataclasses import fields, replace
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.bidding.auction import PricedBid
from chalicelib.callflow.offers import Refusal, after_refusal, next_offer, next_targets
from chalicelib.callflow.results import DialResult, after_accept, after_dial
from chalicelib.callflow.settlement import CallSoFar, settle
from chalicelib.callflow.state import CounterKey, Leg, RoutingState
from chalicelib.campaigns import CampaignConfig, CapOwner
from chalicelib.campaigns.settings import CampaignSettings, Conversion, Duplicates
from chalicelib.routing import RoutableTarget
from chalicelib.store.reservations import CONCURRENCY

AT = datetime(2026, 12, 5, 15, 30, tzinfo=UTC)
DAY = "D#20261205"


def tpk(target_id: str) -> str:
    return f"ACCT#a#TGT#{target_id}"


def bpk(buyer_id: str) -> str:
    return f"ACCT#a#BUY#{buyer_id}"


def campaign(
    caps: dict[str, dict[str, Any]],
    buyers: dict[str, str] | None = None,
    buyer_caps: dict[str, dict[str, Any]] | None = None,
    **setting: Any,
) -> CampaignConfig:
    """Targets named by `caps` (in priority order), each of its own buyer unless `buyers`."""
    buyers = buyers or {t: f"b{t}" for t in caps}
    targets = tuple(
        RoutableTarget(t, buyers[t], f"+1415555{n:04d}", priority=n + 1, weight=1)
        for n, t in enumerate(caps)
    )
    return CampaignConfig(
        account_id="a",
        campaign_id="c",
        name="Campaign",
        status="active",
        settings=CampaignSettings(**setting),
        targets=targets,
        target_caps={t: CapOwner(tpk(t), dict(c), "UTC") for t, c in caps.items()},
        buyer_caps={b: CapOwner(bpk(b), dict(c), "UTC") for b, c in (buyer_caps or {}).items()},
    )


# --- the next offer --------------------------------------------------------------------------


def test_priority_offers_one_target_and_simultaneous_up_to_ten_a_bid_alone() -> None:
    plan = [f"t{n}" for n in range(12)]
    one = campaign({t: {} for t in plan})
    assert next_targets(one, RoutingState(plan=plan)) == ["t0"]
    many = campaign({t: {} for t in plan}, strategy="simultaneous")
    assert next_targets(many, RoutingState(plan=plan)) == plan[:10]
    bid = PricedBid("t3", "bt3", 900, "+14155550999")
    state = RoutingState(plan=["t3", *plan], bids={"t3": bid})
    assert next_targets(many, state) == ["t3"]
    assert next_targets(many, RoutingState(plan=[])) == []


def test_an_offer_reserves_every_cap_and_says_which_are_given_back_unless_earned() -> None:
    config = campaign(
        {"t0": {"concurrency": 2, "daily": 5, "counts": "connected"}},
        buyer_caps={"bt0": {"monthly": 9, "counts": "converted"}},
    )
    offer = next_offer(config, RoutingState(plan=["t0"]), AT, [])
    reserved = {(c.pk, c.sk): (c.limit, c.hold) for _, c in offer.reserve}
    assert reserved == {
        (tpk("t0"), CONCURRENCY): (2, "concurrency"),
        (tpk("t0"), DAY): (5, "connected"),
        (bpk("bt0"), "M#202612"): (9, "converted"),
    }
    (leg,) = offer.legs
    assert sorted(map(tuple, leg.holds)) == sorted(
        (pk, sk, h) for (pk, sk), (_, h) in reserved.items()
    )
    assert (offer.state.attempt, offer.state.plan, offer.state.fallback) == (1, [], False)


def test_a_routed_cap_is_kept_by_a_lone_offer_and_held_by_a_shared_one() -> None:
    caps = {t: {"daily": 1} for t in ("t0", "t1")}
    alone = next_offer(campaign(caps), RoutingState(plan=["t0", "t1"]), AT, [])
    assert [c.hold for _, c in alone.reserve] == [None]
    assert alone.legs[0].holds == []
    shared = next_offer(
        campaign(caps, strategy="simultaneous"), RoutingState(plan=["t0", "t1"]), AT, []
    )
    assert [c.hold for _, c in shared.reserve] == ["taken", "taken"]


def test_a_counter_given_back_and_reserved_again_in_one_step_stays_held() -> None:
    # Two targets of one buyer whose concurrency is capped: falling through keeps the slot.
    config = campaign(
        {"t0": {}, "t1": {}},
        buyers={"t0": "b", "t1": "b"},
        buyer_caps={"b": {"concurrency": 1}},
    )
    slot = (bpk("b"), CONCURRENCY)
    offer = next_offer(config, RoutingState(plan=["t1"], attempt=1), AT, [slot])
    assert offer.release == [] and offer.reserve == []
    assert offer.legs[0].held() == [slot]


def test_no_target_left_means_the_fallback_and_stop_holds_the_call() -> None:
    config = campaign({"t0": {}})
    fallback = next_offer(config, RoutingState(plan=[]), AT, [])
    assert fallback.legs == [] and fallback.state.fallback
    leg = Leg("t0", "bt0", "+14155550000", [[tpk("t0"), CONCURRENCY, "concurrency"]])
    held = next_offer(config, RoutingState(plan=["t0"], active=[leg]), AT, [], stop=True)
    assert held.legs == [] and held.state.active == [leg] and held.state.plan == ["t0"]


def test_a_refusal_drops_the_capped_targets_and_releases_already_free_once() -> None:
    state = RoutingState(plan=["t0", "t1"])
    slot: CounterKey = (tpk("x"), CONCURRENCY)
    after, release = after_refusal(
        state, Refusal(False, False, ["t0"], {slot}), [slot, (tpk("y"), CONCURRENCY)], AT
    )
    assert after.plan == ["t1"]
    assert after.tried == [{"target_id": "t0", "outcome": "capped", "at": AT.isoformat()}]
    assert release == [(tpk("y"), CONCURRENCY)]


# --- dial results ----------------------------------------------------------------------------


def leg(target_id: str, *holds: str) -> Leg:
    return Leg(
        target_id, f"b{target_id}", f"+1{target_id}", [[tpk(target_id), h, h] for h in holds]
    )


def test_a_connected_winner_keeps_what_it_earned_and_the_conversion_waits() -> None:
    config = campaign({"t0": {}})
    state = RoutingState(active=[leg("t0", "concurrency", "connected", "converted", "taken")])
    result = DialResult("completed", "in-progress", 61, "https://rec", 61)
    step = after_dial(config, state, result, AT)
    assert step.release == [(tpk("t0"), "concurrency")]
    assert step.state.pending == [[tpk("t0"), "converted", "converted"]]
    assert step.stop and step.state.active == []
    assert (step.changes.target_id, step.changes.connected_seconds) == ("t0", 61)
    assert step.changes.recording_url == "https://rec"


@pytest.mark.parametrize(
    ("dial", "caller", "ring", "stop"),
    [
        ("busy", "in-progress", 5, False),
        ("failed", "in-progress", 5, False),
        ("no-answer", "in-progress", 20, False),
        ("no-answer", "completed", 20, True),  # the caller hung up while it rang
        ("canceled", "in-progress", 5, True),
    ],
)
def test_nobody_answered_gives_everything_back_and_falls_through(
    dial: str, caller: str, ring: int, stop: bool
) -> None:
    config = campaign({"t0": {}, "t1": {}})
    state = RoutingState(plan=["t1"], active=[leg("t0", "concurrency", "connected")])
    step = after_dial(config, state, DialResult(dial, caller, 0), AT)
    assert sorted(step.release) == [(tpk("t0"), "concurrency"), (tpk("t0"), "connected")]
    assert (step.state.ring_seconds, step.stop, step.state.plan) == (ring, stop, ["t1"])
    assert step.state.tried[-1]["outcome"] == dial


def test_the_ring_budget_spent_ends_the_plan() -> None:
    config = campaign({"t0": {}, "t1": {}}, max_ring_seconds=30)
    state = RoutingState(plan=["t1"], ring_seconds=20, active=[leg("t0")])
    assert after_dial(config, state, DialResult("no-answer", "in-progress", 0), AT).state.plan == []


def test_the_first_to_accept_takes_the_call_and_the_others_give_back_at_once() -> None:
    config = campaign({"t0": {}, "t1": {}, "t2": {}})
    state = RoutingState(active=[leg("t0", "taken"), leg("t1", "taken"), leg("t2", "taken")])
    step = after_accept(config, state, "+1t1")
    assert step is not None
    assert step.release == [(tpk("t0"), "taken"), (tpk("t2"), "taken")]
    assert [g.target_id for g in step.state.active] == ["t1"] and step.state.winner == "t1"
    assert after_accept(config, step.state, "+1t2") is None  # too late


def test_the_taker_keeps_its_buyer_s_counters_whichever_leg_reserved_them() -> None:
    # Two targets of one buyer offered at once: the first leg reserved the buyer's slot.
    config = campaign({"t0": {}, "t1": {}}, buyers={"t0": "b", "t1": "b"})
    first = Leg(
        "t0",
        "b",
        "+1t0",
        [[tpk("t0"), CONCURRENCY, "concurrency"], [bpk("b"), CONCURRENCY, "concurrency"]],
    )
    second = Leg("t1", "b", "+1t1", [[tpk("t1"), CONCURRENCY, "concurrency"]])
    step = after_accept(config, RoutingState(active=[first, second]), "+1t1")
    assert step is not None
    assert step.release == [(tpk("t0"), CONCURRENCY)]
    assert sorted(step.state.active[0].held()) == sorted(
        [(tpk("t1"), CONCURRENCY), (bpk("b"), CONCURRENCY)]
    )


def test_a_leg_that_did_not_bridge_leaves_the_next_offer_open() -> None:
    config = campaign({"t0": {}, "t1": {}})
    state = RoutingState(plan=["t1"], active=[leg("t0")], winner="t0")
    step = after_dial(config, state, DialResult("no-answer", "in-progress", 0), AT)
    assert step.state.winner is None


# --- settlement ------------------------------------------------------------------------------


def so_far(connected: int, **fields: Any) -> CallSoFar:
    return CallSoFar(
        **{
            "connected_seconds": connected,
            "target_id": "t0",
            "duplicate": False,
            "tags": {},
            "publisher_payout_cents": None,
            **fields,
        }
    )


@given(
    connected=st.integers(0, 300),
    buffer=st.integers(0, 200),
    duplicate=st.booleans(),
    duplicates_pay=st.booleans(),
    override=st.none() | st.integers(0, 5000),
)
def test_settlement_pays_a_converted_call_once_by_the_rules(
    connected: int, buffer: int, duplicate: bool, duplicates_pay: bool, override: int | None
) -> None:
    config = campaign(
        {"t0": {}},
        revenue_cents=1000,
        payout_cents=300,
        conversion=Conversion(buffer_seconds=buffer),
        duplicates=Duplicates(pay=duplicates_pay),
    )
    pending = [[tpk("t0"), "converted", "converted"]]
    outcome = settle(
        config,
        RoutingState(pending=pending),
        so_far(connected, duplicate=duplicate, publisher_payout_cents=override),
    )
    converted = connected > 0 and connected >= buffer
    pays = converted and (not duplicate or duplicates_pay)
    assert outcome.converted == converted
    assert outcome.revenue_cents == (1000 if pays else 0)
    assert outcome.payout_cents == ((300 if override is None else override) if pays else 0)
    # A conversion that did not happen gives its reservation back; one that did keeps it.
    assert outcome.release == ([] if converted else [(tpk("t0"), "converted")])


def test_a_tag_conversion_and_a_won_bid_price_the_call() -> None:
    config = campaign(
        {"t0": {}},
        revenue_cents=1000,
        conversion=Conversion(kind="tag", tag="qualified", value="yes"),
    )
    bid = PricedBid("t0", "bt0", 2500, "+14155550000", payout_cents=1800)
    state = RoutingState(bids={"t0": bid})
    paid = settle(config, state, so_far(5, tags={"qualified": "yes"}))
    assert (paid.converted, paid.revenue_cents, paid.payout_cents) == (True, 2500, 1800)
    assert not settle(config, state, so_far(500, tags={"qualified": "no"})).converted


# --- a whole call: every reservation ends earned or given back ---------------------------------


Outcome = tuple[str, int]  # (DialCallStatus, seconds)


@settings(max_examples=300)
@given(
    outcomes=st.lists(
        st.sampled_from([("busy", 0), ("no-answer", 0), ("failed", 0), ("completed", 45)]),
        min_size=1,
        max_size=4,
    ),
    taker=st.integers(0, 2),
    counts=st.sampled_from(["routed", "connected", "converted"]),
    simultaneous=st.booleans(),
    shared_buyer=st.booleans(),
)
def test_a_call_ends_holding_exactly_what_it_earned(
    outcomes: list[Outcome], counts: str, simultaneous: bool, shared_buyer: bool, taker: int
) -> None:
    """Play a call through the decisions (offers, results, acceptance, settlement),
    applying each step's reservations and releases to counters: when it is over, no slot
    is held, and each capped counter counts exactly the call's share of it."""
    names = ["t0", "t1", "t2"]
    caps = {t: {"concurrency": 3, "daily": 100, "counts": counts} for t in names}
    buyers = {t: ("b" if shared_buyer else f"b{t}") for t in names}
    config = campaign(
        caps,
        buyers=buyers,
        buyer_caps={
            b: {"concurrency": 5, "monthly": 100, "counts": counts} for b in set(buyers.values())
        },
        strategy="simultaneous" if simultaneous else "priority",
        conversion=Conversion(buffer_seconds=30),
    )
    counters: Counter[CounterKey] = Counter()
    state, release, offered = RoutingState(plan=list(names)), [], []
    results = iter(outcomes)
    while True:
        offer = next_offer(config, state, AT, release)
        counters.update(c.key for _, c in offer.reserve)
        counters.subtract(offer.release)
        state = offer.state
        if not offer.legs:
            break
        offered.append([g.target_id for g in offer.legs])
        status, seconds = next(results, ("no-answer", 0))
        if status == "completed" and len(offer.legs) > 1:
            chosen = offer.legs[taker % len(offer.legs)]
            accepted = after_accept(config, state, chosen.destination)
            assert accepted is not None
            counters.subtract(accepted.release)
            state = accepted.state
            # While bridged, the taker and its buyer each hold one call, nobody else any.
            owners = {tpk(chosen.target_id), bpk(chosen.buyer_id)}
            for (pk, sk), n in counters.items():
                if sk == CONCURRENCY:
                    assert n == (1 if pk in owners else 0), (pk, counters)
        step = after_dial(config, state, DialResult(status, "in-progress", seconds), AT)
        counters.subtract(step.release)
        state, release = step.state, []
        if step.stop:
            break
    else:  # pragma: no cover - the loop always ends by break
        raise AssertionError
    winner = state.tried[-1]["target_id"] if state.tried[-1]["outcome"] == "connected" else None
    final = settle(config, state, so_far(45 if winner else 0, target_id=winner))
    counters.subtract(final.release)
    assert all(counters[(pk, CONCURRENCY)] == 0 for pk, _ in list(counters)), counters
    buyer_of_winner = buyers[winner] if winner else None
    for buyer in set(buyers.values()):
        monthly = counters[(bpk(buyer), "M#202612")]
        if counts == "routed" and not simultaneous:
            expected_buyer = sum(  # once per offer in which one of its targets rang
                any(buyers[t] == buyer for t in group) for group in offered
            )
        else:
            expected_buyer = int(buyer == buyer_of_winner)
        assert monthly == expected_buyer, (buyer, offered, winner, counters)
    for target in names:
        daily = counters[(tpk(target), DAY)]
        if counts == "routed" and not simultaneous:
            expected = sum(target in group for group in offered)  # every lone offer counts
        elif counts == "routed":
            expected = int(target == winner)  # a shared offer counts for its taker only
        else:  # connected or converted (45 s of talk converts): the winner only
            expected = int(target == winner)
        assert daily == expected, (target, offered, winner, counters)


def test_state_round_trips_through_its_stored_form() -> None:
    bid = PricedBid("t0", "bt0", 900, "+14155550000", "bid-1", 30, 600)
    state = RoutingState(
        plan=["t1"],
        active=[leg("t0", "concurrency")],
        bids={"t0": bid},
        pending=[[tpk("t0"), "converted", "converted"]],
        final={"status": "completed", "duration": 70},
    )
    assert RoutingState.from_json(state.to_json()) == state
    assert set(state.to_json()) == {f.name for f in fields(RoutingState)}
    copied = state.copy()
    copied.active[0].holds.append(["x", "y", "taken"])
    copied.plan.append("t9")
    assert len(state.active[0].holds) == 1 and state.plan == ["t1"]
    # Calls routed before holds existed kept only their concurrency slots.
    legacy = {
        "active": [{"target_id": "t0", "buyer_id": "b", "destination": "+1", "concurrency": ["p"]}]
    }
    assert RoutingState.from_json(legacy).active[0].holds == [["p", CONCURRENCY, "concurrency"]]
    assert replace(state, attempt=2).attempt == 2
