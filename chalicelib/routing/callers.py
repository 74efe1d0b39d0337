"""Caller enrichment: what `phonenumbers` and the CPaaS tell us about where a caller is."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache

import phonenumbers
from phonenumbers import carrier, geocoder
from phonenumbers import timezone as number_timezone

from chalicelib.routing.model import CallFacts

US_STATES = {
    "Alabama": "AL", "Alaska": "AK", "Arizona": "AZ", "Arkansas": "AR", "California": "CA",
    "Colorado": "CO", "Connecticut": "CT", "Delaware": "DE", "District of Columbia": "DC",
    "Washington D.C.": "DC", "Florida": "FL", "Georgia": "GA", "Hawaii": "HI", "Idaho": "ID",
    "Illinois": "IL", "Indiana": "IN", "Iowa": "IA", "Kansas": "KS", "Kentucky": "KY",
    "Louisiana": "LA", "Maine": "ME", "Maryland": "MD", "Massachusetts": "MA", "Michigan": "MI",
    "Minnesota": "MN", "Mississippi": "MS", "Missouri": "MO", "Montana": "MT", "Nebraska": "NE",
    "Nevada": "NV", "New Hampshire": "NH", "New Jersey": "NJ", "New Mexico": "NM",
    "New York": "NY", "North Carolina": "NC", "North Dakota": "ND", "Ohio": "OH",
    "Oklahoma": "OK", "Oregon": "OR", "Pennsylvania": "PA", "Rhode Island": "RI",
    "South Carolina": "SC", "South Dakota": "SD", "Tennessee": "TN", "Texas": "TX", "Utah": "UT",
    "Vermont": "VT", "Virginia": "VA", "Washington": "WA", "West Virginia": "WV",
    "Wisconsin": "WI", "Wyoming": "WY",
}  # fmt: skip
LINE_TYPES = {
    phonenumbers.PhoneNumberType.MOBILE: "mobile",
    phonenumbers.PhoneNumberType.FIXED_LINE: "landline",
    phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE: "landline_or_mobile",
    phonenumbers.PhoneNumberType.TOLL_FREE: "toll_free",
    phonenumbers.PhoneNumberType.VOIP: "voip",
}


@lru_cache(maxsize=4096)
def describe_number(e164: str) -> dict[str, str]:
    """Country, state, area code, carrier, line type and timezone that the number implies."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return {}
    found = {
        "country": phonenumbers.region_code_for_number(number) or "",
        "line_type": LINE_TYPES.get(phonenumbers.number_type(number), "unknown"),
        "carrier": carrier.name_for_number(number, "en"),
        "timezone": next(iter(number_timezone.time_zones_for_number(number)), ""),
    }
    if number.country_code == 1:
        national = str(number.national_number)
        found["area_code"] = national[:3]
        place = geocoder.description_for_number(number, "en")
        # "San Francisco, CA" or "California"
        state = place.rsplit(", ", 1)[-1] if ", " in place else US_STATES.get(place, "")
        if len(state) == 2:
            found["state"] = state
        if place and ", " in place:
            found["city"] = place.rsplit(", ", 1)[0]
    return {k: v for k, v in found.items() if v and v != "Unknown"}


def caller_tags(caller: str, reported: Mapping[str, str]) -> dict[str, str]:
    """Tags about the caller kept on the call record and usable by routing rules.

    `reported` is where the CPaaS says the caller is (`from_city`, `from_state`, `from_zip`,
    `from_country`); it wins over what the number implies: a ported or mobile number's area
    code says where it was issued, not where the caller is.
    """
    tags = {f"caller_{k}": v for k, v in describe_number(caller).items()}
    tags.update({name: value for name, value in reported.items() if value})
    return tags


def call_facts(caller: str, tags: Mapping[str, str], at: datetime) -> CallFacts:
    """What routing filters read, from the call's tags (the CPaaS's location data first)."""
    return CallFacts(
        caller=caller,
        country=tags.get("from_country") or tags.get("caller_country"),
        state=tags.get("from_state") or tags.get("caller_state"),
        area_code=tags.get("caller_area_code"),
        zip_code=tags.get("from_zip") or None,
        tags=dict(tags),
        at=at,
    )
