"""<Record> on a leg, and the recording and transcription callbacks a TwiML verb asks for."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from tools.callsim.call.flow import Goto, Leg, Step, speech_seconds
from tools.callsim.clock import CallerHangup
from tools.callsim.rest import Deferred, new_recording, new_transcription, recording_status
from tools.callsim.scenario import RecordingInput
from tools.callsim.twiml import (
    Document,
    Node,
    attr_bool,
    attr_choice,
    attr_int,
    attr_keys,
    attr_method,
    attr_str,
)

if TYPE_CHECKING:
    from tools.callsim.call.run import CallRun


def record(run: CallRun, leg: Leg, verb: Node, doc: Document) -> Step:
    action = run.webhooks.resolve(attr_str(verb, "action") or doc.url, doc.url)
    method = attr_method(verb)
    timeout = attr_int(verb, "timeout", 5)
    finish = attr_keys(verb, "finishOnKey", "1234567890*#")
    max_length = attr_int(verb, "maxLength", 3600) or 3600
    trim = attr_choice(verb, "trim", "trim-silence", frozenset({"trim-silence", "do-not-trim"}))
    beep = attr_bool(verb, "playBeep", True)
    transcribe_cb = attr_str(verb, "transcribeCallback")
    transcribe = attr_bool(verb, "transcribe", False) or bool(transcribe_cb)
    item = leg.recordings.popleft() if leg.recordings else None
    start = run.clock.now
    if item is None:
        # Nothing said: Twilio discards the empty recording, skips the action URL and
        # carries on with the next verb.
        run.clock.advance(timeout or max_length)
        run.event("record", {"empty": True, "beep": beep}, leg.name)
        return None
    spoken = item.seconds if item.seconds is not None else max(1.0, speech_seconds(item.words))
    digits = ""
    try:
        if spoken >= max_length:
            run.clock.advance(max_length)
            length = float(max_length)
        elif item.finish_key and item.finish_key in finish:
            run.clock.advance(spoken)
            digits, length = item.finish_key, spoken
        else:
            silence = timeout if timeout > 0 else max_length - spoken
            run.clock.advance(spoken + silence)
            length = spoken if trim == "trim-silence" else spoken + silence
    except CallerHangup:
        run.caller_hung_up()
        length = run.clock.now - start
        rec_params = _new_recording(run, verb, doc, start, length, item, transcribe, transcribe_cb)
        run.after_hangup_request(
            action, method, {**rec_params, "Digits": "hangup"}, "record-action"
        )
        raise
    rec_params = _new_recording(run, verb, doc, start, length, item, transcribe, transcribe_cb)
    run.event(
        "record",
        {"duration": rec_params["RecordingDuration"], "digits": digits, "beep": beep},
        leg.name,
    )
    return Goto(action, method, {**rec_params, "Digits": digits}, "record-action")


def _new_recording(
    run: CallRun,
    verb: Node,
    doc: Document,
    start: float,
    length: float,
    item: RecordingInput,
    transcribe: bool,
    transcribe_cb: str,
) -> dict[str, str]:
    params = new_recording(run.settings.account_sid, run.rng, length)
    recording_status_callback(run, verb, doc, params, "RecordVerb", 1, start)
    if transcribe and transcribe_cb:
        text = item.transcription if item.transcription is not None else item.words
        run.deferred.append(
            Deferred(
                url=run.webhooks.resolve(transcribe_cb, doc.url),
                method="POST",
                params={
                    **run.base,
                    "CallStatus": "completed",
                    **new_transcription(run.settings.account_sid, run.rng, params, text),
                },
                purpose="transcribe-callback",
            )
        )
    return params


def recording_status_callback(
    run: CallRun,
    verb: Node,
    doc: Document,
    rec: dict[str, str],
    source: str,
    channels: int,
    started_at: float,
) -> None:
    """Queue the recordingStatusCallback `verb` asks for, if any, for after the call."""
    callback = attr_str(verb, "recordingStatusCallback")
    if not callback:
        return
    events = attr_str(verb, "recordingStatusCallbackEvent", "completed").replace(",", " ")
    if "completed" not in events.split():
        return
    run.deferred.append(
        Deferred(
            url=run.webhooks.resolve(callback, doc.url),
            method=attr_method(verb, "recordingStatusCallbackMethod"),
            params=recording_status(
                run.settings.account_sid,
                run.sid,
                rec,
                source=source,
                channels=channels,
                started=run.started + timedelta(seconds=started_at),
            ),
            purpose="recording-status-callback",
        )
    )
