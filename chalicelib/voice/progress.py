"""Webhooks during a call: IVR answers, dial results (fall-through), whispers, final status."""

from __future__ import annotations

from typing import Any

from pynamodb.exceptions import DoesNotExist, TransactWriteError
from twilio.twiml.voice_response import Gather, VoiceResponse

from chalicelib.clock import utcnow
from chalicelib.observability import bind_call, logger
from chalicelib.store import calls, keys, reservations
from chalicelib.store.models import CallItem
from chalicelib.voice import ivr, pixels, twiml
from chalicelib.voice.config import CampaignConfig, load_campaign, publisher_terms
from chalicelib.voice.dialing import AlreadyHandled, RoutingState, advance
from chalicelib.voice.inbound import plan_for
from chalicelib.voice.params import DialResultParams, GatherParams, StatusParams, WhisperParams
from chalicelib.voice.signature import absolute_url

ACCEPT_PROMPT = "You have a new call. Press 1 to accept it."


def _load(call_sid: str) -> CallItem | None:
    try:
        item = CallItem.get(keys.call_pk(call_sid), keys.META)
    except DoesNotExist:
        return None
    bind_call(call_sid=call_sid, account_id=item.account_id)
    return item


def _config(item: CallItem) -> CampaignConfig | None:
    return load_campaign(item.account_id, item.campaign_id) if item.campaign_id else None


def _hang_up() -> VoiceResponse:
    response = VoiceResponse()
    response.hangup()
    return response


# --- IVR ---------------------------------------------------------------------------------------


def ivr_answer(form: dict[str, str], node_name: str, tries: str) -> VoiceResponse | str:
    params = GatherParams.model_validate(form)
    item = _load(params.call_sid)
    config = _config(item) if item else None
    if item is None or config is None or not config.settings.get("ivr"):
        return twiml.fallback()
    state = RoutingState.from_json(item.routing)
    if state.ivr_node != node_name or str(state.ivr_tries) != tries or item.attempt != 0:
        return state.twiml or twiml.fallback()  # a retried or stale request
    tree = config.settings["ivr"]
    node = tree["nodes"][node_name]
    answer = ivr.interpret(node, params.digits, params.speech)
    if answer.value is None:
        fallback = ivr.after_no_match(node, state.ivr_tries)
        if fallback is None:
            state.ivr_tries += 1
            return _save_ivr(item, config, state, ivr.prompt(tree, node_name, state.ivr_tries))
        answer = fallback
    tags = calls.tags_of(item)
    if answer.value is not None:
        tags[node["tag"]] = answer.value
    item.tags = tags
    if answer.next_node:
        state.ivr_node, state.ivr_tries = answer.next_node, 0
        return _save_ivr(item, config, state, ivr.prompt(tree, answer.next_node, 0), tags)
    # Qualified: route with what the caller told us.
    now = utcnow()
    plan = plan_for(config, item, now)
    state.plan, state.excluded, state.ivr_node = plan.plan, plan.excluded, None
    try:
        return advance(config, item, state, at=now, expected_attempt=0, extra={"tags": tags})
    except AlreadyHandled:
        return _replay(params.call_sid)


def _save_ivr(
    item: CallItem,
    config: CampaignConfig,
    state: RoutingState,
    response: VoiceResponse,
    tags: dict[str, str] | None = None,
) -> VoiceResponse | str:
    state.twiml = str(response)
    extra: dict[str, Any] = {"tags": tags} if tags is not None else {}
    try:
        return advance(
            config, item, state, at=utcnow(), expected_attempt=0, extra=extra, stop=response
        )
    except AlreadyHandled:
        return _replay(item.call_sid)


def _replay(call_sid: str) -> VoiceResponse | str:
    item = _load(call_sid)
    if item is None:
        return twiml.fallback()
    return RoutingState.from_json(item.routing).twiml or twiml.fallback()


# --- dial results --------------------------------------------------------------------------------


def dial_result(form: dict[str, str], attempt: str) -> VoiceResponse | str:
    """A dialled target answered and the bridge ended, or it did not answer: fall through."""
    params = DialResultParams.model_validate(form)
    item = _load(params.call_sid)
    config = _config(item) if item else None
    if item is None or config is None:
        return _hang_up()
    state = RoutingState.from_json(item.routing)
    if str(item.attempt) != attempt or item.ended_at is not None:
        return state.twiml or _hang_up()
    now = utcnow()
    release = [pk for leg in state.active for pk in leg.concurrency]
    bridged = params.dial_call_status in {"completed", "answered"}
    extra: dict[str, Any] = {}
    counters: list[reservations.CapCheck] = []
    if bridged:
        winner = state.winner or (state.active[0].target_id if state.active else None)
        leg = next((g for g in state.active if g.target_id == winner), None)
        state.tried.append({"target_id": winner or "?", "outcome": "connected"})
        extra = {
            "connected_seconds": params.dial_call_duration,
            "target_id": winner,
            "buyer_id": leg.buyer_id if leg else None,
        }
        target = next((t for t in config.targets if t.target_id == winner), None)
        if target is not None:
            for owner in config.cap_owners(target):
                counters += reservations.checks_for(
                    owner.counter_pk, owner.caps, now, owner.timezone, "connect"
                )
        stop: VoiceResponse | None = _hang_up()
    else:
        for leg in state.active:
            state.tried.append({"target_id": leg.target_id, "outcome": params.dial_call_status})
        state.ring_seconds += int(config.settings.get("ring_timeout_seconds", 20))
        caller_gone = params.call_status == "completed" or params.dial_call_status == "canceled"
        stop = _hang_up() if caller_gone else None
        if state.ring_seconds >= int(config.settings.get("max_ring_seconds", 90)):
            state.plan = []
    try:
        return advance(
            config,
            item,
            state,
            at=now,
            expected_attempt=int(item.attempt),
            release=release,
            counters=counters,
            extra=extra,
            stop=stop,
        )
    except AlreadyHandled:
        return _replay(params.call_sid)


# --- simultaneous offer ----------------------------------------------------------------------


def whisper(form: dict[str, str], attempt: str) -> VoiceResponse:
    """Played to each target offered the call at once: the first to press 1 gets it."""
    WhisperParams.model_validate(form)
    response = VoiceResponse()
    gather = Gather(
        num_digits=1,
        action=absolute_url(f"/voice/whisper/{attempt}/accept"),
        method="POST",
        timeout=6,
    )
    gather.say(ACCEPT_PROMPT)
    response.append(gather)
    response.hangup()
    return response


def whisper_accept(form: dict[str, str], attempt: str) -> VoiceResponse:
    params = WhisperParams.model_validate(form)
    if params.digits != "1":
        return _hang_up()
    item = _load(params.parent_call_sid)
    if item is None or str(item.attempt) != attempt:
        return _hang_up()
    state = RoutingState.from_json(item.routing)
    leg = next((g for g in state.active if g.destination == params.to), None)
    if leg is None:
        return _hang_up()
    try:
        item.update(
            actions=[CallItem.target_id.set(leg.target_id), CallItem.buyer_id.set(leg.buyer_id)],
            condition=CallItem.target_id.does_not_exist() & (CallItem.attempt == item.attempt),
        )
    except Exception as err:  # noqa: BLE001 - losing the race is an answer, not an error
        logger.info("another target accepted first", extra={"reason": type(err).__name__})
        return _hang_up()
    state.winner = leg.target_id
    _remember_winner(item, state)
    return VoiceResponse()  # an empty document bridges the call


def _remember_winner(item: CallItem, state: RoutingState) -> None:
    item.update(
        actions=[CallItem.routing.set(state.to_json())], condition=CallItem.attempt == item.attempt
    )


# --- final status --------------------------------------------------------------------------------


def record_status(form: dict[str, str]) -> VoiceResponse:
    """Final status: duration, conversion, revenue and payout once; counters settled."""
    params = StatusParams.model_validate(form)
    if params.call_status not in calls.FINAL_STATUSES:
        account_id = calls.note_progress(params.call_sid, params.call_status)
        if account_id:
            bind_call(account_id=account_id)
        return twiml.empty()
    item = _load(params.call_sid)
    if item is None or item.ended_at is not None:
        logger.info("status callback ignored (unknown call or already final)")
        return twiml.empty()
    config = _config(item)
    if config is None:
        calls.finish_call(params.call_sid, params.call_status, params.call_duration)
        return twiml.empty()
    now = utcnow()
    state = RoutingState.from_json(item.routing)
    release = [pk for leg in state.active for pk in leg.concurrency]
    state.active = []
    converted = _converted(config, item)
    pays = converted and (not item.duplicate or bool(config.settings.get("duplicates_pay")))
    payout = config.settings.get("payout_cents", 0)
    terms = publisher_terms(item.account_id, item.publisher_id) if item.publisher_id else None
    if terms is not None:
        payout = terms.payouts.get(config.campaign_id, payout)
    counters: list[reservations.CapCheck] = []
    target = next((t for t in config.targets if t.target_id == item.target_id), None)
    if converted and target is not None:
        for owner in config.cap_owners(target):
            counters += reservations.checks_for(
                owner.counter_pk, owner.caps, now, owner.timezone, "convert"
            )
    extra = {
        "status": params.call_status,
        "duration_seconds": params.call_duration,
        "ended_at": now,
        "converted": converted,
        "revenue_cents": int(config.settings.get("revenue_cents", 0)) if pays else 0,
        "payout_cents": int(payout) if pays else 0,
    }
    try:
        advance(
            config,
            item,
            state,
            at=now,
            expected_attempt=int(item.attempt),
            release=release,
            counters=counters,
            extra=extra,
            stop=twiml.empty(),
        )
    except (AlreadyHandled, TransactWriteError):
        logger.info("status callback already applied")
        return twiml.empty()
    for name, value in extra.items():
        setattr(item, name, value)
    pixels.fire(config, item, terms.pixels if terms else [], now)
    return twiml.empty()


def _converted(config: CampaignConfig, item: CallItem) -> bool:
    rule = config.settings.get("conversion") or {}
    connected = int(item.connected_seconds or 0)
    if connected <= 0:
        return False
    if rule.get("kind") == "tag":
        return calls.tags_of(item).get(rule.get("tag", "")) == rule.get("value")
    return connected >= int(rule.get("buffer_seconds", 90))
