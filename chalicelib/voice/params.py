"""Typed views of the CPaaS's form-encoded webhook parameters."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import parse_qsl

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from chalicelib.phone import parse_caller, parse_e164

CallSid = Annotated[str, Field(pattern=r"^CA[0-9a-f]{32}$")]
Caller = Annotated[str, AfterValidator(parse_caller)]
Dialled = Annotated[str, AfterValidator(parse_e164)]


# Each validator is built by the first webhook that uses it rather than at import (pydantic's
# schema machinery and five models: ≈60 ms of every cold start, API requests' included).
WEBHOOK_MODEL = ConfigDict(extra="ignore", populate_by_name=True, defer_build=True)


class BadWebhook(Exception):
    """The webhook's body cannot be read as the CPaaS would send it."""


def parse_form(raw: bytes, max_bytes: int) -> dict[str, str]:
    if len(raw) > max_bytes:
        raise BadWebhook(f"body is {len(raw)} bytes, over {max_bytes}")
    try:
        text = raw.decode("utf-8")
        pairs = parse_qsl(
            text, keep_blank_values=True, strict_parsing=bool(text), max_num_fields=200
        )
    except (UnicodeDecodeError, ValueError) as err:
        raise BadWebhook(f"body is not form-encoded: {err}") from err
    return dict(pairs)


class VoiceParams(BaseModel):
    """Parameters every voice webhook carries."""

    model_config = WEBHOOK_MODEL

    call_sid: CallSid = Field(alias="CallSid")
    account_sid: str = Field(alias="AccountSid", default="")
    from_: Caller = Field(alias="From")
    to: Dialled = Field(alias="To")
    call_status: str = Field(alias="CallStatus", default="ringing")
    direction: str = Field(alias="Direction", default="inbound")
    from_city: str = Field(alias="FromCity", default="")
    from_state: str = Field(alias="FromState", default="")
    from_zip: str = Field(alias="FromZip", default="")
    from_country: str = Field(alias="FromCountry", default="")


class StatusParams(BaseModel):
    """The final (or progress) status callback of a call."""

    model_config = WEBHOOK_MODEL

    call_sid: CallSid = Field(alias="CallSid")
    call_status: Annotated[
        str,
        Field(
            alias="CallStatus",
            pattern=r"^(queued|initiated|ringing|in-progress|completed|busy|no-answer|failed|canceled)$",
        ),
    ]
    call_duration: Annotated[int, Field(alias="CallDuration", ge=0, le=86_400)] = 0


class DialResultParams(BaseModel):
    """The `<Dial action>` request: how the dialled leg ended."""

    model_config = WEBHOOK_MODEL

    call_sid: CallSid = Field(alias="CallSid")
    call_status: str = Field(alias="CallStatus", default="in-progress")
    dial_call_status: Annotated[
        str,
        Field(
            alias="DialCallStatus", pattern=r"^(completed|answered|busy|no-answer|failed|canceled)$"
        ),
    ]
    dial_call_duration: Annotated[int, Field(alias="DialCallDuration", ge=0, le=86_400)] = 0
    # Present when the bridge was recorded (`<Dial record=...>`).
    recording_url: Annotated[str, Field(alias="RecordingUrl", max_length=500)] = ""
    recording_duration: Annotated[int, Field(alias="RecordingDuration", ge=0, le=86_400)] = 0


class GatherParams(BaseModel):
    """A `<Gather action>` request: keys pressed or words said."""

    model_config = WEBHOOK_MODEL

    call_sid: CallSid = Field(alias="CallSid")
    digits: Annotated[str, Field(alias="Digits", max_length=64)] = ""
    speech: Annotated[str, Field(alias="SpeechResult", max_length=1000)] = ""


class WhisperParams(BaseModel):
    """The answering party's leg of a simultaneous offer (whisper and its key press)."""

    model_config = WEBHOOK_MODEL

    parent_call_sid: CallSid = Field(alias="ParentCallSid")
    to: str = Field(alias="To", max_length=256)
    digits: Annotated[str, Field(alias="Digits", max_length=64)] = ""
