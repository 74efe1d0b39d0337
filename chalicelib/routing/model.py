"""Routing plan and call facts: immutable values, validated when built."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from decimal import Decimal
from itertools import pairwise
from types import MappingProxyType
from typing import Final, Literal, TypeAlias, TypeGuard, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

Weekday: TypeAlias = int  # 0..6, Monday=0, as datetime.weekday() counts
Strategy: TypeAlias = Literal["priority", "round_robin", "simultaneous"]
TagOp: TypeAlias = Literal["eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "exists"]
TagValue: TypeAlias = str | tuple[str, ...] | Decimal | None

STRATEGIES: Final[frozenset[str]] = frozenset(get_args(Strategy))
TAG_OPS: Final[frozenset[str]] = frozenset(get_args(TagOp))
NUMERIC_OPS: Final[frozenset[str]] = frozenset({"gt", "gte", "lt", "lte"})
WEEKDAY_NAMES: Final[tuple[str, ...]] = (
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
)
MIDNIGHT: Final = time(0, 0)

_COUNTRY = re.compile(r"[A-Z]{2}")
_STATE = re.compile(r"[A-Z]{2}")
# NANP area codes start with 2-9; anything else is a typo that would silently match nothing.
_AREA_CODE = re.compile(r"[2-9][0-9]{2}")
_ZIP_PREFIX = re.compile(r"[0-9]{1,5}")
# Plain decimal notation only: Decimal() would also accept "NaN", "Infinity", "1_000" and
# non-ASCII digits, none of which a caller keyed into an IVR means as a number.
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def _is_int(value: object) -> TypeGuard[int]:
    # bool is an int subclass; `weight=True` is a bug, not a weight of 1.
    return isinstance(value, int) and not isinstance(value, bool)


def parse_number(text: str) -> Decimal | None:
    """The number written in `text` (surrounding blanks ignored), or None if it is not one."""
    text = text.strip()
    return Decimal(text) if _NUMBER.fullmatch(text) else None


def format_time(value: time) -> str:
    """HH:MM (with :SS when the seconds matter), as schedules are written by people."""
    return value.strftime("%H:%M:%S" if value.second else "%H:%M")


def load_timezone(name: str) -> ZoneInfo:
    """The IANA zone called `name`; ValueError naming it when the zone database lacks it."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"unknown timezone {name!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as err:
        # ZoneInfo refuses path-like keys with ValueError and odd files with OSError;
        # to an API client all of them are the same mistake.
        raise ValueError(f"unknown timezone {name!r}") from err


@dataclass(frozen=True, order=True)
class OpenWindow:
    """Half-open [start, end) in the schedule's local time; end 00:00 means 24:00."""

    start: time
    end: time

    @property
    def reaches_midnight(self) -> bool:
        return self.end == MIDNIGHT

    def contains(self, local: time) -> bool:
        return self.start <= local and (self.reaches_midnight or local < self.end)

    def __str__(self) -> str:
        end = "24:00" if self.reaches_midnight else format_time(self.end)
        return f"{format_time(self.start)}-{end}"


def _window_problem(window: OpenWindow) -> str | None:
    if not isinstance(window, OpenWindow):
        return f"{window!r} is not an open window"
    if not isinstance(window.start, time) or not isinstance(window.end, time):
        return f"{window!r}: start and end must be times of day"
    if window.start.tzinfo is not None or window.end.tzinfo is not None:
        # The schedule's timezone is the only one; a second one per window is ambiguous.
        return f"{window}: times must not carry their own timezone"
    if window.reaches_midnight:
        return None
    if window.start == window.end:
        return f"{window} is empty"
    if window.start > window.end:
        return f"{window} ends before it starts (split it at 24:00 to span midnight)"
    return None


@dataclass(frozen=True)
class Schedule:
    """Hours of operation: open windows per weekday in one IANA timezone."""

    timezone: str
    # Excluded from the hash because mappings are not hashable; equality still compares it.
    days: Mapping[Weekday, tuple[OpenWindow, ...]] = field(hash=False)

    def __post_init__(self) -> None:
        if not isinstance(self.days, Mapping):
            raise ValueError("days must map weekdays (0=Monday..6=Sunday) to open windows")
        # Freeze a copy so the caller's dict cannot change the plan behind our back, and
        # sort it so two schedules listing the same windows in another order compare equal.
        frozen: dict[Weekday, tuple[OpenWindow, ...]] = {}
        for day, windows in self.days.items():
            if not _is_int(day) or not 0 <= day <= 6:
                raise ValueError(f"weekday {day!r} out of range 0..6 (0=Monday)")
            if not isinstance(windows, tuple | list):
                raise ValueError(f"{WEEKDAY_NAMES[day]}: windows must be a list")
            if windows:
                frozen[day] = tuple(windows)
        object.__setattr__(self, "days", MappingProxyType(dict(sorted(frozen.items()))))
        self.validate()
        # Windows sort only once they are known to be windows of plain times.
        ordered = {day: tuple(sorted(windows)) for day, windows in self.days.items()}
        object.__setattr__(self, "days", MappingProxyType(ordered))

    @classmethod
    def always_open(cls, timezone: str = "UTC") -> Schedule:
        whole_day = (OpenWindow(MIDNIGHT, MIDNIGHT),)
        return cls(timezone, {day: whole_day for day in range(7)})

    @property
    def zone(self) -> ZoneInfo:
        return load_timezone(self.timezone)

    def validate(self) -> None:
        """Raise ValueError naming the first problem: timezone, day, or window."""
        load_timezone(self.timezone)
        for day, windows in self.days.items():
            if not _is_int(day) or not 0 <= day <= 6:
                raise ValueError(f"weekday {day!r} out of range 0..6 (0=Monday)")
            name = WEEKDAY_NAMES[day]
            for window in windows:
                problem = _window_problem(window)
                if problem:
                    raise ValueError(f"{name}: {problem}")
            ordered = sorted(windows)
            for earlier, later in pairwise(ordered):
                if earlier.reaches_midnight or later.start < earlier.end:
                    raise ValueError(f"{name}: {earlier} overlaps {later}")

    def windows_on(self, day: Weekday) -> tuple[OpenWindow, ...]:
        return self.days.get(day, ())


@dataclass(frozen=True)
class GeoFilter:
    """Where a buyer takes calls from; each empty part means anywhere."""

    countries: frozenset[str] = frozenset()
    states: frozenset[str] = frozenset()
    area_codes: frozenset[str] = frozenset()
    zip_prefixes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for part in (self.countries, self.states, self.area_codes, self.zip_prefixes):
            if isinstance(part, str):
                # tuple("941") would quietly become the prefixes 9, 4 and 1.
                raise ValueError(f"geo: {part!r} must be a list of codes, not one string")
        # Accept any iterable of codes (a set from JSON) but keep the frozen, hashable forms.
        object.__setattr__(self, "countries", frozenset(self.countries))
        object.__setattr__(self, "states", frozenset(self.states))
        object.__setattr__(self, "area_codes", frozenset(self.area_codes))
        object.__setattr__(self, "zip_prefixes", tuple(self.zip_prefixes))
        for name, values, pattern, shape in (
            ("country", self.countries, _COUNTRY, "an ISO-3166 alpha-2 code such as US"),
            ("state", self.states, _STATE, "a 2-letter US/CA code such as CA"),
            ("area code", self.area_codes, _AREA_CODE, "3 NANP digits such as 415"),
            ("ZIP prefix", self.zip_prefixes, _ZIP_PREFIX, "1 to 5 digits"),
        ):
            for value in values:
                if not isinstance(value, str) or not pattern.fullmatch(value):
                    raise ValueError(f"geo: {name} {value!r} must be {shape}")

    @classmethod
    def anywhere(cls) -> GeoFilter:
        return cls()

    @property
    def is_anywhere(self) -> bool:
        return not (self.countries or self.states or self.area_codes or self.zip_prefixes)


@dataclass(frozen=True)
class TagRule:
    """One condition on a call tag; a target's rules must all hold."""

    tag: str
    op: TagOp
    value: TagValue = None

    def __post_init__(self) -> None:
        value = self.value
        # Stored plans come back from JSON: a threshold may arrive as "65" or 65. Only the
        # ordering ops coerce strings; for eq/ne a string means "compare as written".
        if self.op in NUMERIC_OPS and isinstance(value, str):
            number = parse_number(value)
            value = value if number is None else number
        if self.op in NUMERIC_OPS | {"eq", "ne"} and _is_int(value):
            value = Decimal(value)
        object.__setattr__(self, "value", value)
        problem = self._problem()
        if problem:
            raise ValueError(f"tag rule {self.tag!r} {self.op}: {problem}")

    def _problem(self) -> str | None:
        if not isinstance(self.tag, str) or not self.tag:
            return "tag name must not be empty"
        if self.op not in TAG_OPS:
            return f"op must be one of {', '.join(sorted(TAG_OPS))}"
        value = self.value
        if self.op == "exists":
            return None if value is None else "takes no value"
        if self.op in NUMERIC_OPS:
            if not isinstance(value, Decimal) or not value.is_finite():
                return "value must be a finite number"
            return None
        if self.op in ("in", "not_in"):
            if not isinstance(value, tuple) or not value:
                return "value must be a non-empty list of strings"
            if not all(isinstance(item, str) and item for item in value):
                return "value must be a non-empty list of strings"
            return None
        # eq / ne: a string compares as written, a Decimal compares as a number.
        if isinstance(value, Decimal):
            return None if value.is_finite() else "value must be a finite number"
        if isinstance(value, str) and value:
            return None
        return "value must be a non-empty string or a number"


@dataclass(frozen=True)
class RoutableTarget:
    """A buyer's destination with the fields routing reads (caps live elsewhere)."""

    target_id: str
    buyer_id: str
    destination: str
    priority: int  # 1 is tried first
    weight: int  # share within its priority, >= 1
    enabled: bool = True
    schedule: Schedule | None = None  # None: always open
    geo: GeoFilter = GeoFilter()
    tag_rules: tuple[TagRule, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.target_id, str) or not self.target_id:
            raise ValueError("target_id must not be empty")
        if not _is_int(self.priority) or self.priority < 1:
            raise ValueError(f"target {self.target_id}: priority must be an integer >= 1")
        if not _is_int(self.weight) or self.weight < 1:
            raise ValueError(f"target {self.target_id}: weight must be an integer >= 1")


@dataclass(frozen=True)
class CallFacts:
    """What is known about one inbound call when it is routed."""

    caller: str
    country: str | None
    state: str | None
    area_code: str | None
    zip_code: str | None
    tags: Mapping[str, str] = field(hash=False)
    at: datetime  # when routing happens; the only clock this package reads

    def __post_init__(self) -> None:
        if not isinstance(self.at, datetime) or self.at.utcoffset() is None:
            # A naive time would be read in whatever zone the Lambda runs in: refuse it.
            raise ValueError("call time must be timezone-aware")
        object.__setattr__(self, "at", self.at.astimezone(UTC))
        object.__setattr__(self, "tags", MappingProxyType(dict(self.tags)))
