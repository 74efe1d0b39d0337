"""The pool advisor: Erlang-B against known values, sizing, and observed statistics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.dni.advisor import SessionFacts, erlang_b, pool_stats, size_for

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("servers", "load", "blocking"),
    [
        (0, 3.0, 1.0),
        (1, 1.0, 0.5),
        (2, 1.0, 0.2),
        (10, 5.0, 0.018384),  # standard Erlang-B tables
        (20, 12.0, 0.0098),
        (5, 0.0, 0.0),
    ],
)
def test_erlang_b_matches_the_tables(servers: int, load: float, blocking: float) -> None:
    assert erlang_b(servers, load) == pytest.approx(blocking, abs=5e-5)


@settings(max_examples=200, deadline=None, database=None)
@given(load=st.floats(0.01, 200), target=st.floats(0.001, 0.4))
def test_the_recommended_size_is_the_smallest_that_meets_the_target(
    load: float, target: float
) -> None:
    size = size_for(load, target)
    assert erlang_b(size, load) <= target
    assert size == 0 or erlang_b(size - 1, load) > target


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="target"):
        size_for(1.0, 1.5)
    with pytest.raises(ValueError, match="negative"):
        erlang_b(-1, 1.0)


def test_stats_from_sessions() -> None:
    sessions = [
        SessionFacts(T0 + timedelta(minutes=n * 10), T0 + timedelta(minutes=n * 10 + 5), False)
        for n in range(6)
    ] + [SessionFacts(T0 + timedelta(minutes=30), None, True)]
    stats = pool_stats(
        size=2,
        held_now=1,
        sessions=sessions,
        since=T0,
        now=T0 + timedelta(hours=1),
        target_overflow=0.01,
    ).view()
    assert stats["sessions"] == 7 and stats["overflow_sessions"] == 1
    assert stats["sessions_per_hour"] == 7.0
    assert stats["average_hold_seconds"] == 300.0
    assert stats["utilization"] == 0.5
    load = 7 * 300 / 3600
    assert stats["offered_load_erlangs"] == pytest.approx(load, abs=1e-3)
    assert stats["recommended_size"] == size_for(load, 0.01)
    assert stats["expected_overflow_at_current_size"] == pytest.approx(erlang_b(2, load), abs=1e-6)


def test_a_hold_still_running_counts_until_now() -> None:
    live = SessionFacts(T0, T0 + timedelta(hours=5), False)
    stats = pool_stats(
        size=1, held_now=1, sessions=[live], since=T0, now=T0 + timedelta(minutes=20),
        target_overflow=0.05,
    )  # fmt: skip
    assert stats.average_hold_seconds == 1200
