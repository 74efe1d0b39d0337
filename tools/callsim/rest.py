"""The CPaaS REST side: the account, its API addresses and the resources a call creates.

Owns what the provider's REST API models: account and API identifiers, the SIDs and URLs of
recordings, transcriptions and queues, and the callbacks those resources send once ready.
Outbound call creation (the dialer's, with answering-machine detection), conferences and
messages belong here as they are simulated.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime

from tools.callsim.clock import whole_seconds
from tools.callsim.webhook import new_sid

DEFAULT_ACCOUNT_SID = "AC" + "5e1f0c0ffee0000000000000000ca115"
API_VERSION = "2010-04-01"
API_ROOT = f"https://api.twilio.com/{API_VERSION}"


@dataclass(frozen=True)
class Deferred:
    """An asynchronous callback the CPaaS sends later (recording status, transcription)."""

    url: str
    method: str
    params: dict[str, str]
    purpose: str


def account_url(account_sid: str) -> str:
    return f"{API_ROOT}/Accounts/{account_sid}"


def recording_url(account_sid: str, recording_sid: str) -> str:
    return f"{account_url(account_sid)}/Recordings/{recording_sid}"


def new_recording(account_sid: str, rng: random.Random, length: float) -> dict[str, str]:
    """A new recording `length` seconds long, as the TwiML callbacks describe it."""
    sid = new_sid("RE", rng)
    return {
        "RecordingUrl": recording_url(account_sid, sid),
        "RecordingSid": sid,
        "RecordingDuration": str(whole_seconds(length)),
    }


def recording_status(
    account_sid: str,
    call_sid: str,
    recording: Mapping[str, str],
    *,
    source: str,
    channels: int,
    started: datetime,
) -> dict[str, str]:
    """What a recordingStatusCallback receives once the recording is completed."""
    return {
        "AccountSid": account_sid,
        "CallSid": call_sid,
        "RecordingSid": recording["RecordingSid"],
        "RecordingUrl": recording["RecordingUrl"],
        "RecordingStatus": "completed",
        "RecordingDuration": recording["RecordingDuration"],
        "RecordingChannels": str(channels),
        "RecordingSource": source,
        "RecordingStartTime": format_datetime(started),
        "ErrorCode": "0",
    }


def new_transcription(
    account_sid: str, rng: random.Random, recording: Mapping[str, str], text: str
) -> dict[str, str]:
    """A transcription of `recording`, as its transcribeCallback describes it."""
    seconds = int(recording["RecordingDuration"])
    # Twilio only transcribes recordings between 2 and 120 seconds long.
    ok = bool(text.strip()) and 2 <= seconds <= 120
    sid = new_sid("TR", rng)
    url = f"{recording_url(account_sid, recording['RecordingSid'])}/Transcriptions/{sid}"
    return {
        "TranscriptionSid": sid,
        "TranscriptionText": text if ok else "",
        "TranscriptionStatus": "completed" if ok else "failed",
        "TranscriptionUrl": url,
        "TranscriptionType": "fast",
        "RecordingSid": recording["RecordingSid"],
        "RecordingUrl": recording["RecordingUrl"],
    }


def queue_sid(account_sid: str, name: str) -> str:
    """The SID of the account's queue called `name` (stable: queues are found by name)."""
    digest = hashlib.md5(f"{account_sid}:{name}".encode(), usedforsecurity=False).hexdigest()
    return "QU" + digest
