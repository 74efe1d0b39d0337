"""Inbound pay-per-call routing: DynamoDB requests per webhook (cold and warm config cache)
and handler latency against a trivial TwiML baseline, in process on a loopback DynamoDB.

The campaign routes by priority+weight over three targets with concurrency, hourly and daily
caps on the targets and a daily cap on their buyer, a 30-day duplicate window and
recording; every inbound call reserves its target's counters in one transaction.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

from bench.harness import InProcessApp, machine, main_in_process, summary, time_calls
from bench.webhook import inbound_params

ACCOUNT = "acc_bench"
NUMBER = "+18005550142"
BIG = 10_000_000


def build_campaign() -> None:
    from chalicelib.store import catalog, numbers
    from chalicelib.store.models import BuyerItem, CampaignItem, TargetItem

    caps = {"concurrency": BIG, "hourly": BIG, "daily": BIG, "counts": "routed"}
    buyer = catalog.create(
        BuyerItem, ACCOUNT, "Bench buyer", settings={"caps": {"daily": BIG}, "timezone": "UTC"}
    )
    plan = []
    for n in range(3):
        target = catalog.create(
            TargetItem,
            ACCOUNT,
            f"target {n}",
            buyer_id=buyer.buyer_id,
            settings={"destination": f"+1415555030{n}", "caps": caps, "geo": {}, "tag_rules": []},
        )
        plan.append(
            {
                "target_id": target.target_id,
                "buyer_id": buyer.buyer_id,
                "priority": 1 + n // 2,
                "weight": 1 + n,
            }
        )
    campaign = catalog.create(
        CampaignItem,
        ACCOUNT,
        "Bench campaign",
        status="active",
        settings={
            "strategy": "priority",
            "plan": plan,
            "duplicate_window_days": 30,
            "recording": True,
            "payout_cents": 1000,
            "revenue_cents": 2000,
            "conversion": {"kind": "duration", "buffer_seconds": 90},
            "blocklist": ["+1900"],
        },
    )
    numbers.add_tracking_number(
        ACCOUNT, NUMBER, "bench", None, numbers.Attribution(campaign.campaign_id, None, "Bench")
    )


def main(argv: list[str] | None = None) -> int:
    return main_in_process(__doc__ or "", run, argv, default_calls=300)


def run(app: InProcessApp, calls: int, warmup: int) -> dict[str, Any]:
    from chalicelib import campaigns as config
    from chalicelib.store import numbers

    build_campaign()
    callers = (f"+1312{n:07d}" for n in itertools.count(1000))
    sids: list[str] = []
    ddb_per_call: list[float] = []
    cpu_without_ddb: list[float] = []

    def inbound(index: int) -> None:
        params = inbound_params(NUMBER, next(callers))
        sids.append(params["CallSid"])
        before, cpu_before, started = app.ddb_ms, app.ddb_cpu_ms, time.thread_time()
        app.post("/voice/inbound", params, b"<Dial")
        if index >= 0:
            ddb_per_call.append(app.ddb_ms - before)
            cpu = (time.thread_time() - started) * 1000.0
            cpu_without_ddb.append(cpu - (app.ddb_cpu_ms - cpu_before))

    numbers.forget_cached_routes()
    config.forget_cached_config()
    app.reset_counts()
    inbound(-1)
    cold = app.requests
    app.reset_counts()
    timings = time_calls(inbound, calls, warmup)
    warm = app.requests / (calls + warmup)
    ddb_ms = app.ddb_ms / (calls + warmup)
    # The rest of each call's life: the dial result (connected) and the final status.
    app.reset_counts()
    for sid in sids[:100]:
        app.post(
            "/voice/dial/1",
            {
                "CallSid": sid,
                "DialCallStatus": "completed",
                "DialCallDuration": "120",
                "CallStatus": "in-progress",
            },
        )
    dial_result = app.requests / 100
    app.reset_counts()
    for sid in sids[:100]:
        app.post(
            "/voice/status", {"CallSid": sid, "CallStatus": "completed", "CallDuration": "130"}
        )
    status = app.requests / 100
    base_cpu: list[float] = []

    def baseline(index: int) -> None:
        started = time.thread_time()
        app.post("/voice/bench-baseline", inbound_params(NUMBER), b"<Say>")
        if index >= 0:
            base_cpu.append((time.thread_time() - started) * 1000.0)

    base = time_calls(baseline, calls, warmup)
    got, ref = summary(timings), summary(base)
    # moto deep-copies the whole table on every TransactWriteItems (to roll back), so its
    # time grows with the table; the handler's own time is measured without it.
    own = summary([total - ddb for total, ddb in zip(timings, ddb_per_call, strict=True)])
    # The same in this thread's CPU time, which other processes on a busy machine barely
    # move (wall-clock p99s there are mostly the scheduler's).
    own_cpu, base_cpu_summary = summary(cpu_without_ddb), summary(base_cpu)
    return {
        "benchmark": "inbound",
        "calls": calls,
        **got,
        "baseline_p50_ms": ref["p50_ms"],
        "baseline_p99_ms": ref["p99_ms"],
        "p50_ratio": round(got["p50_ms"] / ref["p50_ms"], 2),
        "p99_ratio": round(got["p99_ms"] / ref["p99_ms"], 2),
        "ddb_requests_cold": cold,
        "ddb_requests_warm": round(warm, 3),
        "ddb_requests_dial_result": round(dial_result, 3),
        "ddb_requests_status": round(status, 3),
        "ddb_ms_per_inbound": round(ddb_ms, 3),
        "handler_p50_ms_without_ddb": own["p50_ms"],
        "handler_p99_ms_without_ddb": own["p99_ms"],
        "handler_p99_ratio_without_ddb": round(own["p99_ms"] / ref["p99_ms"], 2),
        "handler_cpu_p50_ms_without_ddb": own_cpu["p50_ms"],
        "handler_cpu_p99_ms_without_ddb": own_cpu["p99_ms"],
        "baseline_cpu_p50_ms": base_cpu_summary["p50_ms"],
        "baseline_cpu_p99_ms": base_cpu_summary["p99_ms"],
        "handler_cpu_p99_ratio_without_ddb": round(
            own_cpu["p99_ms"] / base_cpu_summary["p99_ms"], 2
        ),
        **machine(),
    }


if __name__ == "__main__":
    raise SystemExit(main())
