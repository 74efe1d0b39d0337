"""Ring-tree calls: what an inbound call to an RTB campaign costs beyond its auction, against
the same call to a static campaign, in process on a loopback DynamoDB.

The ring tree has 10 HTTP bidders on loopback (5 ms each, served by bench.rtb's bidder
process) and one static target behind them. Per inbound webhook it reports DynamoDB
requests, total time, the auction's wall time, and the handler's own time (total minus
DynamoDB time minus the auction), with the static campaign's call as the baseline.
"""

from __future__ import annotations

import itertools
from typing import Any

from bench.harness import InProcessApp, machine, main_in_process, summary, time_calls
from bench.rtb import bidder_server
from bench.webhook import inbound_params

ACCOUNT = "acc_bench_rtb"
RTB_NUMBER = "+18005550143"
STATIC_NUMBER = "+18005550144"
BIDDERS = 10
BIDDER_LATENCY_MS = 5
BIG = 10_000_000


def build_campaigns(port: int) -> None:
    from chalicelib.store import catalog, numbers
    from chalicelib.store.models import BuyerItem, CampaignItem, TargetItem

    caps = {"concurrency": BIG, "hourly": BIG, "daily": BIG, "counts": "routed"}
    buyer = catalog.create(
        BuyerItem, ACCOUNT, "Bench buyer", settings={"caps": {"daily": BIG}, "timezone": "UTC"}
    )

    def target(name: str, **settings: Any) -> dict[str, str]:
        item = catalog.create(
            TargetItem,
            ACCOUNT,
            name,
            buyer_id=buyer.buyer_id,
            settings={"caps": caps, "geo": {}, "tag_rules": [], **settings},
        )
        return {"target_id": item.target_id, "buyer_id": buyer.buyer_id}

    bidders = [
        target(
            f"bidder {n}",
            destination=None,
            rtb={"url": f"http://127.0.0.1:{port}/bid/{BIDDER_LATENCY_MS}/{500 + n * 10}"},
        )
        for n in range(BIDDERS)
    ]
    static = target("static", destination="+14155550399")
    common = {
        "strategy": "priority",
        "duplicate_window_days": 30,
        "payout_cents": 1000,
        "revenue_cents": 2000,
        "conversion": {"kind": "duration", "buffer_seconds": 90},
        "rtb": {"deadline_ms": 1000, "margin": {"kind": "percent", "value": 20}},
    }
    for number, plan in ((RTB_NUMBER, [*bidders, static]), (STATIC_NUMBER, [static])):
        campaign = catalog.create(
            CampaignItem, ACCOUNT, number, status="active", settings={**common, "plan": plan}
        )
        numbers.add_tracking_number(
            ACCOUNT, number, "bench", None, numbers.Attribution(campaign.campaign_id, None, "B")
        )


def main(argv: list[str] | None = None) -> int:
    with bidder_server() as port:
        return main_in_process(
            __doc__ or "", lambda app, calls, warmup: run(app, port, calls, warmup), argv, 100
        )


def run(app: InProcessApp, port: int, calls: int, warmup: int) -> dict[str, Any]:
    from chalicelib.rtb import ringtree

    build_campaigns(port)
    callers = (f"+1312{n:07d}" for n in itertools.count(1000))
    auction_ms: list[float] = []
    original = getattr(ringtree, "run_auction_sync")  # noqa: B009

    def timed_auction(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        auction_ms.append(result.wall_ms)
        return result

    setattr(ringtree, "run_auction_sync", timed_auction)  # noqa: B010 - not re-exported

    def measure(number: str) -> dict[str, Any]:
        totals: list[float] = []
        ddb: list[float] = []

        def inbound(index: int) -> None:
            before = app.ddb_ms
            app.post("/voice/inbound", inbound_params(number, next(callers)), b"<Dial")
            if index >= 0:
                ddb.append(app.ddb_ms - before)

        auction_ms.clear()
        app.reset_counts()
        totals = time_calls(inbound, calls, warmup)
        requests = app.requests / (calls + warmup)
        auctions = auction_ms[warmup:] or [0.0] * calls
        own = [t - d - a for t, d, a in zip(totals, ddb, auctions, strict=True)]
        return {
            "total": summary(totals),
            "own": summary(own),
            "auction": summary(auctions),
            "ddb_requests": round(requests, 3),
        }

    rtb = measure(RTB_NUMBER)
    static = measure(STATIC_NUMBER)
    setattr(ringtree, "run_auction_sync", original)  # noqa: B010
    return {
        "benchmark": "ringtree",
        "calls": calls,
        "bidders": BIDDERS,
        "bidder_latency_ms": BIDDER_LATENCY_MS,
        "rtb_call_p50_ms": rtb["total"]["p50_ms"],
        "rtb_call_p99_ms": rtb["total"]["p99_ms"],
        "auction_wall_p50_ms": rtb["auction"]["p50_ms"],
        "auction_wall_p99_ms": rtb["auction"]["p99_ms"],
        "rtb_handler_p50_ms_without_ddb_and_auction": rtb["own"]["p50_ms"],
        "rtb_handler_p99_ms_without_ddb_and_auction": rtb["own"]["p99_ms"],
        "static_call_p50_ms": static["total"]["p50_ms"],
        "static_call_p99_ms": static["total"]["p99_ms"],
        "static_handler_p50_ms_without_ddb": static["own"]["p50_ms"],
        "static_handler_p99_ms_without_ddb": static["own"]["p99_ms"],
        "handler_p99_ratio": round(rtb["own"]["p99_ms"] / static["own"]["p99_ms"], 2),
        "ddb_requests_rtb_call": rtb["ddb_requests"],
        "ddb_requests_static_call": static["ddb_requests"],
        **machine(),
    }


if __name__ == "__main__":
    raise SystemExit(main())
