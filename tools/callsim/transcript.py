"""The record of one simulated call: timed events, HTTP exchanges and a summary."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

CALLER = "caller"


@dataclass(frozen=True)
class Event:
    """Something that happened `at` virtual seconds after the call arrived, on one leg."""

    at: float
    kind: str
    detail: dict[str, Any]
    leg: str = CALLER

    def summary(self) -> str:
        d = self.detail
        match self.kind:
            case "say":
                return f"{d['text']!r}" + _extras(d, "voice", "language")
            case "play":
                return str(d.get("url") or f"digits {d.get('digits')}")
            case "pause":
                return f"{d['length']}s"
            case "gather":
                return _gather_summary(d)
            case "request" | "status" | "callback":
                status = d.get("status_code")
                code = "timeout/unreachable" if status is None else str(status)
                return f"{d['purpose']}: {d['method']} {d['url']} -> {code}"
            case "twiml":
                return " ".join(f"<{v}>" for v in d["verbs"]) or "(empty <Response>)"
            case "error":
                return str(d["message"])
            case _:
                return " ".join(f"{k}={v}" for k, v in d.items())

    def to_json(self) -> dict[str, Any]:
        return {"at": round(self.at, 3), "kind": self.kind, "leg": self.leg, "detail": self.detail}


@dataclass(frozen=True)
class RequestRecord:
    """One HTTP request the CPaaS made to the app, and what came back."""

    at: float
    purpose: str
    method: str
    url: str
    signed_url: str
    params: dict[str, str]
    headers: dict[str, str]
    status_code: int | None
    body: str
    content_type: str
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def path(self) -> str:
        return urlsplit(self.url).path

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["at"] = round(self.at, 3)
        return data


@dataclass(frozen=True)
class DialLegOutcome:
    """One noun of a <Dial>: who was rung and how that leg ended."""

    target: str
    noun: str
    call_sid: str
    outcome: str
    at: float


@dataclass(frozen=True)
class DialOutcome:
    """One executed <Dial> and the values reported as DialCallStatus and friends."""

    at: float
    targets: list[str]
    status: str
    dial_call_sid: str
    bridged: bool
    duration: int | None
    winner: str | None
    legs: list[DialLegOutcome]
    recording_sid: str | None = None


@dataclass
class Transcript:
    """Everything one simulated call did, in virtual-time order."""

    call_sid: str
    from_: str
    to: str
    final_status: str = "ringing"
    duration: int = 0
    ended_at: float = 0.0
    application_error: bool = False
    error: str | None = None
    events: list[Event] = field(default_factory=list)
    requests: list[RequestRecord] = field(default_factory=list)
    dials: list[DialOutcome] = field(default_factory=list)

    def said(self, leg: str = CALLER) -> list[str]:
        """Texts spoken by <Say> to `leg` ("caller", a dialled party's target, or "*")."""
        return [
            str(e.detail["text"])
            for e in self.events
            if e.kind == "say" and (leg == "*" or e.leg == leg)
        ]

    def dialled(self) -> list[str]:
        """Every target rung by a <Dial>, in order."""
        return [target for dial in self.dials for target in dial.targets]

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]

    def of_kind(self, kind: str) -> list[Event]:
        return [e for e in self.events if e.kind == kind]

    def requests_to(self, path: str) -> list[RequestRecord]:
        """Requests whose URL path (as sent) is `path`."""
        return [r for r in self.requests if r.path == path]

    def failed_requests(self) -> list[RequestRecord]:
        return [r for r in self.requests if not r.ok]

    @property
    def status_callback(self) -> RequestRecord | None:
        found = [r for r in self.requests if r.purpose == "status-callback"]
        return found[-1] if found else None

    def to_text(self) -> str:
        lines = [f"call {self.call_sid} from {self.from_} to {self.to}"]
        for e in self.events:
            leg = "" if e.leg == CALLER else f"({e.leg}) "
            lines.append(f"[{e.at:7.1f}s] {e.kind:<10} {leg}{e.summary()}")
        lines.append(
            f"final status {self.final_status}, duration {self.duration}s, "
            f"application error: {'yes' if self.application_error else 'no'}"
            + (f", error: {self.error}" if self.error else "")
        )
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "call_sid": self.call_sid,
            "from": self.from_,
            "to": self.to,
            "final_status": self.final_status,
            "duration": self.duration,
            "ended_at": round(self.ended_at, 3),
            "application_error": self.application_error,
            "error": self.error,
            "said": self.said(),
            "dialled": self.dialled(),
            "events": [e.to_json() for e in self.events],
            "requests": [r.to_json() for r in self.requests],
            "dials": [asdict(d) for d in self.dials],
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), sort_keys=False)


def _extras(d: dict[str, Any], *keys: str) -> str:
    found = [f"{k}={d[k]}" for k in keys if d.get(k)]
    return f" ({', '.join(found)})" if found else ""


def _gather_summary(d: dict[str, Any]) -> str:
    if d.get("speech") is not None:
        return f"speech {d['speech']!r} (confidence {d.get('confidence')})"
    if d.get("digits"):
        return f"digits {d['digits']!r}"
    return "no input" + (" (action on empty result)" if d.get("action_on_empty") else "")
