"""Caps and concurrency as counters changed only by conditional writes (never read-then-write).

A target (and its buyer) owns counter items under `ACCT#<a>#TGT#<t>` (`ACCT#<a>#BUY#<b>`):
`CONC` (calls ringing or connected now), `H#<yyyymmddhh>`, `D#<yyyymmdd>`, `M#<yyyymm>`
(period counts, with a TTL once the period is over) and `T` (all-time count). Routing a
call adds the operations below to one TransactWriteItems, so either every counter of the
winning target moved and the call is reserved, or none did.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pynamodb.expressions.update import Action

from chalicelib.store.models import CounterItem
from chalicelib.store.transactions import LabelledTransaction

PERIODS = ("hourly", "daily", "monthly", "total")
CONCURRENCY = "CONC"
ROTATION = "RR"
# Why a counter moved at routing is given back later, unless the call earns it:
# "concurrency" always (when the leg's call is over); "taken" unless the leg took the call
# (a simultaneous offer); "connected" unless the leg connected; "converted" unless the call
# converted. A counter with no hold (a routed call, offered alone) keeps its count.
Hold = Literal["concurrency", "taken", "connected", "converted"]
HOLDS: tuple[Hold, ...] = ("concurrency", "taken", "connected", "converted")


@dataclass(frozen=True)
class CapCheck:
    """One counter operation at routing: add one, bounded by `limit` if set."""

    pk: str
    sk: str
    limit: int | None
    expires_at: datetime | None = None
    hold: Hold | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.pk, self.sk)


def period_keys(at: datetime, timezone: str) -> dict[str, tuple[str, datetime | None]]:
    """Counter sort keys of each cap period at `at`, in the cap owner's timezone, with TTLs."""
    local = at.astimezone(ZoneInfo(timezone))
    # Period counters outlive their period for a while (reports read them), then expire.
    return {
        "hourly": (f"H#{local:%Y%m%d%H}", at + timedelta(days=2)),
        "daily": (f"D#{local:%Y%m%d}", at + timedelta(days=40)),
        "monthly": (f"M#{local:%Y%m}", at + timedelta(days=400)),
        "total": ("T", None),
    }


def checks_for(
    owner_pk: str,
    caps: Mapping[str, Any],
    at: datetime,
    timezone: str,
    period_hold: Hold | None,
) -> list[CapCheck]:
    """The counters routing a call to one cap owner moves, each bounded by its cap.

    `caps`: {"concurrency", "hourly", "daily", "monthly", "total": int | None}. Every cap is
    reserved when the call is offered, so concurrent calls can never overshoot it; the
    concurrency slot is given back when the call is over, the period counters as
    `period_hold` says (None: kept).
    """
    ops: list[CapCheck] = []
    if caps.get("concurrency") is not None:
        ops.append(CapCheck(owner_pk, CONCURRENCY, int(caps["concurrency"]), hold="concurrency"))
    keys = period_keys(at, timezone)
    for period in PERIODS:
        limit = caps.get(period)
        if limit is None:
            continue
        sk, ttl = keys[period]
        ops.append(CapCheck(owner_pk, sk, int(limit), ttl, period_hold))
    return ops


def add_checks(tx: LabelledTransaction, label: str, checks: list[CapCheck]) -> None:
    for check in checks:
        actions: list[Action] = [CounterItem.n.add(1)]
        if check.expires_at is not None:
            actions.append(CounterItem.expires_at.set(check.expires_at))
        under = None
        if check.limit is not None:
            under = CounterItem.n.does_not_exist() | (CounterItem.n < check.limit)
        tx.update(label, CounterItem(check.pk, check.sk), actions, under)


def release_label(pk: str, sk: str) -> str:
    return f"release:{pk}|{sk}"


def released_key(label: str) -> tuple[str, str] | None:
    """The counter a `release:` label names, or None for another label."""
    if not label.startswith("release:"):
        return None
    pk, _, sk = label.removeprefix("release:").partition("|")
    return pk, sk


def add_release(tx: LabelledTransaction, counters: list[tuple[str, str]]) -> None:
    """Give back reservations (never below zero), each labelled by `release_label`, so a
    refusal names the counter that was already given back."""
    for pk, sk in counters:
        tx.update(
            release_label(pk, sk),
            CounterItem(pk, sk),
            [CounterItem.n.add(-1)],
            CounterItem.n > 0,
        )


def current_usage(owners: Mapping[str, tuple[str, str]], at: datetime) -> dict[str, dict[str, int]]:
    """Each owner's counts now, by cap: concurrency and the current hour, day, month (in the
    owner's timezone) and all time. `owners`: id → (counter pk, timezone). BatchGetItem."""
    wanted: dict[tuple[str, str], tuple[str, str]] = {}
    for owner_id, (pk, timezone) in owners.items():
        wanted[(pk, CONCURRENCY)] = (owner_id, "concurrency")
        for period, (sk, _) in period_keys(at, timezone).items():
            wanted[(pk, sk)] = (owner_id, period)
    usage = {owner_id: {"concurrency": 0, **dict.fromkeys(PERIODS, 0)} for owner_id in owners}
    for item in CounterItem.batch_get(list(wanted)):
        owner_id, cap = wanted[(item.pk, item.sk)]
        usage[owner_id][cap] = int(item.n)
    return usage


def add_counts(tx: LabelledTransaction, counters: list[tuple[str, str]]) -> None:
    """Count what already happened (a result that arrived after its reservation was given
    back), without a bound."""
    for pk, sk in counters:
        tx.update(f"count:{pk}|{sk}", CounterItem(pk, sk), [CounterItem.n.add(1)])


def next_in_rotation(owner_pk: str) -> int:
    """The next number of an owner's round-robin rotation (one atomic counter update)."""
    counter = CounterItem(owner_pk, ROTATION)
    counter.update(actions=[CounterItem.n.add(1)])
    return int(counter.n)
