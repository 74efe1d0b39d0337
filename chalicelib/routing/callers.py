"""Caller enrichment: what `phonenumbers` and the CPaaS tell us about where a caller is."""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache
from itertools import count
from pathlib import Path
from typing import TYPE_CHECKING

from chalicelib.routing.model import CallFacts

# phonenumbers (≈30 ms to import) and its carrier and place data are loaded by the first
# number described, not with every cold start.
if TYPE_CHECKING:
    import phonenumbers

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
# By name in `phonenumbers.PhoneNumberType`.
LINE_TYPES = {
    "MOBILE": "mobile",
    "FIXED_LINE": "landline",
    "FIXED_LINE_OR_MOBILE": "landline_or_mobile",
    "TOLL_FREE": "toll_free",
    "VOIP": "voip",
}
# The types `phonenumbers.carrier.name_for_number` looks a carrier up for.
CARRIER_TYPES = ("MOBILE", "FIXED_LINE_OR_MOBILE", "PAGER")


@lru_cache(maxsize=1)
def _number_types() -> tuple[dict[int, str], frozenset[int]]:
    """LINE_TYPES and CARRIER_TYPES by the library's values."""
    import phonenumbers

    kind = phonenumbers.PhoneNumberType
    return (
        {getattr(kind, name): line for name, line in LINE_TYPES.items()},
        frozenset(getattr(kind, name) for name in CARRIER_TYPES),
    )


NANP = "1"


@lru_cache(maxsize=1)
def nanp_places() -> tuple[dict[str, dict[str, str]], int]:
    """The place names (by language) of phonenumbers' geocoder data that hold every +1
    prefix, and the longest prefix.

    `phonenumbers.geocoder` loads every country's place names in every language when it is
    imported (29 generated modules, ≈0.4 s, on a cold Lambda's first call). The generated
    modules hold the prefixes in sorted order, so the +1 prefixes, the only ones looked up
    here, are in the first four: read those, once, without importing the package. (The
    fourth also holds the first prefixes of +2…+3, which no +1 number reaches.)
    """
    spec = importlib.util.find_spec("phonenumbers.geodata")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("phonenumbers.geodata not found")
    folder = Path(next(iter(spec.submodule_search_locations)))
    places: dict[str, dict[str, str]] = {}
    for n in count():
        path = folder / f"data{n}.py"
        if not path.exists():
            break
        # Named as the package's own submodule so its relative import resolves; it is not
        # put in sys.modules, so a later `import phonenumbers.geocoder` is unaffected.
        chunk_spec = importlib.util.spec_from_file_location(f"{spec.name}.data{n}", path)
        if chunk_spec is None or chunk_spec.loader is None:
            raise ImportError(f"cannot load {path}")
        chunk = importlib.util.module_from_spec(chunk_spec)
        chunk_spec.loader.exec_module(chunk)
        data: dict[str, dict[str, str]] = chunk.data
        places.update(data)
        if max(data) >= chr(ord(NANP) + 1):  # past the last +1 prefix
            break
    return places, max(map(len, places), default=0)


def nanp_place(number: phonenumbers.PhoneNumber, geographical: bool) -> str:
    """What `phonenumbers.geocoder.description_for_number(number, "en")` says of a +1
    number's area ("San Francisco, CA", "California"), or "" where it would name only the
    country. `geographical`: the number's type is known and tied to a place."""
    if number.country_code != 1 or not geographical:
        return ""
    import phonenumbers

    places, longest = nanp_places()
    digits = NANP + phonenumbers.national_significant_number(number)
    for size in range(min(longest, len(digits)), 0, -1):
        names = places.get(digits[:size])
        if names is not None:
            return names.get("en", "")
    return ""


@lru_cache(maxsize=4096)
def describe_number(e164: str) -> dict[str, str]:
    """Country, state, area code, carrier, line type and timezone that the number implies."""
    import phonenumbers
    from phonenumbers import carrier  # every country's carrier names (≈25 ms)
    from phonenumbers import timezone as number_timezone

    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return {}
    # The number's type is worked out once: every phonenumbers function that needs it works
    # it out again, matching the number against each region of its country code (25 for +1),
    # which made most of this function's time. Each call below is what the library's
    # `name_for_number` and `time_zones_for_number` do once they have the type.
    number_type = phonenumbers.number_type(number)
    geographical = number_type != phonenumbers.PhoneNumberType.UNKNOWN and (
        phonenumbers.is_number_type_geographical(number_type, number.country_code or 0)
    )
    line_types, carrier_types = _number_types()
    found = {
        "country": phonenumbers.region_code_for_number(number) or "",
        "line_type": line_types.get(number_type, "unknown"),
        "carrier": carrier.name_for_valid_number(number, "en")
        if number_type in carrier_types
        else "",
        "timezone": next(
            iter(
                number_timezone.time_zones_for_geographical_number(number)
                if geographical
                else number_timezone.time_zones_for_number(number)
            ),
            "",
        ),
    }
    if number.country_code == 1:
        national = str(number.national_number)
        found["area_code"] = national[:3]
        place = nanp_place(number, geographical)
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
