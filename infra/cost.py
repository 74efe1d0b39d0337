"""Cost per 1,000 calls at AWS list prices, from the benchmarks' measured counts.

    .venv/bin/python -m bench.webhook --json  > /tmp/webhook.json
    .venv/bin/python -m bench.inbound --json  > /tmp/inbound.json
    .venv/bin/python -m bench.ringtree --json > /tmp/ringtree.json
    .venv/bin/python -m infra.cost /tmp/webhook.json /tmp/inbound.json /tmp/ringtree.json

Each file's last line is the benchmark's JSON object (that is what `--json` prints).
Counts (webhooks per call, DynamoDB requests per webhook, handler time) come from those
objects; request kinds, item counts and sizes, and AWS-side latencies are the stated
assumptions below; prices are the dated table below.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]

# --- AWS list prices, us-east-1, on-demand, as published on 2026-11-22 ----------------------
PRICES_AS_OF = "2026-11-22 (us-east-1 list prices; no free tier, no savings plans)"
LAMBDA_PER_REQUEST = 0.20 / 1e6  # x86_64
LAMBDA_PER_GB_SECOND = 0.0000166667  # x86_64, first 6 billion GB-s per month
API_GATEWAY_REST_PER_REQUEST = 3.50 / 1e6  # REST API, first 333 million per month
CLOUDFRONT_HTTPS_PER_REQUEST = 0.0100 / 10_000  # North America; webhooks enter via CloudFront
DYNAMODB_PER_WRU = 0.625 / 1e6  # on-demand write request unit
DYNAMODB_PER_RRU = 0.125 / 1e6  # on-demand read request unit
STEP_FUNCTIONS_PER_TRANSITION = 0.025 / 1000  # standard workflows (dialer: not landed)
# Telephony (Twilio US list prices, per minute), reported separately, never summed in.
TELEPHONY_PER_MINUTE = {
    "inbound, local number": 0.0085,
    "inbound, toll-free number": 0.0220,
    "outbound leg to the buyer (dial)": 0.0140,
    "recording": 0.0025,
}

# --- Assumptions (not measured here) -------------------------------------------------------
#: Latency of one DynamoDB request inside AWS (same region), ms; moto's times are not AWS's.
AWS_DYNAMODB_MS = {"read": 5.0, "write": 6.0, "transaction": 12.0}
#: Items written by the inbound routing transaction in bench.inbound: call record,
#: duplicate marker, the target's concurrency, hourly and daily counters, the buyer's daily.
INBOUND_TRANSACTION_ITEMS = 6
#: Items in the final-status / dial-result transactions: call record + concurrency counter(s).
FOLLOWUP_TRANSACTION_ITEMS = 2
#: The call record carries routing state, tags and enrichment: about 2 KB; others < 1 KB.
CALL_RECORD_KB = 2.0
#: bench.ringtree: 10 bidders; the bid log writes one item (< 1 KB) per bidder.
RTB_BIDDERS = 10


@dataclass(frozen=True)
class Webhook:
    """One webhook of a call as measured: DynamoDB requests and the handler's own time."""

    name: str
    requests: float
    handler_ms: float
    rru: float
    wru: float
    ddb_ms: float


def _wru_transaction(items: int, call_record: bool = True) -> float:
    """Transactions cost 2x: 2 WRU per KB (rounded up) per item."""
    record = 2 * math.ceil(CALL_RECORD_KB) if call_record else 0
    return record + 2 * (items - (1 if call_record else 0))


def _last_json(path: Path) -> dict[str, Any]:
    line = [x for x in path.read_text().splitlines() if x.strip()][-1]
    data: dict[str, Any] = json.loads(line)
    return data


def lambda_memory_mb() -> int:
    config = json.loads((REPO_ROOT / ".chalice" / "config.json").read_text())
    return int(config["stages"]["prod"]["lambda_memory_size"])


def inbound_webhooks(webhook: dict[str, Any], inbound: dict[str, Any]) -> list[Webhook]:
    """The three webhooks of a routed inbound call: inbound, dial result, final status."""
    warm = float(inbound["ddb_requests_warm"])
    extra_reads = warm - 1.0  # the cold-cache share: number, campaign, targets+buyers reads
    # Dial result and status handlers are not timed separately: the plain inbound
    # webhook's own time (bench.webhook) stands in for them.
    followup_ms = float(webhook["handler_ms_without_ddb_mean"])
    hooks = [
        Webhook(
            "inbound (route + reserve)",
            warm,
            float(inbound["handler_p50_ms_without_ddb"]),
            rru=0.5 * extra_reads,
            wru=_wru_transaction(INBOUND_TRANSACTION_ITEMS),
            ddb_ms=AWS_DYNAMODB_MS["transaction"] + AWS_DYNAMODB_MS["read"] * extra_reads,
        )
    ]
    for name, key in (
        ("dial result", "ddb_requests_dial_result"),
        ("final status", "ddb_requests_status"),
    ):
        requests = float(inbound[key])
        reads = requests - 1.0  # GetItem of the call record (eventually consistent, <= 4 KB)
        hooks.append(
            Webhook(
                name,
                requests,
                followup_ms,
                rru=0.5 * reads,
                wru=_wru_transaction(FOLLOWUP_TRANSACTION_ITEMS),
                ddb_ms=AWS_DYNAMODB_MS["transaction"] + AWS_DYNAMODB_MS["read"] * reads,
            )
        )
    return hooks


def ringtree_webhooks(webhook: dict[str, Any], ringtree: dict[str, Any]) -> list[Webhook]:
    """An RTB call: the inbound webhook holds the auction; dial result and status as above."""
    requests = float(ringtree["ddb_requests_rtb_call"])
    # BatchGetItem: call record, held bid, each bidder's cap counters (~5 small items each).
    bidders = int(ringtree.get("bidders", RTB_BIDDERS))
    batch_get_items = 2 + 5 * bidders
    auction_ms = float(ringtree["auction_wall_p50_ms"])
    inbound = Webhook(
        "inbound (auction + route)",
        requests,
        float(ringtree["rtb_handler_p50_ms_without_ddb_and_auction"]) + auction_ms,
        rru=0.5 * batch_get_items,
        wru=bidders + _wru_transaction(INBOUND_TRANSACTION_ITEMS),
        ddb_ms=AWS_DYNAMODB_MS["read"] + AWS_DYNAMODB_MS["write"] + AWS_DYNAMODB_MS["transaction"],
    )
    return [inbound, *inbound_webhooks(webhook, _followups_only(ringtree))[1:]]


def _followups_only(ringtree: dict[str, Any]) -> dict[str, Any]:
    # bench.ringtree measures the inbound webhook only; the follow-ups are a static call's.
    return {
        "ddb_requests_warm": 1.0,
        "handler_p50_ms_without_ddb": 0.0,
        "ddb_requests_dial_result": ringtree.get("ddb_requests_dial_result", 2.0),
        "ddb_requests_status": ringtree.get("ddb_requests_status", 2.0),
    }


def cost_per_thousand(hooks: list[Webhook], memory_mb: int) -> dict[str, float]:
    gb = memory_mb / 1024
    billed_ms = [math.ceil(h.handler_ms + h.ddb_ms) for h in hooks]
    n = len(hooks)
    lines = {
        "Lambda requests": n * LAMBDA_PER_REQUEST,
        "Lambda GB-seconds": sum(billed_ms) / 1000 * gb * LAMBDA_PER_GB_SECOND,
        "API Gateway REST requests": n * API_GATEWAY_REST_PER_REQUEST,
        "CloudFront HTTPS requests": n * CLOUDFRONT_HTTPS_PER_REQUEST,
        "DynamoDB writes (WRU)": sum(h.wru for h in hooks) * DYNAMODB_PER_WRU,
        "DynamoDB reads (RRU)": sum(h.rru for h in hooks) * DYNAMODB_PER_RRU,
    }
    return {k: v * 1000 for k, v in lines.items()}


def render(title: str, hooks: list[Webhook], memory_mb: int) -> str:
    out = [f"### {title}", "", "| webhook | DynamoDB requests | RRU | WRU | billed ms |"]
    out.append("|---|---|---|---|---|")
    for h in hooks:
        billed = math.ceil(h.handler_ms + h.ddb_ms)
        out.append(f"| {h.name} | {h.requests:.2f} | {h.rru:.1f} | {h.wru:.1f} | {billed} |")
    costs = cost_per_thousand(hooks, memory_mb)
    out += ["", "| per 1,000 calls | USD |", "|---|---|"]
    out += [f"| {k} | {v:.4f} |" for k, v in costs.items()]
    out.append(f"| **AWS total** | **{sum(costs.values()):.4f}** |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("webhook", type=Path, help="output of python -m bench.webhook --json")
    parser.add_argument("inbound", type=Path, help="output of python -m bench.inbound --json")
    parser.add_argument("ringtree", type=Path, help="output of python -m bench.ringtree --json")
    args = parser.parse_args(argv)
    webhook, inbound, ringtree = (
        _last_json(p) for p in (args.webhook, args.inbound, args.ringtree)
    )
    memory = lambda_memory_mb()
    print(f"Prices: {PRICES_AS_OF}; Lambda memory {memory} MB (.chalice/config.json, prod).\n")
    print(
        render(
            "Inbound pay-per-call call (static targets)", inbound_webhooks(webhook, inbound), memory
        )
    )
    print()
    print(
        render("RTB call (ring tree of 10 bidders)", ringtree_webhooks(webhook, ringtree), memory)
    )
    print("\n### Telephony (separate; per minute, Twilio US list)\n")
    print("| charge | USD per minute | per 1,000 three-minute calls |\n|---|---|---|")
    for name, price in TELEPHONY_PER_MINUTE.items():
        print(f"| {name} | {price:.4f} | {price * 3 * 1000:.2f} |")
    print(
        "\nDialer attempts: not modelled - the dialer has not landed. The model will count,"
        " per 1,000 attempts, the Step Functions state transitions per attempt"
        f" (${STEP_FUNCTIONS_PER_TRANSITION * 1000:.3f} per 1,000 transitions), the"
        " attempt's webhooks and DynamoDB requests as above, and outbound minutes."
    )


if __name__ == "__main__":
    main()
