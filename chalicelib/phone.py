"""Phone number parsing: E.164 strings checked with `phonenumbers`."""

from __future__ import annotations

import re

# What the CPaaS sends in `From` when the caller withheld their number: words, and
# Twilio's placeholder numbers for anonymous, restricted, blocked and unavailable callers.
ANONYMOUS_CALLERS = frozenset(
    {
        "anonymous",
        "restricted",
        "unknown",
        "unavailable",
        "private",
        "blocked",
        "+266696687",
        "+7378742833",
        "+2562533",
        "+8656696",
    }
)
# Calls placed by our own browser or SIP clients carry their identity instead of a number.
CLIENT_CALLER = re.compile(r"^(client:[A-Za-z0-9_.@-]{1,120}|sips?:[^\s<>\"]{1,200})$")


def parse_e164(value: str) -> str:
    """The number itself when it is a possible E.164 number; ValueError otherwise."""
    # phonenumbers compiles its patterns and loads metadata on import (≈30 ms): the first
    # number parsed pays it, not every cold start.
    import phonenumbers

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
    """A caller id: an E.164 number, `anonymous` for a withheld one, or a client/SIP identity.

    Anything else (a national number, junk) raises ValueError.
    """
    text = value.strip()
    if text.lower() in ANONYMOUS_CALLERS:
        return "anonymous"
    if CLIENT_CALLER.match(text):
        return text
    return parse_e164(text)
