"""The one decorator every `/voice/...` route goes through: signature, parsing, fallback TwiML."""

from __future__ import annotations

import functools
from collections.abc import Callable

from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError
from chalice.app import Blueprint, Response
from pydantic import ValidationError
from twilio.twiml.voice_response import VoiceResponse

from chalicelib.config import get_settings
from chalicelib.observability import bind_call, logger, metrics
from chalicelib.requests import current_request
from chalicelib.store import deferred
from chalicelib.voice import signature, twiml
from chalicelib.voice.params import BadWebhook, parse_form

FORM = "application/x-www-form-urlencoded"
VoiceHandler = Callable[..., VoiceResponse | str]
# Routes whose callbacks carry facts (a dial's result, a final status): when one cannot be
# applied (the table unavailable) it is kept and applied later by this function.
REPLAYS: dict[str, VoiceHandler] = {}


def _twiml(document: VoiceResponse | str) -> Response:
    return Response(body=str(document), status_code=200, headers={"Content-Type": "text/xml"})


def _raw_bytes(body: str | bytes | None) -> bytes:
    if body is None:
        return b""
    return body.encode() if isinstance(body, str) else body


def _forbidden() -> Response:
    return Response(
        body="signature required", status_code=403, headers={"Content-Type": "text/plain"}
    )


def voice_route(
    bp: Blueprint, path: str, *, replay: VoiceHandler | None = None
) -> Callable[[VoiceHandler], VoiceHandler]:
    """Register a CPaaS webhook on `bp`.

    The handler gets the parsed form (a dict of strings) and the route's path
    parameters, and returns TwiML. Before it runs, the body is size-checked and
    parsed and `X-Twilio-Signature` is verified (403 and no side effect when it is
    wrong). Whatever the handler raises, the CPaaS gets valid fallback TwiML with
    status 200, so a caller never hears an application error. With `replay`, a verified
    callback the handler could not apply is kept (`store.deferred`) and `replay` applies
    it later (`voice.replay`): its facts are not lost.
    """
    if replay is not None:
        REPLAYS[path] = replay

    def decorate(handler: VoiceHandler) -> VoiceHandler:
        @bp.route(path, methods=["POST"], content_types=[FORM])
        @functools.wraps(handler)
        def view(**uri: str) -> Response:
            request = current_request()
            settings = get_settings()
            try:
                form = parse_form(_raw_bytes(request.raw_body), settings.max_webhook_body_bytes)
            except BadWebhook as err:
                logger.warning("unreadable webhook body", extra={"reason": str(err)})
                metrics.add_metric(name="VoiceBadRequest", unit=MetricUnit.Count, value=1)
                return _twiml(twiml.fallback())
            try:
                token = signature.auth_token(settings)
            except (signature.SignatureUnverifiable, BotoCoreError, ClientError) as err:
                # Without the token nothing is trusted or written, but the caller still
                # hears a polite message rather than the CPaaS's application error.
                logger.error("auth token unavailable", extra={"reason": str(err)})
                return _twiml(twiml.fallback())
            url = signature.public_url(request, settings)
            signed = signature.is_signed(
                url, form, request.headers.get("x-twilio-signature"), token
            )
            if not signed or not signature.from_our_account(form, settings):
                logger.warning("webhook signature rejected", extra={"url": url})
                metrics.add_metric(name="VoiceSignatureRejected", unit=MetricUnit.Count, value=1)
                return _forbidden()
            # Only a verified request may name the call in our logs.
            bind_call(call_sid=form.get("CallSid"))
            try:
                return _twiml(handler(form, **uri))
            except ValidationError as err:
                # Field names only: the values are callers' phone numbers.
                bad = sorted({".".join(map(str, e["loc"])) for e in err.errors()})
                logger.warning("invalid webhook parameters", extra={"fields": bad})
                metrics.add_metric(name="VoiceBadRequest", unit=MetricUnit.Count, value=1)
            except BadWebhook as err:
                logger.warning("invalid webhook", extra={"reason": str(err)})
                metrics.add_metric(name="VoiceBadRequest", unit=MetricUnit.Count, value=1)
            except Exception:  # noqa: BLE001 - the caller must never hear an application error
                logger.exception("voice handler failed; answering fallback TwiML")
                metrics.add_metric(name="VoiceHandlerError", unit=MetricUnit.Count, value=1)
                if replay is not None:
                    deferred.keep(deferred.DeferredCallback(path, dict(uri), form))
            return _twiml(twiml.fallback())

        return handler

    return decorate
