"""CallSimulator: plays the CPaaS (Twilio) side of inbound calls against a running app."""

from __future__ import annotations

import hashlib
import math
import random
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from types import TracebackType
from typing import Any, Literal, TypeAlias

import httpx

from tools.callsim.clock import CallerHangup, Dequeued, Interrupt, MaxDuration, VirtualClock
from tools.callsim.model import (
    CallerScript,
    GatherInput,
    Geo,
    NoInput,
    PartyBehaviour,
    QueueBehaviour,
    RecordingInput,
    Speech,
)
from tools.callsim.transcript import (
    CALLER,
    DialLegOutcome,
    DialOutcome,
    Event,
    RequestRecord,
    Transcript,
)
from tools.callsim.twiml import (
    SUPPORTED_VERBS,
    Document,
    LoopError,
    Node,
    TwimlError,
    attr_bool,
    attr_choice,
    attr_float,
    attr_int,
    attr_keys,
    attr_method,
    attr_str,
    noun_target,
    parse_document,
)
from tools.callsim.webhook import TIMEOUT, Webhooks, new_sid

DEFAULT_ACCOUNT_SID = "AC" + "5e1f0c0ffee0000000000000000ca115"
API_VERSION = "2010-04-01"
API_ROOT = f"https://api.twilio.com/{API_VERSION}"
APPLICATION_ERROR_TEXT = "We are sorry, an application error has occurred. Goodbye."
WORDS_PER_SECOND = 2.5  # typical TTS speaking rate
KEY_SECONDS = 0.5  # time a caller takes per DTMF key
SPEECH_END_SECONDS = 1.0  # speechTimeout="auto": silence that ends an utterance
MAX_CALL_SECONDS = 14400.0  # Twilio's default maximum call duration (4 h)
LOOP_FOREVER = 1000  # loop="0" repeats until hangup; Twilio caps it at 1000
ANSWER = PartyBehaviour()  # parties not named in `parties`: answer after 2 s, talk 60 s
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
_WHISPER_VERBS = frozenset({"Say", "Play", "Pause", "Gather", "Redirect", "Hangup", "Reject"})
_WAIT_VERBS = frozenset({"Say", "Play", "Pause", "Gather", "Redirect", "Hangup", "Leave"})

Role: TypeAlias = Literal["caller", "whisper", "wait"]
_ROLE_VERBS: dict[Role, frozenset[str]] = {
    "caller": SUPPORTED_VERBS,
    "whisper": _WHISPER_VERBS,
    "wait": _WAIT_VERBS,
}
_ROLE_NAMES: dict[Role, str] = {
    "caller": "call",
    "whisper": "whisper (<Dial> noun url)",
    "wait": "<Enqueue> waitUrl",
}


@dataclass(frozen=True)
class _Goto:
    """Fetch another document (action callback, redirect); it replaces the current one."""

    url: str
    method: str
    params: dict[str, str]
    purpose: str


@dataclass(frozen=True)
class _DocEnd:
    """The document ran out of verbs."""


@dataclass(frozen=True)
class _Ended:
    """<Hangup>/<Reject> ended the leg."""

    reason: str


@dataclass(frozen=True)
class _Left:
    """<Leave> took the caller out of the queue."""


@dataclass(frozen=True)
class _AppError:
    """A webhook failed; what the leg hears is 'an application error has occurred'."""


_Terminal: TypeAlias = _DocEnd | _Ended | _Left | _AppError
_Step: TypeAlias = _Goto | _Terminal | None


@dataclass
class _Leg:
    """Who TwiML is executing for: the caller, a dialled party (whisper) or a queued caller."""

    name: str
    role: Role
    params: Callable[[], dict[str, str]]
    inputs: deque[GatherInput]
    recordings: deque[RecordingInput] = field(default_factory=deque)


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


@dataclass(frozen=True)
class _Deferred:
    """An asynchronous callback the CPaaS sends later (recording status, transcription)."""

    url: str
    method: str
    params: dict[str, str]
    purpose: str


class CallSimulator:
    """Places simulated inbound calls against an app over real HTTP, as Twilio would.

    Requests go to `base_url`; signatures are computed over `public_base_url` (what the
    app believes its public address is). With `strict`, invalid TwiML raises TwimlError
    (carrying the finished transcript); otherwise it is only recorded.
    """

    def __init__(
        self,
        base_url: str,
        auth_token: str,
        *,
        public_base_url: str | None = None,
        client: httpx.Client | None = None,
        account_sid: str = DEFAULT_ACCOUNT_SID,
        voice_path: str = "/voice/inbound",
        status_path: str | None = "/voice/status",
        strict: bool = True,
        max_documents: int = 50,
        play_seconds: float = 5.0,
        audio_seconds: Mapping[str, float] | None = None,
        seed: int | None = None,
        start_time: datetime | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.public_base_url = (public_base_url or base_url).rstrip("/")
        self.account_sid = account_sid
        self.voice_path = voice_path
        self.status_path = status_path
        self.strict = strict
        self.max_documents = max_documents
        self.play_seconds = play_seconds
        self.audio_seconds = dict(audio_seconds or {})
        self.start_time = start_time
        self._rng = random.Random(seed)
        self._owns_client = client is None
        self._client = client or httpx.Client(timeout=TIMEOUT)
        self._webhooks = Webhooks(
            self._client, auth_token, self.base_url, self.public_base_url, self._rng
        )

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> CallSimulator:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def place_call(
        self,
        from_: str,
        to: str,
        *,
        script: CallerScript | None = None,
        parties: Mapping[str, PartyBehaviour] | None = None,
        default_party: PartyBehaviour = ANSWER,
        queues: Mapping[str, QueueBehaviour] | None = None,
        extra_params: Mapping[str, str] | None = None,
        caller_geo: Geo | None = None,
        called_geo: Geo | None = None,
    ) -> Transcript:
        """Run one inbound call to completion and return its transcript."""
        run = _CallRun(
            sim=self,
            webhooks=self._webhooks,
            rng=self._rng,
            from_=from_,
            to=to,
            script=script or CallerScript(),
            parties=dict(parties or {}),
            default_party=default_party,
            queues=dict(queues or {}),
            extra_params=dict(extra_params or {}),
            caller_geo=caller_geo or Geo(),
            called_geo=called_geo or Geo(),
        )
        return run.run()


class _CallRun:
    """The mutable state and TwiML interpreter of one simulated call."""

    def __init__(
        self,
        *,
        sim: CallSimulator,
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
        self._sim = sim
        self._webhooks = webhooks
        self._rng = rng
        self._from = from_
        self._to = to
        self._script = script
        self._parties = parties
        self._default_party = default_party
        self._queues = queues
        self._clock = VirtualClock()
        self._sid = new_sid("CA", rng)
        self._started = sim.start_time or datetime.now(UTC)
        self._t = Transcript(call_sid=self._sid, from_=from_, to=to)
        self._seq = 0
        self._order: list[tuple[float, int]] = []
        self._answered_at: float | None = None
        self._rejected: str | None = None
        self._caller_gone = False
        self._unanswered_dial_status: str | None = None
        self._documents = 0
        self._deferred: list[_Deferred] = []
        self._base = {
            "AccountSid": sim.account_sid,
            "ApiVersion": API_VERSION,
            "CallSid": self._sid,
            "Direction": "inbound",
            "From": from_,
            "To": to,
            "Caller": from_,
            "Called": to,
            **_geo_params("From", caller_geo),
            **_geo_params("Caller", caller_geo),
            **_geo_params("To", called_geo),
            **_geo_params("Called", called_geo),
            **extra_params,
        }
        self._caller = _Leg(
            name=CALLER,
            role="caller",
            params=self._caller_params,
            inputs=deque(script.inputs),
            recordings=deque(script.recordings),
        )

    # ----------------------------------------------------------------- call lifecycle

    def run(self) -> Transcript:
        clock = self._clock
        clock.add_deadline(MAX_CALL_SECONDS, MaxDuration, priority=1)
        if self._script.hangup_after is not None:
            clock.add_deadline(self._script.hangup_after, CallerHangup, priority=0)
        self._event("incoming", {"from": self._from, "to": self._to, "call_sid": self._sid})
        error: TwimlError | None = None
        try:
            try:
                flow = self._run_chain(
                    self._caller,
                    self._webhooks.public_url(self._sim.voice_path),
                    "POST",
                    {},
                    "voice",
                )
                if isinstance(flow, _AppError):
                    self._caller_application_error()
            except CallerHangup:
                self._caller_hung_up()
            except MaxDuration:
                self._event("hangup", {"by": "cpaas", "reason": "maximum call duration"})
        except TwimlError as exc:
            error = exc
            self._t.error = exc.message
            self._t.application_error = True
            self._event("error", {"message": exc.message, "application_error": True})
            self._caller_application_error()
        clock.clear()
        self._finish()
        if error is not None and self._sim.strict:
            error.transcript = self._t
            raise error
        return self._t

    def _finish(self) -> None:
        end = self._clock.now
        status = self._final_status(end)
        duration = 0 if self._answered_at is None else _whole_seconds(end - self._answered_at)
        self._t.final_status = status
        self._t.duration = duration
        self._t.ended_at = end
        self._event("end", {"status": status, "duration": duration})
        self._caller_gone = True
        if self._sim.status_path is not None:
            timestamp = format_datetime(self._started + timedelta(seconds=end))
            params = {
                **self._base,
                "CallStatus": status,
                "CallDuration": str(duration),
                "Duration": str(math.ceil(duration / 60)),
                "Timestamp": timestamp,
                "CallbackSource": "call-progress-events",
                "SequenceNumber": "0",
            }
            url = self._webhooks.public_url(self._sim.status_path)
            self._request("POST", url, params, "status-callback", CALLER, kind="status")
        # Recording/transcription callbacks are asynchronous in Twilio and typically land
        # after the call has ended, so they are delivered last.
        for job in self._deferred:
            self._request(job.method, job.url, job.params, job.purpose, CALLER, kind="callback")
        # Dial legs are reported when they resolve, which may precede later-logged events.
        paired = sorted(zip(self._order, self._t.events, strict=True), key=lambda p: p[0])
        self._t.events = [event for _, event in paired]

    def _final_status(self, end: float) -> str:
        if self._rejected is not None:
            # Twilio: <Reject> ends the call "busy" or "no-answer" depending on its reason.
            return "busy" if self._rejected == "busy" else "no-answer"
        if self._answered_at is None:
            if self._caller_gone:
                return "canceled"
            if self._unanswered_dial_status is not None:
                # answerOnBridge propagates the dialled party's ringing outcome to the caller.
                return self._unanswered_dial_status
            # Any response other than <Reject> gets the call answered, if only to hang up.
            self._answered_at = end
        return "completed"

    def _caller_hung_up(self) -> None:
        if not self._caller_gone:
            self._caller_gone = True
            self._event("hangup", {"by": "caller"})

    def _caller_application_error(self) -> None:
        if self._caller_gone:
            return
        self._answer()
        self._event("say", {"text": APPLICATION_ERROR_TEXT, "system": True})
        try:
            self._clock.advance(_speech_seconds(APPLICATION_ERROR_TEXT))
        except CallerHangup:
            self._caller_hung_up()
            return
        except Interrupt:
            pass
        self._event("hangup", {"by": "cpaas", "reason": "application error"})

    def _answer(self) -> None:
        if self._answered_at is None and not self._caller_gone:
            self._answered_at = self._clock.now
            self._event("answer", {})

    # ----------------------------------------------------------------- params, events, HTTP

    def _status(self) -> str:
        if self._caller_gone:
            return "completed"
        return "ringing" if self._answered_at is None else "in-progress"

    def _caller_params(self) -> dict[str, str]:
        return {**self._base, "CallStatus": self._status()}

    def _event(
        self, kind: str, detail: dict[str, Any], leg: str = CALLER, at: float | None = None
    ) -> None:
        when = self._clock.now if at is None else at
        self._t.events.append(Event(at=when, kind=kind, detail=detail, leg=leg))
        self._order.append((when, self._seq))
        self._seq += 1

    def _request(
        self,
        method: str,
        url: str,
        params: Mapping[str, str],
        purpose: str,
        leg: str,
        kind: str = "request",
    ) -> RequestRecord:
        rec = self._webhooks.request(method, url, params, at=self._clock.now, purpose=purpose)
        self._t.requests.append(rec)
        detail: dict[str, Any] = {
            "purpose": purpose,
            "method": method,
            "url": rec.url,
            "status_code": rec.status_code,
        }
        if rec.error:
            detail["error"] = rec.error
        self._event(kind, detail, leg)
        if kind != "request" and not rec.ok:
            self._event("error", {"message": f"{purpose} to {rec.url} failed: {_problem(rec)}"})
        return rec

    def _after_hangup_request(
        self, url: str, method: str, params: dict[str, str], purpose: str
    ) -> None:
        # The caller is gone: Twilio still reports to the action URL but ignores the TwiML.
        rec = self._request(method, url, {**self._caller_params(), **params}, purpose, CALLER)
        if not rec.ok:
            self._event("error", {"message": f"{purpose} to {rec.url} failed: {_problem(rec)}"})

    def _fetch(
        self, leg: _Leg, url: str, method: str, extra: Mapping[str, str], purpose: str
    ) -> Document | None:
        self._documents += 1
        if self._documents > self._sim.max_documents:
            raise LoopError(
                f"loop guard: more than {self._sim.max_documents} TwiML documents fetched "
                f"in one call (next was {purpose} {url})"
            )
        rec = self._request(method, url, {**leg.params(), **extra}, purpose, leg.name)
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
            if self._webhooks.is_external(url):
                problem += (
                    f" (the URL is outside public_base_url {self._webhooks.public_base_url}; "
                    "relative TwiML URLs resolve against the current document URL)"
                )
            message = f"{purpose} {url}: {problem}"
            self._t.application_error = True
            self._t.error = self._t.error or message
            self._event("error", {"message": message, "application_error": True}, leg.name)
            return None
        doc = parse_document(rec.body, url)
        # Like Twilio, reject a document up front rather than after playing half of it.
        for verb in doc.verbs:
            if verb.tag not in _ROLE_VERBS[leg.role]:
                raise TwimlError(
                    f"verb {verb.where()} is not allowed in a {_ROLE_NAMES[leg.role]} document"
                )
        self._event("twiml", {"url": url, "verbs": [v.tag for v in doc.verbs]}, leg.name)
        return doc

    # ----------------------------------------------------------------- TwiML interpreter

    def _run_chain(
        self, leg: _Leg, url: str, method: str, extra: Mapping[str, str], purpose: str
    ) -> _Terminal:
        while True:
            doc = self._fetch(leg, url, method, extra, purpose)
            if doc is None:
                return _AppError()
            step = self._execute(leg, doc)
            if not isinstance(step, _Goto):
                return step
            url, method, extra, purpose = step.url, step.method, step.params, step.purpose

    def _execute(self, leg: _Leg, doc: Document) -> _Goto | _Terminal:
        for verb in doc.verbs:
            answers = verb.tag != "Reject" and not (
                verb.tag == "Dial" and attr_bool(verb, "answerOnBridge", False)
            )
            if leg.role == "caller" and answers:
                self._answer()
            step = self._verb(leg, verb, doc)
            if step is not None:
                return step
        return _DocEnd()

    def _verb(self, leg: _Leg, verb: Node, doc: Document) -> _Step:
        match verb.tag:
            case "Say":
                self._say(leg, verb)
            case "Play":
                self._play(leg, verb, doc)
            case "Pause":
                self._pause(leg, verb)
            case "Gather":
                return self._gather(leg, verb, doc)
            case "Dial":
                return self._dial(verb, doc)
            case "Record":
                return self._record(leg, verb, doc)
            case "Redirect":
                return self._redirect(leg, verb, doc)
            case "Hangup":
                self._event("hangup", {"by": "app"}, leg.name)
                return _Ended("hangup")
            case "Reject":
                return self._reject(leg, verb)
            case "Enqueue":
                return self._enqueue(verb, doc)
            case "Leave":
                if leg.role == "wait":
                    self._event("leave", {}, leg.name)
                    return _Left()
                # Outside a queue there is nothing to leave; Twilio carries on.
                self._event("leave", {"ignored": True}, leg.name)
            case _:  # pragma: no cover - parse_document rejects unknown verbs
                raise TwimlError(f"unknown verb {verb.where()}")
        return None

    def _say(self, leg: _Leg, verb: Node) -> None:
        times = _loops(verb)
        detail: dict[str, Any] = {"text": verb.text}
        for name in ("voice", "language"):
            if name in verb.attrs:
                detail[name] = verb.attrs[name]
        for _ in range(times):
            self._event("say", dict(detail), leg.name)
            self._clock.advance(_speech_seconds(verb.text))

    def _play(self, leg: _Leg, verb: Node, doc: Document) -> None:
        url = verb.text
        digits = attr_str(verb, "digits")
        if not url and not digits:
            raise TwimlError(f"<Play> needs a URL or digits at {verb.path}")
        if digits:
            bad = [k for k in digits if k not in "0123456789*#wW"]
            if bad:
                raise TwimlError(f"invalid digits={digits!r} on {verb.where()}")
            # DTMF playback: 'w' waits half a second, each tone takes a tenth.
            seconds = sum(0.5 if k in "wW" else 0.1 for k in digits)
            self._event("play", {"digits": digits}, leg.name)
            self._clock.advance(seconds)
            return
        public = self._webhooks.resolve(url, doc.url)
        known = self._sim.audio_seconds
        seconds = known.get(url, known.get(public, self._sim.play_seconds))
        for _ in range(_loops(verb)):
            self._event("play", {"url": public}, leg.name)
            self._clock.advance(seconds)

    def _pause(self, leg: _Leg, verb: Node) -> None:
        length = attr_int(verb, "length", 1)
        self._event("pause", {"length": length}, leg.name)
        self._clock.advance(length)

    def _gather(self, leg: _Leg, verb: Node, doc: Document) -> _Step:
        modes = set(attr_str(verb, "input", "dtmf").split())
        if not modes or not modes <= {"dtmf", "speech"}:
            raise TwimlError(f"invalid input={verb.attrs.get('input')!r} on {verb.where()}")
        num_digits = attr_int(verb, "numDigits", 0, minimum=1) if "numDigits" in verb.attrs else 0
        finish = attr_keys(verb, "finishOnKey", "#")
        if len(finish) > 1:
            raise TwimlError(f"invalid finishOnKey={finish!r} on {verb.where()} (one key)")
        timeout = attr_int(verb, "timeout", 5)
        speech_timeout = verb.attrs.get("speechTimeout", "auto").strip()
        speech_wait = (
            SPEECH_END_SECONDS
            if speech_timeout in {"", "auto"}
            else attr_float(verb, "speechTimeout", SPEECH_END_SECONDS)
        )
        action = self._webhooks.resolve(attr_str(verb, "action") or doc.url, doc.url)
        method = attr_method(verb)
        on_empty = attr_bool(verb, "actionOnEmptyResult", False)
        # Nested prompts play in full before the scripted caller reacts (no barge-in).
        for child in verb.children:
            self._verb(leg, child, doc)
        item: GatherInput = leg.inputs.popleft() if leg.inputs else NoInput()
        detail: dict[str, Any] = {"input": " ".join(sorted(modes)), "action": action}
        if isinstance(item, str) and "dtmf" in modes:
            digits, key = _collect_digits(item, num_digits, finish)
            self._clock.advance((len(digits) + len(key)) * KEY_SECONDS)
            if not key and not (num_digits and len(digits) >= num_digits):
                # Neither numDigits nor finishOnKey ended it: Twilio waits `timeout` more.
                self._clock.advance(timeout)
            if digits:
                detail |= {"digits": digits, "finished_on_key": key}
                self._event("gather", detail, leg.name)
                params = {"Digits": digits, "FinishedOnKey": key, "msg": "Gather End"}
                return _Goto(action, method, params, "gather-action")
        elif isinstance(item, Speech) and "speech" in modes:
            self._clock.advance(_speech_seconds(item.text) + speech_wait)
            if item.text.strip():
                detail |= {"speech": item.text, "confidence": item.confidence}
                self._event("gather", detail, leg.name)
                params = {
                    "SpeechResult": item.text,
                    "Confidence": f"{item.confidence:.8f}".rstrip("0").rstrip("."),
                    "Language": attr_str(verb, "language", "en-US"),
                }
                return _Goto(action, method, params, "gather-action")
        else:
            # Silence, or input this <Gather> is not listening for: it times out.
            if not isinstance(item, NoInput):
                detail["ignored_input"] = repr(item)
            self._clock.advance(timeout)
        detail["action_on_empty"] = on_empty
        self._event("gather", detail, leg.name)
        if on_empty:
            return _Goto(action, method, {"Digits": "", "msg": "Gather End"}, "gather-action")
        return None

    def _redirect(self, leg: _Leg, verb: Node, doc: Document) -> _Goto:
        if not verb.text:
            raise TwimlError(f"<Redirect> needs a URL at {verb.path}")
        url = self._webhooks.resolve(verb.text, doc.url)
        method = attr_method(verb)
        self._event("redirect", {"url": url, "method": method}, leg.name)
        return _Goto(url, method, {}, "redirect")

    def _reject(self, leg: _Leg, verb: Node) -> _Ended:
        reason = attr_choice(verb, "reason", "rejected", frozenset({"rejected", "busy"}))
        if leg.role == "caller" and self._answered_at is None:
            self._rejected = reason
            self._event("reject", {"reason": reason}, leg.name)
            return _Ended("reject")
        # Once answered, <Reject> can only hang up.
        self._event("hangup", {"by": "app", "verb": "Reject", "reason": reason}, leg.name)
        return _Ended("hangup")

    # ----------------------------------------------------------------- <Record>

    def _record(self, leg: _Leg, verb: Node, doc: Document) -> _Step:
        action = self._webhooks.resolve(attr_str(verb, "action") or doc.url, doc.url)
        method = attr_method(verb)
        timeout = attr_int(verb, "timeout", 5)
        finish = attr_keys(verb, "finishOnKey", "1234567890*#")
        max_length = attr_int(verb, "maxLength", 3600) or 3600
        trim = attr_choice(verb, "trim", "trim-silence", frozenset({"trim-silence", "do-not-trim"}))
        beep = attr_bool(verb, "playBeep", True)
        transcribe_cb = attr_str(verb, "transcribeCallback")
        transcribe = attr_bool(verb, "transcribe", False) or bool(transcribe_cb)
        item = leg.recordings.popleft() if leg.recordings else None
        start = self._clock.now
        if item is None:
            # Nothing said: Twilio discards the empty recording, skips the action URL and
            # carries on with the next verb.
            self._clock.advance(timeout or max_length)
            self._event("record", {"empty": True, "beep": beep}, leg.name)
            return None
        spoken = item.seconds if item.seconds is not None else max(1.0, _speech_seconds(item.words))
        digits = ""
        try:
            if spoken >= max_length:
                self._clock.advance(max_length)
                length = float(max_length)
            elif item.finish_key and item.finish_key in finish:
                self._clock.advance(spoken)
                digits, length = item.finish_key, spoken
            else:
                silence = timeout if timeout > 0 else max_length - spoken
                self._clock.advance(spoken + silence)
                length = spoken if trim == "trim-silence" else spoken + silence
        except CallerHangup:
            self._caller_hung_up()
            length = self._clock.now - start
            rec_params = self._new_recording(
                verb, doc, start, length, item, transcribe, transcribe_cb
            )
            self._after_hangup_request(
                action, method, {**rec_params, "Digits": "hangup"}, "record-action"
            )
            raise
        rec_params = self._new_recording(verb, doc, start, length, item, transcribe, transcribe_cb)
        self._event(
            "record",
            {"duration": rec_params["RecordingDuration"], "digits": digits, "beep": beep},
            leg.name,
        )
        return _Goto(action, method, {**rec_params, "Digits": digits}, "record-action")

    def _new_recording(
        self,
        verb: Node,
        doc: Document,
        start: float,
        length: float,
        item: RecordingInput,
        transcribe: bool,
        transcribe_cb: str,
    ) -> dict[str, str]:
        sid = new_sid("RE", self._rng)
        url = self._recording_url(sid)
        seconds = _whole_seconds(length)
        params = {"RecordingUrl": url, "RecordingSid": sid, "RecordingDuration": str(seconds)}
        self._recording_status_callback(verb, doc, params, "RecordVerb", 1, start)
        if transcribe and transcribe_cb:
            text = item.transcription if item.transcription is not None else item.words
            # Twilio only transcribes recordings between 2 and 120 seconds long.
            ok = bool(text.strip()) and 2 <= seconds <= 120
            tr_sid = new_sid("TR", self._rng)
            base = f"{API_ROOT}/Accounts/{self._sim.account_sid}"
            self._deferred.append(
                _Deferred(
                    url=self._webhooks.resolve(transcribe_cb, doc.url),
                    method="POST",
                    params={
                        **self._base,
                        "CallStatus": "completed",
                        "TranscriptionSid": tr_sid,
                        "TranscriptionText": text if ok else "",
                        "TranscriptionStatus": "completed" if ok else "failed",
                        "TranscriptionUrl": f"{base}/Recordings/{sid}/Transcriptions/{tr_sid}",
                        "TranscriptionType": "fast",
                        "RecordingSid": sid,
                        "RecordingUrl": url,
                    },
                    purpose="transcribe-callback",
                )
            )
        return params

    def _recording_status_callback(
        self,
        verb: Node,
        doc: Document,
        rec: dict[str, str],
        source: str,
        channels: int,
        started_at: float,
    ) -> None:
        callback = attr_str(verb, "recordingStatusCallback")
        if not callback:
            return
        events = attr_str(verb, "recordingStatusCallbackEvent", "completed").replace(",", " ")
        if "completed" not in events.split():
            return
        self._deferred.append(
            _Deferred(
                url=self._webhooks.resolve(callback, doc.url),
                method=attr_method(verb, "recordingStatusCallbackMethod"),
                params={
                    "AccountSid": self._sim.account_sid,
                    "CallSid": self._sid,
                    "RecordingSid": rec["RecordingSid"],
                    "RecordingUrl": rec["RecordingUrl"],
                    "RecordingStatus": "completed",
                    "RecordingDuration": rec["RecordingDuration"],
                    "RecordingChannels": str(channels),
                    "RecordingSource": source,
                    "RecordingStartTime": format_datetime(
                        self._started + timedelta(seconds=started_at)
                    ),
                    "ErrorCode": "0",
                },
                purpose="recording-status-callback",
            )
        )

    def _recording_url(self, sid: str) -> str:
        return f"{API_ROOT}/Accounts/{self._sim.account_sid}/Recordings/{sid}"

    # ----------------------------------------------------------------- <Dial>

    def _dial(self, verb: Node, doc: Document) -> _Step:
        timeout = attr_int(verb, "timeout", 30, minimum=1)
        time_limit = attr_int(verb, "timeLimit", 14400, minimum=1)
        action = attr_str(verb, "action")
        method = attr_method(verb)
        caller_id = attr_str(verb, "callerId") or self._from
        record = attr_choice(verb, "record", "do-not-record", _RECORD_MODES)
        record = {"true": "record-from-answer", "false": "do-not-record"}.get(record, record)
        answer_on_bridge = attr_bool(verb, "answerOnBridge", False)
        nouns = verb.children or (Node("Number", {}, verb.text, verb.text, (), verb.path),)
        rings = [self._ring_for(noun) for noun in nouns]
        t0 = self._clock.now
        self._event(
            "dial",
            {
                "targets": [r.target for r in rings],
                "timeout": timeout,
                "action": self._webhooks.resolve(action, doc.url) if action else None,
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
            action=self._webhooks.resolve(action, doc.url) if action else "",
            method=method,
            record=record,
        )
        try:
            winner = self._ring_all(rings, t0, timeout, caller_id, doc)
        except CallerHangup:
            self._caller_hung_up()
            self._dial_done(ctx, "canceled", None, None)
            raise
        if winner is None:
            finals = [r.final for r in rings]
            if all(f == "failed" for f in finals):
                status = "failed"
            elif all(f in {"busy", "failed"} for f in finals):
                status = "busy"
            else:
                status = "no-answer"
            if self._answered_at is None:
                self._unanswered_dial_status = status
            return self._dial_done(ctx, status, None, None)
        if answer_on_bridge:
            self._answer()
        bridge_start = self._clock.now
        talk = winner.behaviour.talk
        self._event("bridge", {"target": winner.target, "call_sid": winner.call_sid})
        try:
            self._clock.advance(min(talk, time_limit))
        except CallerHangup:
            self._caller_hung_up()
            winner.final, winner.resolved_at = "completed", self._clock.now
            self._dial_done(ctx, "completed", winner, self._clock.now - bridge_start)
            raise
        ended_by = "party" if talk <= time_limit else "timeLimit"
        self._event("unbridge", {"target": winner.target, "ended_by": ended_by})
        winner.final, winner.resolved_at = "completed", self._clock.now
        return self._dial_done(ctx, "completed", winner, self._clock.now - bridge_start)

    def _dial_done(
        self, ctx: _DialContext, status: str, winner: _Ring | None, bridged: float | None
    ) -> _Step:
        """Report the end of a <Dial>: DialOutcome, recording, action callback."""
        dial_sid = winner.call_sid if winner else ctx.rings[0].call_sid
        params = {
            "DialCallStatus": status,
            "DialCallSid": dial_sid,
            "DialBridged": "true" if winner else "false",
        }
        duration: int | None = None
        if winner is not None and bridged is not None:
            duration = _whole_seconds(bridged)
            params["DialCallDuration"] = str(duration)
        recording_sid: str | None = None
        if winner is not None and bridged is not None and ctx.record != "do-not-record":
            from_ringing = "ringing" in ctx.record
            length = self._clock.now - ctx.t0 if from_ringing else bridged
            started = ctx.t0 if from_ringing else self._clock.now - bridged
            recording_sid = new_sid("RE", self._rng)
            rec = {
                "RecordingUrl": self._recording_url(recording_sid),
                "RecordingSid": recording_sid,
                "RecordingDuration": str(_whole_seconds(length)),
            }
            params |= rec
            channels = 2 if ctx.record.endswith("dual") else 1
            self._recording_status_callback(ctx.verb, ctx.doc, rec, "DialVerb", channels, started)
        self._t.dials.append(
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
                        at=r.resolved_at if r.resolved_at is not None else self._clock.now,
                    )
                    for r in ctx.rings
                ],
                recording_sid=recording_sid,
            )
        )
        self._event("dial-end", dict(params))
        if not ctx.action:
            # No action: the caller carries on with the verb after <Dial> (Twilio docs).
            return None
        if self._caller_gone:
            self._after_hangup_request(ctx.action, ctx.method, params, "dial-action")
            return None
        return _Goto(ctx.action, ctx.method, params, "dial-action")

    def _ring_for(self, noun: Node) -> _Ring:
        target = noun_target(noun)
        kind = noun.tag.lower()
        leg_to = f"client:{target}" if kind == "client" else target
        # A SIP URI's `?X-Header=value` part adds headers to the INVITE; the party it rings is
        # the address before it.
        address = target.split("?", 1)[0] if kind == "sip" else target
        behaviour = (
            self._parties.get(target)
            or self._parties.get(address)
            or self._parties.get(leg_to)
            or self._default_party
        )
        return _Ring(noun, kind, target, leg_to, behaviour, new_sid("CA", self._rng))

    def _ring_all(
        self, rings: list[_Ring], t0: float, timeout: int, caller_id: str, doc: Document
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
                self._clock.advance_to(max(self._clock.now, ring.answer_at or 0.0))
                answered: dict[str, Any] = {
                    "target": ring.target,
                    "call_sid": ring.call_sid,
                    "outcome": "answered",
                }
                if "sendDigits" in ring.noun.attrs:
                    answered["send_digits"] = ring.noun.attrs["sendDigits"]
                self._event("dial-leg", answered, ring.target)
                # Whispers run one at a time in answer order: a party that answered during
                # an earlier whisper waits its turn (a simplification of parallel legs).
                if "url" in ring.noun.attrs and not self._whisper(ring, caller_id, doc):
                    ring.final, ring.resolved_at = "rejected", self._clock.now
                    continue
                winner = ring
                break
            if winner is None:
                end = max([r.resolved_at or 0.0 for r in rings] + [self._clock.now])
                self._clock.advance_to(end)
        finally:
            now = self._clock.now
            for ring in rings:
                if ring is winner:
                    continue
                if ring.final is None or (ring.resolved_at or 0.0) > now:
                    ring.final, ring.resolved_at = "canceled", now
                self._event(
                    "dial-leg",
                    {"target": ring.target, "call_sid": ring.call_sid, "outcome": ring.final},
                    ring.target,
                    at=ring.resolved_at,
                )
        return winner

    def _whisper(self, ring: _Ring, caller_id: str, doc: Document) -> bool:
        """Run a <Number url=...> document on the answering party; True if it ends normally."""
        url = self._webhooks.resolve(ring.noun.attrs["url"], doc.url)
        method = attr_method(ring.noun)

        def params() -> dict[str, str]:
            return {
                "AccountSid": self._sim.account_sid,
                "ApiVersion": API_VERSION,
                "CallSid": ring.call_sid,
                "ParentCallSid": self._sid,
                "CallStatus": "in-progress",
                "Direction": "outbound-dial",
                "From": caller_id,
                "To": ring.leg_to,
                "Caller": caller_id,
                "Called": ring.leg_to,
                **_geo_params("From", Geo()),
                **_geo_params("To", Geo()),
            }

        party = _Leg(ring.target, "whisper", params, deque(ring.behaviour.whisper_digits))
        if ring.behaviour.hangup_in_whisper:
            self._fetch(party, url, method, {}, "whisper")
            self._event("hangup", {"by": "party", "during": "whisper"}, ring.target)
            return False
        flow = self._run_chain(party, url, method, {}, "whisper")
        return isinstance(flow, _DocEnd)

    # ----------------------------------------------------------------- <Enqueue>

    def _enqueue(self, verb: Node, doc: Document) -> _Step:
        name = verb.own_text
        action = attr_str(verb, "action")
        action_url = self._webhooks.resolve(action, doc.url) if action else ""
        method = attr_method(verb)
        wait_url = attr_str(verb, "waitUrl")
        wait_method = attr_method(verb, "waitUrlMethod")
        behaviour = self._queues.get(name, QueueBehaviour())
        queue_sid = (
            "QU"
            + hashlib.md5(
                f"{self._sim.account_sid}:{name}".encode(), usedforsecurity=False
            ).hexdigest()
        )
        entered = self._clock.now
        self._event("enqueue", {"queue": name, "queue_sid": queue_sid})

        def queue_params(result: str, since: float) -> dict[str, str]:
            return {
                "QueueResult": result,
                "QueueSid": queue_sid,
                "QueueTime": str(_whole_seconds(since - entered)),
            }

        if behaviour.full or behaviour.system_error:
            result, left_at = ("queue-full" if behaviour.full else "system-error"), entered
        else:
            token: int | None = None
            if behaviour.bridged_after is not None:
                # priority 1: a caller hanging up at the same instant wins over the agent.
                token = self._clock.add_deadline(
                    entered + behaviour.bridged_after, Dequeued, priority=1
                )
            try:
                try:
                    result = self._wait_in_queue(
                        name, queue_sid, entered, wait_url, wait_method, doc
                    )
                    left_at = self._clock.now
                finally:
                    if token is not None:
                        self._clock.remove_deadline(token)
            except Dequeued:
                left_at = self._clock.now
                self._event("bridge", {"queue": name, "by": "agent"})
                try:
                    self._clock.advance(behaviour.talk)
                except CallerHangup:
                    self._caller_hung_up()
                    if action_url:
                        params = queue_params("bridged", left_at)
                        self._after_hangup_request(action_url, method, params, "enqueue-action")
                    raise
                self._event("unbridge", {"queue": name, "ended_by": "agent"})
                result = "bridged"
            except CallerHangup:
                self._caller_hung_up()
                if action_url:
                    params = queue_params("hangup", self._clock.now)
                    self._after_hangup_request(action_url, method, params, "enqueue-action")
                raise
        self._event("dequeue", {"queue": name, "result": result})
        if result == "hangup":
            # <Hangup> in the waitUrl document ended the call itself.
            self._caller_gone = True
            if action_url:
                params = queue_params(result, left_at)
                self._after_hangup_request(action_url, method, params, "enqueue-action")
            return _Ended("hangup")
        if action_url:
            return _Goto(action_url, method, queue_params(result, left_at), "enqueue-action")
        return None

    def _wait_in_queue(
        self,
        name: str,
        queue_sid: str,
        entered: float,
        wait_url: str,
        wait_method: str,
        doc: Document,
    ) -> str:
        """Run waitUrl until the caller leaves; returns the QueueResult (or raises)."""
        if not wait_url:
            # Default hold music until an agent, the caller or the duration limit ends it.
            self._event("play", {"url": "(default hold music)", "queue": name})
            self._clock.advance(2 * MAX_CALL_SECONDS)
            raise AssertionError("unreachable: the call duration limit interrupts the wait")
        url = self._webhooks.resolve(wait_url, doc.url)
        waiting = _Leg(CALLER, "wait", self._caller_params, self._caller.inputs)
        while True:
            waited = _whole_seconds(self._clock.now - entered)
            extra = {
                "QueueSid": queue_sid,
                "QueuePosition": "1",
                "QueueTime": str(waited),
                "AvgQueueTime": str(waited),
                "CurrentQueueSize": "1",
                "MaxQueueSize": "100",
            }
            flow = self._run_chain(waiting, url, wait_method, extra, "wait-url")
            if isinstance(flow, _Left):
                return "leave"
            if isinstance(flow, _Ended):
                return "hangup"
            if isinstance(flow, _AppError):
                return "error"
            # Twilio loops the waitUrl document for as long as the caller is queued.


def _geo_params(prefix: str, geo: Geo) -> dict[str, str]:
    return {
        f"{prefix}City": geo.city,
        f"{prefix}State": geo.state,
        f"{prefix}Zip": geo.zip,
        f"{prefix}Country": geo.country,
    }


def _speech_seconds(text: str) -> float:
    return len(text.split()) / WORDS_PER_SECOND


def _whole_seconds(seconds: float) -> int:
    # Round first so float noise (2.0000000001) does not add a second.
    return max(0, math.ceil(round(seconds, 3)))


def _loops(verb: Node) -> int:
    loop = attr_int(verb, "loop", 1)
    return LOOP_FOREVER if loop == 0 else loop


def _collect_digits(keys: str, num_digits: int, finish: str) -> tuple[str, str]:
    """Digits a <Gather> keeps from the keys pressed, and the finishOnKey that ended it."""
    digits = ""
    for key in keys:
        if finish and key == finish:
            return digits, key
        digits += key
        if num_digits and len(digits) >= num_digits:
            break
    return digits, ""


def _problem(rec: RequestRecord) -> str:
    if rec.status_code is None:
        return rec.error or "no response"
    return f"HTTP {rec.status_code}"
