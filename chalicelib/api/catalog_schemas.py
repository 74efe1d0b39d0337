"""Request bodies for campaigns, buyers, targets and pools (validated, then stored as JSON)."""

from __future__ import annotations

import re
from datetime import time
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from chalicelib import outbound
from chalicelib.api.schemas import E164, Name, PixelBody, Strict
from chalicelib.bidding.auction import Margin, margin_from_settings
from chalicelib.bidding.bidders import bidder_from_settings
from chalicelib.campaigns.settings import (
    DEFAULTS,
    IVR_DEFAULTS,
    IVR_NODE_DEFAULTS,
    CallerIdMode,
    ConversionKind,
    GatherInput,
)
from chalicelib.phone import parse_e164
from chalicelib.routing import Strategy, tag_rule_to_dict
from chalicelib.routing.model import WEEKDAY_NAMES, OpenWindow, Schedule, TagRule, load_timezone

Count = Annotated[int, Field(ge=0, le=10_000_000)]
Cents = Annotated[int, Field(ge=0, le=100_000_000)]
WEEKDAYS = {name.lower(): number for number, name in enumerate(WEEKDAY_NAMES)}
SIP_URI = re.compile(r"^sips?:[A-Za-z0-9_.+*#-]{1,64}@[A-Za-z0-9.-]{1,253}(:\d{1,5})?(;[\w=.-]+)*$")


def _destination(value: str) -> str:
    if value.startswith(("sip:", "sips:")):
        if not SIP_URI.match(value):
            raise ValueError("must be an E.164 number or a SIP URI like sip:1001@pbx.example.com")
        return value
    return parse_e164(value)


Destination = Annotated[str, AfterValidator(_destination)]


def _timezone(value: str) -> str:
    load_timezone(value)
    return value


Timezone = Annotated[str, AfterValidator(_timezone)]


class CapsBody(Strict):
    concurrency: Annotated[int, Field(ge=1, le=10_000)] | None = None
    hourly: Count | None = None
    daily: Count | None = None
    monthly: Count | None = None
    total: Count | None = None
    counts: Literal["routed", "connected", "converted"] = "routed"


class WindowBody(Strict):
    start: Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]
    end: Annotated[str, Field(pattern=r"^(([01]\d|2[0-3]):[0-5]\d|24:00)$")]

    def window(self) -> OpenWindow:
        end = time(0, 0) if self.end == "24:00" else time.fromisoformat(self.end)
        return OpenWindow(time.fromisoformat(self.start), end)


class ScheduleBody(Strict):
    """Hours of operation: `{"timezone": "America/New_York", "days": {"monday": [...]}}`."""

    timezone: Timezone
    days: dict[str, list[WindowBody]]

    @field_validator("days")
    @classmethod
    def _known_days(cls, days: dict[str, list[WindowBody]]) -> dict[str, list[WindowBody]]:
        unknown = sorted(set(days) - set(WEEKDAYS))
        if unknown:
            raise ValueError(f"unknown weekday(s) {', '.join(unknown)}; use monday..sunday")
        return days

    @model_validator(mode="after")
    def _windows(self) -> ScheduleBody:
        self.schedule()  # raises ValueError naming the day and windows (inverted, overlapping)
        return self

    def schedule(self) -> Schedule:
        return Schedule(
            self.timezone,
            {WEEKDAYS[day]: tuple(w.window() for w in ws) for day, ws in self.days.items()},
        )


class GeoBody(Strict):
    countries: list[Annotated[str, Field(pattern=r"^[A-Z]{2}$")]] = Field(default_factory=list)
    states: list[Annotated[str, Field(pattern=r"^[A-Z]{2}$")]] = Field(default_factory=list)
    area_codes: list[Annotated[str, Field(pattern=r"^[2-9]\d{2}$")]] = Field(default_factory=list)
    zip_prefixes: list[Annotated[str, Field(pattern=r"^\d{1,5}$")]] = Field(default_factory=list)


class TagRuleBody(Strict):
    tag: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
    op: Literal["eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "exists"]
    value: str | list[str] | Decimal | None = None

    @model_validator(mode="after")
    def _value_fits_op(self) -> TagRuleBody:
        if self.op in {"in", "not_in"} and not isinstance(self.value, list):
            raise ValueError(f"{self.op} needs a list value")
        if self.op in {"gt", "gte", "lt", "lte"}:
            try:
                Decimal(str(self.value))
            except ArithmeticError as err:
                raise ValueError(f"{self.op} needs a numeric value") from err
        if self.op in {"eq", "ne"} and not isinstance(self.value, str | Decimal):
            raise ValueError(f"{self.op} needs a single value")
        self.rule()  # routing's own checks, with its messages
        return self

    def rule(self) -> TagRule:
        value = tuple(self.value) if isinstance(self.value, list) else self.value
        return TagRule(self.tag, self.op, value)


Pixels = Annotated[list[PixelBody], Field(default_factory=list, max_length=10)]


class BuyerBody(Strict):
    name: Name
    enabled: bool = True
    timezone: Timezone = "UTC"
    # Defaults are built without validation (they are valid): validating one at import
    # would build its model's validator there, on every cold start, instead of on first use.
    caps: CapsBody = CapsBody.model_construct()
    pixels: Pixels


JsonPath = Annotated[str, Field(min_length=1, max_length=200)]
TemplateField = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]


class ResponseMapBody(Strict):
    """Where a bidder's JSON answer keeps each part of its bid (`$.a.b[0].c` paths)."""

    bid_amount: JsonPath = "bidAmount"
    destination: list[JsonPath] = Field(
        default_factory=lambda: ["phoneNumber", "sipAddress"], min_length=1, max_length=5
    )
    bid_id: JsonPath = "bidId"
    expires_in: JsonPath = "expireInSeconds"
    reject_reason: JsonPath = "rejectReason"
    amount_in_cents: bool = False


class RtbBody(Strict):
    """Makes a target an RTB bidder: pinged for a price before each call (ring tree)."""

    # None: a static bidder, which always bids `static_bid_cents` for the target's destination.
    url: Annotated[str, Field(min_length=10, max_length=2000, pattern=r"^https?://")] | None = None
    method: Literal["POST", "GET"] = "POST"
    # Field name → template with tokens such as {caller_id}, {caller_state}, {tag.age}.
    request_template: dict[TemplateField, Annotated[str, Field(max_length=500)]] | None = Field(
        default=None, max_length=50
    )
    response_map: ResponseMapBody = ResponseMapBody.model_construct()
    timeout_ms: Annotated[int, Field(ge=50, le=10_000)] = 2000
    floor_cents: Cents = 0
    static_bid_cents: Cents | None = None
    # Whether this bidder sees the real caller id where its campaign allows it (masked else).
    expose_caller_id: bool = True
    pings_per_minute: Annotated[int, Field(ge=1, le=1_000_000)] | None = None

    @field_validator("url")
    @classmethod
    def _https_outside_local(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith("https://") and not outbound.allow_private():
            raise ValueError("bidder URLs must use https")
        return url


class TargetBody(Strict):
    buyer_id: Annotated[str, Field(min_length=1, max_length=64)]
    name: Name
    # Where the call goes; for an RTB target, the number used when its bid names none.
    destination: Destination | None = None
    priority: Annotated[int, Field(ge=1, le=100)] = 1
    weight: Annotated[int, Field(ge=1, le=1000)] = 1
    enabled: bool = True
    caps: CapsBody = CapsBody.model_construct()
    schedule: ScheduleBody | None = None
    geo: GeoBody = GeoBody.model_construct()
    tag_rules: list[TagRuleBody] = Field(default_factory=list, max_length=20)
    rtb: RtbBody | None = None

    @model_validator(mode="after")
    def _destination_or_bidder(self) -> TargetBody:
        if self.rtb is None:
            if self.destination is None:
                raise ValueError("destination is required (or make the target an RTB bidder)")
            return self
        settings = self.model_dump(mode="json")
        settings["tag_rules"] = [tag_rule_to_dict(rule.rule()) for rule in self.tag_rules]
        bidder_from_settings("new", self.buyer_id, self.name, settings)  # bidder's own checks
        return self


class PlanEntryBody(Strict):
    target_id: Annotated[str, Field(min_length=1, max_length=64)]
    priority: Annotated[int, Field(ge=1, le=100)] | None = None
    weight: Annotated[int, Field(ge=1, le=1000)] | None = None


class ConversionBody(Strict):
    kind: ConversionKind = DEFAULTS.conversion.kind
    buffer_seconds: Annotated[int, Field(ge=0, le=7200)] = DEFAULTS.conversion.buffer_seconds
    tag: str | None = None
    value: str | None = None

    @model_validator(mode="after")
    def _tag_rule_complete(self) -> ConversionBody:
        if self.kind == "tag" and (not self.tag or self.value is None):
            raise ValueError("a tag conversion needs tag and value")
        return self


class IvrChoiceBody(Strict):
    """One accepted answer: keys pressed (or words said) → tag value and next node."""

    digits: Annotated[str, Field(pattern=r"^[0-9*#]{1,10}$")] | None = None
    speech: list[Annotated[str, Field(min_length=1, max_length=40)]] = Field(default_factory=list)
    value: Annotated[str, Field(min_length=1, max_length=64)]
    next: str | None = None


class IvrNodeBody(Strict):
    prompt: Annotated[str, Field(min_length=1, max_length=1000)]
    tag: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
    input: GatherInput = IVR_NODE_DEFAULTS.input
    num_digits: Annotated[int, Field(ge=1, le=10)] | None = None
    # Free input (e.g. a ZIP code) is stored as typed when no choices are listed.
    choices: list[IvrChoiceBody] = Field(default_factory=list, max_length=12)
    next: str | None = None
    retries: Annotated[int, Field(ge=0, le=5)] = IVR_NODE_DEFAULTS.retries
    default: IvrChoiceBody | None = None
    timeout_seconds: Annotated[int, Field(ge=1, le=30)] = IVR_NODE_DEFAULTS.timeout_seconds


class IvrBody(Strict):
    start: str
    voice: Annotated[str, Field(max_length=64)] = IVR_DEFAULTS.voice
    language: Annotated[str, Field(pattern=r"^[a-z]{2}-[A-Z]{2}$")] = IVR_DEFAULTS.language
    nodes: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")], IvrNodeBody]

    @model_validator(mode="after")
    def _links_resolve(self) -> IvrBody:
        names = set(self.nodes)
        if self.start not in names:
            raise ValueError(f"start node {self.start!r} is not defined")
        for name, node in self.nodes.items():
            links = [node.next] + [c.next for c in node.choices]
            links += [node.default.next] if node.default else []
            for link in links:
                if link is not None and link not in names:
                    raise ValueError(f"node {name!r} links to undefined node {link!r}")
        return self


def _blocked(value: str) -> str:
    if not re.fullmatch(r"\+\d{1,15}", value):
        raise ValueError("use an E.164 number or a +prefix of digits, e.g. +1900")
    return value


class MarginBody(Strict):
    """What the publisher is offered for a call won by a bid."""

    kind: Literal["percent", "fixed", "fixed_payout"]
    # percent: 0..100 of the bid kept; fixed: cents kept; fixed_payout: cents offered.
    value: Annotated[Decimal, Field(ge=0, le=100_000_000)]

    @model_validator(mode="after")
    def _fits_kind(self) -> MarginBody:
        self.margin()
        return self

    def margin(self) -> Margin | None:
        return margin_from_settings(self.model_dump(mode="json"))


class RingTreeBody(Strict):
    """How the campaign's RTB targets bid: auction deadline, margin, how long bids are held."""

    deadline_ms: Annotated[int, Field(ge=100, le=5000)] = DEFAULTS.ring_tree.deadline_ms
    # None: publishers are paid the campaign's payout (or their override), as for other calls.
    margin: MarginBody | None = None
    hold_seconds: Annotated[int, Field(ge=5, le=900)] = DEFAULTS.ring_tree.hold_seconds
    # Bidders get the caller id masked (+1415555****) unless this is set.
    expose_caller_id: bool = DEFAULTS.ring_tree.expose_caller_id
    publisher_pings_per_minute: Annotated[int, Field(ge=1, le=100_000)] = (
        DEFAULTS.ring_tree.publisher_pings_per_minute
    )


class CampaignBody(Strict):
    name: Name
    vertical: Annotated[str, Field(max_length=60)] | None = None
    status: Literal["active", "paused"] = "active"
    strategy: Strategy = DEFAULTS.strategy
    plan: list[PlanEntryBody] = Field(default_factory=list, max_length=50)
    conversion: ConversionBody = ConversionBody.model_construct()
    payout_cents: Cents = DEFAULTS.payout_cents
    revenue_cents: Cents = DEFAULTS.revenue_cents
    duplicate_window_days: Annotated[int, Field(ge=0, le=365)] = DEFAULTS.duplicates.window_days
    duplicates_pay: bool = DEFAULTS.duplicates.pay
    recording: bool = DEFAULTS.recording.enabled
    consent_message: Annotated[str, Field(max_length=500)] = DEFAULTS.recording.consent_message
    fallback_number: E164 | None = DEFAULTS.fallback.number
    fallback_message: Annotated[str, Field(max_length=500)] = DEFAULTS.fallback.message
    blocklist: list[Annotated[str, AfterValidator(_blocked)]] = Field(
        default_factory=list, max_length=10_000
    )
    caller_id: CallerIdMode = DEFAULTS.caller_id
    ring_timeout_seconds: Annotated[int, Field(ge=5, le=60)] = DEFAULTS.ring_timeout_seconds
    max_attempts: Annotated[int, Field(ge=1, le=10)] = DEFAULTS.max_attempts
    max_ring_seconds: Annotated[int, Field(ge=10, le=600)] = DEFAULTS.max_ring_seconds
    ivr: IvrBody | None = None
    rtb: RingTreeBody = RingTreeBody.model_construct()
    pixels: Pixels

    @field_validator("plan")
    @classmethod
    def _unique_targets(cls, plan: list[PlanEntryBody]) -> list[PlanEntryBody]:
        seen: set[str] = set()
        for entry in plan:
            if entry.target_id in seen:
                raise ValueError(f"target {entry.target_id} appears twice")
            seen.add(entry.target_id)
        return plan


SourceKey = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[a-z0-9_.-]+$")]


class PoolBody(Strict):
    name: Name
    campaign_id: Annotated[str, Field(min_length=1, max_length=64)]
    publisher_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    numbers: list[E164] = Field(default_factory=list, max_length=1000)
    # DNI: a visitor's number is held while its page sends heartbeats, plus this long.
    idle_seconds: Annotated[int, Field(ge=60, le=86_400)] = 300
    # Shown when every number is held (the session is marked overflow).
    overflow_number: E164 | None = None
    # A call shortly after a number was released is still the last visitor's.
    attribution_grace_seconds: Annotated[int, Field(ge=0, le=86_400)] = 900
    # Static numbers that win over the pool: utm_source value (lower case) or a click id
    # name (gclid, fbclid, msclkid) → number, e.g. {"gclid": "+18005550199"}.
    source_numbers: dict[SourceKey, E164] = Field(default_factory=dict, max_length=20)
    # Prefer a number in the visitor's area code when the pool has one.
    local_presence: bool = True

    @model_validator(mode="after")
    def _distinct_numbers(self) -> PoolBody:
        if len(set(self.numbers)) != len(self.numbers):
            raise ValueError("numbers must not repeat")
        return self


def stored(body: Strict, *, exclude: set[str] | None = None) -> dict[str, Any]:
    """The JSON kept in an item's `settings` (decimals as strings, no None noise)."""
    return body.model_dump(mode="json", exclude=exclude or set(), exclude_none=False)
