"""Routing decisions: schedules, geo and tag filters, eligibility, and the order of attempts."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any, get_args

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.routing import (
    MAX_SIMULTANEOUS,
    CallFacts,
    GeoFilter,
    Ineligible,
    OpenWindow,
    RoutableTarget,
    Schedule,
    Strategy,
    TagRule,
    eligibility,
    geo_filter_to_dict,
    geo_matches,
    is_open,
    order_targets,
    parse_geo_filter,
    parse_schedule,
    parse_tag_rule,
    route_call,
    schedule_to_dict,
    tag_rule_to_dict,
    tags_match,
)

# No example database: these tests must not leave files in the working tree.
FAST = settings(max_examples=40, deadline=None, database=None)
STRATEGIES: tuple[Strategy, ...] = get_args(Strategy)
NINE_TO_FIVE = (OpenWindow(time(9), time(17)),)
MIDNIGHT = time(0)


def target(
    target_id: str,
    priority: int = 1,
    weight: int = 1,
    *,
    enabled: bool = True,
    schedule: Schedule | None = None,
    geo: GeoFilter | None = None,
    tag_rules: tuple[TagRule, ...] = (),
) -> RoutableTarget:
    return RoutableTarget(
        target_id=target_id,
        buyer_id=f"buyer-{target_id}",
        destination="+14155550100",
        priority=priority,
        weight=weight,
        enabled=enabled,
        schedule=schedule,
        geo=geo or GeoFilter(),
        tag_rules=tag_rules,
    )


def call(
    *,
    country: str | None = "US",
    state: str | None = "CA",
    area_code: str | None = "415",
    zip_code: str | None = "94107",
    tags: dict[str, str] | None = None,
    at: datetime = datetime(2024, 7, 15, 18, 0, tzinfo=UTC),  # a Monday
) -> CallFacts:
    return CallFacts("+14155550123", country, state, area_code, zip_code, tags or {}, at)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# --- schedules ---------------------------------------------------------------------------


def weekdays_nine_to_five(timezone: str) -> Schedule:
    return Schedule(timezone, {day: NINE_TO_FIVE for day in range(5)})


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (utc(2024, 7, 15, 13, 30), True),  # 09:30 EDT (UTC-4)
        (utc(2024, 7, 15, 12, 59), False),  # 08:59 EDT
        (utc(2024, 7, 15, 20, 59), True),  # 16:59 EDT
        (utc(2024, 7, 15, 21, 0), False),  # 17:00 EDT: the end is not in the window
        (utc(2024, 1, 15, 14, 30), True),  # 09:30 EST (UTC-5)
        (utc(2024, 1, 15, 13, 30), False),  # 08:30 EST: the July opening time is not open
        (utc(2024, 1, 15, 21, 30), True),  # 16:30 EST
        (utc(2024, 1, 15, 22, 0), False),  # 17:00 EST
    ],
)
def test_new_york_office_hours_follow_daylight_saving(at: datetime, expected: bool) -> None:
    assert is_open(weekdays_nine_to_five("America/New_York"), at) is expected


def test_the_repeated_hour_of_the_fall_back_night_is_open_both_times() -> None:
    # 2024-11-03 01:30 happens at 05:30 UTC (EDT) and again at 06:30 UTC (EST).
    night = Schedule("America/New_York", {6: (OpenWindow(time(1), time(2)),)})
    assert is_open(night, utc(2024, 11, 3, 5, 30))
    assert is_open(night, utc(2024, 11, 3, 6, 30))
    assert not is_open(night, utc(2024, 11, 3, 7, 0))  # 02:00 EST


def test_a_window_ending_at_midnight_runs_to_the_end_of_the_day() -> None:
    # Friday 22:00 to Saturday 02:00 in Los Angeles, written as two windows.
    late = Schedule(
        "America/Los_Angeles",
        {4: (OpenWindow(time(22), MIDNIGHT),), 5: (OpenWindow(MIDNIGHT, time(2)),)},
    )
    friday = datetime(2024, 7, 19, tzinfo=UTC) + timedelta(hours=7)  # Fri 00:00 PDT
    assert not is_open(late, friday + timedelta(hours=21, minutes=59))
    assert is_open(late, friday + timedelta(hours=22))
    assert is_open(late, friday + timedelta(hours=23, minutes=59, seconds=59))
    assert is_open(late, friday + timedelta(hours=24))  # Saturday 00:00
    assert is_open(late, friday + timedelta(hours=25, minutes=59))
    assert not is_open(late, friday + timedelta(hours=26))  # Saturday 02:00


def test_a_window_ending_at_midnight_does_not_open_the_next_day() -> None:
    evening = Schedule("UTC", {4: (OpenWindow(time(18), MIDNIGHT),)})
    assert is_open(evening, utc(2024, 7, 19, 23, 59))
    assert not is_open(evening, utc(2024, 7, 20, 0, 0))


def test_days_without_windows_are_closed() -> None:
    schedule = Schedule("UTC", {0: NINE_TO_FIVE, 1: ()})
    assert is_open(schedule, utc(2024, 7, 15, 12))  # Monday
    assert not is_open(schedule, utc(2024, 7, 16, 12))  # Tuesday: empty tuple
    assert not is_open(schedule, utc(2024, 7, 17, 12))  # Wednesday: absent
    assert not is_open(Schedule("UTC", {}), utc(2024, 7, 15, 12))


def test_the_weekday_is_the_local_one() -> None:
    # Monday 02:00 UTC is still Sunday evening in New York: a Monday-only schedule is closed.
    monday_only = Schedule("America/New_York", {0: (OpenWindow(MIDNIGHT, MIDNIGHT),)})
    assert not is_open(monday_only, utc(2024, 7, 15, 2))
    assert is_open(monday_only, utc(2024, 7, 15, 4))


@FAST
@given(st.datetimes(timezones=st.just(UTC)))
def test_no_schedule_and_always_open_are_open_at_any_time(at: datetime) -> None:
    assert is_open(None, at)
    assert is_open(Schedule.always_open(), at)
    assert is_open(Schedule.always_open("Pacific/Chatham"), at)


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        is_open(Schedule.always_open(), datetime(2024, 7, 15, 12))
    with pytest.raises(ValueError, match="timezone-aware"):
        CallFacts("+14155550123", None, None, None, None, {}, datetime(2024, 7, 15, 12))


def test_call_time_is_kept_in_utc() -> None:
    paris = datetime.fromisoformat("2024-07-15T14:00:00+02:00")
    assert call(at=paris).at == utc(2024, 7, 15, 12)
    assert call(at=paris).at.tzinfo is UTC


@pytest.mark.parametrize(
    ("timezone", "days", "message"),
    [
        (
            "UTC",
            {1: (OpenWindow(time(9), time(17)), OpenWindow(time(16), time(18)))},
            "tuesday: 09:00-17:00 overlaps 16:00-18:00",
        ),
        (
            "UTC",
            {2: (OpenWindow(time(16), time(18)), OpenWindow(time(9), time(17)))},
            "wednesday: 09:00-17:00 overlaps 16:00-18:00",
        ),
        (
            "UTC",
            {0: (OpenWindow(time(20), MIDNIGHT), OpenWindow(time(22), time(23)))},
            "monday: 20:00-24:00 overlaps 22:00-23:00",
        ),
        ("UTC", {0: NINE_TO_FIVE * 2}, "monday: 09:00-17:00 overlaps 09:00-17:00"),
        ("UTC", {4: (OpenWindow(time(17), time(9)),)}, "friday: 17:00-09:00 ends before it"),
        ("UTC", {6: (OpenWindow(time(9), time(9)),)}, "sunday: 09:00-09:00 is empty"),
        ("UTC", {7: NINE_TO_FIVE}, "weekday 7 out of range"),
        ("UTC", {-1: NINE_TO_FIVE}, "weekday -1 out of range"),
        ("Mars/Olympus_Mons", {}, "unknown timezone 'Mars/Olympus_Mons'"),
        ("/etc/passwd", {}, "unknown timezone '/etc/passwd'"),
        ("", {}, "unknown timezone ''"),
    ],
)
def test_invalid_schedules_say_what_is_wrong(
    timezone: str, days: dict[int, tuple[OpenWindow, ...]], message: str
) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(")):
        Schedule(timezone, days)


def test_adjacent_windows_and_a_whole_day_are_valid() -> None:
    Schedule("UTC", {0: (OpenWindow(time(9), time(12)), OpenWindow(time(12), time(17)))})
    Schedule("UTC", {0: (OpenWindow(MIDNIGHT, MIDNIGHT),)}).validate()


def test_a_schedule_is_a_frozen_copy_of_its_days() -> None:
    days: dict[int, tuple[OpenWindow, ...]] = {
        0: (OpenWindow(time(13), time(17)), OpenWindow(time(9), time(12)))
    }
    schedule = Schedule("UTC", days)
    days[1] = NINE_TO_FIVE
    assert 1 not in schedule.days
    assert schedule == Schedule("UTC", {0: tuple(reversed(days[0])), 3: ()})
    assert hash(schedule) == hash(Schedule("UTC", {0: days[0]}))


minutes_of_day = st.integers(min_value=0, max_value=24 * 60)


def as_time(minutes: int) -> time:
    return MIDNIGHT if minutes == 24 * 60 else time(minutes // 60, minutes % 60)


@FAST
@given(minutes_of_day, minutes_of_day, minutes_of_day, minutes_of_day)
def test_two_windows_are_refused_exactly_when_they_share_a_minute(
    a_start: int, a_end: int, b_start: int, b_end: int
) -> None:
    # 24:00 is only an end; as a start it would be 00:00.
    a_start, b_start = a_start % (24 * 60), b_start % (24 * 60)
    a_end, b_end = a_end or 24 * 60, b_end or 24 * 60
    a, b = set(range(a_start, a_end)), set(range(b_start, b_end))
    windows = (
        OpenWindow(as_time(a_start), as_time(a_end)),
        OpenWindow(as_time(b_start), as_time(b_end)),
    )
    if not a or not b:
        with pytest.raises(ValueError, match=r"monday: .* (is empty|ends before it starts)"):
            Schedule("UTC", {0: windows})
    elif a & b:
        with pytest.raises(ValueError, match=r"monday: .* overlaps "):
            Schedule("UTC", {0: windows})
    else:
        Schedule("UTC", {0: windows})


@FAST
@given(
    st.lists(minutes_of_day, min_size=0, max_size=8, unique=True),
    st.integers(min_value=0, max_value=24 * 60 - 1),
)
def test_is_open_agrees_with_a_minute_by_minute_reading(bounds: list[int], minute: int) -> None:
    # Sorted distinct bounds taken pairwise give non-overlapping windows.
    edges = sorted(bounds)
    spans = list(zip(edges[::2], edges[1::2], strict=False))
    schedule = Schedule(
        "UTC", {2: tuple(OpenWindow(as_time(s), as_time(e)) for s, e in spans if s < 24 * 60)}
    )
    at = utc(2024, 7, 17) + timedelta(minutes=minute)  # a Wednesday
    assert is_open(schedule, at) is any(s <= minute < e for s, e in spans)


# --- geo ---------------------------------------------------------------------------------

CALIFORNIA = GeoFilter(states=frozenset({"CA"}))


@pytest.mark.parametrize(
    ("geo", "facts", "expected"),
    [
        (GeoFilter(), call(country=None, state=None, area_code=None, zip_code=None), True),
        (CALIFORNIA, call(), True),
        (CALIFORNIA, call(state="ca"), True),
        (CALIFORNIA, call(state="NY"), False),
        (CALIFORNIA, call(state=None), False),  # a buyer paying for California wants proof
        (CALIFORNIA, call(state=""), False),  # Twilio's "could not tell"
        (GeoFilter(countries=frozenset({"US", "CA"})), call(country="CA"), True),
        (GeoFilter(countries=frozenset({"US"})), call(country="GB"), False),
        (GeoFilter(countries=frozenset({"US"})), call(country=None), False),
        (GeoFilter(area_codes=frozenset({"415", "628"})), call(area_code="628"), True),
        (GeoFilter(area_codes=frozenset({"415"})), call(area_code="212"), False),
        (GeoFilter(area_codes=frozenset({"415"})), call(area_code=None), False),
        (GeoFilter(zip_prefixes=("941", "100")), call(zip_code="10001"), True),
        (GeoFilter(zip_prefixes=("941",)), call(zip_code="94107-1234"), True),
        (GeoFilter(zip_prefixes=("941",)), call(zip_code="95014"), False),
        (GeoFilter(zip_prefixes=("941",)), call(zip_code=None), False),
        (GeoFilter(zip_prefixes=("94107",)), call(zip_code="9410"), False),
        # Every restricted part must match, not just one of them.
        (GeoFilter(states=frozenset({"CA"}), area_codes=frozenset({"212"})), call(), False),
        (
            GeoFilter(frozenset({"US"}), frozenset({"CA"}), frozenset({"415"}), ("94",)),
            call(),
            True,
        ),
    ],
)
def test_geo_filters(geo: GeoFilter, facts: CallFacts, expected: bool) -> None:
    assert geo_matches(geo, facts) is expected


@pytest.mark.parametrize(
    ("parts", "message"),
    [
        ({"countries": {"usa"}}, "country 'usa'"),
        ({"states": {"California"}}, "state 'California'"),
        ({"area_codes": {"115"}}, "area code '115'"),
        ({"area_codes": {"4155"}}, "area code '4155'"),
        ({"zip_prefixes": ("941000",)}, "ZIP prefix '941000'"),
        ({"zip_prefixes": ("",)}, "ZIP prefix ''"),
        ({"zip_prefixes": "941"}, "not one string"),
    ],
)
def test_invalid_geo_filters_say_which_code(parts: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        GeoFilter(**parts)


# --- tags --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "tags", "expected"),
    [
        (TagRule("plan", "eq", "gold"), {"plan": "gold"}, True),
        (TagRule("plan", "eq", "gold"), {"plan": "Gold"}, False),
        (TagRule("plan", "eq", "gold"), {}, False),
        (TagRule("plan", "eq", "gold"), {"plan": ""}, False),
        (TagRule("age", "eq", "65"), {"age": "65.0"}, False),  # a string compares as written
        (TagRule("age", "eq", Decimal("65")), {"age": "65.0"}, True),  # a number numerically
        (TagRule("age", "eq", Decimal("65")), {"age": "sixty-five"}, False),
        (TagRule("plan", "ne", "gold"), {"plan": "silver"}, True),
        (TagRule("plan", "ne", "gold"), {"plan": "gold"}, False),
        (TagRule("plan", "ne", "gold"), {}, True),
        (TagRule("age", "ne", Decimal("65.0")), {"age": "65"}, False),
        (TagRule("state", "in", ("CA", "NY")), {"state": "NY"}, True),
        (TagRule("state", "in", ("CA", "NY")), {"state": "TX"}, False),
        (TagRule("state", "in", ("CA", "NY")), {}, False),
        (TagRule("state", "not_in", ("CA", "NY")), {"state": "TX"}, True),
        (TagRule("state", "not_in", ("CA", "NY")), {"state": "CA"}, False),
        (TagRule("state", "not_in", ("CA", "NY")), {}, True),
        (TagRule("age", "gt", Decimal("64")), {"age": "65"}, True),
        (TagRule("age", "gt", Decimal("65")), {"age": "65.0"}, False),
        (TagRule("age", "gte", Decimal("65")), {"age": "65.0"}, True),
        (TagRule("age", "gte", Decimal("65.0")), {"age": "65"}, True),
        (TagRule("age", "gte", Decimal("65")), {"age": " 65 "}, True),
        (TagRule("age", "gte", Decimal("65")), {"age": "6.5e1"}, True),
        (TagRule("age", "lt", Decimal("65")), {"age": "64.99"}, True),
        (TagRule("age", "lt", Decimal("65")), {"age": "65"}, False),
        (TagRule("age", "lte", Decimal("65")), {"age": "65.00"}, True),
        (TagRule("age", "lte", Decimal("-1")), {"age": "-1.5"}, True),
        (TagRule("age", "gte", Decimal("65")), {}, False),
        (TagRule("age", "gte", Decimal("65")), {"age": "old"}, False),
        (TagRule("age", "lt", Decimal("65")), {"age": "NaN"}, False),
        (TagRule("age", "gt", Decimal("65")), {"age": "Infinity"}, False),
        (TagRule("age", "gt", Decimal("65")), {"age": "1_000"}, False),
        (TagRule("age", "gt", Decimal("65")), {"age": "٧٠"}, False),  # noqa: RUF001 (Arabic 70)
        (TagRule("debt", "exists"), {"debt": "yes"}, True),
        (TagRule("debt", "exists"), {"debt": ""}, False),
        (TagRule("debt", "exists"), {}, False),
    ],
)
def test_tag_rules(rule: TagRule, tags: dict[str, str], expected: bool) -> None:
    assert tags_match((rule,), tags) is expected


def test_all_rules_must_hold_and_no_rules_match_anything() -> None:
    rules = (TagRule("age", "gte", Decimal("65")), TagRule("plan", "in", ("a", "b")))
    assert tags_match(rules, {"age": "70", "plan": "a"})
    assert not tags_match(rules, {"age": "70", "plan": "c"})
    assert not tags_match(rules, {"age": "60", "plan": "a"})
    assert tags_match((), {})


def test_numeric_thresholds_written_as_text_or_integers_become_decimals() -> None:
    assert TagRule("age", "gte", "65").value == Decimal("65")
    assert TagRule("age", "eq", 65).value == Decimal("65")  # type: ignore[arg-type]
    assert TagRule("age", "eq", "65").value == "65"  # eq on a string stays a string


@pytest.mark.parametrize(
    ("tag", "op", "value", "message"),
    [
        ("", "eq", "x", "tag name must not be empty"),
        ("age", "between", "x", "op must be one of"),
        ("age", "gt", "old", "'age' gt: value must be a finite number"),
        ("age", "gt", Decimal("NaN"), "'age' gt: value must be a finite number"),
        ("age", "gt", None, "'age' gt: value must be a finite number"),
        ("age", "lte", True, "'age' lte: value must be a finite number"),
        ("plan", "in", "gold", "'plan' in: value must be a non-empty list"),
        ("plan", "in", (), "'plan' in: value must be a non-empty list"),
        ("plan", "not_in", ("gold", ""), "'plan' not_in: value must be a non-empty list"),
        ("plan", "eq", "", "'plan' eq: value must be a non-empty string or a number"),
        ("plan", "ne", None, "'plan' ne: value must be a non-empty string or a number"),
        ("plan", "exists", "gold", "'plan' exists: takes no value"),
    ],
)
def test_invalid_tag_rules_say_what_is_wrong(tag: str, op: Any, value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TagRule(tag, op, value)


# --- eligibility -------------------------------------------------------------------------


def test_eligibility_keeps_plan_order_and_gives_a_reason_for_each_exclusion() -> None:
    plan = [
        target("open"),
        target("off", enabled=False),
        target("night", schedule=Schedule("UTC", {0: (OpenWindow(time(22), MIDNIGHT),)})),
        target("texas", geo=GeoFilter(states=frozenset({"TX"}))),
        target("seniors", tag_rules=(TagRule("age", "gte", Decimal("65")),)),
        target("gold", tag_rules=(TagRule("age", "exists"), TagRule("plan", "eq", "gold"))),
        target("hours", schedule=weekdays_nine_to_five("America/Los_Angeles")),
        target("also-open", priority=2),
    ]
    eligible, excluded = eligibility(plan, call(tags={"age": "40"}))  # Mon 11:00 PDT
    assert [t.target_id for t in eligible] == ["open", "hours", "also-open"]
    assert excluded == {
        "off": Ineligible.DISABLED,
        "night": "closed",
        "texas": "geo",
        "seniors": "tags:age",
        "gold": Ineligible.tags("plan"),
    }


def test_a_disabled_target_is_reported_as_disabled_even_when_also_closed() -> None:
    closed = Schedule("UTC", {})
    _, excluded = eligibility([target("t", enabled=False, schedule=closed)], call())
    assert excluded == {"t": "disabled"}


def test_a_plan_with_a_repeated_target_id_is_refused() -> None:
    with pytest.raises(ValueError, match="duplicate target id 't1'"):
        eligibility([target("t1"), target("t2"), target("t1", priority=2)], call())


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("priority", 0, "priority"), ("weight", 0, "weight"), ("weight", True, "weight")],
)
def test_targets_need_a_priority_and_weight_of_at_least_one(
    field: str, value: Any, message: str
) -> None:
    with pytest.raises(ValueError, match=f"target t: {message} must be an integer >= 1"):
        RoutableTarget("t", "b", "+14155550100", **{"priority": 1, "weight": 1, field: value})


# --- order -------------------------------------------------------------------------------


@st.composite
def eligible_targets(draw: st.DrawFn, max_size: int = 12) -> list[RoutableTarget]:
    shapes = draw(
        st.lists(st.tuples(st.integers(1, 4), st.integers(1, 10)), min_size=0, max_size=max_size)
    )
    targets = [target(f"t{i:02d}", priority, weight) for i, (priority, weight) in enumerate(shapes)]
    return draw(st.permutations(targets))


def ids(targets: list[RoutableTarget]) -> list[str]:
    return [t.target_id for t in targets]


@FAST
@given(
    eligible_targets(),
    st.sampled_from(STRATEGIES),
    st.integers(0, 2**32),
    st.integers(-5, 100),
    st.none() | st.integers(0, 30),
)
def test_the_order_is_a_duplicate_free_selection_of_the_eligible_targets(
    eligible: list[RoutableTarget],
    strategy: Strategy,
    seed: int,
    rotation: int,
    limit: int | None,
) -> None:
    ordered = order_targets(
        strategy, eligible, rng=random.Random(seed), rotation=rotation, limit=limit
    )
    bound = len(eligible) if limit is None else min(limit, len(eligible))
    if strategy == "simultaneous":
        bound = min(bound, MAX_SIMULTANEOUS)
    assert len(ordered) == bound
    assert len(set(ids(ordered))) == len(ordered)
    assert set(ids(ordered)) <= set(ids(eligible))


@FAST
@given(eligible_targets(), st.sampled_from(["priority", "simultaneous"]), st.integers(0, 2**32))
def test_priority_groups_never_interleave(
    eligible: list[RoutableTarget], strategy: Strategy, seed: int
) -> None:
    ordered = order_targets(strategy, eligible, rng=random.Random(seed))
    priorities = [t.priority for t in ordered]
    assert priorities == sorted(priorities)
    if strategy == "priority":
        assert sorted(ids(ordered)) == sorted(ids(eligible))  # a permutation


@FAST
@given(eligible_targets(), st.integers(0, 2**32), st.integers(0, 30))
def test_limited_and_simultaneous_orders_are_prefixes_of_the_full_order(
    eligible: list[RoutableTarget], seed: int, limit: int
) -> None:
    full = order_targets("priority", eligible, rng=random.Random(seed))
    limited = order_targets("priority", eligible, rng=random.Random(seed), limit=limit)
    together = order_targets("simultaneous", eligible, rng=random.Random(seed))
    assert limited == full[:limit]
    assert together == full[:MAX_SIMULTANEOUS]


@FAST
@given(eligible_targets(), st.integers(0, 2**32), st.randoms(use_true_random=False))
def test_the_order_depends_on_the_seed_not_on_how_the_plan_was_listed(
    eligible: list[RoutableTarget], seed: int, shuffler: random.Random
) -> None:
    relisted = list(eligible)
    shuffler.shuffle(relisted)
    for strategy in STRATEGIES:
        first = order_targets(strategy, eligible, rng=random.Random(seed), rotation=seed)
        again = order_targets(strategy, relisted, rng=random.Random(seed), rotation=seed)
        assert first == again


def first_pick_shares(eligible: list[RoutableTarget], draws: int, seed: int) -> dict[str, float]:
    rng = random.Random(seed)
    firsts = Counter(
        order_targets("priority", eligible, rng=rng)[0].target_id for _ in range(draws)
    )
    return {target_id: count / draws for target_id, count in firsts.items()}


def test_weights_three_to_one_win_the_first_attempt_three_times_in_four() -> None:
    shares = first_pick_shares([target("heavy", weight=3), target("light", weight=1)], 4000, 7)
    assert shares["heavy"] == pytest.approx(0.75, abs=0.05)


def test_weights_only_compete_within_a_priority() -> None:
    plan = [target("backup", priority=2, weight=1000), target("main", priority=1, weight=1)]
    assert first_pick_shares(plan, 200, 3) == {"main": 1.0}


def test_each_full_order_is_drawn_weight_by_weight_without_replacement() -> None:
    weights = {"a": 1, "b": 2, "c": 5}
    plan = [target(name, weight=weight) for name, weight in weights.items()]
    rng = random.Random(11)
    draws = 8000
    seen = Counter(tuple(ids(order_targets("priority", plan, rng=rng))) for _ in range(draws))
    total = sum(weights.values())
    for (first, second, _), count in seen.items():
        expected = weights[first] / total * weights[second] / (total - weights[first])
        assert count / draws == pytest.approx(expected, abs=0.02), (first, second)
    assert len(seen) == 6


@FAST
@given(eligible_targets(max_size=15).filter(bool), st.integers(-1000, 1000))
def test_round_robin_puts_each_target_first_once_per_lap(
    eligible: list[RoutableTarget], offset: int
) -> None:
    n = len(eligible)
    rng = random.Random(0)
    orders = [
        order_targets("round_robin", eligible, rng=rng, rotation=offset + r) for r in range(n)
    ]
    assert Counter(order[0].target_id for order in orders) == Counter(ids(eligible))
    ring = sorted(eligible, key=lambda t: (t.priority, t.target_id))
    for order in orders:
        start = ring.index(order[0])
        assert order == ring[start:] + ring[:start]  # a rotation, so everyone gets tried


def test_round_robin_starts_from_the_rotation_counter() -> None:
    plan = [target("c"), target("a"), target("b", priority=2)]
    rng = random.Random(0)
    assert ids(order_targets("round_robin", plan, rng=rng)) == ["a", "c", "b"]
    assert ids(order_targets("round_robin", plan, rng=rng, rotation=1)) == ["c", "b", "a"]
    assert ids(order_targets("round_robin", plan, rng=rng, rotation=5, limit=2)) == ["b", "a"]


def test_simultaneous_rings_at_most_ten() -> None:
    plan = [target(f"t{i:02d}", priority=1 + i % 3) for i in range(25)]
    together = order_targets("simultaneous", plan, rng=random.Random(5))
    assert len(together) == MAX_SIMULTANEOUS
    assert [t.priority for t in together] == [1] * 9 + [2]
    assert len(order_targets("simultaneous", plan, rng=random.Random(5), limit=4)) == 4


def test_nothing_eligible_orders_to_nothing() -> None:
    for strategy in STRATEGIES:
        assert order_targets(strategy, [], rng=random.Random(1), rotation=3) == []
    assert order_targets("priority", [target("t")], rng=random.Random(1), limit=0) == []


def test_bad_order_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown routing strategy 'random'"):
        order_targets("random", [], rng=random.Random(1))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="limit must not be negative"):
        order_targets("priority", [], rng=random.Random(1), limit=-1)
    with pytest.raises(ValueError, match="duplicate target id"):
        order_targets("round_robin", [target("t"), target("t")], rng=random.Random(1))


def test_route_call_filters_then_orders() -> None:
    plan = [
        target("b2", priority=2),
        target("closed", schedule=Schedule("UTC", {})),
        target("a1", priority=1),
        target("ny", geo=GeoFilter(states=frozenset({"NY"}))),
    ]
    decision = route_call(plan, call(), "priority", rng=random.Random(2))
    assert ids(list(decision.attempts)) == ["a1", "b2"]
    assert dict(decision.excluded) == {"closed": "closed", "ny": "geo"}


# --- parsing -----------------------------------------------------------------------------


def test_a_schedule_is_read_from_json() -> None:
    schedule = parse_schedule(
        {
            "timezone": "America/Chicago",
            "days": {
                "Monday": ["09:00-12:00", {"start": "13:00", "end": "17:30"}],
                "saturday": [{"start": "20:00", "end": "24:00"}],
                6: [],
            },
        }
    )
    assert schedule == Schedule(
        "America/Chicago",
        {
            0: (OpenWindow(time(9), time(12)), OpenWindow(time(13), time(17, 30))),
            5: (OpenWindow(time(20), MIDNIGHT),),
        },
    )
    assert schedule_to_dict(schedule)["days"]["saturday"] == [{"start": "20:00", "end": "24:00"}]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"timezone": "UTC", "days": {"tuesday": ["09:00-17:00", "16:00-18:00"]}}, "tuesday: 09"),
        ({"timezone": "UTC", "days": {"funday": []}}, "weekday 'funday' is not one of"),
        ({"timezone": "UTC", "days": {"monday": [], "Monday": []}}, "monday: listed twice"),
        ({"timezone": "UTC", "days": {"monday": ["9am-5pm"]}}, "monday: '9am-5pm' is not a"),
        ({"timezone": "UTC", "days": {"monday": ["24:00-10:00"]}}, "monday: '24:00' is not"),
        ({"timezone": "UTC", "days": {"monday": "09:00-17:00"}}, "monday: windows must be a"),
        ({"timezone": "Moon/Base", "days": {}}, "unknown timezone 'Moon/Base'"),
        ({"days": {}}, "schedule: timezone must be"),
        ({"timezone": "UTC", "hours": {}}, "schedule: unknown field"),
    ],
)
def test_schedule_json_errors_name_the_day(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_schedule(raw)


@st.composite
def schedules(draw: st.DrawFn) -> Schedule:
    days: dict[int, tuple[OpenWindow, ...]] = {}
    for day in draw(st.sets(st.integers(0, 6))):
        edges = sorted(draw(st.lists(minutes_of_day, max_size=6, unique=True)))
        days[day] = tuple(
            OpenWindow(as_time(s), as_time(e))
            for s, e in zip(edges[::2], edges[1::2], strict=False)
            if s < 24 * 60
        )
    zone = draw(st.sampled_from(["UTC", "America/New_York", "Asia/Kolkata", "Europe/London"]))
    return Schedule(zone, days)


@FAST
@given(schedules())
def test_schedules_survive_a_json_round_trip(schedule: Schedule) -> None:
    assert parse_schedule(schedule_to_dict(schedule)) == schedule


def test_geo_and_tag_rules_survive_a_json_round_trip() -> None:
    geo = parse_geo_filter({"countries": ["us"], "states": ["ca", "NY"], "zip_prefixes": ["9"]})
    assert geo == GeoFilter(frozenset({"US"}), frozenset({"CA", "NY"}), zip_prefixes=("9",))
    assert parse_geo_filter(geo_filter_to_dict(geo)) == geo
    rules = [
        TagRule("age", "gte", Decimal("65.5")),
        TagRule("age", "eq", Decimal("65")),
        TagRule("zip", "eq", "02139"),
        TagRule("plan", "not_in", ("gold", "silver")),
        TagRule("debt", "exists"),
    ]
    for rule in rules:
        assert parse_tag_rule(tag_rule_to_dict(rule)) == rule


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"tag": "age", "op": "gte", "value": 65}, TagRule("age", "gte", Decimal("65"))),
        ({"tag": "age", "op": "lt", "value": 64.5}, TagRule("age", "lt", Decimal("64.5"))),
        ({"tag": "age", "op": "lt", "value": "64.5"}, TagRule("age", "lt", Decimal("64.5"))),
        ({"tag": "age", "op": "eq", "value": 65}, TagRule("age", "eq", Decimal("65"))),
        ({"tag": "plan", "op": "in", "value": ["a", "b"]}, TagRule("plan", "in", ("a", "b"))),
        ({"tag": " plan ", "op": "exists"}, TagRule("plan", "exists")),
    ],
)
def test_tag_rules_are_read_from_json(raw: dict[str, Any], expected: TagRule) -> None:
    assert parse_tag_rule(raw) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"tag": "age", "op": "gte", "value": "old"}, "'age' gte: value must be a number"),
        ({"tag": "age", "op": "gte", "value": True}, "'age' gte: value must be a number"),
        ({"tag": "age", "op": "eq", "value": False}, "'age' eq: value must be a non-empty"),
        ({"tag": "age", "op": "eq", "value": float("inf")}, "'age' eq: value must be a finite"),
        ({"tag": "age", "op": "like", "value": "x"}, "'age': op must be one of"),
        ({"tag": "", "op": "exists"}, "tag must be a non-empty string"),
        ({"tag": "a", "op": "exists", "negate": True}, "unknown field"),
        ({"countries": ["USA"]}, "tag rule: unknown field"),
    ],
)
def test_tag_rule_json_errors_say_what_is_wrong(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_tag_rule(raw)


def test_geo_json_errors_say_which_code() -> None:
    with pytest.raises(ValueError, match="geo: area code '41' must be 3 NANP digits"):
        parse_geo_filter({"area_codes": ["41"]})
    with pytest.raises(ValueError, match="geo: states must be a list of strings"):
        parse_geo_filter({"states": "CA"})
    with pytest.raises(ValueError, match="geo: unknown field"):
        parse_geo_filter({"cities": ["SF"]})
