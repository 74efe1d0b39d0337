"""200 visitors at once against a pool of 50 numbers, over HTTP through the local stack:
every request is answered, each pool number goes to exactly one visitor, the rest see the
overflow number."""

from __future__ import annotations

import statistics
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import LocalStack, Marketer

pytestmark = pytest.mark.e2e

VISITORS = 200
POOL_NUMBERS = [f"+1646555{n:04d}" for n in range(1000, 1050)]
OVERFLOW_NUMBER = "+16465551099"


@pytest.fixture(scope="module")
def pool_key(marketer: Marketer) -> str:
    return marketer.pool("Busy landing page", "+14155559002", POOL_NUMBERS, OVERFLOW_NUMBER)


def test_200_simultaneous_visitors_share_50_numbers_without_a_dropped_connection(
    stack: LocalStack, pool_key: str
) -> None:
    start = threading.Barrier(VISITORS)

    def visit(_: int) -> tuple[httpx.Response, float]:
        # A connection of its own per visitor, opened when all are ready: a burst of new
        # connections, as from 200 browsers.
        with httpx.Client(timeout=120) as client:
            start.wait()
            began = time.perf_counter()
            reply = client.post(
                f"{stack.url}/dni/v1/sessions",
                json={"page_url": "https://acme.example.com/"},
                headers={"X-Pool-Key": pool_key},
            )
            return reply, time.perf_counter() - began

    with ThreadPoolExecutor(VISITORS) as workers:
        futures = [workers.submit(visit, n) for n in range(VISITORS)]
    failures = [repr(f.exception()) for f in futures if f.exception() is not None]
    # Any reset or refused connection fails the test, whatever else came back.
    assert not failures, f"{len(failures)} requests failed: {Counter(failures).most_common(3)}"
    replies = [f.result()[0] for f in futures]
    seconds = sorted(f.result()[1] for f in futures)
    assert [r.status_code for r in replies] == [200] * VISITORS, [
        r.text for r in replies if r.status_code != 200
    ][:3]
    sessions: list[dict[str, Any]] = [r.json() for r in replies]
    held = [s["number"] for s in sessions if s["kind"] == "pool"]
    overflow = [s["number"] for s in sessions if s["kind"] == "overflow"]
    timing = f"median {statistics.median(seconds):.2f} s, slowest {seconds[-1]:.2f} s"
    assert len(held) == 50, timing
    assert sorted(held) == sorted(set(held)) == POOL_NUMBERS  # none held twice
    assert overflow == [OVERFLOW_NUMBER] * 150
    assert len({s["session_id"] for s in sessions}) == VISITORS
