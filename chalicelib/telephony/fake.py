"""An in-memory, deterministic `Telephony` for tests and the local stack."""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from chalicelib.telephony.base import (
    NOT_FOUND_CODE,
    NUMBER_UNAVAILABLE_CODE,
    AvailableNumber,
    NumberUnavailable,
    OwnedNumber,
    PlacedCall,
    Telephony,
    TelephonyError,
)

TOLL_FREE_PREFIXES = ("800", "888")
# Searched when a local search names no area code.
DEFAULT_AREA_CODES = ("415", "212", "312")
# Only for nicer search results; any NANP area code has an inventory.
_PLACES: dict[str, tuple[str, str, str]] = {
    "212": ("New York", "NY", "10001"),
    "213": ("Los Angeles", "CA", "90012"),
    "305": ("Miami", "FL", "33130"),
    "312": ("Chicago", "IL", "60601"),
    "415": ("San Francisco", "CA", "94105"),
    "512": ("Austin", "TX", "78701"),
    "617": ("Boston", "MA", "02108"),
    "646": ("New York", "NY", "10011"),
    "702": ("Las Vegas", "NV", "89101"),
}
_AREA_CODE = re.compile(r"\A[2-9][0-9]{2}\Z")
# Each area code offers +1{area}5550100 .. +1{area}5550199.
_INVENTORY = re.compile(r"\A\+1([2-9][0-9]{2})5550(1[0-9]{2})\Z")
_KEYPAD = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "22233344455566677778889999")


@dataclass(frozen=True)
class CallRequest:
    """What `place_call` was asked to do, for tests to inspect."""

    sid: str
    to: str
    from_: str
    url: str
    status_callback: str
    timeout: int
    machine_detection: bool


class FakeTelephony:
    """Sells `+1{area}555{0100..0199}` and `+1{800,888}555{0100..0199}`, once each.

    Bought and released numbers leave the inventory for good, as released Twilio numbers
    are not offered again straight away.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owned: dict[str, OwnedNumber] = {}  # by sid, in purchase order
        self._taken: set[str] = set()  # e164 of every number ever bought
        self._calls: list[CallRequest] = []
        self._failures: list[TelephonyError] = []

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
        with self._lock:
            self._raise_injected()
            if country.upper() != "US":
                return []
            pattern = _contains_pattern(contains) if contains else None
            found: list[AvailableNumber] = []
            for number in _candidates(area_code, toll_free):
                if number.e164 in self._taken:
                    continue
                if pattern is not None and not pattern.search(number.e164[1:]):
                    continue
                found.append(number)
                if len(found) == limit:
                    break
            return found

    def purchase_number(
        self,
        e164: str,
        *,
        voice_url: str,
        status_callback: str,
        fallback_url: str,
        friendly_name: str | None = None,
    ) -> OwnedNumber:
        with self._lock:
            self._raise_injected()
            if e164 in self._taken or _offer(e164) is None:
                raise NumberUnavailable(
                    f"Twilio purchase_number failed: HTTP 400, error {NUMBER_UNAVAILABLE_CODE}: "
                    f"the phone number {e164} is not available",
                    status=400,
                    code=NUMBER_UNAVAILABLE_CODE,
                )
            owned = OwnedNumber(
                sid=_sid("PN", e164),
                e164=e164,
                friendly_name=friendly_name or _friendly(e164),
                voice_url=voice_url,
                status_callback=status_callback,
                voice_fallback_url=fallback_url,
            )
            self._taken.add(e164)
            self._owned[owned.sid] = owned
            return owned

    def configure_number(
        self, sid: str, *, voice_url: str, status_callback: str, fallback_url: str
    ) -> OwnedNumber:
        with self._lock:
            self._raise_injected()
            current = self._owned.get(sid)
            if current is None:
                raise TelephonyError(
                    f"Twilio configure_number failed: HTTP 404, error {NOT_FOUND_CODE}: "
                    f"no number {sid}",
                    status=404,
                    code=NOT_FOUND_CODE,
                )
            updated = OwnedNumber(
                sid=sid,
                e164=current.e164,
                friendly_name=current.friendly_name,
                voice_url=voice_url,
                status_callback=status_callback,
                voice_fallback_url=fallback_url,
            )
            self._owned[sid] = updated
            return updated

    def release_number(self, sid: str) -> None:
        with self._lock:
            self._raise_injected()
            # Releasing an unknown number succeeds, as in TwilioTelephony.
            self._owned.pop(sid, None)

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
        with self._lock:
            self._raise_injected()
            # The sequence number keeps repeated calls between the same parties distinct.
            sid = _sid("CA", f"{len(self._calls)}|{from_}|{to}")
            self._calls.append(
                CallRequest(
                    sid=sid,
                    to=to,
                    from_=from_,
                    url=url,
                    status_callback=status_callback,
                    timeout=timeout,
                    machine_detection=machine_detection,
                )
            )
            return PlacedCall(sid=sid, status="queued")

    def owned(self) -> list[OwnedNumber]:
        """The numbers on the fake account, in purchase order."""
        with self._lock:
            return list(self._owned.values())

    def placed_calls(self) -> list[CallRequest]:
        """Every call placed, in order."""
        with self._lock:
            return list(self._calls)

    def fail_next(self, error: TelephonyError) -> None:
        """Makes the next operation (of any kind) raise `error`, to test failure paths."""
        with self._lock:
            self._failures.append(error)

    def _raise_injected(self) -> None:
        if self._failures:
            raise self._failures.pop(0)


def _candidates(area_code: str | None, toll_free: bool) -> Iterator[AvailableNumber]:
    if toll_free:
        prefixes: tuple[str, ...] = TOLL_FREE_PREFIXES
        if area_code is not None:
            prefixes = (area_code,) if area_code in TOLL_FREE_PREFIXES else ()
    elif area_code is None:
        prefixes = DEFAULT_AREA_CODES
    else:
        # Twilio offers no local numbers in a toll-free "area code" either.
        valid = _AREA_CODE.match(area_code) and area_code not in TOLL_FREE_PREFIXES
        prefixes = (area_code,) if valid else ()
    for prefix in prefixes:
        for line in range(100, 200):
            offer = _offer(f"+1{prefix}5550{line}")
            if offer is not None:
                yield offer


def _offer(e164: str) -> AvailableNumber | None:
    """The inventory entry for `e164`, or None when the fake never sells it."""
    match = _INVENTORY.match(e164)
    if match is None:
        return None
    prefix = match.group(1)
    if prefix in TOLL_FREE_PREFIXES:
        return AvailableNumber(
            e164=e164,
            friendly_name=_friendly(e164),
            locality=None,
            region=None,
            postal_code=None,
            iso_country="US",
            capabilities=frozenset({"voice", "sms"}),
        )
    locality, region, postal_code = _PLACES.get(prefix, (None, None, None))
    return AvailableNumber(
        e164=e164,
        friendly_name=_friendly(e164),
        locality=locality,
        region=region,
        postal_code=postal_code,
        iso_country="US",
        capabilities=frozenset({"voice", "sms", "mms"}),
    )


def _friendly(e164: str) -> str:
    digits = e164[2:]
    return f"({digits[:3]}) {digits[3:6]}-{digits[6:]}"


def _sid(prefix: str, seed: str) -> str:
    # Deterministic, so test expectations and local-stack data stay stable between runs.
    return prefix + hashlib.sha256(f"{prefix}|{seed}".encode()).hexdigest()[:32]


def _contains_pattern(contains: str) -> re.Pattern[str]:
    # Twilio's Contains: digits, letters read off a phone keypad, "*" for any one digit.
    digits = contains.upper().translate(_KEYPAD)
    return re.compile("".join(r"[0-9]" if ch == "*" else re.escape(ch) for ch in digits))


def _satisfies_protocol(fake: FakeTelephony) -> Telephony:
    # mypy fails here, not in some handler's tests, if the fake drifts from the interface.
    return fake
