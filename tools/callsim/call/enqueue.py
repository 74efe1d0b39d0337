"""<Enqueue> and <Leave>: the caller waiting in a queue, its waitUrl, the agent's bridge."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tools.callsim.call.flow import MAX_CALL_SECONDS, AppError, Ended, Goto, Left, Leg, Step
from tools.callsim.clock import CallerHangup, Dequeued, whole_seconds
from tools.callsim.rest import queue_sid
from tools.callsim.scenario import QueueBehaviour
from tools.callsim.transcript import CALLER
from tools.callsim.twiml import Document, Node, attr_method, attr_str

if TYPE_CHECKING:
    from tools.callsim.call.run import CallRun


def enqueue(run: CallRun, verb: Node, doc: Document) -> Step:
    name = verb.own_text
    action = attr_str(verb, "action")
    action_url = run.webhooks.resolve(action, doc.url) if action else ""
    method = attr_method(verb)
    wait_url = attr_str(verb, "waitUrl")
    wait_method = attr_method(verb, "waitUrlMethod")
    behaviour = run.queues.get(name, QueueBehaviour())
    sid = queue_sid(run.settings.account_sid, name)
    entered = run.clock.now
    run.event("enqueue", {"queue": name, "queue_sid": sid})

    def queue_params(result: str, since: float) -> dict[str, str]:
        return {
            "QueueResult": result,
            "QueueSid": sid,
            "QueueTime": str(whole_seconds(since - entered)),
        }

    if behaviour.full or behaviour.system_error:
        result, left_at = ("queue-full" if behaviour.full else "system-error"), entered
    else:
        token: int | None = None
        if behaviour.bridged_after is not None:
            # priority 1: a caller hanging up at the same instant wins over the agent.
            token = run.clock.add_deadline(entered + behaviour.bridged_after, Dequeued, priority=1)
        try:
            try:
                result = _wait_in_queue(run, name, sid, entered, wait_url, wait_method, doc)
                left_at = run.clock.now
            finally:
                if token is not None:
                    run.clock.remove_deadline(token)
        except Dequeued:
            left_at = run.clock.now
            run.event("bridge", {"queue": name, "by": "agent"})
            try:
                run.clock.advance(behaviour.talk)
            except CallerHangup:
                run.caller_hung_up()
                if action_url:
                    params = queue_params("bridged", left_at)
                    run.after_hangup_request(action_url, method, params, "enqueue-action")
                raise
            run.event("unbridge", {"queue": name, "ended_by": "agent"})
            result = "bridged"
        except CallerHangup:
            run.caller_hung_up()
            if action_url:
                params = queue_params("hangup", run.clock.now)
                run.after_hangup_request(action_url, method, params, "enqueue-action")
            raise
    run.event("dequeue", {"queue": name, "result": result})
    if result == "hangup":
        # <Hangup> in the waitUrl document ended the call itself.
        run.caller_gone = True
        if action_url:
            params = queue_params(result, left_at)
            run.after_hangup_request(action_url, method, params, "enqueue-action")
        return Ended("hangup")
    if action_url:
        return Goto(action_url, method, queue_params(result, left_at), "enqueue-action")
    return None


def leave(run: CallRun, leg: Leg) -> Step:
    if leg.role == "wait":
        run.event("leave", {}, leg.name)
        return Left()
    # Outside a queue there is nothing to leave; Twilio carries on.
    run.event("leave", {"ignored": True}, leg.name)
    return None


def _wait_in_queue(
    run: CallRun,
    name: str,
    sid: str,
    entered: float,
    wait_url: str,
    wait_method: str,
    doc: Document,
) -> str:
    """Run waitUrl until the caller leaves; returns the QueueResult (or raises)."""
    if not wait_url:
        # Default hold music until an agent, the caller or the duration limit ends it.
        run.event("play", {"url": "(default hold music)", "queue": name})
        run.clock.advance(2 * MAX_CALL_SECONDS)
        raise AssertionError("unreachable: the call duration limit interrupts the wait")
    url = run.webhooks.resolve(wait_url, doc.url)
    waiting = Leg(CALLER, "wait", run.caller_params, run.caller.inputs)
    while True:
        waited = whole_seconds(run.clock.now - entered)
        extra = {
            "QueueSid": sid,
            "QueuePosition": "1",
            "QueueTime": str(waited),
            "AvgQueueTime": str(waited),
            "CurrentQueueSize": "1",
            "MaxQueueSize": "100",
        }
        flow = run.run_chain(waiting, url, wait_method, extra, "wait-url")
        if isinstance(flow, Left):
            return "leave"
        if isinstance(flow, Ended):
            return "hangup"
        if isinstance(flow, AppError):
            return "error"
        # Twilio loops the waitUrl document for as long as the caller is queued.
