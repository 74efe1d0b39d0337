"""`Telephony` over Twilio's REST API, through the official SDK."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from chalicelib.telephony.base import (
    NUMBER_UNAVAILABLE_CODE,
    AvailableNumber,
    NumberUnavailable,
    OwnedNumber,
    PlacedCall,
    TelephonyConfigError,
    TelephonyError,
)

T = TypeVar("T")

# Below the 15 s Lambda timeout, so a slow CPaaS surfaces as a TelephonyError we can
# report rather than as a killed invocation.
DEFAULT_HTTP_TIMEOUT_SECONDS = 10.0
_REDACTED = "[redacted]"


class TwilioTelephony:
    """Buys and configures numbers and places calls on one Twilio account."""

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        client: Client | None = None,
        region: str | None = None,
        edge: str | None = None,
        timeout: float = DEFAULT_HTTP_TIMEOUT_SECONDS,
    ) -> None:
        if not account_sid or not auth_token:
            raise TelephonyConfigError("TwilioTelephony needs an account SID and an auth token")
        if client is None:
            # The SDK's default HTTP client has no timeout at all.
            client = Client(
                account_sid,
                auth_token,
                region=region,
                edge=edge,
                http_client=TwilioHttpClient(timeout=timeout),
            )
        self._client: Any = client
        self._account_sid = account_sid
        # Kept only to scrub from error messages, in case the CPaaS or a proxy ever echoes them.
        self._secrets = (auth_token, account_sid)

    def __repr__(self) -> str:
        return f"TwilioTelephony(account_sid='...{self._account_sid[-4:]}')"

    def search_numbers(
        self,
        *,
        country: str = "US",
        area_code: str | None = None,
        toll_free: bool = False,
        contains: str | None = None,
        limit: int = 20,
    ) -> list[AvailableNumber]:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        country = country.upper()
        filters: dict[str, object] = {"voice_enabled": True, "limit": limit}
        if area_code is not None:
            filters["area_code"] = area_code
        if contains is not None:
            filters["contains"] = contains
        country_numbers = self._client.available_phone_numbers(country)
        listing = country_numbers.toll_free if toll_free else country_numbers.local
        records = self._call("search_numbers", lambda: listing.list(**filters))
        return [_available(record, country) for record in records]

    def purchase_number(
        self,
        e164: str,
        *,
        voice_url: str,
        status_callback: str,
        fallback_url: str,
        friendly_name: str | None = None,
    ) -> OwnedNumber:
        fields = _webhook_fields(voice_url, status_callback, fallback_url)
        if friendly_name is not None:
            fields["friendly_name"] = friendly_name
        record = self._call(
            "purchase_number",
            lambda: self._client.incoming_phone_numbers.create(phone_number=e164, **fields),
        )
        return _owned(record)

    def configure_number(
        self, sid: str, *, voice_url: str, status_callback: str, fallback_url: str
    ) -> OwnedNumber:
        fields = _webhook_fields(voice_url, status_callback, fallback_url)
        # A number bound to a TwiML App ignores its own VoiceUrl; unbinding it makes our
        # webhooks the ones that answer, which is what configuring a number means here.
        fields["voice_application_sid"] = ""
        record = self._call(
            "configure_number", lambda: self._client.incoming_phone_numbers(sid).update(**fields)
        )
        return _owned(record)

    def release_number(self, sid: str) -> None:
        try:
            self._call("release_number", lambda: self._client.incoming_phone_numbers(sid).delete())
        except TelephonyError as exc:
            # Already gone is the state we asked for; this keeps retried releases harmless.
            if exc.status != 404:
                raise

    def place_call(
        self,
        *,
        to: str,
        from_: str,
        url: str,
        status_callback: str,
        timeout: int = 30,
        machine_detection: bool = False,
    ) -> PlacedCall:
        # No StatusCallbackEvent: Twilio then reports only the final status ("completed").
        fields: dict[str, object] = {
            "to": to,
            "from_": from_,
            "url": url,
            "method": "POST",
            "status_callback": status_callback,
            "status_callback_method": "POST",
            "timeout": timeout,
        }
        if machine_detection:
            fields["machine_detection"] = "Enable"
        record = self._call("place_call", lambda: self._client.calls.create(**fields))
        return PlacedCall(sid=str(record.sid), status=str(record.status))

    def _call(self, operation: str, request: Callable[[], T]) -> T:
        """Runs one SDK request, turning every SDK or transport failure into TelephonyError.

        `from None`: a logged traceback would otherwise print the SDK's exception, whose text
        we have not scrubbed; ours already carries its status, code and message.
        """
        try:
            return request()
        except TwilioRestException as exc:
            raise self._error(operation, exc.status, exc.code, str(exc.msg)) from None
        except TwilioServiceException as exc:
            detail = f"{exc.title}: {exc.detail}" if exc.detail else str(exc.title)
            raise self._error(operation, exc.status, exc.code, detail) from None
        except TwilioException as exc:
            # List requests fail as a bare TwilioException("Unable to fetch page", response).
            status, code, message = _from_bare(exc)
            raise self._error(operation, status, code, message) from None
        except OSError as exc:
            # requests' errors are OSErrors; their text can hold the URL, so name the type only.
            raise TelephonyError(
                f"Twilio {operation} failed: CPaaS unreachable ({type(exc).__name__})"
            ) from None

    def _error(self, operation: str, status: object, code: object, message: str) -> TelephonyError:
        status_int = _int_or_none(status)
        code_int = _int_or_none(code)
        text = f"Twilio {operation} failed: HTTP {status_int}"
        if code_int is not None:
            text += f", error {code_int}"
        text += f": {message}"
        for secret in self._secrets:
            text = text.replace(secret, _REDACTED)
        if code_int == NUMBER_UNAVAILABLE_CODE:
            return NumberUnavailable(text, status=status_int, code=code_int)
        return TelephonyError(text, status=status_int, code=code_int)


def _webhook_fields(voice_url: str, status_callback: str, fallback_url: str) -> dict[str, object]:
    # POST everywhere: our routes verify X-Twilio-Signature over form bodies.
    return {
        "voice_url": voice_url,
        "voice_method": "POST",
        "status_callback": status_callback,
        "status_callback_method": "POST",
        "voice_fallback_url": fallback_url,
        "voice_fallback_method": "POST",
    }


def _available(record: Any, country: str) -> AvailableNumber:
    e164 = str(record.phone_number)
    return AvailableNumber(
        e164=e164,
        friendly_name=_str_or_none(record.friendly_name) or e164,
        locality=_str_or_none(record.locality),
        region=_str_or_none(record.region),
        postal_code=_str_or_none(record.postal_code),
        iso_country=_str_or_none(record.iso_country) or country,
        capabilities=_capabilities(record.capabilities),
    )


def _owned(record: Any) -> OwnedNumber:
    e164 = str(record.phone_number)
    return OwnedNumber(
        sid=str(record.sid),
        e164=e164,
        friendly_name=_str_or_none(record.friendly_name) or e164,
        voice_url=_str_or_none(record.voice_url) or "",
        status_callback=_str_or_none(record.status_callback),
        voice_fallback_url=_str_or_none(record.voice_fallback_url),
    )


def _capabilities(raw: object) -> frozenset[str]:
    # Twilio spells them {"voice": true, "SMS": true, "MMS": false, "fax": false}.
    if not isinstance(raw, dict):
        return frozenset()
    return frozenset(str(name).lower() for name, enabled in raw.items() if enabled is True)


def _str_or_none(value: object) -> str | None:
    # Twilio sends "" as well as null for an absent locality or callback.
    return str(value) if value not in (None, "") else None


def _int_or_none(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _from_bare(exc: TwilioException) -> tuple[int | None, int | None, str]:
    """Status, code and message of a TwilioException that only carries the raw response."""
    message = str(exc.args[0]) if exc.args else type(exc).__name__
    response = exc.args[1] if len(exc.args) > 1 else None
    if not isinstance(response, Response):
        return None, None, message
    status = response.status_code
    try:
        body = json.loads(response.text)
    except ValueError:
        return status, None, message
    if not isinstance(body, dict):
        return status, None, message
    code = _int_or_none(body.get("code"))
    detail = body.get("message")
    return status, code, f"{message}: {detail}" if detail else message
