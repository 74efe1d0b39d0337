"""JSON-shaped dicts to routing values and back; ValueError messages fit a 400 response."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import time
from decimal import Decimal, InvalidOperation
from typing import Any, cast

from chalicelib.routing.model import (
    MIDNIGHT,
    NUMERIC_OPS,
    TAG_OPS,
    WEEKDAY_NAMES,
    GeoFilter,
    OpenWindow,
    Schedule,
    TagOp,
    TagRule,
    TagValue,
    format_time,
)

_CLOCK = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])(?::([0-5][0-9]))?")
_RANGE = re.compile(r"\s*([0-9:]+)\s*-\s*([0-9:]+)\s*")


def _clock(text: object, *, day: str, is_end: bool) -> time:
    if isinstance(text, str) and is_end and text.strip() == "24:00":
        return MIDNIGHT  # the model's spelling of the end of the day
    found = _CLOCK.fullmatch(text.strip()) if isinstance(text, str) else None
    if found is None:
        raise ValueError(f"{day}: {text!r} is not a time of day (HH:MM, 00:00-24:00)")
    hour, minute, second = found.groups()
    return time(int(hour), int(minute), int(second or 0))


def _window(raw: object, *, day: str) -> OpenWindow:
    if isinstance(raw, str):
        found = _RANGE.fullmatch(raw)
        if found is None:
            raise ValueError(f"{day}: {raw!r} is not a window such as 09:00-17:00")
        start, end = found.groups()
    elif isinstance(raw, Mapping) and set(raw) == {"start", "end"}:
        start, end = raw["start"], raw["end"]
    else:
        raise ValueError(
            f"{day}: a window is {{'start': 'HH:MM', 'end': 'HH:MM'}} or 'HH:MM-HH:MM'"
        )
    return OpenWindow(_clock(start, day=day, is_end=False), _clock(end, day=day, is_end=True))


def _weekday(key: object) -> int:
    if isinstance(key, int) and not isinstance(key, bool) and 0 <= key <= 6:
        return key
    if isinstance(key, str) and key.strip().lower() in WEEKDAY_NAMES:
        return WEEKDAY_NAMES.index(key.strip().lower())
    raise ValueError(f"weekday {key!r} is not one of {', '.join(WEEKDAY_NAMES)} (or 0..6)")


def parse_schedule(raw: Mapping[str, Any]) -> Schedule:
    """{"timezone": "America/New_York", "days": {"monday": ["09:00-17:00"], ...}}."""
    if not isinstance(raw, Mapping):
        raise ValueError("schedule must be an object with timezone and days")
    unknown = set(raw) - {"timezone", "days"}
    if unknown:
        raise ValueError(f"schedule: unknown field(s) {', '.join(sorted(map(str, unknown)))}")
    timezone = raw.get("timezone")
    if not isinstance(timezone, str):
        raise ValueError("schedule: timezone must be an IANA name such as America/New_York")
    days_raw = raw.get("days", {})
    if not isinstance(days_raw, Mapping):
        raise ValueError("schedule: days must map weekday names to lists of windows")
    days: dict[int, tuple[OpenWindow, ...]] = {}
    for key, windows in days_raw.items():
        day = _weekday(key)
        name = WEEKDAY_NAMES[day]
        if day in days:
            raise ValueError(f"{name}: listed twice")
        if not isinstance(windows, list | tuple):
            raise ValueError(f"{name}: windows must be a list")
        days[day] = tuple(_window(window, day=name) for window in windows)
    return Schedule(timezone, days)


def schedule_to_dict(schedule: Schedule) -> dict[str, Any]:
    """The shape parse_schedule reads; closed days are left out."""
    return {
        "timezone": schedule.timezone,
        "days": {
            WEEKDAY_NAMES[day]: [
                {
                    "start": format_time(window.start),
                    "end": "24:00" if window.reaches_midnight else format_time(window.end),
                }
                for window in windows
            ]
            for day, windows in schedule.days.items()
        },
    }


def _codes(raw: Mapping[str, Any], name: str) -> list[str]:
    values = raw.get(name, [])
    if not isinstance(values, list | tuple) or not all(isinstance(v, str) for v in values):
        raise ValueError(f"geo: {name} must be a list of strings")
    # Upper-case here so "ca" from a form means California rather than a 400.
    return [value.strip().upper() for value in values]


def parse_geo_filter(raw: Mapping[str, Any]) -> GeoFilter:
    """{"countries": ["US"], "states": ["CA"], "area_codes": ["415"], "zip_prefixes": ["941"]}."""
    if not isinstance(raw, Mapping):
        raise ValueError("geo must be an object")
    fields = ("countries", "states", "area_codes", "zip_prefixes")
    unknown = set(raw) - set(fields)
    if unknown:
        raise ValueError(f"geo: unknown field(s) {', '.join(sorted(map(str, unknown)))}")
    countries, states, area_codes, zip_prefixes = (_codes(raw, name) for name in fields)
    return GeoFilter(
        countries=frozenset(countries),
        states=frozenset(states),
        area_codes=frozenset(area_codes),
        # Sorted and deduplicated so equal filters are equal values.
        zip_prefixes=tuple(sorted(set(zip_prefixes))),
    )


def geo_filter_to_dict(geo: GeoFilter) -> dict[str, list[str]]:
    """The shape parse_geo_filter reads, with lists sorted."""
    return {
        "countries": sorted(geo.countries),
        "states": sorted(geo.states),
        "area_codes": sorted(geo.area_codes),
        "zip_prefixes": list(geo.zip_prefixes),
    }


def _is_json_number(value: object) -> bool:
    # JSON true/false arrive as bool, an int subclass; they are not numbers to compare with.
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def _decimal(value: object, *, tag: str, op: str) -> Decimal:
    # JSON numbers arrive as int or float; str(float) keeps what was written (65.5, not
    # 65.5000000000000000001), and strings are accepted so clients can avoid floats entirely.
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ValueError(f"tag rule {tag!r} {op}: value must be a number")
    try:
        number = Decimal(str(value).strip()) if not isinstance(value, Decimal) else value
    except InvalidOperation as err:
        raise ValueError(f"tag rule {tag!r} {op}: value must be a number") from err
    if not number.is_finite():
        raise ValueError(f"tag rule {tag!r} {op}: value must be a finite number")
    return number


def parse_tag_rule(raw: Mapping[str, Any]) -> TagRule:
    """{"tag": "age", "op": "gte", "value": 65}; lists for in/not_in, no value for exists."""
    if not isinstance(raw, Mapping):
        raise ValueError("tag rule must be an object with tag, op and value")
    unknown = set(raw) - {"tag", "op", "value"}
    if unknown:
        raise ValueError(f"tag rule: unknown field(s) {', '.join(sorted(map(str, unknown)))}")
    tag, op, value = raw.get("tag"), raw.get("op"), raw.get("value")
    if not isinstance(tag, str) or not tag.strip():
        raise ValueError("tag rule: tag must be a non-empty string")
    tag = tag.strip()
    if op not in TAG_OPS:
        raise ValueError(f"tag rule {tag!r}: op must be one of {', '.join(sorted(TAG_OPS))}")
    typed: TagValue
    if op in NUMERIC_OPS:
        typed = _decimal(value, tag=tag, op=op)
    elif op in ("in", "not_in"):
        if not isinstance(value, list | tuple):
            raise ValueError(f"tag rule {tag!r} {op}: value must be a list of strings")
        typed = tuple(value)
    elif op in ("eq", "ne") and _is_json_number(value):
        typed = _decimal(value, tag=tag, op=op)
    else:
        typed = value
    return TagRule(tag, cast(TagOp, op), typed)


def _json_number(value: Decimal) -> int | float:
    # A JSON number, not a string: for eq/ne the value's type is the meaning (a string
    # compares as written, a number numerically), and `json.dumps(default=str)` would
    # silently turn a Decimal into a string. Thresholds never need 17 significant digits.
    return int(value) if value == value.to_integral_value() else float(value)


def tag_rule_to_dict(rule: TagRule) -> dict[str, Any]:
    """The shape parse_tag_rule reads, numbers as JSON numbers."""
    value: Any = rule.value
    if isinstance(value, Decimal):
        value = _json_number(value)
    elif isinstance(value, tuple):
        value = list(value)
    out: dict[str, Any] = {"tag": rule.tag, "op": rule.op}
    if rule.op != "exists":
        out["value"] = value
    return out
