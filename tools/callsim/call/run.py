"""One inbound call's life: arrival, TwiML fetched and run verb by verb, end and status callback.

CallRun holds the call's state and what every verb needs (the virtual clock, events, signed
requests, documents fetched for a leg); the verbs themselves live in the sibling modules.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

from tools.callsim.call import dial, enqueue, record, verbs
from tools.callsim.call.flow import (
    MAX_CALL_SECONDS,
    ROLE_NAMES,
    ROLE_VERBS,
    AppError,
    DocEnd,
    Goto,
    Leg,
    Step,
    Terminal,
    geo_params,
    speech_seconds,
)
from tools.callsim.clock import CallerHangup, Interrupt, MaxDuration, VirtualClock, whole_seconds
from tools.callsim.rest import API_VERSION, Deferred
from tools.callsim.scenario import CallerScript, Geo, PartyBehaviour, QueueBehaviour
from tools.callsim.transcript import CALLER, Event, RequestRecord, Transcript
from tools.callsim.twiml import (
    Document,
    LoopError,
    Node,
    TwimlError,
    attr_bool,
    parse_document,
)
from tools.callsim.webhook import Webhooks, new_sid

APPLICATION_ERROR_TEXT = "We are sorry, an application error has occurred. Goodbye."


@dataclass(frozen=True)
class CallSettings:
    """How the CPaaS is set up towards the app, as it stood when the call was placed."""

    account_sid: str
    voice_path: str
    status_path: str | None
    strict: bool
    max_documents: int
    play_seconds: float
    audio_seconds: Mapping[str, float]
    start_time: datetime | None


class CallRun:
    """The mutable state and TwiML interpreter of one simulated call."""

    def __init__(
        self,
        *,
        settings: CallSettings,
        webhooks: Webhooks,
        rng: random.Random,
        from_: str,
        to: str,
        script: CallerScript,
        parties: dict[str, PartyBehaviour],
        default_party: PartyBehaviour,
        queues: dict[str, QueueBehaviour],
        extra_params: dict[str, str],
        caller_geo: Geo,
        called_geo: Geo,
    ) -> None:
        self.settings = settings
        self.webhooks = webhooks
        self.rng = rng
        self.from_ = from_
        self._to = to
        self._script = script
        self.parties = parties
        self.default_party = default_party
        self.queues = queues
        self.clock = VirtualClock()
        self.sid = new_sid("CA", rng)
        self.started = settings.start_time or datetime.now(UTC)
        self.transcript = Transcript(call_sid=self.sid, from_=from_, to=to)
        self._seq = 0
        self._order: list[tuple[float, int]] = []
        self.answered_at: float | None = None
        self.rejected: str | None = None
        self.caller_gone = False
        self.unanswered_dial_status: str | None = None
        self._documents = 0
        self.deferred: list[Deferred] = []
        self.base = {
            "AccountSid": settings.account_sid,
            "ApiVersion": API_VERSION,
            "CallSid": self.sid,
            "Direction": "inbound",
            "From": from_,
            "To": to,
            "Caller": from_,
            "Called": to,
            **geo_params("From", caller_geo),
            **geo_params("Caller", caller_geo),
            **geo_params("To", called_geo),
            **geo_params("Called", called_geo),
            **extra_params,
        }
        self.caller = Leg(
            name=CALLER,
            role="caller",
            params=self.caller_params,
            inputs=deque(script.inputs),
            recordings=deque(script.recordings),
        )

    # ----------------------------------------------------------------- call lifecycle

    def run(self) -> Transcript:
        clock = self.clock
        clock.add_deadline(MAX_CALL_SECONDS, MaxDuration, priority=1)
        if self._script.hangup_after is not None:
            clock.add_deadline(self._script.hangup_after, CallerHangup, priority=0)
        self.event("incoming", {"from": self.from_, "to": self._to, "call_sid": self.sid})
        error: TwimlError | None = None
        try:
            try:
                flow = self.run_chain(
                    self.caller,
                    self.webhooks.public_url(self.settings.voice_path),
                    "POST",
                    {},
                    "voice",
                )
                if isinstance(flow, AppError):
                    self._caller_application_error()
            except CallerHangup:
                self.caller_hung_up()
            except MaxDuration:
                self.event("hangup", {"by": "cpaas", "reason": "maximum call duration"})
        except TwimlError as exc:
            error = exc
            self.transcript.error = exc.message
            self.transcript.application_error = True
            self.event("error", {"message": exc.message, "application_error": True})
            self._caller_application_error()
        clock.clear()
        self._finish()
        if error is not None and self.settings.strict:
            error.transcript = self.transcript
            raise error
        return self.transcript

    def _finish(self) -> None:
        end = self.clock.now
        status = self._final_status(end)
        duration = 0 if self.answered_at is None else whole_seconds(end - self.answered_at)
        self.transcript.final_status = status
        self.transcript.duration = duration
        self.transcript.ended_at = end
        self.event("end", {"status": status, "duration": duration})
        self.caller_gone = True
        if self.settings.status_path is not None:
            timestamp = format_datetime(self.started + timedelta(seconds=end))
            params = {
                **self.base,
                "CallStatus": status,
                "CallDuration": str(duration),
                "Duration": str(math.ceil(duration / 60)),
                "Timestamp": timestamp,
                "CallbackSource": "call-progress-events",
                "SequenceNumber": "0",
            }
            url = self.webhooks.public_url(self.settings.status_path)
            self.request("POST", url, params, "status-callback", CALLER, kind="status")
        # Recording/transcription callbacks are asynchronous in Twilio and typically land
        # after the call has ended, so they are delivered last.
        for job in self.deferred:
            self.request(job.method, job.url, job.params, job.purpose, CALLER, kind="callback")
        # Dial legs are reported when they resolve, which may precede later-logged events.
        events = self.transcript.events
        paired = sorted(zip(self._order, events, strict=True), key=lambda p: p[0])
        self.transcript.events = [event for _, event in paired]

    def _final_status(self, end: float) -> str:
        if self.rejected is not None:
            # Twilio: <Reject> ends the call "busy" or "no-answer" depending on its reason.
            return "busy" if self.rejected == "busy" else "no-answer"
        if self.answered_at is None:
            if self.caller_gone:
                return "canceled"
            if self.unanswered_dial_status is not None:
                # answerOnBridge propagates the dialled party's ringing outcome to the caller.
                return self.unanswered_dial_status
            # Any response other than <Reject> gets the call answered, if only to hang up.
            self.answered_at = end
        return "completed"

    def caller_hung_up(self) -> None:
        if not self.caller_gone:
            self.caller_gone = True
            self.event("hangup", {"by": "caller"})

    def _caller_application_error(self) -> None:
        if self.caller_gone:
            return
        self.answer()
        self.event("say", {"text": APPLICATION_ERROR_TEXT, "system": True})
        try:
            self.clock.advance(speech_seconds(APPLICATION_ERROR_TEXT))
        except CallerHangup:
            self.caller_hung_up()
            return
        except Interrupt:
            pass
        self.event("hangup", {"by": "cpaas", "reason": "application error"})

    def answer(self) -> None:
        if self.answered_at is None and not self.caller_gone:
            self.answered_at = self.clock.now
            self.event("answer", {})

    # ----------------------------------------------------------------- params, events, HTTP

    def _status(self) -> str:
        if self.caller_gone:
            return "completed"
        return "ringing" if self.answered_at is None else "in-progress"

    def caller_params(self) -> dict[str, str]:
        return {**self.base, "CallStatus": self._status()}

    def event(
        self, kind: str, detail: dict[str, Any], leg: str = CALLER, at: float | None = None
    ) -> None:
        when = self.clock.now if at is None else at
        self.transcript.events.append(Event(at=when, kind=kind, detail=detail, leg=leg))
        self._order.append((when, self._seq))
        self._seq += 1

    def request(
        self,
        method: str,
        url: str,
        params: Mapping[str, str],
        purpose: str,
        leg: str,
        kind: str = "request",
    ) -> RequestRecord:
        rec = self.webhooks.request(method, url, params, at=self.clock.now, purpose=purpose)
        self.transcript.requests.append(rec)
        detail: dict[str, Any] = {
            "purpose": purpose,
            "method": method,
            "url": rec.url,
            "status_code": rec.status_code,
        }
        if rec.error:
            detail["error"] = rec.error
        self.event(kind, detail, leg)
        if kind != "request" and not rec.ok:
            self.event("error", {"message": f"{purpose} to {rec.url} failed: {_problem(rec)}"})
        return rec

    def after_hangup_request(
        self, url: str, method: str, params: dict[str, str], purpose: str
    ) -> None:
        # The caller is gone: Twilio still reports to the action URL but ignores the TwiML.
        rec = self.request(method, url, {**self.caller_params(), **params}, purpose, CALLER)
        if not rec.ok:
            self.event("error", {"message": f"{purpose} to {rec.url} failed: {_problem(rec)}"})

    def fetch(
        self, leg: Leg, url: str, method: str, extra: Mapping[str, str], purpose: str
    ) -> Document | None:
        self._documents += 1
        if self._documents > self.settings.max_documents:
            raise LoopError(
                f"loop guard: more than {self.settings.max_documents} TwiML documents fetched "
                f"in one call (next was {purpose} {url})"
            )
        rec = self.request(method, url, {**leg.params(), **extra}, purpose, leg.name)
        content_type = rec.content_type.split(";")[0].strip().lower()
        problem: str | None = None
        if not rec.ok:
            problem = _problem(rec)
        elif content_type.startswith("audio/"):
            # Twilio plays an audio response as if it were <Play>ed.
            play = Node("Play", {}, url, url, (), "/(audio response)")
            return Document(url=url, verbs=(play,))
        elif not rec.body.lstrip().startswith("<"):
            problem = f"non-XML response body (content-type {content_type or 'missing'})"
        if problem is not None:
            if self.webhooks.is_external(url):
                problem += (
                    f" (the URL is outside public_base_url {self.webhooks.public_base_url}; "
                    "relative TwiML URLs resolve against the current document URL)"
                )
            message = f"{purpose} {url}: {problem}"
            self.transcript.application_error = True
            self.transcript.error = self.transcript.error or message
            self.event("error", {"message": message, "application_error": True}, leg.name)
            return None
        doc = parse_document(rec.body, url)
        # Like Twilio, reject a document up front rather than after playing half of it.
        for verb in doc.verbs:
            if verb.tag not in ROLE_VERBS[leg.role]:
                raise TwimlError(
                    f"verb {verb.where()} is not allowed in a {ROLE_NAMES[leg.role]} document"
                )
        self.event("twiml", {"url": url, "verbs": [v.tag for v in doc.verbs]}, leg.name)
        return doc

    # ----------------------------------------------------------------- TwiML interpreter

    def run_chain(
        self, leg: Leg, url: str, method: str, extra: Mapping[str, str], purpose: str
    ) -> Terminal:
        """Fetch and run documents for `leg` until one ends without pointing to the next."""
        while True:
            doc = self.fetch(leg, url, method, extra, purpose)
            if doc is None:
                return AppError()
            step = self._execute(leg, doc)
            if not isinstance(step, Goto):
                return step
            url, method, extra, purpose = step.url, step.method, step.params, step.purpose

    def _execute(self, leg: Leg, doc: Document) -> Goto | Terminal:
        for verb in doc.verbs:
            answers = verb.tag != "Reject" and not (
                verb.tag == "Dial" and attr_bool(verb, "answerOnBridge", False)
            )
            if leg.role == "caller" and answers:
                self.answer()
            step = self.verb(leg, verb, doc)
            if step is not None:
                return step
        return DocEnd()

    def verb(self, leg: Leg, verb: Node, doc: Document) -> Step:
        match verb.tag:
            case "Say":
                verbs.say(self, leg, verb)
            case "Play":
                verbs.play(self, leg, verb, doc)
            case "Pause":
                verbs.pause(self, leg, verb)
            case "Gather":
                return verbs.gather(self, leg, verb, doc)
            case "Dial":
                return dial.dial(self, verb, doc)
            case "Record":
                return record.record(self, leg, verb, doc)
            case "Redirect":
                return verbs.redirect(self, leg, verb, doc)
            case "Hangup":
                return verbs.hangup(self, leg)
            case "Reject":
                return verbs.reject(self, leg, verb)
            case "Enqueue":
                return enqueue.enqueue(self, verb, doc)
            case "Leave":
                return enqueue.leave(self, leg)
            case _:  # pragma: no cover - parse_document rejects unknown verbs
                raise TwimlError(f"unknown verb {verb.where()}")
        return None


def _problem(rec: RequestRecord) -> str:
    if rec.status_code is None:
        return rec.error or "no response"
    return f"HTTP {rec.status_code}"
