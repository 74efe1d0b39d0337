"""A campaign's settings as frozen typed values; every default lives here and nowhere else.

The stored campaign (the API's JSON, `CampaignItem.settings`) is parsed once, when the
campaign is loaded, by `parse_campaign_settings`; the API's request models take their
defaults from these classes, so a setting left out means the same thing everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, Literal, TypeAlias

from chalicelib.bidding.auction import Margin, margin_from_settings
from chalicelib.routing import Strategy

ConversionKind: TypeAlias = Literal["duration", "tag"]
GatherInput: TypeAlias = Literal["dtmf", "speech", "dtmf speech"]
CallerIdMode: TypeAlias = Literal["caller", "tracking_number"]
PixelEvent: TypeAlias = Literal["completed", "converted"]

DEFAULT_CONSENT_MESSAGE: Final = "This call may be recorded for quality and training purposes."
DEFAULT_FALLBACK_MESSAGE: Final = (
    "We are sorry, nobody is available to take your call right now. Please try again later."
)


@dataclass(frozen=True)
class Conversion:
    """When a connected call counts as converted: after `buffer_seconds` of talk, or when
    the caller's answer put `tag` = `value` on the call."""

    kind: ConversionKind = "duration"
    buffer_seconds: int = 90
    tag: str | None = None
    value: str | None = None


@dataclass(frozen=True)
class Duplicates:
    """A caller who called within `window_days` is a duplicate; paid only with `pay`."""

    window_days: int = 30
    pay: bool = False


@dataclass(frozen=True)
class Recording:
    enabled: bool = False
    consent_message: str = DEFAULT_CONSENT_MESSAGE


@dataclass(frozen=True)
class Fallback:
    """Where a call goes when no target can take it: a number, else a message."""

    number: str | None = None
    message: str = DEFAULT_FALLBACK_MESSAGE


@dataclass(frozen=True)
class IvrChoice:
    """One accepted answer: keys pressed (or words said) → tag value and next node."""

    value: str
    digits: str | None = None
    speech: tuple[str, ...] = ()
    next: str | None = None


@dataclass(frozen=True)
class IvrNode:
    prompt: str
    tag: str
    input: GatherInput = "dtmf"
    num_digits: int | None = None
    # Free input (e.g. a ZIP code) is stored as typed when no choices are listed.
    choices: tuple[IvrChoice, ...] = ()
    next: str | None = None
    retries: int = 2
    default: IvrChoice | None = None
    timeout_seconds: int = 5


@dataclass(frozen=True)
class Ivr:
    start: str
    nodes: Mapping[str, IvrNode] = field(default_factory=dict, hash=False)
    voice: str = "Polly.Joanna"
    language: str = "en-US"


@dataclass(frozen=True)
class RingTree:
    """How the campaign's RTB targets bid: auction deadline, margin, bid hold time."""

    deadline_ms: int = 2000
    # None: publishers are paid the campaign's payout (or their override), as for other calls.
    margin: Margin | None = None
    hold_seconds: int = 60
    # Bidders get the caller id masked (+1415555****) unless this is set.
    expose_caller_id: bool = False
    publisher_pings_per_minute: int = 600


@dataclass(frozen=True)
class Pixel:
    """A post-call webhook: URL template with {tokens}, signed with the shared secret."""

    url: str
    secret: str
    method: Literal["GET", "POST"] = "POST"
    events: tuple[PixelEvent, ...] = ("completed",)


@dataclass(frozen=True)
class PlanEntry:
    """A target in the campaign's plan; priority and weight override the target's own."""

    target_id: str
    buyer_id: str
    priority: int | None = None
    weight: int | None = None


@dataclass(frozen=True)
class CampaignSettings:
    strategy: Strategy = "priority"
    plan: tuple[PlanEntry, ...] = ()
    conversion: Conversion = Conversion()
    payout_cents: int = 0
    revenue_cents: int = 0
    duplicates: Duplicates = Duplicates()
    recording: Recording = Recording()
    fallback: Fallback = Fallback()
    blocklist: tuple[str, ...] = ()
    caller_id: CallerIdMode = "caller"
    ring_timeout_seconds: int = 20
    max_attempts: int = 3
    max_ring_seconds: int = 90
    ivr: Ivr | None = None
    ring_tree: RingTree = RingTree()
    pixels: tuple[Pixel, ...] = ()

    def blocks(self, caller: str) -> bool:
        return any(caller.startswith(entry) for entry in self.blocklist)


DEFAULTS: Final = CampaignSettings()
IVR_DEFAULTS: Final = Ivr(start="")
IVR_NODE_DEFAULTS: Final = IvrNode(prompt="", tag="")


def parse_pixels(raw: object) -> tuple[Pixel, ...]:
    """Stored pixels (a campaign's, a publisher's or a buyer's) as typed values."""
    return tuple(
        Pixel(
            url=pixel["url"],
            secret=pixel["secret"],
            method=pixel.get("method", "POST"),
            events=tuple(pixel.get("events") or ("completed",)),
        )
        for pixel in _list(raw)
    )


def parse_campaign_settings(raw: Mapping[str, Any]) -> CampaignSettings:
    """The stored campaign settings as typed values, with the defaults above for what is
    missing (campaigns saved before a setting existed)."""
    d = DEFAULTS
    conversion = raw.get("conversion") or {}
    ring_tree = raw.get("rtb") or {}
    return CampaignSettings(
        strategy=raw.get("strategy", d.strategy),
        plan=tuple(
            PlanEntry(e["target_id"], e.get("buyer_id", ""), e.get("priority"), e.get("weight"))
            for e in _list(raw.get("plan"))
        ),
        conversion=Conversion(
            kind=conversion.get("kind", d.conversion.kind),
            buffer_seconds=int(conversion.get("buffer_seconds", d.conversion.buffer_seconds)),
            tag=conversion.get("tag"),
            value=conversion.get("value"),
        ),
        payout_cents=int(raw.get("payout_cents", d.payout_cents)),
        revenue_cents=int(raw.get("revenue_cents", d.revenue_cents)),
        duplicates=Duplicates(
            window_days=int(raw.get("duplicate_window_days", d.duplicates.window_days)),
            pay=bool(raw.get("duplicates_pay", d.duplicates.pay)),
        ),
        recording=Recording(
            enabled=bool(raw.get("recording", d.recording.enabled)),
            consent_message=raw.get("consent_message") or d.recording.consent_message,
        ),
        fallback=Fallback(
            number=raw.get("fallback_number") or None,
            message=raw.get("fallback_message") or d.fallback.message,
        ),
        blocklist=tuple(_list(raw.get("blocklist"))),
        caller_id=raw.get("caller_id", d.caller_id),
        ring_timeout_seconds=int(raw.get("ring_timeout_seconds", d.ring_timeout_seconds)),
        max_attempts=int(raw.get("max_attempts", d.max_attempts)),
        max_ring_seconds=int(raw.get("max_ring_seconds", d.max_ring_seconds)),
        ivr=_parse_ivr(raw["ivr"]) if raw.get("ivr") else None,
        ring_tree=RingTree(
            deadline_ms=int(ring_tree.get("deadline_ms", d.ring_tree.deadline_ms)),
            margin=margin_from_settings(ring_tree.get("margin")),
            hold_seconds=int(ring_tree.get("hold_seconds", d.ring_tree.hold_seconds)),
            expose_caller_id=bool(ring_tree.get("expose_caller_id", False)),
            publisher_pings_per_minute=int(
                ring_tree.get("publisher_pings_per_minute", d.ring_tree.publisher_pings_per_minute)
            ),
        ),
        pixels=parse_pixels(raw.get("pixels")),
    )


def _parse_choice(raw: Mapping[str, Any]) -> IvrChoice:
    return IvrChoice(
        value=raw["value"],
        digits=raw.get("digits") or None,
        speech=tuple(raw.get("speech") or ()),
        next=raw.get("next") or None,
    )


def _parse_ivr(raw: Mapping[str, Any]) -> Ivr:
    node_defaults = IVR_NODE_DEFAULTS
    nodes = {
        name: IvrNode(
            prompt=node["prompt"],
            tag=node["tag"],
            input=node.get("input", node_defaults.input),
            num_digits=node.get("num_digits"),
            choices=tuple(_parse_choice(c) for c in _list(node.get("choices"))),
            next=node.get("next") or None,
            retries=int(node.get("retries", node_defaults.retries)),
            default=_parse_choice(node["default"]) if node.get("default") else None,
            timeout_seconds=int(node.get("timeout_seconds", node_defaults.timeout_seconds)),
        )
        for name, node in (raw.get("nodes") or {}).items()
    }
    defaults = IVR_DEFAULTS
    return Ivr(
        start=raw["start"],
        nodes=MappingProxyType(nodes),
        voice=raw.get("voice") or defaults.voice,
        language=raw.get("language") or defaults.language,
    )


def _list(value: object) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []
