"""Phone number parsing: E.164 strings checked with `phonenumbers`."""

from __future__ import annotations

import phonenumbers

# What Twilio sends in `From` when the caller withheld their number.
ANONYMOUS_CALLERS = frozenset({"anonymous", "restricted", "unknown", "unavailable", "private"})


def parse_e164(value: str) -> str:
    """The number itself when it is a possible E.164 number; ValueError otherwise."""
    text = value.strip()
    if not text.startswith("+"):
        raise ValueError("must be an E.164 number such as +14155550100")
    try:
        number = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException as err:
        raise ValueError("must be an E.164 number such as +14155550100") from err
    if not phonenumbers.is_possible_number(number):
        raise ValueError("is not a possible phone number")
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if e164 != text:
        raise ValueError("must be an E.164 number such as +14155550100")
    return e164


def parse_caller(value: str) -> str:
    """A caller id: an E.164 number, or `anonymous` for a withheld one."""
    if value.strip().lower() in ANONYMOUS_CALLERS:
        return "anonymous"
    return parse_e164(value)
