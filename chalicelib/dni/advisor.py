"""How big a number pool must be: observed sessions, and Erlang-B for the overflow odds.

Visitors arrive at random and each holds a number for a while; a visitor who finds every
number held overflows. That is the Erlang loss system, so with offered load
A = arrivals per hour * average hold in hours, a pool of N numbers overflows a share
B(N, A) of visitors.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

MAX_POOL = 10_000


def erlang_b(servers: int, load: float) -> float:
    """Blocking probability of `servers` lines offered `load` erlangs (stable recurrence)."""
    if servers < 0 or load < 0:
        raise ValueError("servers and load must not be negative")
    blocking = 1.0
    for n in range(1, servers + 1):
        blocking = load * blocking / (n + load * blocking)
    return blocking


def size_for(load: float, target: float) -> int:
    """The smallest pool whose overflow probability is at most `target`."""
    if not 0 < target < 1:
        raise ValueError("target overflow must be between 0 and 1")
    blocking, servers = 1.0, 0
    while blocking > target:
        if servers >= MAX_POOL:
            return MAX_POOL
        servers += 1
        blocking = load * blocking / (servers + load * blocking)
    return servers


@dataclass(frozen=True)
class SessionFacts:
    """What the advisor needs of one session."""

    created_at: datetime
    held_until: datetime | None  # None: nothing was held (source number or overflow)
    overflow: bool


@dataclass(frozen=True)
class PoolStats:
    size: int
    held_now: int
    sessions: int
    overflowed: int
    hours: float
    average_hold_seconds: float
    target_overflow: float

    @property
    def sessions_per_hour(self) -> float:
        return self.sessions / self.hours

    @property
    def offered_load(self) -> float:
        return self.sessions_per_hour * self.average_hold_seconds / 3600

    def view(self) -> dict[str, object]:
        return {
            "size": self.size,
            "held_now": self.held_now,
            "utilization": round(self.held_now / self.size, 4) if self.size else None,
            "window_hours": self.hours,
            "sessions": self.sessions,
            "sessions_per_hour": round(self.sessions_per_hour, 3),
            "overflow_sessions": self.overflowed,
            "overflow_rate": round(self.overflowed / self.sessions, 4) if self.sessions else 0.0,
            "average_hold_seconds": round(self.average_hold_seconds, 1),
            "offered_load_erlangs": round(self.offered_load, 3),
            "expected_overflow_at_current_size": round(erlang_b(self.size, self.offered_load), 6),
            "target_overflow": self.target_overflow,
            "recommended_size": size_for(self.offered_load, self.target_overflow),
        }


def pool_stats(
    *,
    size: int,
    held_now: int,
    sessions: Iterable[SessionFacts],
    since: datetime,
    now: datetime,
    target_overflow: float,
) -> PoolStats:
    """Observed arrivals and holds over [since, now]; overflowed visitors count as arrivals
    (they wanted a number) but hold nothing."""
    count = overflowed = 0
    held_seconds: list[float] = []
    for session in sessions:
        count += 1
        if session.overflow:
            overflowed += 1
        elif session.held_until is not None:
            end = min(session.held_until, now)
            held_seconds.append(max(0.0, (end - session.created_at).total_seconds()))
    hours = max((now - since).total_seconds() / 3600, 1 / 60)
    average = sum(held_seconds) / len(held_seconds) if held_seconds else 0.0
    return PoolStats(size, held_now, count, overflowed, hours, average, target_overflow)
