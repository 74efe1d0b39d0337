"""Performance summaries ("today's performance") and live calls in progress."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from chalice.app import Blueprint, Response

from chalicelib.api.calls import bad_query, matching_calls
from chalicelib.api.http import json_response, user_view
from chalicelib.auth.roles import Principal, Role
from chalicelib.callflow.state import RoutingState
from chalicelib.clock import utcnow
from chalicelib.requests import current_request
from chalicelib.store import calls, catalog, keys, reservations
from chalicelib.store.models import BuyerItem, CallItem, TargetItem

bp = Blueprint(__name__)

GROUPS: dict[str, Callable[[CallItem], str]] = {
    "campaign": lambda c: c.campaign_id or "",
    "publisher": lambda c: c.publisher_id or "",
    "buyer": lambda c: c.buyer_id or "",
    "target": lambda c: c.target_id or "",
    "source": lambda c: c.source or "",
    "day": lambda c: c.started_at.strftime("%Y-%m-%d"),
    "hour": lambda c: c.started_at.strftime("%Y-%m-%dT%H:00Z"),
}


def _summarise(items: list[CallItem]) -> dict[str, Any]:
    total = len(items)
    connected = sum(1 for c in items if c.connected_seconds)
    converted = sum(1 for c in items if c.converted)
    revenue = sum(int(c.revenue_cents or 0) for c in items)
    payout = sum(int(c.payout_cents or 0) for c in items)
    durations = [int(c.duration_seconds) for c in items if c.duration_seconds is not None]
    return {
        "calls": total,
        "connected": connected,
        "converted": converted,
        "conversion_rate": round(converted / total, 4) if total else 0.0,
        "revenue_cents": revenue,
        "payout_cents": payout,
        "profit_cents": revenue - payout,
        "average_call_value_cents": round(revenue / total) if total else 0,
        "average_duration_seconds": round(sum(durations) / len(durations), 1) if durations else 0,
    }


@bp.route("/reports/summary", methods=["GET"])
@user_view(Role.AGENT)
def summary(principal: Principal) -> Response:
    """Totals and groups (campaign, publisher, buyer, target, source, day or hour)."""
    query = dict(current_request().query_params or {})
    group_by = query.get("group_by", "campaign")
    if group_by not in GROUPS:
        raise bad_query("group_by", " | ".join(GROUPS))
    items = list(matching_calls(principal.account_id, query))
    groups: dict[str, list[CallItem]] = defaultdict(list)
    for call in items:
        groups[GROUPS[group_by](call)].append(call)
    rows = [{"key": key, **_summarise(group)} for key, group in sorted(groups.items())]
    by_target: dict[str, list[CallItem]] = defaultdict(list)
    for call in items:
        if call.target_id:
            by_target[call.target_id].append(call)
    best = max(
        by_target.items(),
        key=lambda kv: sum(int(c.revenue_cents or 0) for c in kv[1]),
        default=None,
    )
    return json_response(
        {
            "group_by": group_by,
            "totals": _summarise(items),
            "groups": rows,
            "best_target": best[0] if best else None,
        }
    )


@bp.route("/live", methods=["GET"])
@user_view(Role.AGENT)
def live(principal: Principal) -> Response:
    """Calls in progress now, per campaign and per target."""
    now = utcnow()
    days = {now.strftime("%Y%m%d"), (now - timedelta(hours=4)).strftime("%Y%m%d")}
    open_calls = [
        (c, RoutingState.from_json(c.routing))
        for day in sorted(days)
        for c in calls.calls_of_day(principal.account_id, day)
        if c.ended_at is None and c.started_at > now - timedelta(hours=4)
    ]
    # A call whose final status came is over, even while its dial's result is awaited.
    open_calls = [(c, state) for c, state in open_calls if state.final is None]
    per_campaign: dict[str, int] = defaultdict(int)
    per_target: dict[str, int] = defaultdict(int)
    for call, state in open_calls:
        per_campaign[call.campaign_id or ""] += 1
        offered = {leg.target_id for leg in state.active}
        for target in offered or ({call.target_id} - {None}):
            per_target[str(target)] += 1
    return json_response(
        {
            "in_progress": len(open_calls),
            "campaigns": dict(per_campaign),
            "targets": dict(per_target),
            "at": now.isoformat(),
        }
    )


@bp.route("/caps/usage", methods=["GET"])
@user_view(Role.AGENT)
def cap_usage(principal: Principal) -> Response:
    """What every target and buyer has used of its caps now: concurrency, and the current
    hour, day and month in its own timezone (a target's schedule's, a buyer's setting),
    and all time."""
    account_id = principal.account_id
    targets = {
        t.target_id: (
            keys.counter_pk(account_id, "TGT", t.target_id),
            (t.settings.get("schedule") or {}).get("timezone", "UTC"),
        )
        for t in catalog.list_all(TargetItem, account_id)
    }
    buyers = {
        b.buyer_id: (
            keys.counter_pk(account_id, "BUY", b.buyer_id),
            b.settings.get("timezone", "UTC"),
        )
        for b in catalog.list_all(BuyerItem, account_id)
    }
    now = utcnow()
    return json_response(
        {
            "at": now.isoformat(),
            "targets": reservations.current_usage(targets, now),
            "buyers": reservations.current_usage(buyers, now),
        }
    )
