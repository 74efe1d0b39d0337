"""Load a campaign with its plan, targets, buyers and bidders in a few reads, cached per process."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from chalicelib.bidding.bidders import Bidder, bidder_from_settings
from chalicelib.campaigns.settings import (
    CampaignSettings,
    Pixel,
    parse_campaign_settings,
    parse_pixels,
)
from chalicelib.config import get_settings
from chalicelib.routing import (
    RoutableTarget,
    parse_geo_filter,
    parse_schedule,
    parse_tag_rule,
)
from chalicelib.store import catalog, keys, reservations, sip_edges, tenants
from chalicelib.store.cache import TTLCache
from chalicelib.store.models import CampaignItem


@dataclass(frozen=True)
class CapOwner:
    """A target or buyer whose counters routing moves: its counter key, caps and timezone."""

    counter_pk: str
    caps: dict[str, Any]
    timezone: str
    enabled: bool = True


@dataclass(frozen=True)
class CampaignConfig:
    account_id: str
    campaign_id: str
    name: str
    status: str
    settings: CampaignSettings = field(hash=False)
    targets: tuple[RoutableTarget, ...] = ()
    target_caps: dict[str, CapOwner] = field(default_factory=dict, hash=False)
    buyer_caps: dict[str, CapOwner] = field(default_factory=dict, hash=False)
    buyer_pixels: dict[str, tuple[Pixel, ...]] = field(default_factory=dict, hash=False)
    # The ring tree: RTB targets, pinged for a price before the static targets are tried.
    bidders: tuple[Bidder, ...] = ()
    # Targets that are phones on the account's SIP edges: routing leaves out those whose
    # phone is not registered, and dials the others with the edge's call token.
    edge_phones: dict[str, sip_edges.EdgePhone] = field(default_factory=dict, hash=False)

    @property
    def active(self) -> bool:
        return self.status == "active"

    def owner_ids(self, target_id: str) -> tuple[str, str] | None:
        """(target id, buyer id) of a static or RTB target of this campaign."""
        for target in self.targets:
            if target.target_id == target_id:
                return target.target_id, target.buyer_id
        for bidder in self.bidders:
            if bidder.bidder_id == target_id:
                return bidder.bidder_id, bidder.buyer_id
        return None

    def sip_address(self, target_id: str, destination: str) -> str:
        """What <Dial><Sip> rings for a SIP destination: a phone on one of the account's
        edges carries the edge's call token."""
        phone = self.edge_phones.get(target_id)
        return phone.dial_uri() if phone is not None else destination

    def cap_owners(self, target_id: str, buyer_id: str) -> list[CapOwner]:
        owners = [self.target_caps[target_id]]
        buyer = self.buyer_caps.get(buyer_id)
        if buyer is not None:
            owners.append(buyer)
        return owners

    def route_checks(
        self, target_ids: list[str], at: datetime, *, shared: bool = False
    ) -> list[tuple[str, reservations.CapCheck]]:
        """The counters that offering a call to these targets moves (theirs and their
        buyers'), each once, labelled with the target that moves it. `shared`: the call is
        offered to all of them at once."""
        seen: set[tuple[str, str]] = set()
        labelled = []
        for target_id in target_ids:
            ids = self.owner_ids(target_id)
            if ids is None:
                continue
            for owner in self.cap_owners(*ids):
                hold = period_hold(owner.caps.get("counts", "routed"), shared=shared)
                for check in reservations.checks_for(
                    owner.counter_pk, owner.caps, at, owner.timezone, hold
                ):
                    if (check.pk, check.sk) not in seen:
                        seen.add((check.pk, check.sk))
                        labelled.append((target_id, check))
        return labelled


def period_hold(counts: str, *, shared: bool) -> reservations.Hold | None:
    """When a period cap's count taken at routing is given back: a cap counting connected
    (converted) calls unless the call connected (converted); one counting routed calls
    unless its target took the call, when the call was offered to several at once;
    otherwise never (a target offered the call alone was routed the call)."""
    if counts == "connected":
        return "connected"
    if counts == "converted":
        return "converted"
    return "taken" if shared else None


_campaigns: TTLCache[tuple[str, str], CampaignConfig] = TTLCache(
    ttl_seconds=get_settings().config_cache_seconds
)
_publishers: TTLCache[tuple[str, str], PublisherTerms] = TTLCache(
    ttl_seconds=get_settings().config_cache_seconds
)


@dataclass(frozen=True)
class PublisherTerms:
    """What a publisher is paid per campaign (overrides) and which pixels it wants."""

    payouts: dict[str, int] = field(default_factory=dict, hash=False)
    pixels: tuple[Pixel, ...] = ()


def load_campaign(account_id: str, campaign_id: str) -> CampaignConfig | None:
    """Campaign, plan, targets and buyers: a GetItem and a BatchGetItem (and a Query of the
    account's SIP edges when a target dials a SIP address), then cached."""
    hit, cached = _campaigns.get((account_id, campaign_id))
    if hit:
        return cached
    item = catalog.get(CampaignItem, account_id, campaign_id)
    if item is None:
        return None
    settings = parse_campaign_settings(item.settings)
    plan = settings.plan
    targets, buyers = catalog.load_targets_and_buyers(
        account_id, [e.target_id for e in plan], [e.buyer_id for e in plan]
    )
    routable: list[RoutableTarget] = []
    bidders: list[Bidder] = []
    target_caps: dict[str, CapOwner] = {}
    for entry in plan:
        target = targets.get(entry.target_id)
        if target is None:
            continue  # deleted since the plan was saved
        conf = target.settings
        buyer = buyers.get(target.buyer_id)
        schedule = parse_schedule(conf["schedule"]) if conf.get("schedule") else None
        enabled = bool(conf.get("enabled", True)) and (
            buyer is None or bool(buyer.settings.get("enabled", True))
        )
        target_caps[target.target_id] = CapOwner(
            keys.counter_pk(account_id, "TGT", target.target_id),
            {**(conf.get("caps") or {}), **_ping_cap(conf)},
            schedule.timezone if schedule else "UTC",
        )
        if conf.get("rtb") is not None:
            if enabled:
                priority = entry.priority or conf.get("priority", 1)
                # The real caller id only where the campaign allows it and the bidder wants it.
                rtb_settings = {
                    **conf["rtb"],
                    "expose_caller_id": settings.ring_tree.expose_caller_id
                    and bool(conf["rtb"].get("expose_caller_id", True)),
                }
                bidders.append(
                    bidder_from_settings(
                        target.target_id,
                        target.buyer_id,
                        target.name,
                        {**conf, "priority": priority, "rtb": rtb_settings},
                    )
                )
            continue
        routable.append(
            RoutableTarget(
                target_id=target.target_id,
                buyer_id=target.buyer_id,
                destination=conf["destination"],
                priority=entry.priority or conf.get("priority", 1),
                weight=entry.weight or conf.get("weight", 1),
                enabled=enabled,
                schedule=schedule,
                geo=parse_geo_filter(conf.get("geo") or {}),
                tag_rules=tuple(parse_tag_rule(r) for r in conf.get("tag_rules", [])),
            )
        )
    sip_targets = {t.target_id: t.destination for t in routable if t.destination.startswith("sip:")}
    buyer_caps = {
        buyer_id: CapOwner(
            keys.counter_pk(account_id, "BUY", buyer_id),
            buyer.settings.get("caps") or {},
            buyer.settings.get("timezone", "UTC"),
        )
        for buyer_id, buyer in buyers.items()
    }
    config = CampaignConfig(
        account_id=account_id,
        campaign_id=campaign_id,
        name=item.name,
        status=item.status,
        settings=settings,
        targets=tuple(routable),
        target_caps=target_caps,
        buyer_caps=buyer_caps,
        buyer_pixels={b: parse_pixels(buyer.settings.get("pixels")) for b, buyer in buyers.items()},
        bidders=tuple(bidders),
        edge_phones=sip_edges.edge_phones(account_id, sip_targets) if sip_targets else {},
    )
    _campaigns.put((account_id, campaign_id), config)
    return config


def _ping_cap(target_settings: dict[str, Any]) -> dict[str, Any]:
    limit = (target_settings.get("rtb") or {}).get("pings_per_minute")
    return {} if limit is None else {"pings_per_minute": limit}


def publisher_terms(account_id: str, publisher_id: str) -> PublisherTerms:
    """A publisher's payout overrides and pixels, cached."""
    hit, cached = _publishers.get((account_id, publisher_id))
    if hit and cached is not None:
        return cached
    publisher = tenants.get_publisher(account_id, publisher_id)
    terms = (
        PublisherTerms(dict(publisher.payout_overrides or {}), parse_pixels(publisher.pixels))
        if publisher
        else PublisherTerms()
    )
    _publishers.put((account_id, publisher_id), terms)
    return terms


def forget_cached_config() -> None:
    _campaigns.clear()
    _publishers.clear()
