"""Routing a call to targets: reserve counters with one transaction, dial, fall through.

A call's routing state lives in its call record (`routing` JSON); every step is one
TransactWriteItems that moves the counters and the call record together, conditioned on
the attempt number, so a retried or late webhook never reserves or releases twice.
"""

from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action
from twilio.twiml.voice_response import Dial, VoiceResponse

from chalicelib.campaigns import CampaignConfig
from chalicelib.config import absolute_url
from chalicelib.observability import logger
from chalicelib.store import keys, reservations
from chalicelib.store.models import CallerSeenItem, CallItem
from chalicelib.store.transactions import (
    Conflict,
    LabelledTransaction,
    Refused,
    labelled_transaction,
)
from chalicelib.voice import twiml

MAX_SIMULTANEOUS = 10


@dataclass
class Leg:
    """A target being offered the call, and the concurrency counters it holds."""

    target_id: str
    buyer_id: str
    destination: str
    concurrency: list[str]


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
    # RTB: the valid bids of the call's auction (or held bid) by target id, best first:
    # amount_cents, destination, bid_id, payout_cents (the publisher's offer, or None).
    bids: dict[str, dict[str, Any]] = field(default_factory=dict)
    auction_id: str | None = None
    held_bid: str | None = None  # the publisher's ping bid this call was routed at
    twiml: str | None = None  # the last answer, replayed to a retried webhook

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any] | None) -> RoutingState:
        raw = dict(raw or {})
        raw["active"] = [Leg(**leg) for leg in raw.get("active", [])]
        return cls(**raw)


@dataclass(frozen=True)
class Arrival:
    """The call record to create when the first routing step also records the call."""

    item: CallItem
    duplicate_window_days: int


class AlreadyHandled(Exception):
    """The call record moved on: this webhook is a retry or arrived late."""


def _consent_and_dial(
    config: CampaignConfig, call: CallItem, state: RoutingState, legs: list[Leg], first: bool
) -> VoiceResponse:
    settings = config.settings
    response = VoiceResponse()
    if first and settings.recording.enabled:
        response.say(settings.recording.consent_message)
    caller_id = call.to_number
    if settings.caller_id == "caller" and call.from_number.startswith("+"):
        caller_id = call.from_number
    attempt = state.attempt
    # The ring time left in the campaign's budget bounds this attempt too.
    left = settings.max_ring_seconds - state.ring_seconds
    options: dict[str, Any] = {
        "action": absolute_url(f"/voice/dial/{attempt}"),
        "method": "POST",
        "timeout": max(5, min(settings.ring_timeout_seconds, left)),
        "answer_on_bridge": True,
        "caller_id": caller_id,
    }
    if settings.recording.enabled:
        options["record"] = "record-from-answer-dual"
    dial = Dial(**options)
    # A won bid is dialled alone and bridged at once: its buyer already said yes.
    simultaneous = len(legs) > 1 or (
        settings.strategy == "simultaneous" and legs[0].target_id not in state.bids
    )
    for leg in legs:
        whisper = absolute_url(f"/voice/whisper/{attempt}") if simultaneous else None
        if leg.destination.startswith(("sip:", "sips:")):
            address = config.sip_address(leg.target_id, leg.destination)
            dial.sip(address, url=whisper) if whisper else dial.sip(address)
        elif whisper:
            dial.number(leg.destination, url=whisper, method="POST")
        else:
            dial.number(leg.destination)
    response.append(dial)
    return response


def fallback_twiml(config: CampaignConfig | None) -> VoiceResponse:
    """Where a call goes when no target can take it: the campaign's fallback, or a message."""
    if config is None:
        return twiml.fallback()
    settings = config.settings
    if settings.fallback.number:
        response = VoiceResponse()
        response.dial(settings.fallback.number, timeout=settings.ring_timeout_seconds)
        response.hangup()
        return response
    return twiml.say_and_hang_up(settings.fallback.message)


def _legs_for(config: CampaignConfig, state: RoutingState, target_ids: list[str]) -> list[Leg]:
    destinations = {t.target_id: t.destination for t in config.targets}
    legs, held = [], set()
    for target_id in target_ids:
        ids = config.owner_ids(target_id)
        if ids is None:
            continue
        pks = []
        for owner in config.cap_owners(*ids):
            # One transaction may not touch an item twice: two legs of one buyer share
            # its slot (only one of them can be bridged).
            if owner.caps.get("concurrency") is not None and owner.counter_pk not in held:
                pks.append(owner.counter_pk)
                held.add(owner.counter_pk)
        bid = state.bids.get(target_id)
        destination = bid["destination"] if bid else destinations[target_id]
        legs.append(Leg(target_id, ids[1], destination, pks))
    return legs


def _next_offer(config: CampaignConfig, state: RoutingState) -> list[str]:
    """The targets the next <Dial> offers the call to: a won bid alone (the buyer bid for
    this call), else as many static targets as the strategy rings at once."""
    if not state.plan or state.plan[0] in state.bids:
        return state.plan[:1]
    width = MAX_SIMULTANEOUS if config.settings.strategy == "simultaneous" else 1
    static = [t for t in state.plan if t not in state.bids]
    return static[:width]


def held_slots(state: RoutingState) -> list[str]:
    """The concurrency slots the call's offered legs hold."""
    return [pk for leg in state.active for pk in leg.concurrency]


def add_caller_seen(
    tx: LabelledTransaction,
    call: CallItem,
    campaign_id: str,
    window_days: int,
    at: datetime,
    known_duplicate: bool = False,
) -> None:
    """Remember this caller's latest call; refused (label `duplicate`) if they called within
    the window. A known duplicate only moves the window on (it runs from the latest call)."""
    window = timedelta(days=window_days)
    tx.save(
        "duplicate",
        CallerSeenItem(
            keys.counter_pk(call.account_id, "CAMP", campaign_id),
            keys.caller_seen_sk(call.from_number),
            last_call_at=int(at.timestamp()),
            expires_at=at + window,
        ),
        None
        if known_duplicate
        else CallerSeenItem.pk.does_not_exist()
        | (CallerSeenItem.last_call_at < int((at - window).timestamp())),
    )


def _call_write(
    tx: LabelledTransaction,
    call: CallItem,
    state: RoutingState,
    arrival: Arrival | None,
    extra: dict[str, Any],
) -> None:
    routing = state.to_json()
    if arrival is not None:
        item = arrival.item
        item.routing, item.attempt, item.step = routing, state.attempt, 1
        for name, value in extra.items():
            setattr(item, name, value)
        tx.save("call", item, CallItem.pk.does_not_exist())
        return
    actions: list[Action] = [
        CallItem.routing.set(routing),
        CallItem.attempt.set(state.attempt),
        CallItem.step.add(1),
        CallItem.updated_at.set(extra.pop("updated_at")),
    ]
    actions += [getattr(CallItem, name).set(value) for name, value in extra.items()]
    # Conditioned on the step the call was read at: a webhook that raced another one for
    # the same call, or a retry of one already applied, changes nothing.
    condition: Condition = CallItem.ended_at.does_not_exist() & (CallItem.step == int(call.step))
    tx.update("call", call, actions, condition)


def advance(
    config: CampaignConfig,
    call: CallItem,
    state: RoutingState,
    *,
    at: datetime,
    arrival: Arrival | None = None,
    release: list[str] | None = None,
    counters: list[reservations.CapCheck] | None = None,
    extra: dict[str, Any] | None = None,
    stop: VoiceResponse | None = None,
) -> VoiceResponse:
    """Offer the call to the next target(s) of the plan that can take it, in one transaction.

    The transaction writes the call record (created with `arrival`, else conditioned on
    the step `call` was read at, so a retried or concurrent webhook changes nothing
    twice), gives back `release`d slots, moves `counters`, and reserves the chosen
    targets' counters. Targets whose caps refuse are dropped and the next tried; with none
    left the call goes to the fallback. With `stop`, no target is offered and `stop` is
    the answer. A slot released and reserved
    again by the same step (the next target has the same buyer) simply stays held.
    """
    extra = dict(extra or {})
    release = list(release or [])
    # A target removed from the campaign since routing began is skipped.
    state.plan = [t for t in state.plan if config.owner_ids(t) is not None]
    duplicate_check = bool(arrival and arrival.duplicate_window_days > 0)
    for tries in range(len(state.plan) + 8):
        chosen = [] if stop is not None else _next_offer(config, state)
        legs = _legs_for(config, state, chosen)
        held_next = {pk for leg in legs for pk in leg.concurrency}
        checks = [
            (target_id, check)
            for target_id, check in config.phase_checks(chosen, at, "route")
            if not (check.sk == reservations.CONCURRENCY and check.pk in release)
        ]
        next_state = RoutingState.from_json(state.to_json())
        # With `stop`, the caller decides which legs stay active (e.g. an accepted offer).
        next_state.active = legs if stop is None else list(state.active)
        next_state.plan = [t for t in state.plan if t not in chosen]
        next_state.attempt = state.attempt + 1 if chosen else state.attempt
        if stop is not None:
            answer = stop
        elif legs:
            answer = _consent_and_dial(config, call, next_state, legs, state.attempt == 0)
        else:
            next_state.fallback = True
            answer = fallback_twiml(config)
        next_state.twiml = str(answer)
        try:
            with labelled_transaction() as tx:
                _call_write(
                    tx,
                    call,
                    next_state,
                    arrival,
                    {"status": call.status, **extra, "updated_at": at},
                )
                if duplicate_check and arrival is not None:
                    add_caller_seen(
                        tx,
                        call,
                        config.campaign_id,
                        arrival.duplicate_window_days,
                        at,
                        known_duplicate=bool(extra.get("duplicate")),
                    )
                for target_id, check in checks:
                    reservations.add_checks(tx, target_id, [check])
                reservations.add_release(tx, [pk for pk in release if pk not in held_next])
                reservations.add_checks(tx, "count", counters or [])
        except Conflict:
            time.sleep(random.uniform(0.01, 0.05) * (tries + 1))  # noqa: S311 - jitter
            continue
        except Refused as refusal:
            refused = refusal.labels
            if "call" in refused:
                raise AlreadyHandled(call.call_sid) from refusal
            already_free = {
                label.split(":", 1)[1] for label in refused if label.startswith("release:")
            }
            if already_free:
                # Freed by a repair meanwhile: giving it back again must not block the call.
                logger.warning("concurrency slot already free on release")
                release = [pk for pk in release if pk not in already_free]
            if "duplicate" in refused:
                extra["duplicate"] = True
                if arrival is not None:
                    arrival.item.duplicate = True
            capped = [t for t in chosen if t in refused]
            for target_id in capped:
                state.tried.append(
                    {"target_id": target_id, "outcome": "capped", "at": at.isoformat()}
                )
            state.plan = [t for t in state.plan if t not in capped]
            continue
        state.__dict__.update(next_state.__dict__)
        call.attempt = state.attempt
        call.step = 1 if arrival is not None else int(call.step) + 1
        return answer
    raise RuntimeError("routing did not settle")


def end_call(
    config: CampaignConfig,
    call: CallItem,
    state: RoutingState,
    *,
    at: datetime,
    extra: dict[str, Any],
    counters: list[reservations.CapCheck] | None = None,
) -> None:
    """Close the call: give back every slot its offered legs hold, write `extra` once."""
    release = held_slots(state)
    state.active = []
    advance(
        config,
        call,
        state,
        at=at,
        release=release,
        counters=counters,
        extra={**extra, "ended_at": at},
        stop=twiml.empty(),
    )
