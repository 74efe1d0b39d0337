"""Routing a call to targets: each step decided by `callflow`, answered with TwiML, and
written by `store.routing_steps` in one transaction.

A call's routing state lives in its call record (`routing` JSON); every step moves the
counters and the call record together, conditioned on the step the call was read at, so a
retried or late webhook never reserves or releases twice.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from twilio.twiml.voice_response import Dial, VoiceResponse

from chalicelib.callflow import offers
from chalicelib.callflow.state import CounterKey, Leg, RoutingState
from chalicelib.campaigns import CampaignConfig
from chalicelib.config import absolute_url
from chalicelib.observability import logger
from chalicelib.store import routing_steps
from chalicelib.store.models import CallItem
from chalicelib.store.routing_steps import CallChanges, DuplicateCheck, RoutingStep
from chalicelib.store.transactions import Refused
from chalicelib.voice import twiml


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
    simultaneous = offers.offers_at_once(config, state, [leg.target_id for leg in legs])
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


def advance(
    config: CampaignConfig,
    call: CallItem,
    state: RoutingState,
    *,
    at: datetime,
    arrival: Arrival | None = None,
    release: list[CounterKey] | None = None,
    changes: CallChanges | None = None,
    stop: VoiceResponse | None = None,
    count: list[CounterKey] | None = None,
) -> VoiceResponse:
    """Offer the call to the next target(s) of the plan that can take it, in one transaction.

    The step writes the call record (created with `arrival`), gives back `release`d
    reservations, writes `changes` and reserves the chosen targets' counters. Targets whose
    caps refuse are dropped and the next tried; with none left the call goes to the
    fallback. With `stop`, no target is offered and `stop` is the answer.
    """
    changes = CallChanges(status=call.status) | (changes or CallChanges())
    release = list(release or [])
    duplicate_check = bool(arrival and arrival.duplicate_window_days > 0)
    for _ in range(len(state.plan) + 8):
        offer = offers.next_offer(config, state, at, release, stop=stop is not None)
        if stop is not None:
            answer = stop
        elif offer.legs:
            answer = _consent_and_dial(config, call, offer.state, offer.legs, state.attempt == 0)
        else:
            answer = fallback_twiml(config)
        offer.state.twiml = str(answer)
        step = RoutingStep(
            call=arrival.item if arrival is not None else call,
            routing=offer.state.to_json(),
            attempt=offer.state.attempt,
            at=at,
            create=arrival is not None,
            changes=changes,
            duplicate=DuplicateCheck(
                config.campaign_id,
                arrival.duplicate_window_days,
                known=bool(changes.duplicate),
            )
            if duplicate_check and arrival is not None
            else None,
            reserve=offer.reserve,
            release=offer.release,
            count=list(count or []),
        )
        try:
            routing_steps.apply(step)
        except Refused as refusal:
            seen = offers.read_refusal(offer, refusal.labels)
            if seen.call_moved:
                raise AlreadyHandled(call.call_sid) from refusal
            if seen.already_free:
                # Given back by a repair meanwhile: giving it back again must not block the call.
                logger.warning("reservation already given back on release")
            if seen.duplicate:
                changes = replace(changes, duplicate=True)
                if arrival is not None:
                    arrival.item.duplicate = True
            state, release = offers.after_refusal(state, seen, release, at)
            continue
        state.__dict__.update(offer.state.__dict__)
        return answer
    raise RuntimeError("routing did not settle")


def end_call(
    config: CampaignConfig,
    call: CallItem,
    state: RoutingState,
    *,
    at: datetime,
    changes: CallChanges,
    release: list[CounterKey],
) -> None:
    """Close the call: give back `release`, write `changes` once."""
    advance(
        config,
        call,
        state,
        at=at,
        release=release,
        changes=replace(changes, ended_at=at),
        stop=twiml.empty(),
    )
