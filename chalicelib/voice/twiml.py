"""TwiML documents built with `twilio.twiml` (never by string formatting)."""

from __future__ import annotations

from twilio.twiml.voice_response import VoiceResponse

FALLBACK_MESSAGE = (
    "We are sorry, we cannot take your call right now. Please try again later. Goodbye."
)
NOT_IN_SERVICE = "The number you have dialed is not in service. Goodbye."
DEFAULT_GREETING = "Thank you for calling. Goodbye."


def say_and_hang_up(text: str) -> VoiceResponse:
    response = VoiceResponse()
    response.say(text)
    response.hangup()
    return response


def fallback() -> VoiceResponse:
    """What a caller hears when anything goes wrong: a polite message, never an error."""
    return say_and_hang_up(FALLBACK_MESSAGE)


def empty() -> VoiceResponse:
    return VoiceResponse()
