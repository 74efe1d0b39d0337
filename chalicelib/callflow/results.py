"""What a dial result or an accepted offer does to a call: pure transitions of its state."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from chalicelib.callflow.state import CounterKey, Leg, RoutingState
from chalicelib.campaigns import CampaignConfig
from chalicelib.store import keys
from chalicelib.store.routing_steps import CallChanges

CONNECTED = frozenset({"completed", "answered"})
# What a connected leg keeps of its reservations (its call is over: concurrency goes back;
# a converted cap waits for the settlement).
EARNED_BY_CONNECTING = frozenset({"taken", "connected", "converted"})
# A busy or failed target answers at once; only a target that did not answer rang for the
# whole timeout.
QUICK_FAILURE_SECONDS = 5


@dataclass(frozen=True)
class DialResult:
    """The CPaaS's <Dial> action callback."""

    dial_status: str  # DialCallStatus
    call_status: str  # the caller's CallStatus
    connected_seconds: int
    recording_url: str = ""
    recording_seconds: int = 0

    @property
    def connected(self) -> bool:
        return self.dial_status in CONNECTED


@dataclass(frozen=True)
class Transition:
    """The call's next state, the reservations given back, the call fields to write, and
    whether the call stops here (no further offer)."""

    state: RoutingState
    release: list[CounterKey]
    changes: CallChanges = field(default_factory=CallChanges)
    stop: bool = False


def after_dial(
    config: CampaignConfig, state: RoutingState, result: DialResult, at: datetime
) -> Transition:
    """A dialled target answered and the bridge ended (the winner keeps what it earned,
    the rest is given back), or nobody answered (everything is given back; fall through
    unless the caller hung up or the ring budget is spent)."""
    state = state.copy()
    offered, state.active = state.active, []
    if result.connected:
        winner = state.winner or offered[0].target_id
        leg = next((g for g in offered if g.target_id == winner), offered[0])
        state.tried.append({"target_id": winner, "outcome": "connected", "at": at.isoformat()})
        # What the winner and its buyer earned, whichever offered leg reserved it (two legs
        # of one buyer share the buyer's counters; the first leg holds them).
        mine = _owned_by(config, leg, offered)
        state.pending = [hold for hold in mine if hold[2] == "converted"]
        kept = {(pk, sk) for pk, sk, kind in mine if kind in EARNED_BY_CONNECTING}
        release = [key for g in offered for key in g.held() if key not in kept]
        changes = CallChanges(
            connected_seconds=result.connected_seconds, target_id=winner, buyer_id=leg.buyer_id
        )
        if result.recording_url.startswith("https://"):
            changes = replace(
                changes,
                recording_url=result.recording_url,
                recording_seconds=result.recording_seconds,
            )
        return Transition(state, release, changes, stop=True)
    for leg in offered:
        state.tried.append(
            {"target_id": leg.target_id, "outcome": result.dial_status, "at": at.isoformat()}
        )
    no_answer = result.dial_status == "no-answer"
    state.ring_seconds += (
        config.settings.ring_timeout_seconds if no_answer else QUICK_FAILURE_SECONDS
    )
    hung_up = result.call_status == "completed" or result.dial_status == "canceled"
    if state.ring_seconds >= config.settings.max_ring_seconds:
        state.plan = []
    # An accepted leg that did not bridge leaves the next offer open to anyone.
    state.winner = None
    release = [key for g in offered for key in g.held()]
    return Transition(state, release, stop=hung_up)


def after_accept(
    config: CampaignConfig, state: RoutingState, destination: str
) -> Transition | None:
    """The first target of a simultaneous offer to press 1 takes the call; what the others
    reserved is given back at once, except the counters of the taker's own buyer, which the
    taker keeps. None when the offer is no longer open to it."""
    state = state.copy()
    leg = next((g for g in state.active if g.destination == destination), None)
    if leg is None or state.winner is not None:
        return None
    mine = _owned_by(config, leg, state.active)
    taken = {(pk, sk) for pk, sk, _ in mine}
    losers = [key for g in state.active for key in g.held() if key not in taken]
    leg.holds = mine
    state.active = [leg]
    state.winner = leg.target_id
    changes = CallChanges(target_id=leg.target_id, buyer_id=leg.buyer_id)
    return Transition(state, losers, changes, stop=True)


def _owned_by(config: CampaignConfig, leg: Leg, offered: list[Leg]) -> list[list[str]]:
    """The reservations of every offered leg that belong to `leg`'s target or its buyer."""
    owners = {
        keys.counter_pk(config.account_id, "TGT", leg.target_id),
        keys.counter_pk(config.account_id, "BUY", leg.buyer_id),
    }
    return [list(hold) for g in offered for hold in g.holds if hold[0] in owners]
