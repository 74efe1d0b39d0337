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

Phase = Literal["route", "connect", "convert"]
PERIODS = ("hourly", "daily", "monthly", "total")
CONCURRENCY = "CONC"


@dataclass(frozen=True)
class CapCheck:
    """One counter operation: add one (bounded by `limit` if set), or only check it."""

    pk: str
    sk: str
    limit: int | None
    increment: bool
    expires_at: datetime | None = None


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
    owner_pk: str, caps: Mapping[str, Any], at: datetime, timezone: str, phase: Phase
) -> list[CapCheck]:
    """The counter operations one phase of a call needs for one cap owner.

    `caps`: {"concurrency", "hourly", "daily", "monthly", "total": int | None,
    "counts": "routed" | "connected" | "converted"}.
    - route: concurrency +1 (bounded); period caps that count routed calls +1 (bounded);
      period caps that count connected/converted calls are only checked, so a target at
      its cap is skipped before it rings.
    - connect / convert: period caps counting that event +1 (no bound: it happened).
    """
    counts = caps.get("counts", "routed")
    ops: list[CapCheck] = []
    if phase == "route" and caps.get("concurrency") is not None:
        ops.append(CapCheck(owner_pk, CONCURRENCY, int(caps["concurrency"]), True))
    keys = period_keys(at, timezone)
    for period in PERIODS:
        limit = caps.get(period)
        if limit is None:
            continue
        sk, ttl = keys[period]
        if phase == "route":
            ops.append(CapCheck(owner_pk, sk, int(limit), counts == "routed", ttl))
        elif (phase == "connect" and counts == "connected") or (
            phase == "convert" and counts == "converted"
        ):
            ops.append(CapCheck(owner_pk, sk, None, True, ttl))
    return ops


def add_checks(tx: LabelledTransaction, label: str, checks: list[CapCheck]) -> None:
    for check in checks:
        under = CounterItem.n.does_not_exist()
        if check.limit is not None:
            under = under | (CounterItem.n < check.limit)
        if not check.increment:
            tx.check(label, CounterItem, check.pk, check.sk, under)
            continue
        actions: list[Action] = [CounterItem.n.add(1)]
        if check.expires_at is not None:
            actions.append(CounterItem.expires_at.set(check.expires_at))
        tx.update(
            label,
            CounterItem(check.pk, check.sk),
            actions,
            under if check.limit is not None else None,
        )


def add_release(tx: LabelledTransaction, owner_pks: list[str]) -> None:
    """Give back the concurrency slots a reservation took (never below zero).

    Each is labelled `release:<pk>`, so a refusal names the slot that was already free.
    """
    for pk in owner_pks:
        tx.update(
            f"release:{pk}",
            CounterItem(pk, CONCURRENCY),
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
