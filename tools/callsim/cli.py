"""Command line: place one simulated call and print its transcript."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import TypeVar

from tools.callsim.rest import DEFAULT_ACCOUNT_SID
from tools.callsim.scenario import (
    ANSWER,
    CallerScript,
    GatherInput,
    Geo,
    NoInput,
    PartyBehaviour,
    QueueBehaviour,
    RecordingInput,
    ScriptError,
    Speech,
)
from tools.callsim.simulator import CallSimulator
from tools.callsim.transcript import Transcript
from tools.callsim.twiml import TwimlError

T = TypeVar("T")
_PARTY = re.compile(r"(.+?)=((?:answer|busy|no-answer|no_answer|noanswer|failed)\b.*)", re.I)

EXIT_OK = 0
EXIT_CALL_ERROR = 1
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tools.callsim",
        description="Place a simulated Twilio inbound call against a running voice app.",
        epilog=(
            "Party spec: answer[:after=S,talk=S,digits=D|D,hangup_in_whisper] | busy[:after=S]"
            " | no-answer | failed[:after=S]. Queue spec: bridged_after=S,talk=S | full."
            " Exit status: 0 call ran without application error, 1 application error or"
            " invalid TwiML, 2 usage error."
        ),
    )
    parser.add_argument(
        "--url", required=True, help="where the app listens, e.g. http://127.0.0.1:8000"
    )
    parser.add_argument(
        "--from", dest="from_", required=True, metavar="NUMBER", help="caller number (E.164)"
    )
    parser.add_argument("--to", required=True, metavar="NUMBER", help="called number (E.164)")
    parser.add_argument("--auth-token", help="signing secret (default: $TWILIO_AUTH_TOKEN)")
    parser.add_argument(
        "--public-base-url",
        help="URL prefix signatures are computed over (default: $PUBLIC_BASE_URL, else --url)",
    )
    parser.add_argument(
        "--account-sid", help="AccountSid to send (default: $TWILIO_ACCOUNT_SID, else a fixed one)"
    )
    parser.add_argument("--voice-path", default="/voice/inbound")
    parser.add_argument("--status-path", default="/voice/status")
    parser.add_argument(
        "--no-status-callback", action="store_true", help="do not send the final status callback"
    )
    inputs = parser.add_argument_group("caller behaviour (gather inputs are used in order)")
    inputs.add_argument(
        "--digits", dest="inputs", action="append", type=str, metavar="KEYS", help="e.g. 1 or 12#"
    )
    inputs.add_argument(
        "--speech", dest="inputs", action="append", type=Speech, metavar="WORDS", help="words said"
    )
    inputs.add_argument(
        "--no-input", dest="inputs", action="append_const", const=NoInput(), help="stay silent"
    )
    inputs.add_argument(
        "--record",
        dest="recordings",
        action="append",
        default=[],
        metavar="WORDS",
        help="words said to a <Record> (ended with #)",
    )
    inputs.add_argument("--hangup-after", type=float, metavar="SECONDS")
    for side in ("from", "to"):
        for field_name in ("city", "state", "zip", "country"):
            inputs.add_argument(f"--{side}-{field_name}", default="", metavar=field_name.upper())
    others = parser.add_argument_group("other parties")
    others.add_argument(
        "--party", action="append", default=[], metavar="TARGET=SPEC", help="dialled party"
    )
    others.add_argument("--default-party", metavar="SPEC", help="parties not named by --party")
    others.add_argument("--queue", action="append", default=[], metavar="NAME=SPEC")
    parser.add_argument(
        "--param", action="append", default=[], metavar="KEY=VALUE", help="extra webhook param"
    )
    parser.add_argument("--seed", type=int, help="make SIDs reproducible")
    parser.add_argument("--max-documents", type=int, default=50, help="redirect loop guard")
    parser.add_argument("--json", action="store_true", help="print the transcript as JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on bad usage, 0 on --help
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    token = args.auth_token or os.environ.get("TWILIO_AUTH_TOKEN")
    if not token:
        print("callsim: no auth token (--auth-token or $TWILIO_AUTH_TOKEN)", file=sys.stderr)
        return EXIT_USAGE
    public_base_url = args.public_base_url or os.environ.get("PUBLIC_BASE_URL") or args.url
    try:
        script = CallerScript(
            inputs=list[GatherInput](args.inputs or []),
            recordings=[RecordingInput(words=w, finish_key="#") for w in args.recordings],
            hangup_after=args.hangup_after,
        )
        parties = dict(_party(p) for p in args.party)
        queues = dict(_pair(q, "--queue", QueueBehaviour.parse) for q in args.queue)
        extra = dict(_pair(p, "--param", str) for p in args.param)
        default_party = PartyBehaviour.parse(args.default_party) if args.default_party else ANSWER
    except ScriptError as exc:
        print(f"callsim: {exc}", file=sys.stderr)
        return EXIT_USAGE
    error: TwimlError | None = None
    with CallSimulator(
        args.url,
        token,
        public_base_url=public_base_url,
        account_sid=args.account_sid or os.environ.get("TWILIO_ACCOUNT_SID") or DEFAULT_ACCOUNT_SID,
        voice_path=args.voice_path,
        status_path=None if args.no_status_callback else args.status_path,
        max_documents=args.max_documents,
        seed=args.seed,
    ) as sim:
        try:
            transcript: Transcript | None = sim.place_call(
                args.from_,
                args.to,
                script=script,
                parties=parties,
                default_party=default_party,
                queues=queues,
                extra_params=extra,
                caller_geo=Geo(args.from_city, args.from_state, args.from_zip, args.from_country),
                called_geo=Geo(args.to_city, args.to_state, args.to_zip, args.to_country),
            )
        except TwimlError as exc:
            error, transcript = exc, exc.transcript
    if transcript is not None:
        print(json.dumps(transcript.to_json()) if args.json else transcript.to_text())
    if error is not None:
        print(f"callsim: invalid TwiML: {error.message}", file=sys.stderr)
        return EXIT_CALL_ERROR
    return EXIT_CALL_ERROR if transcript is None or transcript.application_error else EXIT_OK


def _pair(text: str, option: str, convert: Callable[[str], T]) -> tuple[str, T]:
    """Split `KEY=SPEC` at the first '='."""
    key, sep, spec = text.partition("=")
    if not sep or not key.strip():
        raise ScriptError(f"{option} expects KEY=VALUE, got {text!r}")
    return key.strip(), convert(spec.strip())


def _party(text: str) -> tuple[str, PartyBehaviour]:
    """Split `TARGET=SPEC` at the '=' before the outcome (SIP URIs may contain '=')."""
    match = _PARTY.fullmatch(text.strip())
    if match is None:
        raise ScriptError(f"--party expects TARGET=OUTCOME[:OPTIONS], got {text!r}")
    return match.group(1).strip(), PartyBehaviour.parse(match.group(2))
