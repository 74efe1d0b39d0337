"""The `/voice` blueprint: CPaaS webhooks, each answering TwiML."""

from __future__ import annotations

from chalice.app import Blueprint
from twilio.twiml.voice_response import VoiceResponse

from chalicelib.voice import inbound as arrival
from chalicelib.voice import progress
from chalicelib.voice.webhook import voice_route

bp = Blueprint(__name__)


@voice_route(bp, "/inbound")
def inbound(form: dict[str, str]) -> VoiceResponse | str:
    return arrival.answer_inbound(form)


@voice_route(bp, "/ivr/{node}/{tries}")
def ivr_answer(form: dict[str, str], node: str, tries: str) -> VoiceResponse | str:
    return progress.ivr_answer(form, node, tries)


def _replay_dial_result(form: dict[str, str], attempt: str) -> VoiceResponse | str:
    return progress.dial_result(form, attempt, replayed=True)


@voice_route(bp, "/dial/{attempt}", replay=_replay_dial_result)
def dial_result(form: dict[str, str], attempt: str) -> VoiceResponse | str:
    return progress.dial_result(form, attempt)


@voice_route(bp, "/whisper/{attempt}")
def whisper(form: dict[str, str], attempt: str) -> VoiceResponse:
    return progress.whisper(form, attempt)


@voice_route(bp, "/whisper/{attempt}/accept")
def whisper_accept(form: dict[str, str], attempt: str) -> VoiceResponse:
    return progress.whisper_accept(form, attempt)


@voice_route(bp, "/status", replay=progress.record_status)
def status(form: dict[str, str]) -> VoiceResponse:
    return progress.record_status(form)


@voice_route(bp, "/fallback")
def fallback(form: dict[str, str]) -> VoiceResponse:
    """The CPaaS's fallback URL: called when the primary webhook failed or timed out."""
    return arrival.fallback_for(form)
