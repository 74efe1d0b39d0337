"""Where a call is in its routing, kept on its call record as JSON."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from chalicelib.bidding.auction import PricedBid
from chalicelib.store.reservations import CONCURRENCY, HOLDS, Hold

CounterKey = tuple[str, str]


@dataclass
class Leg:
    """A target being offered the call, and the counters its offer reserved that are given
    back unless it earns them: [pk, sk, hold] each (see `reservations.Hold`)."""

    target_id: str
    buyer_id: str
    destination: str
    holds: list[list[str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "target_id": self.target_id,
            "buyer_id": self.buyer_id,
            "destination": self.destination,
            "holds": [list(hold) for hold in self.holds],
        }

    def copy(self) -> Leg:
        return replace(self, holds=[list(hold) for hold in self.holds])

    def held(self, *kinds: Hold) -> list[CounterKey]:
        wanted = kinds or HOLDS
        return [(pk, sk) for pk, sk, kind in self.holds if kind in wanted]


@dataclass
class RoutingState:
    """Where a call is in its routing; stored on the call record."""

    plan: list[str] = field(default_factory=list)  # target ids still to try, in order
    attempt: int = 0
    ring_seconds: int = 0
    active: list[Leg] = field(default_factory=list)
    tried: list[dict[str, str]] = field(default_factory=list)
    excluded: dict[str, str] = field(default_factory=dict)
    winner: str | None = None
    fallback: bool = False
    ivr_node: str | None = None
    ivr_tries: int = 0
    # RTB: the valid bids of the call's auction (or held bid) by target id, best first.
    bids: dict[str, PricedBid] = field(default_factory=dict)
    auction_id: str | None = None
    held_bid: str | None = None  # the publisher's ping bid this call was routed at
    # Reservations of the connected target that the call keeps only if it converts.
    pending: list[list[str]] = field(default_factory=list)
    # The final status when it came while a dial was still open: {"status", "duration"};
    # the dial's result settles the call then.
    final: dict[str, Any] | None = None
    # Closed by the sweep before its results came: every reservation was given back, so a
    # result arriving late counts what the call earned anew.
    released: bool = False
    twiml: str | None = None  # the last answer, replayed to a retried webhook

    def to_json(self) -> dict[str, Any]:
        """The stored form (plain JSON values). Written out by hand: `asdict` walks every
        value reflectively, and this runs on every step of every call."""
        return {
            "plan": list(self.plan),
            "attempt": self.attempt,
            "ring_seconds": self.ring_seconds,
            "active": [leg.to_json() for leg in self.active],
            "tried": [dict(entry) for entry in self.tried],
            "excluded": dict(self.excluded),
            "winner": self.winner,
            "fallback": self.fallback,
            "ivr_node": self.ivr_node,
            "ivr_tries": self.ivr_tries,
            "bids": {target_id: bid.to_json() for target_id, bid in self.bids.items()},
            "auction_id": self.auction_id,
            "held_bid": self.held_bid,
            "pending": [list(hold) for hold in self.pending],
            "final": None if self.final is None else dict(self.final),
            "released": self.released,
            "twiml": self.twiml,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any] | None) -> RoutingState:
        raw = dict(raw or {})
        raw["active"] = [_leg(leg) for leg in raw.get("active", [])]
        raw["bids"] = {
            target_id: PricedBid.from_json({"target_id": target_id, **bid})
            for target_id, bid in (raw.get("bids") or {}).items()
        }
        return cls(**raw)

    def copy(self) -> RoutingState:
        """A copy whose lists and maps can change without touching this one (bids are
        frozen, so they are shared)."""
        return replace(
            self,
            plan=list(self.plan),
            active=[leg.copy() for leg in self.active],
            tried=[dict(entry) for entry in self.tried],
            excluded=dict(self.excluded),
            bids=dict(self.bids),
            pending=[list(hold) for hold in self.pending],
            final=None if self.final is None else dict(self.final),
        )

    def held(self) -> list[CounterKey]:
        """Every reservation the call still holds: its offered legs' and its pending ones."""
        return [key for leg in self.active for key in leg.held()] + [
            (pk, sk) for pk, sk, _ in self.pending
        ]


def _leg(raw: dict[str, Any]) -> Leg:
    raw = dict(raw)
    # Calls routed before holds existed kept only their concurrency slots.
    legacy = raw.pop("concurrency", None)
    if legacy is not None and "holds" not in raw:
        raw["holds"] = [[pk, CONCURRENCY, "concurrency"] for pk in legacy]
    return Leg(**raw)
