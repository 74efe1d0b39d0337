"""Bidders (RTB targets) and their wire format: ping templates, response maps, bid parsing."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from types import MappingProxyType
from typing import Any, Final, Literal, NamedTuple, TypeAlias, TypeGuard, get_args

from chalicelib.phone import parse_e164
from chalicelib.routing import (
    CallFacts,
    GeoFilter,
    Schedule,
    TagRule,
    filter_reason,
    parse_geo_filter,
    parse_number,
    parse_schedule,
    parse_tag_rule,
    split_by_reason,
)

Method: TypeAlias = Literal["POST", "GET"]
ProblemKind: TypeAlias = Literal["error", "rejected", "below_floor"]
PathStep: TypeAlias = str | int

METHODS: Final[frozenset[str]] = frozenset(get_args(Method))
DEFAULT_TIMEOUT_MS: Final = 2000
MIN_TIMEOUT_MS: Final = 50
# A bid this large is a bidder's bug (dollars sent as cents, a stray exponent), and it would
# win every auction it entered; $10,000 for one call is far beyond any real pay-per-call bid.
MAX_BID_CENTS: Final = 1_000_000
# Text a bidder controls ends up in the bid log; keep it short.
MAX_TEXT: Final = 200
ANONYMOUS: Final = "anonymous"

TOKENS: Final[frozenset[str]] = frozenset(
    {
        "call_id",
        "caller_id",
        "caller_state",
        "caller_zip",
        "area_code",
        "campaign_id",
        "publisher_id",
    }
)
_TOKEN = re.compile(r"\{([a-z_]+|tag\.[A-Za-z0-9_.:-]+)\}")
# A `{word}` that is not one of ours is a typo that would otherwise reach the buyer verbatim.
_BRACED_WORD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_.:-]*)\}")
_PATH_STEP = re.compile(r"\.?([^.\[\]\s]+)|\[([0-9]+)\]")
_SIP = re.compile(r"sips?:[^\s<>\"]{1,200}", re.IGNORECASE)

# Ringba-style ping fields; a bidder without its own template gets these.
DEFAULT_REQUEST_TEMPLATE: Final[Mapping[str, str]] = MappingProxyType(
    {
        "CID": "{caller_id}",
        "callId": "{call_id}",
        "state": "{caller_state}",
        "zipcode": "{caller_zip}",
        "areaCode": "{area_code}",
        "campaignId": "{campaign_id}",
        "publisherId": "{publisher_id}",
    }
)


@lru_cache(maxsize=512)
def compile_path(path: str) -> tuple[PathStep, ...]:
    """`$.a.b[0].c`, `a.b` or `a[0].b` as lookup steps; ValueError for anything else."""
    text = path.strip()
    rest = text[1:] if text.startswith("$") else text
    steps: list[PathStep] = []
    position = 0
    while position < len(rest):
        match = _PATH_STEP.match(rest, position)
        # A name needs its dot unless it opens the path (`a.b`, not `a..b` or `]b`).
        if match is None or (match.group(1) and rest[position] != "." and position > 0):
            raise ValueError(f"response path {path!r} is not like $.a.b[0].c")
        name, index = match.group(1), match.group(2)
        steps.append(name if name is not None else int(index))
        position = match.end()
    if not steps:
        raise ValueError(f"response path {path!r} names nothing")
    return tuple(steps)


_MISSING: Final = object()


def lookup(document: object, path: str) -> object:
    """The value at `path` in a decoded JSON document, or None when any step is absent."""
    value: object = document
    for step in compile_path(path):
        if isinstance(step, int) and isinstance(value, list) and step < len(value):
            value = value[step]
        elif isinstance(step, str) and isinstance(value, dict):
            value = value.get(step, _MISSING)
        else:
            return None
        if value is _MISSING:
            return None
    return value


@dataclass(frozen=True)
class ResponseMap:
    """Where a bidder's JSON answer keeps each part of its bid (Ringba's names by default)."""

    bid_amount: str = "bidAmount"
    # Tried in order; the first one present is the destination.
    destination: tuple[str, ...] = ("phoneNumber", "sipAddress")
    bid_id: str = "bidId"
    expires_in: str = "expireInSeconds"
    reject_reason: str = "rejectReason"
    amount_in_cents: bool = False  # False: the amount is in dollars, as Ringba sends it

    def __post_init__(self) -> None:
        if isinstance(self.destination, str):
            # ("phoneNumber") is a string, not a tuple: accept the obvious meaning.
            object.__setattr__(self, "destination", (self.destination,))
        if not self.destination:
            raise ValueError("response map needs at least one destination path")
        for path in (self.bid_amount, self.bid_id, self.expires_in, self.reject_reason):
            compile_path(path)
        for path in self.destination:
            compile_path(path)


@dataclass(frozen=True)
class Bidder:
    """A buyer's RTB target: where and how to ping it, how to read its answer, and its rules."""

    bidder_id: str
    buyer_id: str
    name: str
    url: str | None = None  # None: a static bidder, which bids without an endpoint
    method: Method = "POST"
    request_template: Mapping[str, str] = field(
        default_factory=lambda: DEFAULT_REQUEST_TEMPLATE, hash=False
    )
    response_map: ResponseMap = ResponseMap()
    timeout_ms: int = DEFAULT_TIMEOUT_MS
    floor_cents: int = 0
    static_bid_cents: int | None = None
    # The static bidder's number; for an HTTP bidder, used when its answer names none.
    static_destination: str | None = None
    priority: int = 1  # 1 wins ties first
    expose_caller_id: bool = False
    schedule: Schedule | None = None  # None: always open
    geo: GeoFilter = field(default_factory=GeoFilter)
    tag_rules: tuple[TagRule, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "request_template", MappingProxyType(dict(self.request_template)))
        problem = self._problem()
        if problem:
            raise ValueError(f"bidder {self.bidder_id!r}: {problem}")

    def _problem(self) -> str | None:
        if not isinstance(self.bidder_id, str) or not self.bidder_id:
            return "bidder_id must not be empty"
        if self.method not in METHODS:
            return "method must be POST or GET"
        if not _is_int(self.timeout_ms) or self.timeout_ms < MIN_TIMEOUT_MS:
            return f"timeout_ms must be an integer >= {MIN_TIMEOUT_MS}"
        if not _is_int(self.floor_cents) or self.floor_cents < 0:
            return "floor_cents must be a non-negative integer"
        if not _is_int(self.priority) or self.priority < 1:
            return "priority must be an integer >= 1"
        if self.static_destination is not None and destination_problem(self.static_destination):
            return f"static_destination {self.static_destination!r} is not E.164 or a SIP URI"
        for name, template in self.request_template.items():
            if not isinstance(name, str) or not isinstance(template, str):
                return "request template maps field names to template strings"
            for token in _BRACED_WORD.findall(template):
                if not _known_token(token):
                    return f"request template field {name!r} uses unknown token {{{token}}}"
        if self.url is None:
            if not _is_int(self.static_bid_cents) or self.static_bid_cents < 0:
                return "a bidder without a URL needs static_bid_cents (a non-negative integer)"
            if self.static_destination is None:
                return "a bidder without a URL needs static_destination"
            return None
        if self.static_bid_cents is not None:
            # Two prices for one bidder: which one counts would be a guess.
            return "a bidder with a URL bids through it; static_bid_cents must be None"
        if not self.url.lower().startswith(("https://", "http://")):
            return "url must be an https URL"  # http only passes outbound's local-mode check
        return None

    @property
    def is_static(self) -> bool:
        return self.url is None


def _is_int(value: object) -> TypeGuard[int]:
    # bool is an int subclass; `floor_cents=True` is a bug, not one cent.
    return isinstance(value, int) and not isinstance(value, bool)


def _known_token(token: str) -> bool:
    return token in TOKENS or (token.startswith("tag.") and len(token) > len("tag."))


def bidder_exclusion(bidder: Bidder, facts: CallFacts) -> str | None:
    """Why `bidder` may not bid on this call (schedule, geo, tags), or None when it may."""
    return filter_reason(bidder.schedule, bidder.geo, bidder.tag_rules, facts)


def eligible_bidders(
    bidders: Iterable[Bidder], facts: CallFacts
) -> tuple[list[Bidder], dict[str, str]]:
    """Bidders that may bid (input order kept) and, per excluded id, the reason."""
    return split_by_reason(
        bidders, lambda bidder: bidder_exclusion(bidder, facts), lambda bidder: bidder.bidder_id
    )


@dataclass(frozen=True)
class PingContext:
    """What a ping may tell bidders about one call; missing parts render as empty strings."""

    call_id: str
    caller_id: str  # E.164, or "anonymous" when withheld
    caller_state: str | None = None
    caller_zip: str | None = None
    area_code: str | None = None
    campaign_id: str = ""
    publisher_id: str = ""
    tags: Mapping[str, str] = field(default_factory=dict, hash=False)  # IVR and DNI tags

    def __post_init__(self) -> None:
        object.__setattr__(self, "tags", MappingProxyType(dict(self.tags)))


# Every bidder of an auction masks the same caller, and phonenumbers parsing is the costliest
# step of rendering a ping: remember recent answers.
@lru_cache(maxsize=4096)
def mask_caller_id(caller_id: str) -> str:
    """`+14155550100` → `+1415555****`: country code, area code and 3 more digits survive.

    Losing bidders learn the caller's region, not a number to market to. Anything that is not
    an E.164 number (withheld, a SIP or client identity) is sent as "anonymous".
    """
    import phonenumbers  # with the first ping, not with every cold start

    try:
        number = phonenumbers.parse(parse_e164(caller_id), None)
    except (ValueError, phonenumbers.NumberParseException):
        return ANONYMOUS
    national = phonenumbers.national_significant_number(number)
    keep = phonenumbers.length_of_national_destination_code(number) + 3
    # Whatever the numbering plan, at least the last four digits stay hidden.
    keep = max(0, min(keep, len(national) - 4))
    return f"+{number.country_code}{national[:keep]}{'*' * (len(national) - keep)}"


def token_values(bidder: Bidder, ctx: PingContext) -> dict[str, str]:
    """The value of every token for this bidder's ping (tags excluded)."""
    caller = ctx.caller_id if bidder.expose_caller_id else mask_caller_id(ctx.caller_id)
    return {
        "call_id": ctx.call_id,
        "caller_id": caller,
        "caller_state": ctx.caller_state or "",
        "caller_zip": ctx.caller_zip or "",
        "area_code": ctx.area_code or "",
        "campaign_id": ctx.campaign_id,
        "publisher_id": ctx.publisher_id,
    }


def render_template(template: str, values: Mapping[str, str], tags: Mapping[str, str]) -> str:
    def fill(match: re.Match[str]) -> str:
        token = match.group(1)
        if token.startswith("tag."):
            return tags.get(token[len("tag.") :], "")
        return values.get(token, match.group(0))

    return _TOKEN.sub(fill, template)


class RenderedRequest(NamedTuple):
    """A ping ready to send: POST sends `fields` as a JSON object, GET as query parameters."""

    method: Method
    url: str
    fields: Mapping[str, str]


def render_request(bidder: Bidder, ctx: PingContext) -> RenderedRequest:
    """The ping for `bidder` about this call; ValueError for a static bidder (nothing to send)."""
    if bidder.url is None:
        raise ValueError(f"bidder {bidder.bidder_id!r} is static and is never pinged")
    values = token_values(bidder, ctx)
    fields = {
        name: render_template(template, values, ctx.tags)
        for name, template in bidder.request_template.items()
    }
    return RenderedRequest(bidder.method, bidder.url, MappingProxyType(fields))


@dataclass(frozen=True)
class ParsedBid:
    """A valid bid at or above the bidder's floor."""

    amount_cents: int
    destination: str
    bid_id: str | None = None
    expires_in: int | None = None  # seconds; None when the bidder did not say


@dataclass(frozen=True)
class BidProblem:
    """Why an answer is not a bid that can compete; the amount when one was readable."""

    outcome: ProblemKind
    reason: str
    amount_cents: int | None = None
    bid_id: str | None = None


def destination_problem(value: object) -> str | None:
    """None when `value` is an E.164 number or a sip:/sips: URI, else what is wrong."""
    if not isinstance(value, str) or not value:
        return "no destination"
    if _SIP.fullmatch(value):
        return None
    return _number_problem(value[: MAX_TEXT + 1])


@lru_cache(maxsize=4096)
def _number_problem(value: str) -> str | None:
    # A bidder answers with the same few numbers ping after ping; parse each once.
    try:
        parse_e164(value)
    except ValueError:
        return f"destination {_clip(value)!r} is not E.164 or a SIP URI"
    return None


def to_cents(value: object, *, in_cents: bool) -> int | None:
    """An amount (number, or string of one) as integer cents, half-up; None if not a number."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    # str(float) is the shortest text that reads back as the same float: 5.1 stays 5.1.
    number = parse_number(str(value))
    if number is None or not number.is_finite():
        return None
    try:
        cents = number if in_cents else number * 100
        return int(cents.quantize(Decimal(1), rounding=ROUND_HALF_UP))
    except ArithmeticError:
        return None  # an exponent too large to scale or quantize: not an amount anyone meant


def _clip(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "…"


def _optional_text(value: object) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str | int):
        return _clip(str(value)) or None
    return None


def _expiry(value: object) -> int | BidProblem | None:
    if value is None:
        return None
    seconds = to_cents(value, in_cents=True)  # "in cents" here means: take the number as is
    if seconds is None or seconds <= 0:
        return BidProblem("error", f"expiry {_clip(str(value))!r} is not a positive number")
    return seconds


def parse_bid(bidder: Bidder, status: int, body: bytes) -> ParsedBid | BidProblem:
    """Read one HTTP answer: a competing bid, or the typed reason it cannot compete."""
    if 300 <= status < 400:
        return BidProblem("error", f"redirect not followed (HTTP {status})")
    if not 200 <= status < 300:
        return BidProblem("error", f"HTTP {status}")
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return BidProblem("error", "invalid JSON")
    rmap = bidder.response_map
    bid_id = _optional_text(lookup(document, rmap.bid_id))
    reject = lookup(document, rmap.reject_reason)
    if reject not in (None, "", False):
        return BidProblem("rejected", _clip(str(reject)), bid_id=bid_id)
    raw_amount = lookup(document, rmap.bid_amount)
    if raw_amount is None:
        return BidProblem("error", "no bid amount", bid_id=bid_id)
    amount = to_cents(raw_amount, in_cents=rmap.amount_in_cents)
    if amount is None:
        return BidProblem("error", f"bid amount {_clip(str(raw_amount))!r} is not a usable amount")
    if amount <= 0:
        return BidProblem("rejected", "no bid (amount is not positive)", amount, bid_id)
    if amount > MAX_BID_CENTS:
        return BidProblem("error", f"bid of {amount} cents is implausibly large", amount, bid_id)
    destination = next(
        (found for path in rmap.destination if (found := lookup(document, path)) is not None),
        bidder.static_destination,
    )
    problem = destination_problem(destination)
    if problem or not isinstance(destination, str):
        return BidProblem("error", problem or "no destination", amount, bid_id)
    expires_in = _expiry(lookup(document, rmap.expires_in))
    if isinstance(expires_in, BidProblem):
        return BidProblem("error", expires_in.reason, amount, bid_id)
    if amount < bidder.floor_cents:
        reason = f"bid {amount} cents is below the floor of {bidder.floor_cents} cents"
        return BidProblem("below_floor", reason, amount, bid_id)
    return ParsedBid(amount, destination, bid_id, expires_in)


def static_bid(bidder: Bidder) -> ParsedBid | BidProblem:
    """A static bidder's standing bid, judged like an answered ping."""
    if bidder.static_bid_cents is None or bidder.static_destination is None:
        raise ValueError(f"bidder {bidder.bidder_id!r} is not static")
    amount = bidder.static_bid_cents
    if amount <= 0:
        return BidProblem("rejected", "no bid (static amount is zero)", amount)
    if amount < bidder.floor_cents:
        reason = f"bid {amount} cents is below the floor of {bidder.floor_cents} cents"
        return BidProblem("below_floor", reason, amount)
    return ParsedBid(amount, bidder.static_destination)


def bidder_from_settings(
    target_id: str, buyer_id: str, name: str, settings: Mapping[str, Any]
) -> Bidder:
    """The bidder a stored RTB target describes (`settings["rtb"]` plus the target's own
    destination, priority, schedule, geo and tag rules); ValueError naming the problem."""
    rtb = settings.get("rtb")
    if not isinstance(rtb, Mapping):
        raise ValueError(f"target {target_id!r} is not an RTB target")
    raw_map: Mapping[str, Any] = rtb.get("response_map") or {}
    response_map = ResponseMap(
        bid_amount=raw_map.get("bid_amount", "bidAmount"),
        destination=tuple(raw_map.get("destination", ("phoneNumber", "sipAddress"))),
        bid_id=raw_map.get("bid_id", "bidId"),
        expires_in=raw_map.get("expires_in", "expireInSeconds"),
        reject_reason=raw_map.get("reject_reason", "rejectReason"),
        amount_in_cents=bool(raw_map.get("amount_in_cents", False)),
    )
    schedule = settings.get("schedule")
    template = rtb.get("request_template")
    static_bid_cents = rtb.get("static_bid_cents")
    return Bidder(
        bidder_id=target_id,
        buyer_id=buyer_id,
        name=name,
        url=rtb.get("url"),
        method=rtb.get("method", "POST"),
        request_template=DEFAULT_REQUEST_TEMPLATE if template is None else template,
        response_map=response_map,
        timeout_ms=rtb.get("timeout_ms", DEFAULT_TIMEOUT_MS),
        floor_cents=rtb.get("floor_cents", 0),
        static_bid_cents=static_bid_cents,
        static_destination=settings.get("destination"),
        priority=settings.get("priority", 1),
        expose_caller_id=bool(rtb.get("expose_caller_id", False)),
        schedule=parse_schedule(schedule) if schedule else None,
        geo=parse_geo_filter(settings.get("geo") or {}),
        tag_rules=tuple(parse_tag_rule(rule) for rule in settings.get("tag_rules") or []),
    )
