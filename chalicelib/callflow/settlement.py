"""Settling a finished call: conversion, revenue, payout, and what its reservations become."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from chalicelib.callflow.state import CounterKey, RoutingState
from chalicelib.campaigns import CampaignConfig
from chalicelib.store.routing_steps import CallChanges


@dataclass(frozen=True)
class CallSoFar:
    """What the call record says about a call when it is settled."""

    connected_seconds: int
    target_id: str | None
    duplicate: bool
    tags: Mapping[str, str]
    publisher_payout_cents: int | None  # the publisher's override for this campaign


@dataclass(frozen=True)
class Settlement:
    converted: bool
    revenue_cents: int
    payout_cents: int
    release: list[CounterKey]  # reservations the call did not earn

    def changes(self) -> CallChanges:
        return CallChanges(
            converted=self.converted,
            revenue_cents=self.revenue_cents,
            payout_cents=self.payout_cents,
        )


def converted(config: CampaignConfig, call: CallSoFar) -> bool:
    rule = config.settings.conversion
    if call.connected_seconds <= 0:
        return False
    if rule.kind == "tag":
        return call.tags.get(rule.tag or "") == rule.value
    return call.connected_seconds >= rule.buffer_seconds


def settle(config: CampaignConfig, state: RoutingState, call: CallSoFar) -> Settlement:
    """A converted call earns the campaign's revenue (or the winning bid) and pays the
    publisher (its override, or the bid's offer); a duplicate only if the campaign pays
    duplicates. Legs still offered and the reservations that counted a conversion that did
    not happen are given back."""
    is_converted = converted(config, call)
    pays = is_converted and (not call.duplicate or config.settings.duplicates.pay)
    revenue = config.settings.revenue_cents
    payout = (
        call.publisher_payout_cents
        if call.publisher_payout_cents is not None
        else config.settings.payout_cents
    )
    bid = state.bids.get(call.target_id or "")
    if bid is not None:
        # Won in the ring tree: the buyer pays its bid, the publisher gets its offer.
        revenue = bid.amount_cents
        if bid.payout_cents is not None:
            payout = bid.payout_cents
    release = [key for leg in state.active for key in leg.held()]
    if not is_converted:
        release += [(pk, sk) for pk, sk, _ in state.pending]
    return Settlement(is_converted, revenue if pays else 0, int(payout) if pays else 0, release)
