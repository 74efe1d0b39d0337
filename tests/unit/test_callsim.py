"""Behaviour of the CPaaS call simulator (tools.callsim) against fake and loopback apps."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import Dial, Gather, VoiceResponse

from tools.callsim import (
    APPLICATION_ERROR_TEXT,
    CallerScript,
    CallSimulator,
    Geo,
    LoopError,
    NoInput,
    PartyBehaviour,
    QueueBehaviour,
    RecordingInput,
    ScriptError,
    Speech,
    Transcript,
    TwimlError,
    main,
)

TOKEN = "test-auth-token-0123456789abcdef"
BASE = "http://app.internal:8000"
PUBLIC = "https://voice.example.com"
CALLER = "+14155550100"
CALLED = "+18005550199"
SID = re.compile(r"^CA[0-9a-f]{32}$")

Handler = Callable[[dict[str, str]], "str | VoiceResponse | httpx.Response"]


@dataclass
class Seen:
    """One request as the fake app received it."""

    method: str
    path: str
    query: str
    params: dict[str, str]
    headers: dict[str, str]
    signature_ok: bool


@dataclass
class FakeApp:
    """A voice app behind httpx.MockTransport: path -> TwiML, checking every signature."""

    routes: dict[str, Handler | str | VoiceResponse]
    public_base: str = PUBLIC
    seen: list[Seen] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        url = urlsplit(str(request.url))
        if request.method == "GET":
            params: dict[str, str] = {}
            public = f"{self.public_base}{url.path}" + (f"?{url.query}" if url.query else "")
        else:
            params = dict(parse_qsl(request.content.decode(), keep_blank_values=True))
            public = f"{self.public_base}{url.path}" + (f"?{url.query}" if url.query else "")
        ok = RequestValidator(TOKEN).validate(
            public, params, request.headers.get("X-Twilio-Signature", "")
        )
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        self.seen.append(
            Seen(request.method, url.path, url.query, params or query, dict(request.headers), ok)
        )
        if url.path not in self.routes:
            return httpx.Response(404, text="not found")
        route = self.routes[url.path]
        result = route(params or query) if callable(route) else route
        if isinstance(result, httpx.Response):
            return result
        return httpx.Response(200, text=str(result), headers={"content-type": "application/xml"})

    def to(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path == path]


def simulator(app: FakeApp, **options: Any) -> CallSimulator:
    client = httpx.Client(transport=httpx.MockTransport(app))
    return CallSimulator(
        BASE, TOKEN, public_base_url=app.public_base, client=client, seed=7, **options
    )


def call(app: FakeApp, **call_options: Any) -> Transcript:
    return simulator(app).place_call(CALLER, CALLED, **call_options)


def twiml(build: Callable[[VoiceResponse], object]) -> VoiceResponse:
    response = VoiceResponse()
    build(response)
    return response


def empty_ok(_: dict[str, str]) -> httpx.Response:
    return httpx.Response(204)


def menu(action: str = "/voice/menu", **gather: object) -> VoiceResponse:
    response = VoiceResponse()
    prompt = Gather(action=action, **gather)
    prompt.say("Press 1 for sales")
    response.append(prompt)
    response.say("We did not get that")
    return response


# ----------------------------------------------------------------------------- the webhook


def test_inbound_webhook_is_a_signed_form_post_with_twilio_parameters() -> None:
    # Given an app that answers the voice webhook with a greeting
    app = FakeApp({"/voice/inbound": twiml(lambda r: r.say("Hello")), "/voice/status": empty_ok})

    # When a call with caller geography arrives
    t = call(app, caller_geo=Geo("San Francisco", "CA", "94105", "US"))

    # Then the webhook is a correctly signed form POST carrying Twilio's parameters
    first = app.seen[0]
    assert (first.method, first.path, first.signature_ok) == ("POST", "/voice/inbound", True)
    assert first.headers["content-type"] == "application/x-www-form-urlencoded"
    assert first.headers["user-agent"] == "TwilioProxy/1.1"
    assert first.headers["i-twilio-idempotency-token"]
    p = first.params
    assert SID.match(p["CallSid"])
    assert p["CallSid"] == t.call_sid
    assert p["AccountSid"].startswith("AC")
    assert len(p["AccountSid"]) == 34
    assert (p["CallStatus"], p["Direction"], p["ApiVersion"]) == (
        "ringing",
        "inbound",
        "2010-04-01",
    )
    assert (p["From"], p["To"], p["Caller"], p["Called"]) == (CALLER, CALLED, CALLER, CALLED)
    assert (p["FromCity"], p["FromState"], p["FromZip"], p["FromCountry"]) == (
        "San Francisco",
        "CA",
        "94105",
        "US",
    )
    assert p["CallerState"] == "CA"
    assert p["ToState"] == ""
    assert p["CalledCountry"] == ""
    assert t.said() == ["Hello"]
    assert t.final_status == "completed"
    assert not t.application_error


def test_status_callback_reports_final_status_and_rounded_up_durations() -> None:
    # Given a greeting that lasts 2.4 s (6 words) followed by a 3 s pause
    app = FakeApp(
        {
            "/voice/inbound": twiml(lambda r: (r.say("one two three four five six"), r.pause(3))),
            "/voice/status": empty_ok,
        }
    )
    start = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)

    # When the call runs to the end of the document
    t = simulator(app, start_time=start).place_call(CALLER, CALLED)

    # Then the status callback carries Twilio's completion parameters
    [status] = app.to("/voice/status")
    assert status.signature_ok
    p = status.params
    assert (p["CallStatus"], p["CallDuration"], p["Duration"]) == ("completed", "6", "1")
    assert p["CallbackSource"] == "call-progress-events"
    assert p["SequenceNumber"] == "0"
    assert parsedate_to_datetime(p["Timestamp"]) == datetime(2025, 3, 1, 12, 0, 5, tzinfo=UTC)
    assert p["CallSid"] == t.call_sid
    assert p["From"] == CALLER
    assert (t.final_status, t.duration) == ("completed", 6)
    assert t.status_callback is not None
    assert t.status_callback.status_code == 204


def test_caller_hanging_up_mid_prompt_completes_with_the_duration_so_far() -> None:
    # Given a long prompt
    app = FakeApp(
        {"/voice/inbound": twiml(lambda r: r.say("word " * 100)), "/voice/status": empty_ok}
    )

    # When the caller hangs up after 7.5 s
    t = call(app, script=CallerScript(hangup_after=7.5))

    # Then the call completed with CallDuration rounded up
    assert (t.final_status, t.duration) == ("completed", 8)
    assert app.to("/voice/status")[0].params["CallDuration"] == "8"
    assert t.of_kind("hangup")[0].detail == {"by": "caller"}


# ----------------------------------------------------------------------------- <Gather>


@pytest.mark.parametrize(
    ("gather", "pressed", "digits", "finished_on_key", "seconds"),
    [
        ({"num_digits": 2}, "123", "12", "", 1.0),  # stops at numDigits, rest discarded
        ({}, "42#", "42", "#", 1.5),  # finishOnKey ends it and is not included
        ({"finish_on_key": "*"}, "4#*", "4#", "*", 1.5),  # '#' is just a digit here
        ({}, "7", "7", "", 5.5),  # no terminator: Twilio waits `timeout` after the key
    ],
)
def test_gather_collects_digits_like_twilio(
    gather: dict[str, Any], pressed: str, digits: str, finished_on_key: str, seconds: float
) -> None:
    # Given a menu gathering digits
    app = FakeApp({"/voice/inbound": menu(**gather), "/voice/menu": VoiceResponse()})

    # When the caller presses keys
    t = call(app, script=CallerScript(inputs=[pressed]))

    # Then the action receives the digits Twilio would have kept
    [action] = app.to("/voice/menu")
    assert action.params["Digits"] == digits
    assert action.params["FinishedOnKey"] == finished_on_key
    assert action.params["CallStatus"] == "in-progress"
    assert action.signature_ok
    prompt = 4 / 2.5
    assert t.of_kind("gather")[0].at == pytest.approx(prompt + seconds)
    assert "We did not get that" not in t.said()  # the action document replaced the rest


def test_gather_without_input_falls_through_to_the_next_verb_after_the_timeout() -> None:
    # Given a menu with a 3 s timeout and no actionOnEmptyResult
    app = FakeApp({"/voice/inbound": menu(timeout=3), "/voice/menu": VoiceResponse()})

    # When the caller stays silent
    t = call(app, script=CallerScript(inputs=[NoInput()]))

    # Then no action request is made and the verb after <Gather> runs
    assert app.to("/voice/menu") == []
    assert t.said() == ["Press 1 for sales", "We did not get that"]
    assert t.of_kind("say")[1].at == pytest.approx(4 / 2.5 + 3)


def test_gather_with_action_on_empty_result_posts_empty_digits() -> None:
    # Given actionOnEmptyResult="true"
    app = FakeApp(
        {
            "/voice/inbound": menu(action_on_empty_result=True),
            "/voice/menu": twiml(lambda r: r.say("Let me repeat")),
        }
    )

    # When the script has run out of inputs (silence)
    t = call(app)

    # Then the action is requested with empty Digits and its TwiML continues the call
    [action] = app.to("/voice/menu")
    assert action.params["Digits"] == ""
    assert t.said() == ["Press 1 for sales", "Let me repeat"]


def test_speech_gather_posts_speech_result_and_ignores_keys_in_speech_only_mode() -> None:
    # Given a speech-only gather posting to a relative action, then a second one
    app = FakeApp(
        {
            "/voice/inbound": menu(action="menu", input="speech"),
            "/voice/menu": menu(action="/voice/again", input="speech"),
            "/voice/again": VoiceResponse(),
        }
    )

    # When the caller says "sales please", then presses a key the gather does not hear
    t = call(app, script=CallerScript(inputs=[Speech("sales please", confidence=0.87), "1"]))

    # Then SpeechResult/Confidence are posted once; the ignored key falls through
    [action] = app.to("/voice/menu")
    assert (action.params["SpeechResult"], action.params["Confidence"]) == ("sales please", "0.87")
    assert "Digits" not in action.params
    assert app.to("/voice/again") == []
    assert t.said()[-1] == "We did not get that"


# ----------------------------------------------------------------------------- <Dial>


def screening() -> VoiceResponse:
    """Whisper: press 1 to accept; anything else (or nothing) hangs up on the agent."""
    response = VoiceResponse()
    prompt = Gather(action="/voice/screen", num_digits=1)
    prompt.say("Press 1 to accept")
    response.append(prompt)
    response.hangup()
    return response


def dial_app(
    *numbers: str,
    action: str | None = "/voice/dial-done",
    whisper: str | None = None,
    **attrs: object,
) -> FakeApp:
    response = VoiceResponse()
    dial = Dial(action=action, **attrs) if action else Dial(**attrs)
    for number in numbers:
        dial.number(number, url=whisper) if whisper else dial.number(number)
    response.append(dial)
    response.say("Goodbye")
    return FakeApp(
        {
            "/voice/inbound": response,
            "/voice/dial-done": VoiceResponse(),
            "/voice/status": empty_ok,
        }
    )


def test_dial_rings_all_nouns_at_once_and_the_first_to_answer_wins() -> None:
    # Given two agents rung simultaneously, the second answering sooner
    app = dial_app("+15550001111", "+15550002222", timeout=20)
    parties = {
        "+15550001111": PartyBehaviour.answer(after=9),
        "+15550002222": PartyBehaviour.answer(after=4, talk=95),
    }

    # When the call is placed
    t = call(app, parties=parties)

    # Then the second agent is bridged, the first is canceled
    [dial] = t.dials
    assert dial.winner == "+15550002222"
    assert dial.status == "completed"
    assert {leg.target: leg.outcome for leg in dial.legs} == {
        "+15550001111": "canceled",
        "+15550002222": "completed",
    }
    [action] = app.to("/voice/dial-done")
    p = action.params
    assert (p["DialCallStatus"], p["DialBridged"], p["DialCallDuration"]) == (
        "completed",
        "true",
        "95",
    )
    assert p["DialCallSid"] == dial.legs[1].call_sid
    assert SID.match(p["DialCallSid"])
    assert p["DialCallSid"] != t.call_sid
    assert t.dialled() == ["+15550001111", "+15550002222"]
    assert t.said() == []  # the action document (empty) replaced "Goodbye"
    assert t.duration == 4 + 95


@pytest.mark.parametrize(
    ("behaviour", "status", "dial_seconds"),
    [
        (PartyBehaviour.busy(after=2), "busy", 2),
        (PartyBehaviour.no_answer(), "no-answer", 15),
        (PartyBehaviour.failed(after=1), "failed", 1),
        (PartyBehaviour.answer(after=20), "no-answer", 15),  # answers too late
    ],
)
def test_dial_reports_unanswered_outcomes_as_dial_call_status(
    behaviour: PartyBehaviour, status: str, dial_seconds: int
) -> None:
    # Given a single number dialled with a 15 s timeout
    app = dial_app("+15551230000", timeout=15)

    # When the party does not answer in time
    t = call(app, default_party=behaviour)

    # Then DialCallStatus reports why, without a duration, once the dial has ended
    [action] = app.to("/voice/dial-done")
    assert action.params["DialCallStatus"] == status
    assert action.params["DialBridged"] == "false"
    assert "DialCallDuration" not in action.params
    assert t.of_kind("dial-end")[0].at == pytest.approx(dial_seconds)
    assert t.final_status == "completed"


def test_dial_with_all_legs_busy_is_busy_and_mixed_outcomes_are_no_answer() -> None:
    # Given two numbers
    busy_app = dial_app("+15550000001", "+15550000002")
    mixed_app = dial_app("+15550000001", "+15550000002")

    # When both are busy / one busy and one unanswered
    call(busy_app, default_party=PartyBehaviour.busy())
    call(
        mixed_app,
        parties={"+15550000001": PartyBehaviour.busy()},
        default_party=PartyBehaviour.no_answer(),
    )

    # Then Twilio-style aggregate statuses are reported
    assert busy_app.to("/voice/dial-done")[0].params["DialCallStatus"] == "busy"
    assert mixed_app.to("/voice/dial-done")[0].params["DialCallStatus"] == "no-answer"


def test_dial_without_action_continues_with_the_next_verb_after_the_party_hangs_up() -> None:
    # Given <Dial> without an action followed by <Say>
    app = dial_app("+15551230000", action=None)

    # When the party talks for 30 s then hangs up
    t = call(app, default_party=PartyBehaviour.answer(after=1, talk=30))

    # Then the caller hears the verb after <Dial> (Twilio's documented behaviour)
    assert t.said() == ["Goodbye"]
    assert t.of_kind("say")[0].at == pytest.approx(31)


def test_caller_hanging_up_while_ringing_cancels_the_dial_and_still_reports_it() -> None:
    # Given a party that would answer after 10 s
    app = dial_app("+15551230000")

    # When the caller gives up after 4 s
    t = call(
        app, default_party=PartyBehaviour.answer(after=10), script=CallerScript(hangup_after=4)
    )

    # Then the action sees DialCallStatus=canceled with the call already completed
    [action] = app.to("/voice/dial-done")
    assert (action.params["DialCallStatus"], action.params["CallStatus"]) == (
        "canceled",
        "completed",
    )
    assert t.dials[0].legs[0].outcome == "canceled"
    assert (t.final_status, t.duration) == ("completed", 4)


def test_dial_time_limit_caps_the_bridge_and_record_reports_a_recording() -> None:
    # Given a recorded dial with a 60 s time limit
    app = dial_app("+15551230000", time_limit=60, record="record-from-answer")

    # When the party would talk for 10 minutes
    t = call(app, default_party=PartyBehaviour.answer(after=3, talk=600))

    # Then the bridge is cut at 60 s and the recording covers it
    p = app.to("/voice/dial-done")[0].params
    assert (p["DialCallDuration"], p["RecordingDuration"]) == ("60", "60")
    assert re.match(r"^RE[0-9a-f]{32}$", p["RecordingSid"])
    assert p["RecordingUrl"].endswith(f"/Recordings/{p['RecordingSid']}")
    assert t.of_kind("unbridge")[0].detail["ended_by"] == "timeLimit"


def test_whisper_press_one_accepts_and_bridges_the_call() -> None:
    # Given a screened number whose whisper asks the agent to press 1
    app = dial_app("+15550001111", whisper="/voice/whisper")
    app.routes["/voice/whisper"] = screening()
    app.routes["/voice/screen"] = lambda p: twiml(
        lambda r: None if p["Digits"] == "1" else r.hangup()
    )

    # When the agent answers after 5 s and presses 1
    t = call(app, default_party=PartyBehaviour.answer(after=5, talk=40, digits="1"))

    # Then the whisper ran on the child leg and the call was bridged
    [whisper] = app.to("/voice/whisper")
    p = whisper.params
    child = t.dials[0].legs[0].call_sid
    assert whisper.signature_ok
    assert (p["CallSid"], p["ParentCallSid"], p["Direction"]) == (
        child,
        t.call_sid,
        "outbound-dial",
    )
    assert (p["From"], p["To"], p["CallStatus"]) == (CALLER, "+15550001111", "in-progress")
    assert app.to("/voice/screen")[0].params["CallSid"] == child
    assert t.said(leg="+15550001111") == ["Press 1 to accept"]
    assert t.said() == []
    assert app.to("/voice/dial-done")[0].params["DialCallStatus"] == "completed"


def test_whisper_rejected_with_hangup_falls_to_the_next_answering_noun() -> None:
    # Given two screened agents; the faster one rejects the call
    app = dial_app("+15550001111", "+15550002222", whisper="/voice/whisper", timeout=30)
    app.routes["/voice/whisper"] = screening()
    app.routes["/voice/screen"] = lambda p: twiml(
        lambda r: None if p["Digits"] == "1" else r.hangup()
    )
    parties = {
        "+15550001111": PartyBehaviour.answer(after=2, digits="9"),
        "+15550002222": PartyBehaviour.answer(after=6, digits="1", talk=20),
    }

    # When the call is placed
    t = call(app, parties=parties)

    # Then the first leg is not bridged and the second one is
    [dial] = t.dials
    assert dial.winner == "+15550002222"
    assert [leg.outcome for leg in dial.legs] == ["rejected", "completed"]
    assert [s.params["To"] for s in app.to("/voice/whisper")] == ["+15550001111", "+15550002222"]
    assert app.to("/voice/dial-done")[0].params["DialCallSid"] == dial.legs[1].call_sid


def test_whisper_rejected_by_the_only_party_is_no_answer() -> None:
    # Given a single screened number whose agent hangs up during the whisper
    app = dial_app("+15550001111", whisper="/voice/whisper")
    app.routes["/voice/whisper"] = twiml(lambda r: r.say("Call for you"))

    # When the call is placed
    call(app, default_party=PartyBehaviour.answer(after=2, hangup_in_whisper=True))

    # Then the whisper was requested but the dial reports no-answer
    assert len(app.to("/voice/whisper")) == 1
    assert app.to("/voice/dial-done")[0].params["DialCallStatus"] == "no-answer"


def test_dial_nouns_sip_client_and_queue_are_keyed_by_their_text() -> None:
    # Given a dial to a SIP URI, a client identity and a queue
    response = VoiceResponse()
    dial = Dial(action="/voice/dial-done", timeout=10)
    dial.sip("sip:agent@pbx.example.com")
    dial.client("alice")
    dial.queue("support")
    response.append(dial)
    app = FakeApp({"/voice/inbound": response, "/voice/dial-done": VoiceResponse()})

    # When only the client answers
    t = call(
        app,
        parties={"alice": PartyBehaviour.answer(after=3)},
        default_party=PartyBehaviour.no_answer(),
    )

    # Then the client leg wins
    assert t.dialled() == ["sip:agent@pbx.example.com", "alice", "support"]
    assert t.dials[0].winner == "alice"


# ----------------------------------------------------------------------------- <Record>


def test_record_posts_the_recording_and_a_transcription_callback_after_the_call() -> None:
    # Given voicemail with transcription and a recording status callback
    app = FakeApp(
        {
            "/voice/inbound": twiml(
                lambda r: (
                    r.say("Leave a message"),
                    r.record(
                        action="/voice/recorded",
                        finish_on_key="#",
                        transcribe_callback="/voice/transcribed",
                        recording_status_callback="/voice/recording-status",
                    ),
                )
            ),
            "/voice/recorded": twiml(lambda r: r.say("Thanks")),
            "/voice/transcribed": empty_ok,
            "/voice/recording-status": empty_ok,
            "/voice/status": empty_ok,
        }
    )
    message = RecordingInput(words="please call me back", seconds=6, finish_key="#")

    # When the caller speaks for 6 s and presses #
    t = call(app, script=CallerScript(recordings=[message]))

    # Then the action gets the recording, and the async callbacks follow the status callback
    p = app.to("/voice/recorded")[0].params
    assert (p["RecordingDuration"], p["Digits"]) == ("6", "#")
    assert re.match(r"^RE[0-9a-f]{32}$", p["RecordingSid"])
    assert [s.path for s in app.seen[-3:]] == [
        "/voice/status",
        "/voice/recording-status",
        "/voice/transcribed",
    ]
    tr = app.to("/voice/transcribed")[0].params
    assert (tr["TranscriptionText"], tr["TranscriptionStatus"]) == (
        "please call me back",
        "completed",
    )
    assert tr["RecordingSid"] == p["RecordingSid"]
    assert tr["TranscriptionSid"].startswith("TR")
    assert app.to("/voice/recording-status")[0].params["RecordingStatus"] == "completed"
    assert all(s.signature_ok for s in app.seen)
    assert t.said() == ["Leave a message", "Thanks"]


def test_record_of_silence_skips_the_action_and_continues() -> None:
    # Given a <Record> followed by a fallback <Say>
    app = FakeApp(
        {
            "/voice/inbound": twiml(
                lambda r: (r.record(action="/voice/recorded", timeout=4), r.say("No message"))
            ),
        }
    )

    # When the caller says nothing
    t = call(app)

    # Then no recording is posted and the next verb runs after the silence timeout
    assert app.to("/voice/recorded") == []
    assert t.of_kind("say")[0].at == pytest.approx(4)


def test_caller_hanging_up_during_record_posts_digits_hangup() -> None:
    # Given a <Record>
    app = FakeApp({"/voice/inbound": twiml(lambda r: r.record(action="/voice/recorded"))})

    # When the caller hangs up 3 s into a 10 s message
    call(
        app,
        script=CallerScript(recordings=[RecordingInput(seconds=10)], hangup_after=3),
    )

    # Then Twilio still reports the partial recording
    p = app.to("/voice/recorded")[0].params
    assert (p["Digits"], p["RecordingDuration"], p["CallStatus"]) == ("hangup", "3", "completed")


# ----------------------------------------------------------------------------- <Redirect>


def test_redirect_resolves_relative_urls_and_honours_get() -> None:
    # Given a redirect to a relative URL with GET
    app = FakeApp(
        {
            "/voice/inbound": twiml(lambda r: r.redirect("next?step=2", method="GET")),
            "/voice/next": twiml(lambda r: (r.say("Step two"), r.redirect("/voice/last"))),
            "/voice/last": twiml(lambda r: r.say("Done")),
        }
    )

    # When the call runs
    t = call(app)

    # Then GET carries the params in the query string and POST is the default
    [get] = app.to("/voice/next")
    assert get.method == "GET"
    assert get.signature_ok
    assert get.params["step"] == "2"
    assert get.params["CallSid"] == t.call_sid
    assert app.to("/voice/last")[0].method == "POST"
    assert t.said() == ["Step two", "Done"]


def test_redirect_loop_trips_the_loop_guard() -> None:
    # Given a document that redirects to itself
    app = FakeApp({"/voice/inbound": twiml(lambda r: r.redirect("/voice/inbound"))})

    # When the call runs
    with pytest.raises(LoopError, match="loop guard") as raised:
        simulator(app, max_documents=5).place_call(CALLER, CALLED)

    # Then the guard stops it and the transcript is attached
    assert raised.value.transcript is not None
    assert len(raised.value.transcript.requests_to("/voice/inbound")) == 5


# ----------------------------------------------------------------------------- <Enqueue>


def test_enqueue_leave_from_wait_url_reports_leave_and_continues() -> None:
    # Given a queue whose hold document offers a way out
    app = FakeApp(
        {
            "/voice/inbound": twiml(
                lambda r: r.enqueue("support", action="/voice/queue-done", wait_url="/voice/hold")
            ),
            "/voice/hold": twiml(lambda r: (r.say("All agents are busy"), r.leave())),
            "/voice/queue-done": lambda p: twiml(lambda r: r.say(f"Result {p['QueueResult']}")),
        }
    )

    # When the call runs
    t = call(app)

    # Then the wait URL got queue parameters and the action got QueueResult=leave
    hold = app.to("/voice/hold")[0].params
    assert hold["QueueSid"].startswith("QU")
    assert hold["QueuePosition"] == "1"
    done = app.to("/voice/queue-done")[0].params
    assert (done["QueueResult"], done["QueueSid"]) == ("leave", hold["QueueSid"])
    assert t.said() == ["All agents are busy", "Result leave"]


def test_enqueue_is_bridged_when_an_agent_dequeues_while_hold_music_loops() -> None:
    # Given hold music of 10 s that Twilio keeps re-requesting
    app = FakeApp(
        {
            "/voice/inbound": twiml(
                lambda r: r.enqueue("sales", action="/voice/queue-done", wait_url="/voice/hold")
            ),
            "/voice/hold": twiml(lambda r: r.play("https://cdn.example.com/hold.mp3")),
            "/voice/queue-done": VoiceResponse(),
        }
    )

    # When an agent picks the caller up after 25 s and talks for 30 s
    sim = simulator(app, audio_seconds={"https://cdn.example.com/hold.mp3": 10})
    t = sim.place_call(CALLER, CALLED, queues={"sales": QueueBehaviour(bridged_after=25, talk=30)})

    # Then the caller heard three loops of hold music and was bridged
    assert len(app.to("/voice/hold")) == 3
    done = app.to("/voice/queue-done")[0].params
    assert (done["QueueResult"], done["QueueTime"]) == ("bridged", "25")
    assert t.duration == 55


def test_enqueue_caller_hangup_and_full_queue_results() -> None:
    # Given a queue without hold music
    def queue_app() -> FakeApp:
        return FakeApp(
            {
                "/voice/inbound": twiml(lambda r: r.enqueue("q", action="/voice/queue-done")),
                "/voice/queue-done": VoiceResponse(),
            }
        )

    gave_up, full = queue_app(), queue_app()

    # When one caller gives up after 40 s and another finds the queue full
    call(gave_up, script=CallerScript(hangup_after=40))
    call(full, queues={"q": QueueBehaviour(full=True)})

    # Then QueueResult says so
    p = gave_up.to("/voice/queue-done")[0].params
    assert (p["QueueResult"], p["QueueTime"], p["CallStatus"]) == ("hangup", "40", "completed")
    assert full.to("/voice/queue-done")[0].params["QueueResult"] == "queue-full"


# ----------------------------------------------------------------------------- errors


def test_unknown_verb_raises_twiml_error_naming_the_element() -> None:
    # Given a document with a typo'd verb in second position
    app = FakeApp(
        {"/voice/inbound": "<Response><Say>Hi</Say><Foo/></Response>", "/voice/status": empty_ok}
    )

    # When the call runs
    with pytest.raises(TwimlError, match=re.escape("unknown verb <Foo> at /Response[2]")) as raised:
        call(app)

    # Then the finished transcript records the error and the application error heard
    t = raised.value.transcript
    assert t is not None
    assert t.application_error
    assert t.of_kind("error")[0].detail["message"] == "unknown verb <Foo> at /Response[2]"
    assert t.said() == [APPLICATION_ERROR_TEXT]  # validation happens before anything plays
    assert app.to("/voice/status")[0].params["CallStatus"] == "completed"


def test_unknown_noun_and_more_than_ten_nouns_are_twiml_errors() -> None:
    # Given a <Dial> with a bogus noun, and one with eleven numbers
    bogus = FakeApp({"/voice/inbound": "<Response><Dial><Phone>+1555</Phone></Dial></Response>"})
    eleven = dial_app(*[f"+1555000{n:04d}" for n in range(11)])

    # When the calls run, Then the errors name the offending element
    with pytest.raises(
        TwimlError, match=re.escape("unknown noun <Phone> in <Dial> at /Response[1]/Dial[1]")
    ):
        call(bogus)
    with pytest.raises(TwimlError, match="has 11 nouns; at most 10"):
        call(eleven)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("<Response><Say>unclosed</Response>", "malformed XML"),
        ("<Reply><Say>Hi</Say></Reply>", "root element is <Reply>"),
        (
            "<Response><Gather><Dial>+1</Dial></Gather></Response>",
            "<Dial> is not allowed inside <Gather>",
        ),
    ],
)
def test_invalid_documents_are_twiml_errors(body: str, message: str) -> None:
    # Given an app answering with invalid TwiML
    app = FakeApp({"/voice/inbound": body})

    # When / Then
    with pytest.raises(TwimlError, match=re.escape(message)):
        call(app)


def test_lenient_mode_records_twiml_errors_without_raising() -> None:
    # Given invalid TwiML and a non-strict simulator
    app = FakeApp({"/voice/inbound": "<Response><Foo/></Response>"})

    # When the call runs
    t = simulator(app, strict=False).place_call(CALLER, CALLER)

    # Then the error is in the transcript
    assert t.application_error
    assert t.error == "unknown verb <Foo> at /Response[1]"


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(500, text="boom"),
        httpx.Response(200, json={"ok": True}),
        httpx.Response(200, text=""),
    ],
)
def test_webhook_failure_is_an_application_error_not_an_exception(response: httpx.Response) -> None:
    # Given an app whose gather action fails
    app = FakeApp(
        {
            "/voice/inbound": menu(),
            "/voice/menu": lambda _: response,
            "/voice/status": empty_ok,
        }
    )

    # When the caller presses 1
    t = call(app, script=CallerScript(inputs=["1"]))

    # Then the caller hears the application error and the call completes
    assert t.application_error
    assert t.said() == ["Press 1 for sales", APPLICATION_ERROR_TEXT]
    assert t.final_status == "completed"
    assert app.to("/voice/status")[0].params["CallStatus"] == "completed"


def test_webhook_timeout_is_an_application_error() -> None:
    # Given an app that never answers in time
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("too slow", request=request)

    sim = CallSimulator(BASE, TOKEN, client=httpx.Client(transport=httpx.MockTransport(slow)))

    # When a call is placed
    t = sim.place_call(CALLER, CALLED)

    # Then it is recorded as an application error with no status code
    assert t.application_error
    assert t.requests[0].status_code is None
    assert "timeout" in (t.requests[0].error or "")


# ----------------------------------------------------------------------------- call outcomes


def test_reject_busy_never_answers_the_call() -> None:
    # Given an app that rejects the caller as busy
    app = FakeApp(
        {"/voice/inbound": twiml(lambda r: r.reject(reason="busy")), "/voice/status": empty_ok}
    )

    # When the call is placed
    t = call(app)

    # Then the call ends busy, unanswered
    assert (t.final_status, t.duration) == ("busy", 0)
    assert app.to("/voice/status")[0].params["CallStatus"] == "busy"
    assert t.of_kind("answer") == []


def test_answer_on_bridge_propagates_a_busy_party_to_the_caller() -> None:
    # Given answerOnBridge with nothing after the <Dial>
    app = FakeApp(
        {"/voice/inbound": twiml(lambda r: r.dial("+15551230000", answer_on_bridge=True))}
    )

    # When the party is busy
    t = call(app, default_party=PartyBehaviour.busy())

    # Then the caller's call was never answered and ends busy
    assert (t.final_status, t.duration) == ("busy", 0)


def test_public_base_url_with_a_stage_prefix_is_mapped_onto_the_base_url() -> None:
    # Given an app that believes it lives under an API Gateway stage
    app = FakeApp(
        {
            "/voice/inbound": menu(action="menu"),
            "/voice/menu": twiml(lambda r: r.redirect("https://voice.example.com/api/voice/end")),
            "/voice/end": twiml(lambda r: r.say("Bye")),
        },
        public_base="https://voice.example.com/api",
    )

    # When the call runs
    t = call(app, script=CallerScript(inputs=["1#"]))

    # Then requests reach the base URL while signatures cover the public URLs
    assert [s.path for s in app.seen] == [
        "/voice/inbound",
        "/voice/menu",
        "/voice/end",
        "/voice/status",
    ]
    assert all(s.signature_ok for s in app.seen[:3])
    assert t.requests[1].signed_url == "https://voice.example.com/api/voice/menu"
    assert t.requests[1].url == f"{BASE}/voice/menu"


# ----------------------------------------------------------------------------- specs, transcript


def test_party_and_queue_specs_parse_from_cli_strings() -> None:
    assert PartyBehaviour.parse("answer:after=3,talk=120,digits=1") == PartyBehaviour.answer(
        after=3, talk=120, digits="1"
    )
    assert PartyBehaviour.parse("no-answer") == PartyBehaviour.no_answer()
    assert PartyBehaviour.parse("busy:after=4") == PartyBehaviour.busy(after=4)
    assert PartyBehaviour.parse("answer:digits=1|2,hangup_in_whisper").whisper_digits == ("1", "2")
    assert QueueBehaviour.parse("bridged_after=30,talk=5") == QueueBehaviour(30, 5)
    with pytest.raises(ScriptError, match="unknown party outcome"):
        PartyBehaviour.parse("ring:after=1")
    with pytest.raises(ScriptError, match="unknown option"):
        PartyBehaviour.parse("answer:colour=blue")
    with pytest.raises(ScriptError, match="invalid DTMF"):
        CallerScript(inputs=["12a"])


def test_transcript_renders_text_and_json() -> None:
    # Given a simple call
    app = FakeApp({"/voice/inbound": twiml(lambda r: (r.say("Hello there"), r.pause(length=2)))})

    # When it runs
    t = call(app)

    # Then the text has one line per event with virtual times, and JSON round-trips
    text = t.to_text()
    assert "[    0.0s] say        'Hello there'" in text
    assert "[    0.8s] pause      2s" in text
    data = json.loads(json.dumps(t.to_json()))
    assert data["call_sid"] == t.call_sid
    assert data["said"] == ["Hello there"]
    assert [e["kind"] for e in data["events"]][:3] == ["incoming", "request", "twiml"]


# ----------------------------------------------------------------------------- real HTTP


class LoopbackApp(ThreadingHTTPServer):
    """A real HTTP voice app on 127.0.0.1 that rejects badly signed requests with 403."""

    routes: dict[str, str]
    seen: list[tuple[str, str, bool]]


class _Handler(BaseHTTPRequestHandler):
    server: LoopbackApp

    def _handle(self, params: dict[str, str]) -> None:
        public = PUBLIC + self.path
        ok = RequestValidator(TOKEN).validate(
            public, params, self.headers.get("X-Twilio-Signature", "")
        )
        path = urlsplit(self.path).path
        self.server.seen.append((self.command, path, ok))
        body = self.server.routes.get(path)
        status = 403 if not ok else (404 if body is None else 200)
        payload = (body if status == 200 and body is not None else "").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length).decode()
        self._handle(dict(parse_qsl(raw, keep_blank_values=True)))

    def do_GET(self) -> None:
        self._handle({})

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def loopback() -> Iterator[LoopbackApp]:
    server = LoopbackApp(("127.0.0.1", 0), _Handler)
    server.routes = {
        "/voice/inbound": str(menu(action="menu?lang=en", num_digits=1)),
        "/voice/menu": str(twiml(lambda r: r.redirect("finish?x=1 2", method="GET"))),
        "/voice/finish": str(twiml(lambda r: r.say("Goodbye from the loopback app"))),
        "/voice/status": "",
    }
    server.seen = []
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def loopback_url(server: LoopbackApp) -> str:
    host, port = server.server_address[:2]
    return f"http://{host!s}:{port}"


def test_signatures_verify_on_a_real_http_server(loopback: LoopbackApp) -> None:
    # Given a real server validating X-Twilio-Signature against its public URL
    with CallSimulator(loopback_url(loopback), TOKEN, public_base_url=PUBLIC) as sim:
        # When a call walks POST webhooks, a relative action with a query and a GET redirect
        t = sim.place_call(CALLER, CALLED, script=CallerScript(inputs=["1"]))

    # Then every request verified, including the final status callback
    assert [(m, p) for m, p, _ in loopback.seen] == [
        ("POST", "/voice/inbound"),
        ("POST", "/voice/menu"),
        ("GET", "/voice/finish"),
        ("POST", "/voice/status"),
    ]
    assert all(ok for _, _, ok in loopback.seen)
    assert t.said() == ["Press 1 for sales", "Goodbye from the loopback app"]
    assert not t.application_error


def test_cli_json_output_parses(loopback: LoopbackApp, capsys: pytest.CaptureFixture[str]) -> None:
    # Given the loopback app
    argv = ["--url", loopback_url(loopback), "--public-base-url", PUBLIC, "--auth-token", TOKEN]
    argv += ["--from", CALLER, "--to", CALLED, "--digits", "1", "--from-state", "CA", "--json"]

    # When the CLI places a call
    code = main(argv)

    # Then it exits 0 and the last line is the JSON transcript
    out = capsys.readouterr().out.strip().splitlines()
    data = json.loads(out[-1])
    assert code == 0
    assert data["final_status"] == "completed"
    assert data["application_error"] is False
    assert data["said"][-1] == "Goodbye from the loopback app"
    assert data["requests"][0]["params"]["FromState"] == "CA"


def test_cli_exit_codes(loopback: LoopbackApp, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["--url", loopback_url(loopback), "--auth-token", TOKEN, "--from", CALLER]

    # A signature computed over the wrong public URL is refused (403): application error
    assert main([*base, "--to", CALLED]) == 1
    assert "[    0.0s] request    voice: POST" in capsys.readouterr().out
    # Usage errors
    assert main(base) == 2
    assert main([*base, "--to", CALLED, "--party", "+1555=ring"]) == 2
    loopback.routes["/voice/inbound"] = "<Response><Foo/></Response>"
    assert main([*base, "--to", CALLED, "--public-base-url", PUBLIC]) == 1
    assert "unknown verb <Foo>" in capsys.readouterr().err
