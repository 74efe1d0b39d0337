"""Choosing whom the next <Dial> offers the call to, and what that reserves or gives back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from chalicelib.callflow.state import CounterKey, Leg, RoutingState
from chalicelib.campaigns import CampaignConfig
from chalicelib.store.reservations import CapCheck, released_key

MAX_SIMULTANEOUS = 10


@dataclass(frozen=True)
class Offer:
    """The next step of a call's routing: the legs offered (none: the call goes to its
    fallback, or `stop` holds it where it is), the counters reserved (labelled with the
    target that reserves them) and given back, and the routing state once it is applied."""

    legs: list[Leg]
    reserve: list[tuple[str, CapCheck]]
    release: list[CounterKey]
    state: RoutingState
    stop: bool

    @property
    def chosen(self) -> list[str]:
        return [leg.target_id for leg in self.legs]


def next_targets(config: CampaignConfig, state: RoutingState) -> list[str]:
    """The targets the next <Dial> offers the call to: a won bid alone (the buyer bid for
    this call), else as many static targets as the strategy rings at once."""
    if not state.plan or state.plan[0] in state.bids:
        return state.plan[:1]
    width = MAX_SIMULTANEOUS if config.settings.strategy == "simultaneous" else 1
    static = [t for t in state.plan if t not in state.bids]
    return static[:width]


def offers_at_once(config: CampaignConfig, state: RoutingState, chosen: list[str]) -> bool:
    """Whether the chosen targets are offered the call together (each must accept it)."""
    return len(chosen) > 1 or (
        bool(chosen) and config.settings.strategy == "simultaneous" and chosen[0] not in state.bids
    )


def next_offer(
    config: CampaignConfig,
    state: RoutingState,
    at: datetime,
    release: list[CounterKey],
    *,
    stop: bool = False,
) -> Offer:
    """Offer the call to the next target(s) of the plan (none with `stop`), giving back
    `release`. A counter given back and reserved again by the same step (the next target
    has the same buyer) simply stays held: one transaction may not touch it twice."""
    # A target removed from the campaign since routing began is skipped.
    after = state.copy()
    after.plan = [t for t in state.plan if config.owner_ids(t) is not None]
    chosen = [] if stop else next_targets(config, after)
    checks = config.route_checks(chosen, at, shared=offers_at_once(config, after, chosen))
    destinations = {t.target_id: t.destination for t in config.targets}
    legs = []
    for target_id in chosen:
        _, buyer_id = config.owner_ids(target_id) or ("", "")
        bid = after.bids.get(target_id)
        holds = [[c.pk, c.sk, c.hold] for t, c in checks if t == target_id and c.hold]
        destination = bid.destination if bid else destinations[target_id]
        legs.append(Leg(target_id, buyer_id, destination, holds))
    after.plan = [t for t in after.plan if t not in chosen]
    if not stop:
        after.active = legs
        after.attempt = state.attempt + 1 if legs else state.attempt
        after.fallback = not legs
    reserved, releasing = {check.key for _, check in checks}, set(release)
    return Offer(
        legs=legs,
        reserve=[(t, c) for t, c in checks if c.key not in releasing],
        release=[key for key in release if key not in reserved],
        state=after,
        stop=stop,
    )


@dataclass(frozen=True)
class Refusal:
    """What the store refused of an offer: the call moved on, the caller is a duplicate,
    targets at a cap, counters already given back (by a repair)."""

    call_moved: bool
    duplicate: bool
    capped: list[str]
    already_free: set[CounterKey]


def read_refusal(offer: Offer, labels: set[str]) -> Refusal:
    return Refusal(
        call_moved="call" in labels,
        duplicate="duplicate" in labels,
        capped=[t for t in offer.chosen if t in labels],
        already_free={key for label in labels if (key := released_key(label)) is not None},
    )


def after_refusal(
    state: RoutingState, refusal: Refusal, release: list[CounterKey], at: datetime
) -> tuple[RoutingState, list[CounterKey]]:
    """The state and releases to try again with: capped targets dropped (and noted), and
    counters a repair already gave back not given back twice."""
    state = state.copy()
    for target_id in refusal.capped:
        state.tried.append({"target_id": target_id, "outcome": "capped", "at": at.isoformat()})
    state.plan = [t for t in state.plan if t not in refusal.capped]
    return state, [key for key in release if key not in refusal.already_free]
