"""Scenarios: what the scripted caller, the dialled parties and the queues do on a call.

The far side of the simulated CPaaS lives here (keys pressed, parties answering or busy,
agents taking queued callers); new far-end behaviour (an answering machine for the dialer,
the other party of a click-to-call, an SMS reply) belongs here too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

PartyOutcome: TypeAlias = Literal["answer", "busy", "no-answer", "failed"]

_OUTCOMES: dict[str, PartyOutcome] = {
    "answer": "answer",
    "busy": "busy",
    "no-answer": "no-answer",
    "no_answer": "no-answer",
    "noanswer": "no-answer",
    "failed": "failed",
}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class ScriptError(ValueError):
    """A caller script, party or queue specification is malformed."""


@dataclass(frozen=True)
class Speech:
    """The caller says `text` into a speech-enabled <Gather>."""

    text: str
    confidence: float = 0.9


@dataclass(frozen=True)
class NoInput:
    """The caller stays silent for one <Gather> (it times out)."""


GatherInput: TypeAlias = str | Speech | NoInput


@dataclass(frozen=True)
class RecordingInput:
    """What the caller does during one <Record>.

    `seconds` defaults to the time it takes to say `words`; `finish_key` is the key pressed
    when done (None: the caller just stops talking and the silence timeout ends it);
    `transcription` defaults to `words` and is what a transcribeCallback receives.
    """

    words: str = ""
    seconds: float | None = None
    finish_key: str | None = None
    transcription: str | None = None


@dataclass(frozen=True)
class Geo:
    """Caller-ID geography Twilio attaches to a number (empty when unknown)."""

    city: str = ""
    state: str = ""
    zip: str = ""
    country: str = ""


@dataclass
class CallerScript:
    """What the caller does: inputs for successive <Gather>s, recordings, when to hang up."""

    inputs: Sequence[GatherInput] = field(default_factory=list)
    recordings: Sequence[RecordingInput] = field(default_factory=list)
    hangup_after: float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.inputs, str):
            # A bare string would be read as one input per character.
            raise ScriptError("inputs must be a list, e.g. ['1', Speech('yes')]")
        for item in self.inputs:
            if isinstance(item, str):
                _check_keys(item, "gather input")
        for rec in self.recordings:
            if rec.finish_key is not None:
                _check_keys(rec.finish_key, "recording finish_key")
        if self.hangup_after is not None and self.hangup_after < 0:
            raise ScriptError("hangup_after must be >= 0")


@dataclass(frozen=True)
class PartyBehaviour:
    """How a dialled party (number, SIP URI, client, queue) reacts to being rung.

    `after` is the ring time before the outcome happens (ignored for no-answer, which rings
    until the <Dial> timeout); `talk` is how long the party stays once bridged;
    `whisper_digits` are the party's inputs to successive <Gather>s of a whisper
    (<Number url=...>) document; `hangup_in_whisper` makes the party hang up as soon as the
    whisper document has been fetched.
    """

    outcome: PartyOutcome = "answer"
    after: float = 2.0
    talk: float = 60.0
    whisper_digits: tuple[str, ...] = ()
    hangup_in_whisper: bool = False

    def __post_init__(self) -> None:
        if self.outcome not in _OUTCOMES.values():
            raise ScriptError(f"unknown party outcome {self.outcome!r}")
        if self.after < 0 or self.talk < 0:
            raise ScriptError("after and talk must be >= 0")
        for digits in self.whisper_digits:
            _check_keys(digits, "whisper digits")

    @classmethod
    def answer(
        cls,
        after: float = 2.0,
        talk: float = 60.0,
        digits: str | Sequence[str] | None = None,
        hangup_in_whisper: bool = False,
    ) -> PartyBehaviour:
        return cls("answer", after, talk, _digit_tuple(digits), hangup_in_whisper)

    @classmethod
    def busy(cls, after: float = 1.0) -> PartyBehaviour:
        return cls("busy", after)

    @classmethod
    def no_answer(cls) -> PartyBehaviour:
        return cls("no-answer")

    @classmethod
    def failed(cls, after: float = 0.5) -> PartyBehaviour:
        return cls("failed", after)

    @classmethod
    def parse(cls, spec: str) -> PartyBehaviour:
        """Parse `answer:after=3,talk=120,digits=1` (digits for several gathers: `1|2`)."""
        head, _, tail = spec.strip().partition(":")
        outcome = _OUTCOMES.get(head.strip().lower())
        if outcome is None:
            raise ScriptError(f"unknown party outcome {head!r} in {spec!r}")
        options = _parse_options(tail, spec)
        after = _float_opt(options, "after", 1.0 if outcome == "busy" else 2.0, spec)
        talk = _float_opt(options, "talk", 60.0, spec)
        digits_spec = options.pop("digits", "")
        digits = tuple(d for d in digits_spec.split("|") if d) if digits_spec else ()
        hangup = _bool_opt(options, "hangup_in_whisper", spec)
        if options:
            raise ScriptError(f"unknown option(s) {sorted(options)} in {spec!r}")
        return cls(outcome, after, talk, digits, hangup)


# Parties not named in `parties`: answer after 2 s, talk 60 s.
ANSWER = PartyBehaviour()


@dataclass(frozen=True)
class QueueBehaviour:
    """What happens to a caller placed in a queue by <Enqueue>.

    `bridged_after`: an agent dequeues the caller after that many seconds in the queue
    (None: nobody ever does); `talk`: how long the agent talks once bridged; `full`: the
    queue is full (QueueResult=queue-full); `system_error`: Twilio fails to enqueue.
    """

    bridged_after: float | None = None
    talk: float = 60.0
    full: bool = False
    system_error: bool = False

    @classmethod
    def parse(cls, spec: str) -> QueueBehaviour:
        """Parse `bridged_after=30,talk=60` or `full` / `system_error`."""
        options = _parse_options(spec, spec)
        bridged = options.pop("bridged_after", None)
        talk = _float_opt(options, "talk", 60.0, spec)
        full = _bool_opt(options, "full", spec)
        system_error = _bool_opt(options, "system_error", spec)
        if options:
            raise ScriptError(f"unknown option(s) {sorted(options)} in {spec!r}")
        return cls(_to_float(bridged, spec) if bridged else None, talk, full, system_error)


def _check_keys(keys: str, what: str) -> None:
    bad = [k for k in keys if k not in "0123456789*#"]
    if bad:
        raise ScriptError(f"invalid DTMF key(s) {''.join(bad)!r} in {what} {keys!r}")


def _digit_tuple(digits: str | Sequence[str] | None) -> tuple[str, ...]:
    if digits is None:
        return ()
    if isinstance(digits, str):
        return (digits,)
    return tuple(digits)


def _parse_options(text: str, spec: str) -> dict[str, str]:
    options: dict[str, str] = {}
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        key, sep, value = part.partition("=")
        # A bare flag such as `full` or `hangup_in_whisper` means true.
        options[key.strip().replace("-", "_")] = value.strip() if sep else "true"
    return options


def _to_float(value: str, spec: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ScriptError(f"not a number: {value!r} in {spec!r}") from None


def _float_opt(options: dict[str, str], key: str, default: float, spec: str) -> float:
    value = options.pop(key, None)
    return default if value is None else _to_float(value, spec)


def _bool_opt(options: dict[str, str], key: str, spec: str) -> bool:
    value = options.pop(key, "false").lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ScriptError(f"not a boolean: {key}={value!r} in {spec!r}")
