"""Shared benchmark plumbing: timing loops, percentiles, a local AWS endpoint, JSON output."""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any


def percentile(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, round(pct / 100.0 * (len(ordered) - 1))))
    return ordered[rank]


def time_calls(fn: Callable[[int], object], count: int, warmup: int) -> list[float]:
    """Milliseconds per call of `fn(i)`, after `warmup` unmeasured calls."""
    for i in range(warmup):
        fn(-1 - i)
    samples = []
    for i in range(count):
        started = time.perf_counter()
        fn(i)
        samples.append((time.perf_counter() - started) * 1000.0)
    return samples


def summary(samples: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(samples, 50), 3),
        "p99_ms": round(percentile(samples, 99), 3),
        "mean_ms": round(statistics.fmean(samples), 3),
    }


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--json", action="store_true", help="print one JSON object on the last line")
    return p


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
    }


def emit(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(result, sort_keys=True))
        return
    width = max(len(k) for k in result)
    for key, value in result.items():
        print(f"{key.ljust(width)}  {value}")


PUBLIC = "https://hooks.example.test/api"
TOKEN = "bench-auth-token"


class InProcessApp:
    """The Chalice app in process against a loopback DynamoDB endpoint, with the CPaaS's
    signed webhooks, a trivial TwiML baseline route, and a count of DynamoDB requests."""

    def __init__(self, endpoint: str) -> None:
        os.environ.update(
            AWS_ENDPOINT_URL=endpoint,
            APP_TABLE_NAME="ppc-bench-app",
            IDEMPOTENCY_TABLE_NAME="ppc-bench-idempotency",
            PUBLIC_BASE_URL=PUBLIC,
            TWILIO_AUTH_TOKEN=TOKEN,
            POWERTOOLS_METRICS_DISABLED="true",
            POWERTOOLS_LOG_LEVEL="WARNING",
        )
        from chalice.app import Blueprint
        from chalice.test import Client
        from twilio.request_validator import RequestValidator
        from twilio.twiml.voice_response import VoiceResponse

        import app as app_module
        from chalicelib.config import get_settings
        from chalicelib.store import tables
        from chalicelib.voice.webhook import voice_route

        settings = get_settings()
        tables.configure(settings)
        tables.ensure_tables(settings)
        baseline_bp = Blueprint("bench_baseline")

        @voice_route(baseline_bp, "/bench-baseline")
        def baseline(form: dict[str, str]) -> VoiceResponse:
            response = VoiceResponse()
            response.say("Hello")
            response.hangup()
            return response

        app_module.app.register_blueprint(baseline_bp, url_prefix="/voice")
        self.client = Client(app_module.app)
        self._validator = RequestValidator(TOKEN)
        self.requests = 0
        self.ddb_ms = 0.0
        # CPU time of this thread inside DynamoDB calls (signing, sending, parsing): moto
        # serves them on its own threads, so this is the client side only.
        self.ddb_cpu_ms = 0.0
        self._started = 0.0
        self._cpu_started = 0.0
        events = tables.connection().client.meta.events
        events.register("before-call.dynamodb", self._before)
        events.register("after-call.dynamodb", self._after)

    def _before(self, **_: Any) -> None:
        self.requests += 1
        self._started = time.perf_counter()
        self._cpu_started = time.thread_time()

    def _after(self, **_: Any) -> None:
        self.ddb_ms += (time.perf_counter() - self._started) * 1000.0
        self.ddb_cpu_ms += (time.thread_time() - self._cpu_started) * 1000.0

    def reset_counts(self) -> None:
        self.requests, self.ddb_ms, self.ddb_cpu_ms = 0, 0.0, 0.0

    def post(self, path: str, params: dict[str, str], expect: bytes = b"<") -> bytes:
        """A signed webhook; raises unless the app answered 200 with `expect` in the body."""
        from urllib.parse import urlencode

        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": self._validator.compute_signature(PUBLIC + path, params),
        }
        reply = self.client.http.post(path, headers=headers, body=urlencode(params))
        if reply.status_code != 200 or expect not in reply.body:
            raise RuntimeError(f"unexpected answer from {path}: {reply.body!r}")
        return bytes(reply.body)


def main_in_process(
    description: str,
    run: Callable[[InProcessApp, int, int], dict[str, Any]],
    argv: list[str] | None,
    default_calls: int,
) -> int:
    """The command line of an in-process benchmark: `--calls`, `--warmup`, `--json`."""
    import logging

    from tools.localaws import moto_server

    p = parser(description)
    p.add_argument("--calls", type=int, default=default_calls)
    p.add_argument("--warmup", type=int, default=30)
    args = p.parse_args(argv)
    logging.disable(logging.WARNING)
    with moto_server() as endpoint:
        result = run(InProcessApp(endpoint), args.calls, args.warmup)
    emit(result, args.json)
    return 0
