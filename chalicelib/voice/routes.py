"""The `/voice` blueprint: CPaaS webhooks, each answering TwiML."""

from __future__ import annotations

from chalice.app import Blueprint
from twilio.twiml.voice_response import VoiceResponse

from chalicelib.voice import calls, twiml
from chalicelib.voice.webhook import voice_route

bp = Blueprint(__name__)


@voice_route(bp, "/inbound")
def inbound(form: dict[str, str]) -> VoiceResponse:
    return calls.answer_inbound(form)


@voice_route(bp, "/status")
def status(form: dict[str, str]) -> VoiceResponse:
    return calls.record_status(form)


@voice_route(bp, "/fallback")
def fallback(form: dict[str, str]) -> VoiceResponse:
    """The CPaaS's fallback URL: called when the primary webhook failed or timed out."""
    return twiml.fallback()
