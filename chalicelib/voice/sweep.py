"""Scheduled repairs: calls whose callbacks were lost release their slots (every 10 minutes);
pixels that failed or whose process died mid-delivery are retried (every minute)."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from chalice.app import Blueprint, Rate

from chalicelib.callflow.settlement import settle
from chalicelib.callflow.state import RoutingState
from chalicelib.campaigns import load_campaign
from chalicelib.clock import utcnow
from chalicelib.observability import logger
from chalicelib.store import calls, keys, tenants
from chalicelib.store.models import CallItem
from chalicelib.store.routing_steps import CallChanges
from chalicelib.voice import pixels
from chalicelib.voice.dialing import AlreadyHandled, end_call
from chalicelib.voice.progress import fire_pixels, so_far

# Twilio ends any call after 4 hours; a call still open well after that lost its callback.
STALE_AFTER = timedelta(hours=4, minutes=10)
# A dial's result follows the call's final status within seconds when it comes at all.
RESULT_GRACE = timedelta(minutes=5)
# Leaves room inside the function's 15 s timeout for the delivery in flight (3 s at most).
PIXEL_RETRY_BUDGET_SECONDS = 10.0

bp = Blueprint(__name__)


def sweep_account(account_id: str, now: datetime) -> int:
    """Close the account's stale open calls (yesterday and today); returns how many."""
    closed = 0
    for day in sorted({keys.day_of(now - timedelta(days=1)), keys.day_of(now)}):
        for item in calls.calls_of_day(account_id, day):
            closed += close_if_stale(item, now)
    return closed


def close_if_stale(item: CallItem, now: datetime) -> int:
    """Close one call if it is open and stale (1), else leave it (0)."""
    return _close(item, now) if item.ended_at is None and _stale(item, now) else 0


def _stale(item: CallItem, now: datetime) -> bool:
    """Open long after any call could last, or ended (its final status came) while the
    result of its last dial has not come for a while."""
    if item.started_at < now - STALE_AFTER:
        return True
    final = RoutingState.from_json(item.routing).final
    return final is not None and item.updated_at < now - RESULT_GRACE


def _close(item: CallItem, now: datetime) -> int:
    state = RoutingState.from_json(item.routing)
    config = load_campaign(item.account_id, item.campaign_id) if item.campaign_id else None
    if config is None:
        return 1 if calls.finish_call(item.call_sid, "no-callback", 0, at=now) else 0
    # Settled with what is known; a dial's result that still comes counts anew what the
    # call earned (voice.progress), so the offered legs stay on record.
    settlement = settle(config, state, so_far(config, item, state, CallChanges()))
    state.released, state.pending = bool(state.active), []
    final = state.final or {}
    try:
        end_call(
            config,
            item,
            state,
            at=now,
            changes=CallChanges(
                status=final.get("status", "no-callback"),
                duration_seconds=int(final.get("duration", item.duration_seconds or 0)),
            )
            | settlement.changes(),
            release=settlement.release,
        )
    except AlreadyHandled:
        return 0  # its callback arrived meanwhile
    fire_pixels(config, item, now)
    logger.warning("closed a call whose final status never came", extra={"call_sid": item.call_sid})
    return 1


@bp.schedule(Rate(10, unit=Rate.MINUTES))
def sweep(event: object) -> None:
    sweep_all()


def sweep_all() -> int:
    """Close every account's stale calls; returns how many."""
    now = utcnow()
    closed = 0
    for account in tenants.list_accounts(limit=1000):
        closed += sweep_account(account.account_id, now)
    logger.info("sweep done", extra={"closed": closed})
    return closed


@bp.schedule(Rate(1, unit=Rate.MINUTES))
def retry_pixels(event: object) -> None:
    retry_all_pixels()


def retry_all_pixels() -> int:
    """Deliver the due pixels of every account, within the run's budget; returns how many."""
    now = utcnow()
    deadline = time.monotonic() + PIXEL_RETRY_BUDGET_SECONDS
    delivered = 0
    accounts = tenants.list_accounts(limit=1000)
    # Start one account further each minute, so a backlog in one cannot starve the rest.
    turn = int(now.timestamp() // 60) % max(len(accounts), 1)
    for account in accounts[turn:] + accounts[:turn]:
        if time.monotonic() > deadline:
            break
        delivered += pixels.retry_due(account.account_id, now, deadline)
    logger.info("pixel retries done", extra={"pixels_delivered": delivered})
    return delivered
