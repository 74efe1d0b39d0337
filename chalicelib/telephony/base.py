"""The CPaaS operations the platform needs, as plain values and one Protocol."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

# Twilio's error code for "the phone number you requested is not available": someone else
# bought it between our search and our purchase.
NUMBER_UNAVAILABLE_CODE = 21422
# Twilio's error code for "the requested resource was not found".
NOT_FOUND_CODE = 20404


@dataclass(frozen=True)
class AvailableNumber:
    """A number the CPaaS offers for purchase."""

    e164: str
    friendly_name: str
    locality: str | None
    region: str | None
    postal_code: str | None
    iso_country: str
    capabilities: frozenset[str]  # lower-case: {"voice", "sms", "mms", "fax"}


@dataclass(frozen=True)
class OwnedNumber:
    """A number on our CPaaS account, with the webhooks it calls."""

    sid: str
    e164: str
    friendly_name: str
    voice_url: str
    status_callback: str | None
    voice_fallback_url: str | None


@dataclass(frozen=True)
class PlacedCall:
    """An outbound call the CPaaS accepted (it is queued, not yet answered)."""

    sid: str
    status: str


class TelephonyError(Exception):
    """A CPaaS request failed.

    `status` is the HTTP status and `code` the CPaaS error code, when known (a network
    failure has neither). The message never carries credentials.
    """

    def __init__(self, message: str, *, status: int | None = None, code: int | None = None):
        super().__init__(message)
        self.status = status
        self.code = code


class NumberUnavailable(TelephonyError):
    """The number was taken between search and purchase (or is otherwise not for sale)."""


class TelephonyConfigError(RuntimeError):
    """The telephony backend is misconfigured (a deployment problem, not a CPaaS failure)."""


@runtime_checkable
class Telephony(Protocol):
    """Outbound CPaaS REST operations. Webhook URLs are called with POST; status callbacks
    report the final call status only."""

    def search_numbers(
        self,
        *,
        country: str = "US",
        area_code: str | None = None,
        toll_free: bool = False,
        contains: str | None = None,
        limit: int = 20,
    ) -> list[AvailableNumber]: ...

    def purchase_number(
        self,
        e164: str,
        *,
        voice_url: str,
        status_callback: str,
        fallback_url: str,
        friendly_name: str | None = None,
    ) -> OwnedNumber: ...

    def configure_number(
        self, sid: str, *, voice_url: str, status_callback: str, fallback_url: str
    ) -> OwnedNumber: ...

    def release_number(self, sid: str) -> None: ...

    def place_call(
        self,
        *,
        to: str,
        from_: str,
        url: str,
        status_callback: str,
        timeout: int = 30,
        machine_detection: bool = False,
    ) -> PlacedCall: ...
