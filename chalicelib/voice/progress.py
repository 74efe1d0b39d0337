"""Webhooks during a call: IVR answers, dial results (fall-through), whispers, final status."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from twilio.twiml.voice_response import Gather, VoiceResponse

from chalicelib.callflow.results import DialResult, Transition, after_accept, after_dial
from chalicelib.callflow.settlement import CallSoFar, settle
from chalicelib.callflow.state import RoutingState
from chalicelib.campaigns import CampaignConfig, load_campaign, publisher_terms
from chalicelib.clock import utcnow
from chalicelib.config import absolute_url
from chalicelib.observability import bind_call, logger
from chalicelib.store import calls
from chalicelib.store.models import CallItem
from chalicelib.store.routing_steps import CallChanges
from chalicelib.voice import ivr, pixels, twiml
from chalicelib.voice.dialing import AlreadyHandled, advance, end_call
from chalicelib.voice.inbound import plan_for, replay
from chalicelib.voice.params import DialResultParams, GatherParams, StatusParams, WhisperParams

ACCEPT_PROMPT = "You have a new call. Press 1 to accept it."
RETRIES = 3  # reloads when another webhook of the same call moved it first
CLOSED_WITHOUT_STATUS = "no-callback"  # the sweep's status for a call it closed


def load_call(call_sid: str) -> CallItem | None:
    item = calls.call_by_sid(call_sid)
    if item is None:
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
    if item.ended_at is not None or state.final is not None:
        return _hang_up()  # the caller hung up before this answer came: route nobody
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
        return _save(
            item, config, state, ivr.prompt(tree, answer.next_node, 0), CallChanges(tags=tags)
        )
    # Qualified: route with what the caller told us.
    now = utcnow()
    plan = plan_for(config, item, now)
    state.plan, state.excluded, state.ivr_node = plan.plan, plan.excluded, None
    try:
        return advance(config, item, state, at=now, changes=CallChanges(tags=tags))
    except AlreadyHandled:
        return replay(params.call_sid)


def _save(
    item: CallItem,
    config: CampaignConfig,
    state: RoutingState,
    response: VoiceResponse,
    changes: CallChanges | None = None,
) -> VoiceResponse | str:
    try:
        return advance(
            config,
            item,
            state,
            at=utcnow(),
            changes=changes,
            stop=response,
        )
    except AlreadyHandled:
        return replay(item.call_sid)


# --- dial results --------------------------------------------------------------------------------


def dial_result(
    form: dict[str, str], attempt: str, *, replayed: bool = False
) -> VoiceResponse | str:
    """A dialled target answered and the bridge ended, or it did not answer: fall through.

    The final status may have come first (it is kept on the call, and this result settles
    the call), and the sweep may have closed the call before this result came (the result
    is applied all the same, counting anew what the call earned), so any order of the
    CPaaS's callbacks ends in the same call record, counters and money. A `replayed`
    result (kept while the table was unavailable) offers nobody else: the CPaaS was
    answered with the fallback then.
    """
    params = DialResultParams.model_validate(form)
    result = DialResult(
        dial_status=params.dial_call_status,
        call_status=params.call_status,
        connected_seconds=params.dial_call_duration,
        recording_url=params.recording_url,
        recording_seconds=params.recording_duration,
    )
    for _ in range(RETRIES):
        item = load_call(params.call_sid)
        config = _config(item) if item else None
        if item is None or config is None:
            return _hang_up()
        try:
            return _apply_dial_result(config, item, attempt, result, replayed)
        except AlreadyHandled:
            continue  # another callback of the call moved it meanwhile: read it again
    # Still racing: the CPaaS (or the replay) tries again.
    raise AlreadyHandled(params.call_sid)


def _apply_dial_result(
    config: CampaignConfig, item: CallItem, attempt: str, result: DialResult, replayed: bool
) -> VoiceResponse | str:
    state = RoutingState.from_json(item.routing)
    late = item.ended_at is not None
    if str(item.attempt) != attempt or not state.active or (late and not state.released):
        return state.twiml or _hang_up()  # already handled (a retry) or the call ended
    now = utcnow()
    step = after_dial(config, state, result, now)
    if late or state.final is not None:
        return _settle_after_dial(config, item, state, step, late, now)
    return advance(
        config,
        item,
        step.state,
        at=now,
        release=step.release,
        changes=step.changes,
        stop=_hang_up() if step.stop or replayed else None,
    )


def _settle_after_dial(
    config: CampaignConfig,
    item: CallItem,
    before: RoutingState,
    step: Transition,
    late: bool,
    now: datetime,
) -> VoiceResponse | str:
    """The dial's result of a call whose final status came first (or that the sweep closed)."""
    state = step.state
    settlement = settle(config, state, so_far(config, item, state, step.changes))
    state.pending = []
    changes = step.changes | settlement.changes()
    release, count = step.release + settlement.release, []
    if late:
        # Everything was given back when the call was closed; count what it earned.
        given_back = set(release)
        count = [key for leg in before.active for key in leg.held() if key not in given_back]
        release = []
    else:
        final = state.final or {}
        changes = replace(
            changes,
            status=final.get("status", "completed"),
            duration_seconds=int(final.get("duration", 0)),
            ended_at=now,
        )
    advance(
        config,
        item,
        state,
        at=now,
        release=release,
        count=count,
        changes=changes,
        stop=_hang_up(),
    )
    # Closed without this result (the sweep sent its "completed" pixels): only a conversion
    # is news now.
    fire_pixels(config, item, now, only_conversion=late)
    return _hang_up()


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
    if item is None or config is None or str(item.attempt) != attempt or item.ended_at:
        return _hang_up()
    step = after_accept(config, RoutingState.from_json(item.routing), params.to)
    if step is None:
        return _hang_up()
    try:
        advance(
            config,
            item,
            step.state,
            at=utcnow(),
            release=step.release,
            changes=step.changes,
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
        if item is None:
            logger.info("status callback ignored (unknown call)")
            return twiml.empty()
        config = _config(item)
        if config is None:
            calls.finish_call(params.call_sid, params.call_status, params.call_duration)
            return twiml.empty()
        try:
            _apply_final(config, item, params)
        except AlreadyHandled:
            continue  # a dial result moved the call meanwhile: read it again
        return twiml.empty()
    # Still racing: kept and applied later (voice.replay), like a status the table refused.
    raise AlreadyHandled(params.call_sid)


def _apply_final(config: CampaignConfig, item: CallItem, params: StatusParams) -> None:
    now = utcnow()
    state = RoutingState.from_json(item.routing)
    facts = CallChanges(status=params.call_status, duration_seconds=params.call_duration)
    if item.ended_at is not None:
        if item.status == CLOSED_WITHOUT_STATUS:
            # Came after the sweep closed the call: only what the status itself says.
            advance(config, item, state, at=now, changes=facts, stop=twiml.empty())
        else:
            logger.info("status callback ignored (already final)")
        return
    if state.final is not None:
        return  # a repeated status while the dial's result is awaited
    if state.active:
        # The dial's result has not come yet: it settles the call. The call is over, so its
        # concurrency slots are given back now.
        state.final = {"status": params.call_status, "duration": params.call_duration}
        release = []
        for leg in state.active:
            release += leg.held("concurrency")
            leg.holds = [hold for hold in leg.holds if hold[2] != "concurrency"]
        advance(config, item, state, at=now, release=release, changes=facts, stop=twiml.empty())
        return
    settlement = settle(config, state, so_far(config, item, state, CallChanges()))
    state.pending = []
    end_call(
        config,
        item,
        state,
        at=now,
        changes=facts | settlement.changes(),
        release=settlement.release,
    )
    fire_pixels(config, item, now)


def so_far(
    config: CampaignConfig, item: CallItem, state: RoutingState, changes: CallChanges
) -> CallSoFar:
    terms = publisher_terms(item.account_id, item.publisher_id) if item.publisher_id else None
    return CallSoFar(
        connected_seconds=int(
            changes.connected_seconds
            if changes.connected_seconds is not None
            else item.connected_seconds or 0
        ),
        target_id=changes.target_id or item.target_id,
        duplicate=bool(item.duplicate),
        tags=calls.tags_of(item),
        publisher_payout_cents=terms.payouts.get(config.campaign_id) if terms else None,
    )


def fire_pixels(
    config: CampaignConfig, item: CallItem, now: datetime, *, only_conversion: bool = False
) -> None:
    terms = publisher_terms(item.account_id, item.publisher_id) if item.publisher_id else None
    pixels.fire(config, item, terms.pixels if terms else (), now, only_conversion=only_conversion)
