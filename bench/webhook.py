"""Inbound voice webhook latency and DynamoDB requests per call, against a trivial TwiML baseline.

Both handlers run in-process through the same Chalice app, middleware and signature check,
so the ratio isolates what the inbound handler itself costs (number lookup, call record).
DynamoDB is a moto server on loopback (real wire protocol, no network latency), so absolute
numbers are lower than in AWS; the request count is exact.
"""

from __future__ import annotations

import secrets
from typing import Any

from bench.harness import InProcessApp, machine, main_in_process, summary, time_calls

NUMBER = "+18005550100"


def inbound_params(to: str, caller: str = "+14155550123") -> dict[str, str]:
    return {
        "AccountSid": "AC" + "0" * 32,
        "CallSid": "CA" + secrets.token_hex(16),
        "From": caller,
        "To": to,
        "CallStatus": "ringing",
        "Direction": "inbound",
    }


def main(argv: list[str] | None = None) -> int:
    return main_in_process(__doc__ or "", run, argv, default_calls=400)


def run(app: InProcessApp, calls: int, warmup: int) -> dict[str, Any]:
    from chalicelib.store import numbers

    numbers.add_tracking_number("acc_bench", NUMBER, "bench", "Hello")
    numbers.forget_cached_routes()
    app.reset_counts()
    app.post("/voice/inbound", inbound_params(NUMBER), b"<Say>")
    cold_requests = app.requests
    app.reset_counts()
    inbound = time_calls(
        lambda _: app.post("/voice/inbound", inbound_params(NUMBER), b"<Say>"), calls, warmup
    )
    warm_requests = app.requests / (calls + warmup)
    ddb_ms = app.ddb_ms / (calls + warmup)
    base = time_calls(
        lambda _: app.post("/voice/bench-baseline", inbound_params(NUMBER), b"<Say>"), calls, warmup
    )
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
