"""RTB auction engine: overhead over the slowest bidder, parallel against sequential pings, and
auctions per second, with 50 scripted bidders served by one loopback asyncio server.

The bidder server runs in its own process (one asyncio server, `asyncio.sleep` per request
for the bidder's latency), so its work does not share the auction's interpreter or core.
One unmeasured auction first opens the keep-alive connections and teaches the auction's
latency memory (slowest bidders pinged first), as a warm Lambda would have.

`--transport stock` runs every measurement (overhead, sequential, throughput) through httpx's
own transport (`httpx.AsyncHTTPTransport`, httpcore's pool) instead of the RTB transport
(`chalicelib.bidding.client.BidderTransport`), so the two can be compared run for run; the JSON
then carries `"transport": "stock"`. The default (`--transport bidder`) is the service's own
client and prints exactly the keys it always did.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import random
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from multiprocessing.connection import Connection
from typing import Any

import httpx

from bench.harness import emit, machine, parser, percentile, summary
from chalicelib.bidding.auction import AuctionResult, run_auction, settle
from chalicelib.bidding.bidders import Bidder, PingContext
from chalicelib.bidding.client import (
    DEFAULT_MAX_CONNECTIONS,
    KEEPALIVE_EXPIRY_S,
    PingResult,
    new_client,
    ping,
)
from chalicelib.clock import utcnow

BIDDERS = 50
DEADLINE_MS = 2000
SLOW_SPREAD_MS = (10, 1500)  # the overhead and sequential runs
FAST_SPREAD_MS = (1, 50)  # the throughput run, scaled down so 200 auctions at once stay short
CTX = PingContext(
    call_id="CA-bench",
    caller_id="+14155550123",
    caller_state="CA",
    caller_zip="94107",
    area_code="415",
    campaign_id="cmp-bench",
    publisher_id="pub-bench",
    tags={"ivr_age": "70"},
)


# --- the bidder server (its own process) -------------------------------------------------


async def _bidder_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            request_line, _, rest = head.partition(b"\r\n")
            length = 0
            for line in rest.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            # /bid/<latency ms>/<cents>
            _, _, delay, cents = request_line.split(b" ")[1].split(b"?")[0].split(b"/")
            await asyncio.sleep(int(delay) / 1000)
            body = json.dumps(
                {
                    "bidAmount": int(cents) / 100,
                    "phoneNumber": f"+1415555{int(cents) % 10_000:04d}",
                    "bidId": f"b-{delay.decode()}",
                    "expireInSeconds": 30,
                }
            ).encode()
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                % (len(body), body)
            )
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def _serve_bidders(ready: Connection) -> None:
    server = await asyncio.start_server(_bidder_connection, "127.0.0.1", 0, backlog=4096)
    ready.send(server.sockets[0].getsockname()[1])
    async with server:
        await server.serve_forever()


def serve_bidders(ready: Connection) -> None:
    asyncio.run(_serve_bidders(ready))


@contextmanager
def bidder_server() -> Iterator[int]:
    """The scripted bidders in their own process, on a loopback port (yielded); the process
    is stopped by its pid on the way out."""
    # The bidders live on loopback, which outbound refuses unless told this is local.
    os.environ["OUTBOUND_ALLOW_PRIVATE"] = "true"
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    server = context.Process(target=serve_bidders, args=(send,), daemon=True)
    server.start()
    try:
        if not receive.poll(30):
            raise RuntimeError("the bidder server did not start")
        yield int(receive.recv())
    finally:
        server.terminate()
        server.join(5)


# --- the auctions --------------------------------------------------------------------------


def spread(low_ms: int, high_ms: int, count: int = BIDDERS) -> list[int]:
    """`count` latencies evenly from `low_ms` to `high_ms`."""
    return [round(low_ms + (high_ms - low_ms) * n / (count - 1)) for n in range(count)]


def ring_tree(
    port: int, latencies: Sequence[int], rng: random.Random, name: str = "bd"
) -> list[Bidder]:
    bidders = []
    for n, latency in enumerate(latencies):
        cents = rng.randrange(100, 5000)
        bidders.append(
            Bidder(
                f"{name}-{n:02d}",
                f"buyer-{n % 7}",
                f"bidder {n}",
                url=f"http://127.0.0.1:{port}/bid/{latency}/{cents}",
                priority=1 + n % 3,
                floor_cents=100,
            )
        )
    rng.shuffle(bidders)  # the slowest bidder is not always last in the tree
    return bidders


async def sequential_auction(client: httpx.AsyncClient, bidders: Sequence[Bidder]) -> AuctionResult:
    """The baseline: the same tree pinged one bidder after another, each on its own timeout."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    results: dict[str, PingResult] = {}
    for bidder in bidders:
        own_deadline = loop.time() + bidder.timeout_ms / 1000
        results[bidder.bidder_id] = await ping(client, bidder, CTX, deadline=own_deadline)
    candidates, log = settle(bidders, results)
    return AuctionResult(candidates, log, utcnow(), (loop.time() - started) * 1000)


def _not_bids(result: AuctionResult) -> int:
    return sum(entry.outcome not in ("won", "lost") for entry in result.log)


async def measure_overhead(
    client: httpx.AsyncClient, bidders: Sequence[Bidder], slowest_ms: int, auctions: int
) -> tuple[list[float], list[float], int]:
    walls: list[float] = []
    overheads: list[float] = []
    missing = 0
    for _ in range(auctions):
        started = time.perf_counter()
        result = await run_auction(client, bidders, CTX, deadline_ms=DEADLINE_MS)
        wall = (time.perf_counter() - started) * 1000
        walls.append(wall)
        overheads.append(wall - slowest_ms)
        missing += _not_bids(result)
    return walls, overheads, missing


async def measure_sequential(
    client: httpx.AsyncClient, bidders: Sequence[Bidder], auctions: int
) -> tuple[list[float], int]:
    # Each sequential auction keeps one ping in flight at a time, so running the few of them
    # side by side changes none of their wall times and saves minutes.
    results = await asyncio.gather(*(sequential_auction(client, bidders) for _ in range(auctions)))
    return [result.wall_ms for result in results], sum(_not_bids(r) for r in results)


async def measure_throughput(
    client: httpx.AsyncClient, trees: Sequence[Sequence[Bidder]], rounds: int
) -> tuple[float, list[float], int, int]:
    walls: list[float] = []
    missing = 0
    total = 0.0
    for _ in range(rounds):

        async def one(bidders: Sequence[Bidder]) -> tuple[AuctionResult, float]:
            started = time.perf_counter()
            result = await run_auction(client, bidders, CTX, deadline_ms=DEADLINE_MS)
            return result, (time.perf_counter() - started) * 1000

        started = time.perf_counter()
        outcomes = await asyncio.gather(*(one(bidders) for bidders in trees))
        total += time.perf_counter() - started
        walls += [wall for _, wall in outcomes]
        missing += sum(_not_bids(result) for result, _ in outcomes)
    auctions = rounds * len(trees)
    return auctions / total, walls, missing, auctions * BIDDERS


def stock_httpx_client() -> httpx.AsyncClient:
    """httpx's own transport (httpcore's pool) with the same policy, for comparison.

    Configured for the job: HTTP/1.1 only, no retries, room for every bidder's connection
    and as many kept alive (`DEFAULT_MAX_CONNECTIONS`, as the RTB transport), httpx's 5 s
    keep-alive expiry (as the RTB transport).
    """
    return httpx.AsyncClient(
        transport=httpx.AsyncHTTPTransport(
            http1=True,
            http2=False,
            retries=0,
            trust_env=False,
            limits=httpx.Limits(
                max_connections=DEFAULT_MAX_CONNECTIONS,
                max_keepalive_connections=DEFAULT_MAX_CONNECTIONS,
                keepalive_expiry=KEEPALIVE_EXPIRY_S,
            ),
        ),
        follow_redirects=False,
        trust_env=False,
        headers={"Accept-Encoding": "identity"},
    )


TRANSPORTS = {"bidder": new_client, "stock": stock_httpx_client}


def _share(missing: int, pings: int) -> float:
    return round(1 - missing / pings, 4) if pings else 1.0


async def bench(port: int, args: Any) -> dict[str, Any]:
    rng = random.Random(7)
    slow_latencies = spread(*SLOW_SPREAD_MS)
    slowest = max(slow_latencies)
    tree = ring_tree(port, slow_latencies, rng)
    fast_trees = [
        ring_tree(port, spread(*FAST_SPREAD_MS), rng, f"t{tree}") for tree in range(args.concurrent)
    ]
    client_for = TRANSPORTS[args.transport]
    async with client_for() as client:
        await run_auction(client, tree, CTX, deadline_ms=DEADLINE_MS)  # open the connections
        walls, overheads, overhead_missing = await measure_overhead(
            client, tree, slowest, args.auctions
        )
        sequential, sequential_missing = await measure_sequential(client, tree, args.sequential)
    stock: tuple[list[float], list[float], int] = ([], [], 0)
    if args.stock_httpx:
        async with stock_httpx_client() as client:
            await run_auction(client, tree, CTX, deadline_ms=DEADLINE_MS)
            stock = await measure_overhead(client, tree, slowest, args.stock_httpx)
    async with client_for() as client:
        await measure_throughput(client, fast_trees[: args.light], 1)  # open the connections
        light_per_s, _, light_missing, light_pings = await measure_throughput(
            client, fast_trees[: args.light], args.rounds
        )
        per_s, burst_walls, burst_missing, burst_pings = await measure_throughput(
            client, fast_trees, args.rounds
        )
    parallel_mean = sum(walls) / len(walls)
    sequential_mean = sum(sequential) / len(sequential)
    result: dict[str, Any] = {
        "benchmark": "rtb",
        "bidders": BIDDERS,
        "deadline_ms": DEADLINE_MS,
        "bidder_latency_ms": list(SLOW_SPREAD_MS),
        "auctions": args.auctions,
        "overhead_p50_ms": round(percentile(overheads, 50), 3),
        "overhead_p99_ms": round(percentile(overheads, 99), 3),
        "overhead_max_ms": round(max(overheads), 3),
        "auction_wall": summary(walls),
        "auction_answered_share": _share(overhead_missing, args.auctions * BIDDERS),
        "sequential_auctions": args.sequential,
        "sequential_auctions_run_side_by_side": True,
        "sequential_wall_mean_ms": round(sequential_mean, 1),
        "parallel_wall_mean_ms": round(parallel_mean, 1),
        "sequential_ratio": round(sequential_mean / parallel_mean, 2),
        "sequential_answered_share": _share(sequential_missing, args.sequential * BIDDERS),
        "concurrent_auctions": args.concurrent,
        "throughput_rounds": args.rounds,
        "throughput_bidder_latency_ms": list(FAST_SPREAD_MS),
        "throughput_latency_scaled_down": True,
        "auctions_per_s": round(per_s, 1),
        "throughput_auction_wall": summary(burst_walls),
        "throughput_answered_share": _share(burst_missing, burst_pings),
        "light_concurrent_auctions": args.light,
        "light_auctions_per_s": round(light_per_s, 1),
        "light_answered_share": _share(light_missing, light_pings),
        **machine(),
    }
    if args.transport != "bidder":
        result["transport"] = args.transport
    if args.stock_httpx:
        _, stock_overheads, stock_missing = stock
        result |= {
            "stock_httpx_auctions": args.stock_httpx,
            "stock_httpx_overhead_p50_ms": round(percentile(stock_overheads, 50), 3),
            "stock_httpx_overhead_max_ms": round(max(stock_overheads), 3),
            "stock_httpx_answered_share": _share(stock_missing, args.stock_httpx * BIDDERS),
        }
    return result


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__ or "")
    p.add_argument("--auctions", type=int, default=30, help="parallel auctions for overhead")
    p.add_argument("--sequential", type=int, default=3, help="sequential baseline auctions")
    p.add_argument("--concurrent", type=int, default=200, help="auctions at once")
    p.add_argument("--rounds", type=int, default=3, help="rounds of concurrent auctions")
    p.add_argument("--light", type=int, default=10, help="auctions at once, below saturation")
    p.add_argument(
        "--stock-httpx", type=int, default=3, help="auctions through httpx's own pool (0: none)"
    )
    p.add_argument(
        "--transport",
        choices=sorted(TRANSPORTS),
        default="bidder",
        help="client for every measurement: the RTB transport (bidder) or httpx's own (stock)",
    )
    args = p.parse_args(argv)
    with bidder_server() as port:
        result = asyncio.run(bench(port, args))
    emit(result, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
