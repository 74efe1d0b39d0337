"""Post-call webhooks ("pixels"): templated URLs, HMAC-signed, retried with backoff.

A pixel never affects the call: delivery runs after the call is settled and every failure
is caught. Each delivery is stored as a job before its first attempt, so a process that
dies mid-delivery loses nothing; a failed one is retried by the per-minute schedule
(`sweep.retry_pixels`): first at its next run, then after 60, 120, 240, 480 s; given up
after 6 attempts. Delivery is at least once (a receiver may see a repeat after a crash, or
after a delivery slower than the claim's lease); `call_sid` + `event` identify a repeat.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from chalicelib import clock, outbound
from chalicelib.campaigns import CampaignConfig
from chalicelib.campaigns.settings import Pixel
from chalicelib.observability import logger
from chalicelib.store import calls
from chalicelib.store import pixels as store
from chalicelib.store.models import CallItem

MAX_ATTEMPTS = 6
# A claimed job comes due again after this unless its claimant settles it: longer than any
# delivery (3 s timeout) after the inline budget, so a live attempt is never taken over.
CLAIM_LEASE = timedelta(seconds=30)
# Due jobs one retry run takes from an account's queue.
RETRY_BATCH = 100
# Pixels delivered inline must leave the status callback well inside the CPaaS's timeout.
INLINE_BUDGET_SECONDS = 5.0
TOKEN = re.compile(r"\{([a-z_]+)(?:\.([A-Za-z0-9_.:-]+))?\}")
SIGNATURE_HEADER = "X-PPC-Signature"


def payload(item: CallItem, event: str) -> dict[str, Any]:
    """What a pixel is told about a settled call (also the tokens its URL may use)."""
    return {
        "event": event,
        "call_sid": item.call_sid,
        "caller": item.from_number,
        "tracking_number": item.to_number,
        "campaign_id": item.campaign_id,
        "publisher_id": item.publisher_id,
        "buyer_id": item.buyer_id,
        "target_id": item.target_id,
        "source": item.source,
        "status": item.status,
        "duration": int(item.duration_seconds or 0),
        "connected_seconds": int(item.connected_seconds or 0),
        "converted": bool(item.converted),
        "duplicate": bool(item.duplicate),
        "payout_cents": int(item.payout_cents or 0),
        "revenue_cents": int(item.revenue_cents or 0),
        "tags": calls.tags_of(item),
    }


def render_url(template: str, data: dict[str, Any]) -> str:
    """Replace `{token}` and `{tag.NAME}` with URL-encoded values (unknown tokens: empty)."""

    def value(match: re.Match[str]) -> str:
        name, sub = match.group(1), match.group(2)
        found = data.get("tags", {}).get(sub) if name == "tag" else data.get(name)
        if isinstance(found, bool):
            found = str(found).lower()
        return quote("" if found is None else str(found), safe="")

    return TOKEN.sub(value, template)


def signature(secret: str, timestamp: int, signed: bytes) -> str:
    """`t=<unix>,v1=<hex HMAC-SHA256 of "<t>." + body (POST) or URL (GET)>`."""
    digest = hmac.new(secret.encode(), str(timestamp).encode() + b"." + signed, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def _deliver(url: str, method: str, secret: str, data: dict[str, Any]) -> str | None:
    """One delivery attempt; None on a 2xx, else the reason."""
    body = json.dumps(data, sort_keys=True).encode() if method == "POST" else None
    stamp = int(clock.timestamp())
    headers = {
        "User-Agent": "ppc-platform-pixels/1",
        SIGNATURE_HEADER: signature(secret, stamp, body if body is not None else url.encode()),
    }
    if body is not None:
        headers["Content-Type"] = "application/json"
    import httpx  # loaded by outbound.call anyway; not with every cold start

    try:
        reply = outbound.call(method, url, headers=headers, content=body, timeout=3.0)
    except outbound.Refused as err:
        return f"refused: {err}"
    except httpx.HTTPError as err:
        return f"{type(err).__name__}"
    return None if 200 <= reply.status < 300 else f"HTTP {reply.status}"


def _pixels_for(
    config: CampaignConfig, item: CallItem, publisher: tuple[Pixel, ...]
) -> tuple[Pixel, ...]:
    buyer = config.buyer_pixels.get(item.buyer_id, ()) if item.buyer_id else ()
    return config.settings.pixels + publisher + buyer


def retry_delay(attempts: int) -> timedelta:
    """How long after its `attempts`-th failed attempt a job is due again (the schedule's
    one-minute cadence comes on top, so the first retry is at most a minute away)."""
    return timedelta(0) if attempts <= 1 else timedelta(seconds=30 * 2 ** (attempts - 1))


def fire(
    config: CampaignConfig,
    item: CallItem,
    publisher_pixels: tuple[Pixel, ...],
    now: datetime,
    *,
    only_conversion: bool = False,
) -> None:
    """Deliver the call's pixels once each. Every job is stored (claimed by this process)
    before the first attempt; whatever does not fit in the status callback's time budget
    is released, due now, for the retry schedule. `only_conversion`: the call's
    "completed" pixels went out when it was closed; it converted later."""
    events = ([] if only_conversion else ["completed"]) + (["converted"] if item.converted else [])
    wanted: list[store.NewJob] = []
    for pixel in _pixels_for(config, item, publisher_pixels):
        for event in events:
            if event in pixel.events:
                data = payload(item, event)
                wanted.append(
                    store.NewJob(render_url(pixel.url, data), pixel.method, pixel.secret, data)
                )
    if not wanted:
        return
    started = time.monotonic()
    try:
        jobs = store.enqueue(item.account_id, wanted, now + CLAIM_LEASE, 1, now)
    except Exception:  # noqa: BLE001 - a pixel never affects the call
        # Better one attempt than none when the store is down: these get no retries.
        logger.exception("pixels not stored; delivering once without retries")
        for new in wanted:
            if time.monotonic() - started > INLINE_BUDGET_SECONDS:
                break
            try:
                _deliver(new.url, new.method, new.secret, new.payload)
            except Exception:  # noqa: BLE001 - a pixel never affects the call
                logger.exception("pixel delivery failed")
        return
    for job in jobs:
        try:
            if time.monotonic() - started > INLINE_BUDGET_SECONDS:
                store.move(job, now, 0, now, "deferred")
            else:
                _attempt(job, now)
        except Exception:  # noqa: BLE001 - a pixel never affects the call
            logger.exception("pixel delivery failed")


def _attempt(job: store.PixelJob, now: datetime) -> bool:
    """Deliver a job this process has claimed and settle it; True when delivered."""
    problem = _deliver(job.url, job.method, job.secret, job.payload)
    if problem is None:
        store.remove(job)
        return True
    if job.attempts >= MAX_ATTEMPTS:
        store.remove(job)
        logger.warning("pixel given up", extra={"attempts": job.attempts, "reason": problem})
        return False
    store.move(job, now + retry_delay(job.attempts), job.attempts, now, problem)
    logger.info("pixel queued for retry", extra={"attempts": job.attempts, "reason": problem})
    return False


def retry_due(account_id: str, now: datetime, deadline: float | None = None) -> int:
    """Claim and deliver the account's due pixels until `deadline` (time.monotonic());
    returns how many were delivered. A job another process claimed first is skipped."""
    delivered = 0
    for job in store.due_jobs(account_id, now, RETRY_BATCH):
        if deadline is not None and time.monotonic() > deadline:
            break
        try:
            if job.attempts >= MAX_ATTEMPTS:
                # Its last attempt's process died mid-delivery and the lease ran out.
                store.remove(job)
                logger.warning("pixel given up", extra={"attempts": job.attempts})
                continue
            mine = store.claim(job, now + CLAIM_LEASE, now)
            if mine is not None and _attempt(mine, now):
                delivered += 1
        except Exception:  # noqa: BLE001 - one job's store error must not stop the others
            logger.exception("pixel retry failed")
    return delivered
