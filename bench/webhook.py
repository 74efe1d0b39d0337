"""Inbound voice webhook latency and DynamoDB requests per call, against a trivial TwiML baseline.

Both handlers run in-process through the same Chalice app, middleware and signature check,
so the ratio isolates what the inbound handler itself costs (number lookup, call record).
DynamoDB is a moto server on loopback (real wire protocol, no network latency), so absolute
numbers are lower than in AWS; the request count is exact.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from typing import Any
from urllib.parse import urlencode

from bench.harness import emit, machine, parser, summary, time_calls
from tools.localaws import moto_server

NUMBER = "+18005550100"
PUBLIC = "https://hooks.example.test/api"
TOKEN = "bench-auth-token"


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__.splitlines()[0] if __doc__ else "")
    p.add_argument("--calls", type=int, default=400)
    p.add_argument("--warmup", type=int, default=30)
    args = p.parse_args(argv)
    logging.disable(logging.WARNING)
    with moto_server() as endpoint:
        result = run(endpoint, args.calls, args.warmup)
    emit(result, args.json)
    return 0


def run(endpoint: str, calls: int, warmup: int) -> dict[str, Any]:
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
    from chalicelib.store import numbers, tables
    from chalicelib.voice.webhook import voice_route

    settings = get_settings()
    tables.configure(settings)
    tables.ensure_tables(settings)
    numbers.add_tracking_number("acc_bench", NUMBER, "bench", "Hello")

    # The baseline: a trivial TwiML handler behind the same decorator and middleware.
    baseline_bp = Blueprint("bench_baseline")

    @voice_route(baseline_bp, "/bench-baseline")
    def baseline(form: dict[str, str]) -> VoiceResponse:
        response = VoiceResponse()
        response.say("Hello")
        response.hangup()
        return response

    app = app_module.app
    app.register_blueprint(baseline_bp, url_prefix="/voice")
    validator = RequestValidator(TOKEN)

    requests: dict[str, float] = {"count": 0, "ms": 0.0, "started": 0.0}

    def before(**_: Any) -> None:
        requests["count"] += 1
        requests["started"] = time.perf_counter()

    def after(**_: Any) -> None:
        requests["ms"] += (time.perf_counter() - requests["started"]) * 1000.0

    events = tables.connection().client.meta.events
    events.register("before-call.dynamodb", before)
    events.register("after-call.dynamodb", after)

    def post(client: Client, path: str, params: dict[str, str]) -> None:
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": validator.compute_signature(PUBLIC + path, params),
        }
        reply = client.http.post(path, headers=headers, body=urlencode(params))
        if reply.status_code != 200 or b"<Say>" not in reply.body:
            raise RuntimeError(f"unexpected webhook answer: {reply.body!r}")

    def params() -> dict[str, str]:
        return {
            "AccountSid": "AC" + "0" * 32,
            "CallSid": "CA" + secrets.token_hex(16),
            "From": "+14155550123",
            "To": NUMBER,
            "CallStatus": "ringing",
            "Direction": "inbound",
        }

    with Client(app) as client:
        numbers.forget_cached_routes()
        requests["count"] = 0
        post(client, "/voice/inbound", params())
        cold_requests = requests["count"]
        requests.update(count=0, ms=0.0)
        inbound = time_calls(lambda _: post(client, "/voice/inbound", params()), calls, warmup)
        warm_requests = requests["count"] / (calls + warmup)
        ddb_ms = requests["ms"] / (calls + warmup)
        base = time_calls(lambda _: post(client, "/voice/bench-baseline", params()), calls, warmup)

    got, ref = summary(inbound), summary(base)
    return {
        "benchmark": "webhook",
        "calls": calls,
        **got,
        "baseline_p50_ms": ref["p50_ms"],
        "baseline_p99_ms": ref["p99_ms"],
        "p50_ratio": round(got["p50_ms"] / ref["p50_ms"], 2),
        "p99_ratio": round(got["p99_ms"] / ref["p99_ms"], 2),
        "ddb_requests_per_call": round(warm_requests, 3),
        "ddb_requests_first_call": cold_requests,
        "ddb_ms_per_call": round(ddb_ms, 3),
        "handler_ms_without_ddb_mean": round(got["mean_ms"] - ddb_ms, 3),
        **machine(),
    }


if __name__ == "__main__":
    raise SystemExit(main())
