"""<Dial>: the child legs it rings (Number, Sip, Client, Queue), their whispers, the bridge.

Conferences and other <Dial> nouns belong next to this module as they are simulated.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tools.callsim.call.flow import DocEnd, Goto, Leg, Step, geo_params
from tools.callsim.call.record import recording_status_callback
from tools.callsim.clock import CallerHangup, whole_seconds
from tools.callsim.rest import API_VERSION, new_recording
from tools.callsim.scenario import Geo, PartyBehaviour
from tools.callsim.transcript import DialLegOutcome, DialOutcome
from tools.callsim.twiml import (
    Document,
    Node,
    attr_bool,
    attr_choice,
    attr_int,
    attr_method,
    attr_str,
    noun_target,
)
from tools.callsim.webhook import new_sid

if TYPE_CHECKING:
    from tools.callsim.call.run import CallRun

_RECORD_MODES = frozenset(
    {
        "do-not-record",
        "record-from-answer",
        "record-from-ringing",
        "record-from-answer-dual",
        "record-from-ringing-dual",
        "true",
        "false",
    }
)


@dataclass
class _Ring:
    """One dialled leg while <Dial> rings."""

    noun: Node
    kind: str
    target: str
    leg_to: str
    behaviour: PartyBehaviour
    call_sid: str
    answer_at: float | None = None
    final: str | None = None
    resolved_at: float | None = None


@dataclass(frozen=True)
class _DialContext:
    """What the end-of-<Dial> report needs to know about the <Dial> being executed."""

    verb: Node
    doc: Document
    rings: list[_Ring]
    t0: float
    action: str
    method: str
    record: str


def dial(run: CallRun, verb: Node, doc: Document) -> Step:
    timeout = attr_int(verb, "timeout", 30, minimum=1)
    time_limit = attr_int(verb, "timeLimit", 14400, minimum=1)
    action = attr_str(verb, "action")
    method = attr_method(verb)
    caller_id = attr_str(verb, "callerId") or run.from_
    record = attr_choice(verb, "record", "do-not-record", _RECORD_MODES)
    record = {"true": "record-from-answer", "false": "do-not-record"}.get(record, record)
    answer_on_bridge = attr_bool(verb, "answerOnBridge", False)
    nouns = verb.children or (Node("Number", {}, verb.text, verb.text, (), verb.path),)
    rings = [_ring_for(run, noun) for noun in nouns]
    t0 = run.clock.now
    run.event(
        "dial",
        {
            "targets": [r.target for r in rings],
            "timeout": timeout,
            "action": run.webhooks.resolve(action, doc.url) if action else None,
            "record": record,
            "answer_on_bridge": answer_on_bridge,
            "caller_id": caller_id,
            "time_limit": time_limit,
        },
    )
    ctx = _DialContext(
        verb=verb,
        doc=doc,
        rings=rings,
        t0=t0,
        action=run.webhooks.resolve(action, doc.url) if action else "",
        method=method,
        record=record,
    )
    try:
        winner = _ring_all(run, rings, t0, timeout, caller_id, doc)
    except CallerHangup:
        run.caller_hung_up()
        _dial_done(run, ctx, "canceled", None, None)
        raise
    if winner is None:
        finals = [r.final for r in rings]
        if all(f == "failed" for f in finals):
            status = "failed"
        elif all(f in {"busy", "failed"} for f in finals):
            status = "busy"
        else:
            status = "no-answer"
        if run.answered_at is None:
            run.unanswered_dial_status = status
        return _dial_done(run, ctx, status, None, None)
    if answer_on_bridge:
        run.answer()
    bridge_start = run.clock.now
    talk = winner.behaviour.talk
    run.event("bridge", {"target": winner.target, "call_sid": winner.call_sid})
    try:
        run.clock.advance(min(talk, time_limit))
    except CallerHangup:
        run.caller_hung_up()
        winner.final, winner.resolved_at = "completed", run.clock.now
        _dial_done(run, ctx, "completed", winner, run.clock.now - bridge_start)
        raise
    ended_by = "party" if talk <= time_limit else "timeLimit"
    run.event("unbridge", {"target": winner.target, "ended_by": ended_by})
    winner.final, winner.resolved_at = "completed", run.clock.now
    return _dial_done(run, ctx, "completed", winner, run.clock.now - bridge_start)


def _dial_done(
    run: CallRun, ctx: _DialContext, status: str, winner: _Ring | None, bridged: float | None
) -> Step:
    """Report the end of a <Dial>: DialOutcome, recording, action callback."""
    dial_sid = winner.call_sid if winner else ctx.rings[0].call_sid
    params = {
        "DialCallStatus": status,
        "DialCallSid": dial_sid,
        "DialBridged": "true" if winner else "false",
    }
    duration: int | None = None
    if winner is not None and bridged is not None:
        duration = whole_seconds(bridged)
        params["DialCallDuration"] = str(duration)
    recording_sid: str | None = None
    if winner is not None and bridged is not None and ctx.record != "do-not-record":
        from_ringing = "ringing" in ctx.record
        length = run.clock.now - ctx.t0 if from_ringing else bridged
        started = ctx.t0 if from_ringing else run.clock.now - bridged
        rec = new_recording(run.settings.account_sid, run.rng, length)
        recording_sid = rec["RecordingSid"]
        params |= rec
        channels = 2 if ctx.record.endswith("dual") else 1
        recording_status_callback(run, ctx.verb, ctx.doc, rec, "DialVerb", channels, started)
    run.transcript.dials.append(
        DialOutcome(
            at=ctx.t0,
            targets=[r.target for r in ctx.rings],
            status=status,
            dial_call_sid=dial_sid,
            bridged=winner is not None,
            duration=duration,
            winner=winner.target if winner else None,
            legs=[
                DialLegOutcome(
                    target=r.target,
                    noun=r.noun.tag,
                    call_sid=r.call_sid,
                    outcome=r.final or "canceled",
                    at=r.resolved_at if r.resolved_at is not None else run.clock.now,
                )
                for r in ctx.rings
            ],
            recording_sid=recording_sid,
        )
    )
    run.event("dial-end", dict(params))
    if not ctx.action:
        # No action: the caller carries on with the verb after <Dial> (Twilio docs).
        return None
    if run.caller_gone:
        run.after_hangup_request(ctx.action, ctx.method, params, "dial-action")
        return None
    return Goto(ctx.action, ctx.method, params, "dial-action")


def _ring_for(run: CallRun, noun: Node) -> _Ring:
    target = noun_target(noun)
    kind = noun.tag.lower()
    leg_to = f"client:{target}" if kind == "client" else target
    # A SIP URI's `?X-Header=value` part adds headers to the INVITE; the party it rings is
    # the address before it.
    address = target.split("?", 1)[0] if kind == "sip" else target
    behaviour = (
        run.parties.get(target)
        or run.parties.get(address)
        or run.parties.get(leg_to)
        or run.default_party
    )
    return _Ring(noun, kind, target, leg_to, behaviour, new_sid("CA", run.rng))


def _ring_all(
    run: CallRun, rings: list[_Ring], t0: float, timeout: int, caller_id: str, doc: Document
) -> _Ring | None:
    """Ring every noun at once; return the leg that answered (and passed its whisper)."""
    for ring in rings:
        b = ring.behaviour
        if b.outcome == "answer" and b.after <= timeout:
            ring.answer_at = t0 + b.after
        elif b.outcome in {"busy", "failed"} and b.after <= timeout:
            ring.final, ring.resolved_at = b.outcome, t0 + b.after
        else:
            ring.final, ring.resolved_at = "no-answer", t0 + timeout
    winner: _Ring | None = None
    try:
        # sorted() is stable, so equal ring times keep document order.
        for ring in sorted(
            (r for r in rings if r.answer_at is not None), key=lambda r: r.answer_at or 0.0
        ):
            run.clock.advance_to(max(run.clock.now, ring.answer_at or 0.0))
            answered: dict[str, Any] = {
                "target": ring.target,
                "call_sid": ring.call_sid,
                "outcome": "answered",
            }
            if "sendDigits" in ring.noun.attrs:
                answered["send_digits"] = ring.noun.attrs["sendDigits"]
            run.event("dial-leg", answered, ring.target)
            # Whispers run one at a time in answer order: a party that answered during
            # an earlier whisper waits its turn (a simplification of parallel legs).
            if "url" in ring.noun.attrs and not _whisper(run, ring, caller_id, doc):
                ring.final, ring.resolved_at = "rejected", run.clock.now
                continue
            winner = ring
            break
        if winner is None:
            end = max([r.resolved_at or 0.0 for r in rings] + [run.clock.now])
            run.clock.advance_to(end)
    finally:
        now = run.clock.now
        for ring in rings:
            if ring is winner:
                continue
            if ring.final is None or (ring.resolved_at or 0.0) > now:
                ring.final, ring.resolved_at = "canceled", now
            run.event(
                "dial-leg",
                {"target": ring.target, "call_sid": ring.call_sid, "outcome": ring.final},
                ring.target,
                at=ring.resolved_at,
            )
    return winner


def _whisper(run: CallRun, ring: _Ring, caller_id: str, doc: Document) -> bool:
    """Run a <Number url=...> document on the answering party; True if it ends normally."""
    url = run.webhooks.resolve(ring.noun.attrs["url"], doc.url)
    method = attr_method(ring.noun)

    def params() -> dict[str, str]:
        return {
            "AccountSid": run.settings.account_sid,
            "ApiVersion": API_VERSION,
            "CallSid": ring.call_sid,
            "ParentCallSid": run.sid,
            "CallStatus": "in-progress",
            "Direction": "outbound-dial",
            "From": caller_id,
            "To": ring.leg_to,
            "Caller": caller_id,
            "Called": ring.leg_to,
            **geo_params("From", Geo()),
            **geo_params("To", Geo()),
        }

    party = Leg(ring.target, "whisper", params, deque(ring.behaviour.whisper_digits))
    if ring.behaviour.hangup_in_whisper:
        run.fetch(party, url, method, {}, "whisper")
        run.event("hangup", {"by": "party", "during": "whisper"}, ring.target)
        return False
    flow = run.run_chain(party, url, method, {}, "whisper")
    return isinstance(flow, DocEnd)
