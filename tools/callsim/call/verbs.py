"""The verbs a leg hears and answers: Say, Play, Pause, Gather, Redirect, Hangup, Reject."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tools.callsim.call.flow import Ended, Goto, Leg, Step, speech_seconds
from tools.callsim.scenario import GatherInput, NoInput, Speech
from tools.callsim.twiml import (
    Document,
    Node,
    TwimlError,
    attr_bool,
    attr_choice,
    attr_float,
    attr_int,
    attr_keys,
    attr_method,
    attr_str,
)

if TYPE_CHECKING:
    from tools.callsim.call.run import CallRun

KEY_SECONDS = 0.5  # time a caller takes per DTMF key
SPEECH_END_SECONDS = 1.0  # speechTimeout="auto": silence that ends an utterance
LOOP_FOREVER = 1000  # loop="0" repeats until hangup; Twilio caps it at 1000


def say(run: CallRun, leg: Leg, verb: Node) -> None:
    times = _loops(verb)
    detail: dict[str, Any] = {"text": verb.text}
    for name in ("voice", "language"):
        if name in verb.attrs:
            detail[name] = verb.attrs[name]
    for _ in range(times):
        run.event("say", dict(detail), leg.name)
        run.clock.advance(speech_seconds(verb.text))


def play(run: CallRun, leg: Leg, verb: Node, doc: Document) -> None:
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
        run.event("play", {"digits": digits}, leg.name)
        run.clock.advance(seconds)
        return
    public = run.webhooks.resolve(url, doc.url)
    known = run.settings.audio_seconds
    seconds = known.get(url, known.get(public, run.settings.play_seconds))
    for _ in range(_loops(verb)):
        run.event("play", {"url": public}, leg.name)
        run.clock.advance(seconds)


def pause(run: CallRun, leg: Leg, verb: Node) -> None:
    length = attr_int(verb, "length", 1)
    run.event("pause", {"length": length}, leg.name)
    run.clock.advance(length)


def gather(run: CallRun, leg: Leg, verb: Node, doc: Document) -> Step:
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
    action = run.webhooks.resolve(attr_str(verb, "action") or doc.url, doc.url)
    method = attr_method(verb)
    on_empty = attr_bool(verb, "actionOnEmptyResult", False)
    # Nested prompts play in full before the scripted caller reacts (no barge-in).
    for child in verb.children:
        run.verb(leg, child, doc)
    item: GatherInput = leg.inputs.popleft() if leg.inputs else NoInput()
    detail: dict[str, Any] = {"input": " ".join(sorted(modes)), "action": action}
    if isinstance(item, str) and "dtmf" in modes:
        digits, key = _collect_digits(item, num_digits, finish)
        run.clock.advance((len(digits) + len(key)) * KEY_SECONDS)
        if not key and not (num_digits and len(digits) >= num_digits):
            # Neither numDigits nor finishOnKey ended it: Twilio waits `timeout` more.
            run.clock.advance(timeout)
        if digits:
            detail |= {"digits": digits, "finished_on_key": key}
            run.event("gather", detail, leg.name)
            params = {"Digits": digits, "FinishedOnKey": key, "msg": "Gather End"}
            return Goto(action, method, params, "gather-action")
    elif isinstance(item, Speech) and "speech" in modes:
        run.clock.advance(speech_seconds(item.text) + speech_wait)
        if item.text.strip():
            detail |= {"speech": item.text, "confidence": item.confidence}
            run.event("gather", detail, leg.name)
            params = {
                "SpeechResult": item.text,
                "Confidence": f"{item.confidence:.8f}".rstrip("0").rstrip("."),
                "Language": attr_str(verb, "language", "en-US"),
            }
            return Goto(action, method, params, "gather-action")
    else:
        # Silence, or input this <Gather> is not listening for: it times out.
        if not isinstance(item, NoInput):
            detail["ignored_input"] = repr(item)
        run.clock.advance(timeout)
    detail["action_on_empty"] = on_empty
    run.event("gather", detail, leg.name)
    if on_empty:
        return Goto(action, method, {"Digits": "", "msg": "Gather End"}, "gather-action")
    return None


def redirect(run: CallRun, leg: Leg, verb: Node, doc: Document) -> Goto:
    if not verb.text:
        raise TwimlError(f"<Redirect> needs a URL at {verb.path}")
    url = run.webhooks.resolve(verb.text, doc.url)
    method = attr_method(verb)
    run.event("redirect", {"url": url, "method": method}, leg.name)
    return Goto(url, method, {}, "redirect")


def hangup(run: CallRun, leg: Leg) -> Ended:
    run.event("hangup", {"by": "app"}, leg.name)
    return Ended("hangup")


def reject(run: CallRun, leg: Leg, verb: Node) -> Ended:
    reason = attr_choice(verb, "reason", "rejected", frozenset({"rejected", "busy"}))
    if leg.role == "caller" and run.answered_at is None:
        run.rejected = reason
        run.event("reject", {"reason": reason}, leg.name)
        return Ended("reject")
    # Once answered, <Reject> can only hang up.
    run.event("hangup", {"by": "app", "verb": "Reject", "reason": reason}, leg.name)
    return Ended("hangup")


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
