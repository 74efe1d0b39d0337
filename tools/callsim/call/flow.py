"""What the verb modules share: legs and their roles, where a verb leads, speaking time."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

from tools.callsim.scenario import GatherInput, Geo, RecordingInput
from tools.callsim.twiml import SUPPORTED_VERBS

WORDS_PER_SECOND = 2.5  # typical TTS speaking rate
MAX_CALL_SECONDS = 14400.0  # Twilio's default maximum call duration (4 h)
_WHISPER_VERBS = frozenset({"Say", "Play", "Pause", "Gather", "Redirect", "Hangup", "Reject"})
_WAIT_VERBS = frozenset({"Say", "Play", "Pause", "Gather", "Redirect", "Hangup", "Leave"})

Role: TypeAlias = Literal["caller", "whisper", "wait"]
ROLE_VERBS: dict[Role, frozenset[str]] = {
    "caller": SUPPORTED_VERBS,
    "whisper": _WHISPER_VERBS,
    "wait": _WAIT_VERBS,
}
ROLE_NAMES: dict[Role, str] = {
    "caller": "call",
    "whisper": "whisper (<Dial> noun url)",
    "wait": "<Enqueue> waitUrl",
}


@dataclass
class Leg:
    """Who TwiML is executing for: the caller, a dialled party (whisper) or a queued caller."""

    name: str
    role: Role
    params: Callable[[], dict[str, str]]
    inputs: deque[GatherInput]
    recordings: deque[RecordingInput] = field(default_factory=deque)


@dataclass(frozen=True)
class Goto:
    """Fetch another document (action callback, redirect); it replaces the current one."""

    url: str
    method: str
    params: dict[str, str]
    purpose: str


@dataclass(frozen=True)
class DocEnd:
    """The document ran out of verbs."""


@dataclass(frozen=True)
class Ended:
    """<Hangup>/<Reject> ended the leg."""

    reason: str


@dataclass(frozen=True)
class Left:
    """<Leave> took the caller out of the queue."""


@dataclass(frozen=True)
class AppError:
    """A webhook failed; what the leg hears is 'an application error has occurred'."""


Terminal: TypeAlias = DocEnd | Ended | Left | AppError
Step: TypeAlias = Goto | Terminal | None


def speech_seconds(text: str) -> float:
    return len(text.split()) / WORDS_PER_SECOND


def geo_params(prefix: str, geo: Geo) -> dict[str, str]:
    return {
        f"{prefix}City": geo.city,
        f"{prefix}State": geo.state,
        f"{prefix}Zip": geo.zip,
        f"{prefix}Country": geo.country,
    }
