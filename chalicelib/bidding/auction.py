"""Ring-tree auctions: ping bidders in parallel, rank the valid bids, log every bid, margins."""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Callable, Collection, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_DOWN, Decimal
from typing import TYPE_CHECKING, Any, Final, Literal, TypeAlias

from chalicelib.bidding.bidders import Bidder, PingContext
from chalicelib.clock import utcnow

# The ping client (asyncio, httpx, h11: ≈50 ms of a cold start) is imported by the first
# auction, not with this module, which static-target calls and the API load for its types.
if TYPE_CHECKING:
    import asyncio

    import httpx

    from chalicelib.bidding.client import PingResult

BidOutcome: TypeAlias = Literal[
    "won", "lost", "below_floor", "timeout", "error", "rejected", "capped"
]

DEFAULT_DEADLINE_MS: Final = 2000
# Every ping stops itself at the deadline (and reports how far it got); this only bounds one
# that fails to, so that the auction still ends within a few ms of its deadline.
STRAGGLER_GRACE_S: Final = 0.005
CAPPED_REASON: Final = "capped before the auction"


class LatencyMemory:
    """Each bidder's recent ping latency (an exponentially weighted mean), so that an auction
    sends its pings slowest first.

    Sending a ping costs the event loop a fraction of a millisecond before the next one can
    go, so the 50th ping of a tree leaves 15-20 ms after the first; a slow bidder pinged
    last adds all of that to the auction, a fast one has time to spare. Mutable on purpose
    (it learns across auctions) and bounded in size.
    """

    def __init__(self, *, weight: float = 0.3, max_bidders: int = 10_000) -> None:
        self._weight = weight
        self._max_bidders = max_bidders
        self._ms: dict[str, float] = {}

    def expected_ms(self, bidder_id: str) -> float | None:
        return self._ms.get(bidder_id)

    def record(self, bidder_id: str, latency_ms: float) -> None:
        known = self._ms.get(bidder_id)
        if known is None and len(self._ms) >= self._max_bidders:
            self._ms.clear()  # forgetting only costs a less well ordered next auction
        self._ms[bidder_id] = (
            latency_ms if known is None else known + self._weight * (latency_ms - known)
        )

    def slowest_first(self, bidders: Sequence[Bidder]) -> list[Bidder]:
        # Unknown bidders go first: nothing says they are fast. sorted() is stable, so ties
        # keep the tree's order.
        return sorted(bidders, key=lambda bidder: -self._ms.get(bidder.bidder_id, math.inf))


# One per process: a warm Lambda keeps learning across invocations.
LATENCIES: Final = LatencyMemory()


@dataclass(frozen=True)
class Candidate:
    """A valid bid at or above its floor; candidates are ranked best first."""

    bidder_id: str
    buyer_id: str
    amount_cents: int
    destination: str
    priority: int
    latency_ms: float
    bid_id: str | None = None
    expires_in: int | None = None


@dataclass(frozen=True)
class PricedBid:
    """A valid bid as a call is routed at it: what the buyer pays, where to ring, and the
    publisher's offer for it (None: the campaign's usual payout)."""

    target_id: str
    buyer_id: str
    amount_cents: int
    destination: str
    bid_id: str | None = None
    expires_in: int | None = None
    payout_cents: int | None = None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> PricedBid:
        return cls(
            target_id=str(raw["target_id"]),
            buyer_id=str(raw.get("buyer_id", "")),
            amount_cents=int(raw["amount_cents"]),
            destination=str(raw["destination"]),
            bid_id=raw.get("bid_id"),
            expires_in=None if raw.get("expires_in") is None else int(raw["expires_in"]),
            payout_cents=None if raw.get("payout_cents") is None else int(raw["payout_cents"]),
        )


@dataclass(frozen=True)
class BidLogEntry:
    """One line of the bid log: what one bidder did in one auction, and why it counts so."""

    bidder_id: str
    buyer_id: str
    outcome: BidOutcome
    reason: str
    latency_ms: float | None = None  # None: not pinged (capped)
    http_status: int | None = None
    amount_cents: int | None = None
    bid_id: str | None = None


@dataclass(frozen=True)
class AuctionResult:
    """The ranked candidates (winner first; reroute goes down the list) and the bid log."""

    candidates: tuple[Candidate, ...]
    log: tuple[BidLogEntry, ...]  # one entry per bidder, in the order they were given
    started_at: datetime
    wall_ms: float

    @property
    def winner(self) -> Candidate | None:
        return self.candidates[0] if self.candidates else None

    def next_after(self, bidder_id: str) -> Candidate | None:
        """The candidate to reroute to when `bidder_id`'s destination did not connect."""
        ids = [candidate.bidder_id for candidate in self.candidates]
        if bidder_id not in ids:
            return None
        following = ids.index(bidder_id) + 1
        return self.candidates[following] if following < len(ids) else None


def _rank_key(candidate: Candidate, position: int) -> tuple[int, int, float, int]:
    # Higher amount, then priority 1 before 2, then the faster answer; the bidder's place in
    # the tree breaks exact ties so the same answers always give the same order.
    return (-candidate.amount_cents, candidate.priority, candidate.latency_ms, position)


def _lost_reason(loser: Candidate, winner: Candidate) -> str:
    if loser.amount_cents < winner.amount_cents:
        return f"outbid by {winner.bidder_id} ({winner.amount_cents} cents)"
    if loser.priority > winner.priority:
        return f"tied with {winner.bidder_id}, which has priority {winner.priority}"
    if loser.latency_ms > winner.latency_ms:
        return f"tied with {winner.bidder_id}, which answered faster"
    return f"tied with {winner.bidder_id}, which comes first in the tree"


def settle(
    bidders: Sequence[Bidder],
    results: Mapping[str, PingResult],
    capped: Collection[str] = frozenset(),
) -> tuple[tuple[Candidate, ...], tuple[BidLogEntry, ...]]:
    """Rank the valid bids and log every bidder; pure, so ranking is testable without HTTP.

    `capped` holds bidders left out by caps (a mapping gives each its reason); every other
    bidder needs a result. It runs between the last answer and the auction's end, so each
    log entry is built once.
    """
    cap_reasons = capped if isinstance(capped, Mapping) else None
    verdicts: dict[str, tuple[BidOutcome, str]] = {}
    competing: list[tuple[Candidate, int]] = []
    for position, bidder in enumerate(bidders):
        if bidder.bidder_id in capped:
            reason = str(cap_reasons[bidder.bidder_id]) if cap_reasons else CAPPED_REASON
            verdicts[bidder.bidder_id] = ("capped", reason)
            continue
        result = results[bidder.bidder_id]
        amount = result.amount_cents
        # parse_bid judged amounts and floors already; judging again keeps hand-made results
        # (and the property tests that make them) honest.
        if result.outcome != "bid":
            verdicts[bidder.bidder_id] = (result.outcome, result.reason)
        elif amount is None or not result.destination:
            verdicts[bidder.bidder_id] = ("error", "bid without an amount or destination")
        elif amount <= 0:
            verdicts[bidder.bidder_id] = ("rejected", "no bid (amount is not positive)")
        elif amount < bidder.floor_cents:
            floor = f"bid {amount} cents is below the floor of {bidder.floor_cents} cents"
            verdicts[bidder.bidder_id] = ("below_floor", floor)
        else:
            candidate = Candidate(
                bidder.bidder_id,
                bidder.buyer_id,
                amount,
                result.destination,
                bidder.priority,
                result.latency_ms,
                result.bid_id,
                result.expires_in,
            )
            competing.append((candidate, position))
    ranked = tuple(
        candidate for candidate, _ in sorted(competing, key=lambda pair: _rank_key(*pair))
    )
    for place, candidate in enumerate(ranked):
        won = place == 0
        reason = "highest bid" if won else _lost_reason(candidate, ranked[0])
        verdicts[candidate.bidder_id] = ("won" if won else "lost", reason)
    log = []
    for bidder in bidders:
        outcome, reason = verdicts[bidder.bidder_id]
        if outcome == "capped":
            log.append(BidLogEntry(bidder.bidder_id, bidder.buyer_id, outcome, reason))
            continue
        result = results[bidder.bidder_id]
        log.append(
            BidLogEntry(
                bidder.bidder_id,
                bidder.buyer_id,
                outcome,
                reason,
                result.latency_ms,
                result.http_status,
                result.amount_cents,
                result.bid_id,
            )
        )
    return ranked, tuple(log)


def _check_bidders(bidders: Sequence[Bidder], capped: Collection[str]) -> None:
    ids = Counter(bidder.bidder_id for bidder in bidders)
    duplicates = sorted(bidder_id for bidder_id, count in ids.items() if count > 1)
    if duplicates:
        # The bid log and the candidates are keyed by bidder id; two bidders sharing one
        # would overwrite each other's bids.
        raise ValueError(f"duplicate bidder ids in the auction: {', '.join(duplicates)}")
    unknown = sorted(set(capped) - set(ids))
    if unknown:
        raise ValueError(f"capped bidders not in the auction: {', '.join(unknown)}")


async def run_auction(
    client: httpx.AsyncClient,
    bidders: Sequence[Bidder],
    ctx: PingContext,
    *,
    deadline_ms: int = DEFAULT_DEADLINE_MS,
    capped: Collection[str] = frozenset(),
    clock: Callable[[], datetime] = utcnow,
    latencies: LatencyMemory | None = LATENCIES,
) -> AuctionResult:
    """Ping every uncapped bidder at once and rank the answers that arrive by the deadline.

    Static bidders answer without a request. A ping still running at the deadline is
    cancelled and logged as a timeout, so the auction ends within a few ms of `deadline_ms`
    whatever the bidders do (on a loop that is not overloaded: see client._SendPacer).
    `clock` stamps the auction for the bid log; `latencies` orders the pings slowest first
    and learns from this auction (None: the tree's order).
    """
    import asyncio

    from chalicelib.bidding.client import ping, static_result

    if isinstance(deadline_ms, bool) or not isinstance(deadline_ms, int) or deadline_ms < 1:
        raise ValueError("deadline_ms must be a positive integer")
    _check_bidders(bidders, capped)
    loop = asyncio.get_running_loop()
    started_at = clock()
    started = loop.time()
    deadline = started + deadline_ms / 1000
    results: dict[str, PingResult] = {}
    pings: dict[asyncio.Task[PingResult], Bidder] = {}
    try:
        pinged: list[Bidder] = []
        for bidder in bidders:
            if bidder.bidder_id in capped:
                continue
            if bidder.is_static:
                results[bidder.bidder_id] = static_result(bidder)
            else:
                pinged.append(bidder)
        # Tasks start, and send their requests, in creation order (paced: client._SendPacer).
        for bidder in latencies.slowest_first(pinged) if latencies else pinged:
            task = asyncio.create_task(ping(client, bidder, ctx, deadline=deadline))
            pings[task] = bidder
        if pings:
            await asyncio.wait(pings, timeout=max(0.0, deadline + STRAGGLER_GRACE_S - loop.time()))
        for task, bidder in pings.items():
            result = _outcome_of(task, bidder, (loop.time() - started) * 1000, deadline_ms)
            results[bidder.bidder_id] = result
            if latencies is not None:
                latencies.record(bidder.bidder_id, result.latency_ms)
    finally:
        # Stragglers, or every ping when the auction itself is cancelled: nobody waits on them.
        for task in pings:
            task.cancel()
    candidates, log = settle(bidders, results, capped)
    return AuctionResult(candidates, log, started_at, (loop.time() - started) * 1000)


def _outcome_of(
    task: asyncio.Task[PingResult], bidder: Bidder, elapsed_ms: float, deadline_ms: int
) -> PingResult:
    from chalicelib.bidding.client import PingResult

    if not task.done():
        reason = f"cut off at the auction deadline ({deadline_ms} ms)"
        return PingResult(bidder.bidder_id, "timeout", elapsed_ms, reason=reason)
    if task.cancelled():
        return PingResult(bidder.bidder_id, "error", elapsed_ms, reason="ping cancelled")
    failure = task.exception()
    if failure is not None:  # ping() catches everything; this is the last line of defence
        reason = f"unexpected {type(failure).__name__}: {failure}"
        return PingResult(bidder.bidder_id, "error", elapsed_ms, reason=reason)
    return task.result()


class AuctionLoop:
    """One event loop in a daemon thread with one shared client, for synchronous callers.

    A handler thread hands its auction over and waits for the result; auctions of
    concurrent handlers (threads of `chalice local`, or a benchmark) run side by side on
    the loop, and every auction of the process reuses the client's keep-alive connections
    to the same bidders. In Lambda the thread is frozen between invocations with the rest
    of the process; connections idle longer than the keep-alive expiry are not reused.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: httpx.AsyncClient | None = None

    def _running(self) -> tuple[asyncio.AbstractEventLoop, httpx.AsyncClient]:
        import asyncio

        from chalicelib.bidding.client import new_client

        with self._lock:
            if self._loop is None or self._client is None or self._loop.is_closed():
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="rtb-auctions", daemon=True).start()

                async def open_client() -> httpx.AsyncClient:
                    return new_client()  # a client belongs to the loop that uses it

                client = asyncio.run_coroutine_threadsafe(open_client(), loop).result()
                self._loop, self._client = loop, client
            return self._loop, self._client

    def run(
        self,
        auction: Callable[[httpx.AsyncClient], Coroutine[Any, Any, AuctionResult]],
        timeout_s: float,
    ) -> AuctionResult:
        """The auction's result; TimeoutError (and the auction cancelled) if it overruns
        `timeout_s`, so a stuck loop can never hold a caller on the line."""
        import asyncio

        loop, client = self._running()
        future = asyncio.run_coroutine_threadsafe(auction(client), loop)
        try:
            return future.result(timeout=timeout_s)
        except TimeoutError:
            future.cancel()
            raise


AUCTIONS: Final = AuctionLoop()


def run_auction_sync(
    bidders: Sequence[Bidder],
    ctx: PingContext,
    *,
    deadline_ms: int = DEFAULT_DEADLINE_MS,
    capped: Collection[str] = frozenset(),
    clock: Callable[[], datetime] = utcnow,
    latencies: LatencyMemory | None = LATENCIES,
) -> AuctionResult:
    """run_auction() from synchronous code such as a Lambda handler, on the process's
    auction loop (AUCTIONS) and its shared client."""
    return AUCTIONS.run(
        lambda client: run_auction(
            client,
            bidders,
            ctx,
            deadline_ms=deadline_ms,
            capped=capped,
            clock=clock,
            latencies=latencies,
        ),
        # Every auction ends within a few ms of its deadline; this only guards the loop.
        timeout_s=deadline_ms / 1000 + 5,
    )


@dataclass(frozen=True)
class PercentMargin:
    """The platform keeps this percentage of the winning bid."""

    percent: Decimal

    def __post_init__(self) -> None:
        if not isinstance(self.percent, Decimal) or not 0 <= self.percent <= 100:
            raise ValueError("margin percent must be a Decimal from 0 to 100")


@dataclass(frozen=True)
class FixedMargin:
    """The platform keeps this many cents of the winning bid."""

    cents: int

    def __post_init__(self) -> None:
        if isinstance(self.cents, bool) or not isinstance(self.cents, int) or self.cents < 0:
            raise ValueError("fixed margin must be a non-negative number of cents")


@dataclass(frozen=True)
class FixedPayout:
    """The publisher is offered this many cents whatever the bid; the floor keeps bids above
    it worthwhile, so it is not capped by the winning bid."""

    cents: int

    def __post_init__(self) -> None:
        if isinstance(self.cents, bool) or not isinstance(self.cents, int) or self.cents < 0:
            raise ValueError("fixed payout must be a non-negative number of cents")


Margin: TypeAlias = PercentMargin | FixedMargin | FixedPayout


def publisher_offer_cents(winning_cents: int, margin: Margin) -> int:
    """What the publisher is offered for a call won at `winning_cents`; never negative.

    A percentage rounds the offer down, so the platform never keeps less than its margin.
    """
    if isinstance(margin, FixedPayout):
        return margin.cents
    if isinstance(margin, FixedMargin):
        return max(0, winning_cents - margin.cents)
    share = Decimal(winning_cents) * (100 - margin.percent) / 100
    return max(0, int(share.quantize(Decimal(1), rounding=ROUND_DOWN)))


def margin_from_settings(raw: Mapping[str, object] | None) -> Margin | None:
    """`{"kind": "percent"|"fixed"|"fixed_payout", "value": ...}` as stored with a campaign;
    None (no margin set) when `raw` is None; ValueError when it is malformed."""
    if raw is None:
        return None
    kind, value = raw.get("kind"), raw.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ValueError("margin value must be a number")
    number = Decimal(str(value))
    if kind == "percent":
        return PercentMargin(number)
    if kind not in ("fixed", "fixed_payout"):
        raise ValueError("margin kind must be percent, fixed or fixed_payout")
    if not number.is_finite() or number != number.to_integral_value():
        raise ValueError(f"a {kind} margin is a whole number of cents")
    cents = int(number)
    return FixedMargin(cents) if kind == "fixed" else FixedPayout(cents)
