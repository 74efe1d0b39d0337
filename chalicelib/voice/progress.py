"""Webhooks during a call: IVR answers, dial results (fall-through), whispers, final status."""

from __future__ import annotations

from typing import Any

from pynamodb.exceptions import DoesNotExist
from twilio.twiml.voice_response import Gather, VoiceResponse

from chalicelib.campaigns import CampaignConfig, load_campaign, publisher_terms
from chalicelib.clock import utcnow
from chalicelib.config import absolute_url
from chalicelib.observability import bind_call, logger
from chalicelib.store import calls, keys
from chalicelib.store.models import CallItem
from chalicelib.voice import ivr, pixels, twiml
from chalicelib.voice.dialing import (
    AlreadyHandled,
    RoutingState,
    advance,
    end_call,
    held_slots,
)
from chalicelib.voice.inbound import plan_for, replay
from chalicelib.voice.params import DialResultParams, GatherParams, StatusParams, WhisperParams

ACCEPT_PROMPT = "You have a new call. Press 1 to accept it."
RETRIES = 3  # reloads when another webhook of the same call moved it first


def load_call(call_sid: str) -> CallItem | None:
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
    item = load_call(params.call_sid)
    config = _config(item) if item else None
    tree = config.settings.ivr if config else None
    if item is None or config is None or tree is None:
        return twiml.fallback()
    state = RoutingState.from_json(item.routing)
    if state.ivr_node != node_name or str(state.ivr_tries) != tries or item.attempt != 0:
        return state.twiml or twiml.fallback()  # a retried or stale request
    if node_name not in tree.nodes:
        # The tree was edited during the call: start the caller at its beginning.
        state.ivr_node, state.ivr_tries = tree.start, 0
        return _save(item, config, state, ivr.prompt(tree, tree.start, 0))
    node = tree.nodes[node_name]
    answer = ivr.interpret(node, params.digits, params.speech)
    if answer.value is None:
        fallback = ivr.after_no_match(node, state.ivr_tries)
        if fallback is None:
            state.ivr_tries += 1
            return _save(item, config, state, ivr.prompt(tree, node_name, state.ivr_tries))
        answer = fallback
    tags = calls.tags_of(item)
    if answer.value is not None:
        tags[node.tag] = answer.value
    item.tags = tags
    if answer.next_node:
        state.ivr_node, state.ivr_tries = answer.next_node, 0
        return _save(item, config, state, ivr.prompt(tree, answer.next_node, 0), {"tags": tags})
    # Qualified: route with what the caller told us.
    now = utcnow()
    plan = plan_for(config, item, now)
    state.plan, state.excluded, state.ivr_node = plan.plan, plan.excluded, None
    try:
        return advance(config, item, state, at=now, extra={"tags": tags})
    except AlreadyHandled:
        return replay(params.call_sid)


def _save(
    item: CallItem,
    config: CampaignConfig,
    state: RoutingState,
    response: VoiceResponse,
    extra: dict[str, Any] | None = None,
) -> VoiceResponse | str:
    try:
        return advance(
            config,
            item,
            state,
            at=utcnow(),
            extra=extra,
            stop=response,
        )
    except AlreadyHandled:
        return replay(item.call_sid)


# --- dial results --------------------------------------------------------------------------------


def dial_result(form: dict[str, str], attempt: str) -> VoiceResponse | str:
    """A dialled target answered and the bridge ended, or it did not answer: fall through."""
    params = DialResultParams.model_validate(form)
    item = load_call(params.call_sid)
    config = _config(item) if item else None
    if item is None or config is None:
        return _hang_up()
    state = RoutingState.from_json(item.routing)
    if str(item.attempt) != attempt or item.ended_at is not None or not state.active:
        return state.twiml or _hang_up()  # already handled (a retry) or the call ended
    now = utcnow()
    release = held_slots(state)
    offered, state.active = state.active, []
    extra: dict[str, Any] = {}
    counters = []
    stop: VoiceResponse | None = None
    if params.dial_call_status in {"completed", "answered"}:
        winner = state.winner or offered[0].target_id
        leg = next((g for g in offered if g.target_id == winner), offered[0])
        state.tried.append({"target_id": winner, "outcome": "connected", "at": now.isoformat()})
        extra = {
            "connected_seconds": params.dial_call_duration,
            "target_id": winner,
            "buyer_id": leg.buyer_id,
        }
        if params.recording_url.startswith("https://"):
            extra["recording_url"] = params.recording_url
            extra["recording_seconds"] = params.recording_duration
        counters = [check for _, check in config.phase_checks([winner], now, "connect")]
        stop = _hang_up()
    else:
        for leg in offered:
            state.tried.append(
                {
                    "target_id": leg.target_id,
                    "outcome": params.dial_call_status,
                    "at": now.isoformat(),
                }
            )
        # A target that did not answer rang for the whole timeout; busy or failed ones did not.
        ring_timeout = config.settings.ring_timeout_seconds
        state.ring_seconds += ring_timeout if params.dial_call_status == "no-answer" else 5
        if params.call_status == "completed" or params.dial_call_status == "canceled":
            stop = _hang_up()  # the caller hung up while it rang
        elif state.ring_seconds >= config.settings.max_ring_seconds:
            state.plan = []
    try:
        return advance(
            config,
            item,
            state,
            at=now,
            release=release,
            counters=counters,
            extra=extra,
            stop=stop,
        )
    except AlreadyHandled:
        return replay(params.call_sid)


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
    """The first target to press 1 gets the call; the others' slots are given back at once."""
    params = WhisperParams.model_validate(form)
    if params.digits != "1":
        return _hang_up()
    item = load_call(params.parent_call_sid)
    config = _config(item) if item else None
    if item is None or config is None or str(item.attempt) != attempt:
        return _hang_up()
    state = RoutingState.from_json(item.routing)
    leg = next((g for g in state.active if g.destination == params.to), None)
    if leg is None or state.winner is not None:
        return _hang_up()
    winner_slots = set(leg.concurrency)
    losers = [pk for pk in held_slots(state) if pk not in winner_slots]
    state.active, state.winner = [leg], leg.target_id
    try:
        advance(
            config,
            item,
            state,
            at=utcnow(),
            release=losers,
            extra={"target_id": leg.target_id, "buyer_id": leg.buyer_id},
            stop=VoiceResponse(),
        )
    except AlreadyHandled:
        return _hang_up()  # another target accepted first
    return VoiceResponse()  # an empty document bridges the call


# --- final status --------------------------------------------------------------------------------


def record_status(form: dict[str, str]) -> VoiceResponse:
    """Final status: duration, conversion, revenue and payout once; slots and counters settled."""
    params = StatusParams.model_validate(form)
    if params.call_status not in calls.FINAL_STATUSES:
        account_id = calls.note_progress(params.call_sid, params.call_status)
        if account_id:
            bind_call(account_id=account_id)
        return twiml.empty()
    for _ in range(RETRIES):
        item = load_call(params.call_sid)
        if item is None or item.ended_at is not None:
            logger.info("status callback ignored (unknown call or already final)")
            return twiml.empty()
        config = _config(item)
        if config is None:
            calls.finish_call(params.call_sid, params.call_status, params.call_duration)
            return twiml.empty()
        try:
            _settle(config, item, params)
        except AlreadyHandled:
            continue  # a dial result moved the call meanwhile: read it again
        return twiml.empty()
    logger.warning("final status not applied after retries; the sweep will close the call")
    return twiml.empty()


def _settle(config: CampaignConfig, item: CallItem, params: StatusParams) -> None:
    now = utcnow()
    state = RoutingState.from_json(item.routing)
    converted = _converted(config, item)
    pays = converted and (not item.duplicate or config.settings.duplicates.pay)
    payout = config.settings.payout_cents
    terms = publisher_terms(item.account_id, item.publisher_id) if item.publisher_id else None
    if terms is not None:
        payout = terms.payouts.get(config.campaign_id, payout)
    revenue = config.settings.revenue_cents
    bid = state.bids.get(item.target_id or "")
    if bid is not None:
        # Won in the ring tree: the buyer pays its bid, the publisher gets its offer.
        revenue = int(bid["amount_cents"])
        if bid.get("payout_cents") is not None:
            payout = bid["payout_cents"]
    counters = (
        [check for _, check in config.phase_checks([item.target_id], now, "convert")]
        if converted and item.target_id
        else []
    )
    extra = {
        "status": params.call_status,
        "duration_seconds": params.call_duration,
        "converted": converted,
        "revenue_cents": revenue if pays else 0,
        "payout_cents": int(payout) if pays else 0,
    }
    end_call(config, item, state, at=now, extra=extra, counters=counters)
    for name, value in {**extra, "ended_at": now}.items():
        setattr(item, name, value)
    pixels.fire(config, item, terms.pixels if terms else (), now)


def _converted(config: CampaignConfig, item: CallItem) -> bool:
    rule = config.settings.conversion
    connected = int(item.connected_seconds or 0)
    if connected <= 0:
        return False
    if rule.kind == "tag":
        return calls.tags_of(item).get(rule.tag or "") == rule.value
    return connected >= rule.buffer_seconds
