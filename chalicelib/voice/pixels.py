"""Post-call webhooks ("pixels"): templated URLs, HMAC-signed, retried with backoff.

A pixel never affects the call: delivery runs after the call is settled, every failure is
caught, and a failed delivery is stored and retried by the scheduled sweep (every 10 min)
once it is due (backoff 30 s doubling per attempt; given up after 6 attempts).
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

from chalicelib import outbound
from chalicelib.observability import logger
from chalicelib.store import calls, keys
from chalicelib.store.models import CallItem, PixelJobItem
from chalicelib.voice.config import CampaignConfig

MAX_ATTEMPTS = 6
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
    stamp = int(time.time())
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
    config: CampaignConfig, item: CallItem, publisher: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    found = list(config.settings.get("pixels", []))
    found += publisher
    if item.buyer_id:
        found += config.buyer_pixels.get(item.buyer_id, [])
    return found


def fire(
    config: CampaignConfig, item: CallItem, publisher_pixels: list[dict[str, Any]], now: datetime
) -> None:
    """Deliver the call's pixels once each; failures (and whatever does not fit in the
    status callback's time budget) go to the retry queue."""
    events = ["completed"] + (["converted"] if item.converted else [])
    started = time.monotonic()
    for pixel in _pixels_for(config, item, publisher_pixels):
        for event in events:
            if event not in pixel.get("events", ["completed"]):
                continue
            data = payload(item, event)
            url = render_url(pixel["url"], data)
            try:
                if time.monotonic() - started > INLINE_BUDGET_SECONDS:
                    _queue(item.account_id, url, pixel, data, 0, "deferred", now)
                    continue
                problem = _deliver(url, pixel["method"], pixel["secret"], data)
                if problem:
                    _queue(item.account_id, url, pixel, data, 1, problem, now)
            except Exception:  # noqa: BLE001 - a pixel never affects the call
                logger.exception("pixel delivery failed")


def _due(attempts: int, now: datetime) -> datetime:
    return now + timedelta(seconds=30 * 2 ** (attempts - 1)) if attempts else now


def _queue(
    account_id: str,
    url: str,
    pixel: dict[str, Any],
    data: dict[str, Any],
    attempts: int,
    problem: str,
    now: datetime,
) -> None:
    if attempts >= MAX_ATTEMPTS:
        logger.warning("pixel given up", extra={"attempts": attempts, "reason": problem})
        return
    job_id = keys.new_id("pix")
    PixelJobItem(
        keys.counter_pk(account_id, "PIXELS", "queue"),
        f"{_due(attempts, now).isoformat()}#{job_id}",
        account_id=account_id,
        job_id=job_id,
        url=url,
        method=pixel["method"],
        secret=pixel["secret"],
        payload=data,
        attempts=attempts,
        last_error=problem,
        expires_at=now + timedelta(days=3),
    ).save()
    logger.info("pixel queued for retry", extra={"attempts": attempts, "reason": problem})


def retry_due(account_id: str, now: datetime) -> int:
    """Retry the account's queued pixels that are due; returns how many were delivered."""
    delivered = 0
    queue = keys.counter_pk(account_id, "PIXELS", "queue")
    for job in PixelJobItem.query(queue, PixelJobItem.sk <= f"{now.isoformat()}#~"):
        problem = _deliver(job.url, job.method, job.secret, job.payload)
        job.delete()
        if problem is None:
            delivered += 1
        else:
            pixel = {"method": job.method, "secret": job.secret}
            _queue(account_id, job.url, pixel, job.payload, int(job.attempts) + 1, problem, now)
    return delivered
