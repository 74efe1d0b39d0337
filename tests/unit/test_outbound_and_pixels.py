"""The SSRF guard on outbound calls; pixel URL templates, signatures, storage and retries."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib import outbound
from chalicelib.campaigns import CampaignConfig
from chalicelib.campaigns.settings import parse_campaign_settings
from chalicelib.store import pixels as pixel_store
from chalicelib.store.models import CallItem
from chalicelib.store.pixels import PixelJob
from chalicelib.voice import pixels
from chalicelib.voice.pixels import render_url, signature


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/hook",  # not https
        "https://127.0.0.1/hook",
        "https://10.1.2.3/hook",
        "https://169.254.169.254/latest/meta-data/",  # cloud metadata
        "https://[::1]/hook",
        "https://localhost/hook",
        "https://user:pass@example.com/hook",
        "ftp://example.com/x",
    ],
)
def test_private_or_unsafe_urls_are_refused(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OUTBOUND_ALLOW_PRIVATE", raising=False)
    with pytest.raises(outbound.Refused):
        outbound.check_url(url)


def test_loopback_is_allowed_only_when_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OUTBOUND_ALLOW_PRIVATE", "true")
    target = outbound.check_url("http://localhost:9/hook?x=1")
    assert target.host == "localhost"
    assert target.connect_url in {"http://127.0.0.1:9/hook?x=1", "http://[::1]:9/hook?x=1"}


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2001:4860:4860::8888", True),
        ("10.0.0.1", False),
        ("::ffff:169.254.169.254", False),  # IPv4-mapped
        ("64:ff9b::a9fe:a9fe", False),  # NAT64 of 169.254.169.254
        ("2002:a9fe:a9fe::", False),  # 6to4 of 169.254.169.254
        ("::127.0.0.1", False),  # IPv4-compatible loopback
        ("64:ff9b::808:808", True),  # NAT64 of 8.8.8.8
    ],
)
def test_addresses_hidden_in_ipv6_are_judged_by_their_ipv4(address: str, public: bool) -> None:
    import ipaddress

    assert outbound.is_public(ipaddress.ip_address(address)) is public


def test_url_tokens_are_filled_and_encoded() -> None:
    data = {
        "call_sid": "CA1",
        "payout_cents": 2500,
        "converted": True,
        "tags": {"zip": "90210"},
        "source": "Google Ads",
    }
    url = render_url(
        "https://t.example.com/p?c={call_sid}&p={payout_cents}&ok={converted}&z={tag.zip}"
        "&s={source}&x={unknown}",
        data,
    )
    assert url == "https://t.example.com/p?c=CA1&p=2500&ok=true&z=90210&s=Google%20Ads&x="


def test_signature_is_hmac_sha256_over_timestamp_and_body() -> None:
    expected = hmac.new(b"s3cret-s3cret-16", b"1700000000.{}", hashlib.sha256).hexdigest()
    assert signature("s3cret-s3cret-16", 1700000000, b"{}") == f"t=1700000000,v1={expected}"


class FakeQueue:
    """The pixel job store in memory, logging each operation in order with the deliveries."""

    def __init__(self, log: list[tuple[str, str]]) -> None:
        self.log = log
        self.jobs: dict[str, PixelJob] = {}

    def enqueue(
        self, account_id: str, jobs: Any, due: datetime, attempts: int, now: datetime
    ) -> list[PixelJob]:
        stored = [
            PixelJob(account_id, f"pix_{i}", due, j.url, j.method, j.secret, j.payload, attempts)
            for i, j in enumerate(jobs)
        ]
        for job in stored:
            self.jobs[job.job_id] = job
            self.log.append(("stored", job.url))
        return stored

    def move(
        self, job: PixelJob, due: datetime, attempts: int, now: datetime, error: str | None = None
    ) -> PixelJob | None:
        if self.jobs.get(job.job_id) != job:
            return None
        moved = replace(job, due=due, attempts=attempts, last_error=error or job.last_error)
        self.jobs[job.job_id] = moved
        self.log.append(("moved", job.url))
        return moved

    def claim(self, job: PixelJob, lease_until: datetime, now: datetime) -> PixelJob | None:
        return self.move(job, lease_until, job.attempts + 1, now)

    def remove(self, job: PixelJob) -> None:
        if self.jobs.get(job.job_id) == job:
            del self.jobs[job.job_id]
        self.log.append(("removed", job.url))

    def due_jobs(self, account_id: str, now: datetime, limit: int) -> list[PixelJob]:
        return sorted((j for j in self.jobs.values() if j.due <= now), key=lambda j: j.due)


NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def queue(monkeypatch: pytest.MonkeyPatch) -> FakeQueue:
    log: list[tuple[str, str]] = []
    fake = FakeQueue(log)
    for name in ("enqueue", "move", "claim", "remove", "due_jobs"):
        monkeypatch.setattr(pixel_store, name, getattr(fake, name))
    return fake


def _answers(
    queue: FakeQueue, monkeypatch: pytest.MonkeyPatch, failing: set[str]
) -> list[tuple[str, str]]:
    def deliver(url: str, method: str, secret: str, data: dict[str, Any]) -> str | None:
        queue.log.append(("delivered", url))
        return "HTTP 500" if url in failing else None

    monkeypatch.setattr(pixels, "_deliver", deliver)
    return queue.log


def _converted_call(*urls: str) -> tuple[CampaignConfig, CallItem]:
    raw = {"pixels": [{"url": u, "secret": "s" * 16, "events": ["converted"]} for u in urls]}
    config = CampaignConfig("acc_1", "cmp_1", "C", "active", parse_campaign_settings(raw))
    item = CallItem(
        "CALL#CA1", "META", call_sid="CA1", account_id="acc_1", converted=True, status="completed"
    )
    return config, item


def test_every_pixel_is_stored_before_the_first_attempt(
    queue: FakeQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = _answers(queue, monkeypatch, failing={"https://b.example.com/"})
    config, item = _converted_call("https://a.example.com/", "https://b.example.com/")
    pixels.fire(config, item, (), NOW)
    assert log[:2] == [("stored", "https://a.example.com/"), ("stored", "https://b.example.com/")]
    assert log[2:] == [
        ("delivered", "https://a.example.com/"),
        ("removed", "https://a.example.com/"),
        ("delivered", "https://b.example.com/"),
        ("moved", "https://b.example.com/"),
    ]
    # The failed one waits, due at once (the next retry run, at most a minute away)
    (waiting,) = queue.jobs.values()
    assert (waiting.url, waiting.due, waiting.attempts) == ("https://b.example.com/", NOW, 1)


def test_pixels_past_the_inline_budget_are_left_due_now_untried(
    queue: FakeQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = _answers(queue, monkeypatch, failing=set())
    monkeypatch.setattr(pixels, "INLINE_BUDGET_SECONDS", -1.0)
    config, item = _converted_call("https://a.example.com/")
    pixels.fire(config, item, (), NOW)
    assert [what for what, _ in log] == ["stored", "moved"]
    (waiting,) = queue.jobs.values()
    assert (waiting.due, waiting.attempts) == (NOW, 0)


def test_retries_back_off_and_give_up_after_the_last_attempt(
    queue: FakeQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    _answers(queue, monkeypatch, failing={"https://a.example.com/"})
    config, item = _converted_call("https://a.example.com/")
    pixels.fire(config, item, (), NOW)
    dues = []
    now = NOW
    while queue.jobs:
        (job,) = queue.jobs.values()
        dues.append(job.due - now)
        now = job.due
        assert pixels.retry_due("acc_1", now) == 0
    assert dues == [timedelta(seconds=s) for s in (0, 60, 120, 240, 480)]
    attempts = [what for what, _ in queue.log if what == "delivered"]
    assert len(attempts) == pixels.MAX_ATTEMPTS


def test_a_retrier_delivers_only_what_it_claimed(
    queue: FakeQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = _answers(queue, monkeypatch, failing={"https://a.example.com/"})
    config, item = _converted_call("https://a.example.com/")
    pixels.fire(config, item, (), NOW)
    (seen,) = pixel_store.due_jobs("acc_1", NOW, 10)
    assert queue.claim(seen, NOW + timedelta(seconds=30), NOW) is not None  # another run's
    monkeypatch.setattr(pixel_store, "due_jobs", lambda *args: [seen])  # a stale read
    assert pixels.retry_due("acc_1", NOW) == 0
    assert [what for what, _ in log].count("delivered") == 1  # the inline attempt only


def test_with_the_store_down_each_pixel_is_still_tried_once(
    queue: FakeQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = _answers(queue, monkeypatch, failing=set())

    def down(*args: Any) -> list[PixelJob]:
        raise ConnectionError("store unavailable")

    monkeypatch.setattr(pixel_store, "enqueue", down)
    config, item = _converted_call("https://a.example.com/", "https://b.example.com/")
    pixels.fire(config, item, (), NOW)  # the call's settlement is not disturbed
    assert log == [("delivered", "https://a.example.com/"), ("delivered", "https://b.example.com/")]
