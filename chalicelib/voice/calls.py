"""What happens when a call arrives and when it ends (domain logic behind the voice routes)."""

from __future__ import annotations

from twilio.twiml.voice_response import VoiceResponse

from chalicelib.observability import bind_call, logger
from chalicelib.store import calls, numbers
from chalicelib.voice import twiml
from chalicelib.voice.params import StatusParams, VoiceParams


def caller_tags(params: VoiceParams) -> dict[str, str]:
    """What the CPaaS told us about the caller's location, kept on the call record."""
    found = {
        "from_city": params.from_city,
        "from_state": params.from_state,
        "from_zip": params.from_zip,
        "from_country": params.from_country,
    }
    return {k: v for k, v in found.items() if v}


def answer_inbound(form: dict[str, str]) -> VoiceResponse:
    """Attribute the call to the account that owns the dialled number, record it, greet."""
    params = VoiceParams.model_validate(form)
    route = numbers.route_for_number(params.to)
    if route is None:
        logger.info("call to an unknown number", extra={"to": params.to})
        return twiml.say_and_hang_up(twiml.NOT_IN_SERVICE)
    bind_call(call_sid=params.call_sid, account_id=route.account_id)
    created = calls.record_new_call(
        calls.NewCall(
            call_sid=params.call_sid,
            account_id=route.account_id,
            direction="inbound",
            from_number=params.from_,
            to_number=params.to,
            status=params.call_status,
            tags=caller_tags(params),
        )
    )
    if not created:
        logger.info("repeated inbound webhook; call record kept as it was")
    return twiml.say_and_hang_up(route.greeting or twiml.DEFAULT_GREETING)


def record_status(form: dict[str, str]) -> VoiceResponse:
    """Apply a status callback once; retries and unknown calls change nothing."""
    params = StatusParams.model_validate(form)
    if params.call_status in calls.FINAL_STATUSES:
        account_id = calls.finish_call(params.call_sid, params.call_status, params.call_duration)
    else:
        account_id = calls.note_progress(params.call_sid, params.call_status)
    if account_id is None:
        logger.info("status callback ignored (unknown call or already final)")
    else:
        bind_call(account_id=account_id)
        logger.info("call status recorded", extra={"status": params.call_status})
    return twiml.empty()
