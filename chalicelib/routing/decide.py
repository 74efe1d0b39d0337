"""Which targets may take a call (schedule, geo, tags) and the order to try them in."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from itertools import groupby
from types import MappingProxyType
from typing import Final, TypeVar

from chalicelib.routing.model import (
    STRATEGIES,
    CallFacts,
    GeoFilter,
    RoutableTarget,
    Schedule,
    Strategy,
    TagRule,
    TagValue,
    parse_number,
)

T = TypeVar("T")

# Twilio's <Dial> takes at most 10 <Number>/<Sip>/<Client> nouns; more are an error.
MAX_SIMULTANEOUS: Final = 10


class Ineligible:
    """Why a target was left out; short strings that go into the call's routing log."""

    DISABLED: Final = "disabled"
    CLOSED: Final = "closed"
    GEO: Final = "geo"
    PHONE_OFFLINE: Final = "phone_offline"  # a phone on a SIP edge that is not registered

    @staticmethod
    def tags(tag: str) -> str:
        return f"tags:{tag}"


def is_open(schedule: Schedule | None, at: datetime) -> bool:
    """Whether `at` falls in one of the schedule's windows, read in the schedule's timezone."""
    if schedule is None:
        return True
    if at.utcoffset() is None:
        raise ValueError("call time must be timezone-aware")
    # astimezone applies the zone's UTC offset at that instant, so DST moves the window
    # in UTC exactly as it moves the buyer's office hours.
    local = at.astimezone(schedule.zone)
    wall = local.time()  # naive wall-clock time, comparable with the windows
    return any(window.contains(wall) for window in schedule.windows_on(local.weekday()))


def _known(value: str | None) -> str | None:
    # Twilio sends empty strings for geo it could not resolve; empty is as unknown as None.
    text = (value or "").strip().upper()
    return text or None


def geo_matches(geo: GeoFilter, facts: CallFacts) -> bool:
    """Every restricted part of the filter matches; an unknown value never does."""
    if geo.countries and _known(facts.country) not in geo.countries:
        return False
    if geo.states and _known(facts.state) not in geo.states:
        return False
    if geo.area_codes and _known(facts.area_code) not in geo.area_codes:
        return False
    if geo.zip_prefixes:
        zip_code = _known(facts.zip_code)
        if zip_code is None or not zip_code.startswith(geo.zip_prefixes):
            return False
    return True


def rule_holds(rule: TagRule, tags: Mapping[str, str]) -> bool:
    """One rule against the call's tags; an empty tag value counts as a missing tag."""
    present = tags.get(rule.tag) or None
    if rule.op == "exists":
        return present is not None
    # ne / not_in are the exact negations, so a missing tag satisfies them.
    if rule.op == "ne":
        return not _holds("eq", rule.value, present)
    if rule.op == "not_in":
        return not _holds("in", rule.value, present)
    return _holds(rule.op, rule.value, present)


def _holds(op: str, value: TagValue, present: str | None) -> bool:
    if present is None:
        return False
    if op == "in":
        return isinstance(value, tuple) and present in value
    if op == "eq" and isinstance(value, str):
        return present == value
    # eq with a number, and the ordering ops: "65" and "65.0" are the same age.
    number = parse_number(present)
    if number is None or not isinstance(value, Decimal):
        return False
    if op == "eq":
        return number == value
    if op == "gt":
        return number > value
    if op == "gte":
        return number >= value
    if op == "lt":
        return number < value
    if op == "lte":
        return number <= value
    return False


def first_failing_rule(rules: Iterable[TagRule], tags: Mapping[str, str]) -> TagRule | None:
    """The first rule that does not hold, for the routing log; None when all hold."""
    return next((rule for rule in rules if not rule_holds(rule, tags)), None)


def tags_match(rules: Iterable[TagRule], tags: Mapping[str, str]) -> bool:
    """Whether every rule holds (no rules: any call)."""
    return first_failing_rule(rules, tags) is None


def _refuse_duplicates(targets: Iterable[RoutableTarget]) -> None:
    # Reservations and the routing log are keyed by target id; two targets sharing one
    # would double-count caps, so a plan like that is a bug to surface, not to route.
    seen: set[str] = set()
    for target in targets:
        if target.target_id in seen:
            raise ValueError(f"duplicate target id {target.target_id!r} in routing plan")
        seen.add(target.target_id)


def filter_reason(
    schedule: Schedule | None, geo: GeoFilter, tag_rules: Iterable[TagRule], facts: CallFacts
) -> str | None:
    """Why hours, geo or tag filters (a target's or a bidder's) refuse this call, or None."""
    if not is_open(schedule, facts.at):
        return Ineligible.CLOSED
    if not geo_matches(geo, facts):
        return Ineligible.GEO
    failing = first_failing_rule(tag_rules, facts.tags)
    if failing is not None:
        return Ineligible.tags(failing.tag)
    return None


def exclusion_reason(target: RoutableTarget, facts: CallFacts) -> str | None:
    """Why `target` may not take this call, or None when it may."""
    if not target.enabled:
        return Ineligible.DISABLED
    return filter_reason(target.schedule, target.geo, target.tag_rules, facts)


def eligibility(
    targets: Iterable[RoutableTarget], facts: CallFacts
) -> tuple[list[RoutableTarget], dict[str, str]]:
    """Targets that may take the call (input order kept) and, per excluded id, the reason."""
    plan = list(targets)
    _refuse_duplicates(plan)
    return split_by_reason(
        plan, lambda target: exclusion_reason(target, facts), lambda target: target.target_id
    )


def split_by_reason(
    items: Iterable[T], reason_of: Callable[[T], str | None], id_of: Callable[[T], str]
) -> tuple[list[T], dict[str, str]]:
    """The items with no reason against them (order kept), and each other id's reason."""
    kept: list[T] = []
    excluded: dict[str, str] = {}
    for item in items:
        reason = reason_of(item)
        if reason is None:
            kept.append(item)
        else:
            excluded[id_of(item)] = reason
    return kept, excluded


def _weighted_draws(
    group: Sequence[RoutableTarget], rng: random.Random, count: int
) -> list[RoutableTarget]:
    # Sequential draws without replacement on integer weights: exact shares (no float keys),
    # and sorting first makes the result depend on the seed, not on how the plan was listed.
    pool = sorted(group, key=lambda target: target.target_id)
    total = sum(target.weight for target in pool)
    drawn: list[RoutableTarget] = []
    while pool and len(drawn) < count:
        ticket = rng.randrange(total)
        index = 0
        while ticket >= pool[index].weight:
            ticket -= pool[index].weight
            index += 1
        chosen = pool.pop(index)
        total -= chosen.weight
        drawn.append(chosen)
    return drawn


def _by_priority(
    eligible: Sequence[RoutableTarget], rng: random.Random, count: int
) -> list[RoutableTarget]:
    ordered: list[RoutableTarget] = []
    by_priority = sorted(eligible, key=lambda target: target.priority)
    for _, group in groupby(by_priority, key=lambda target: target.priority):
        if len(ordered) >= count:
            break  # draws stop early, so a limited order is a prefix of the unlimited one
        ordered.extend(_weighted_draws(list(group), rng, count - len(ordered)))
    return ordered


def order_targets(
    strategy: Strategy,
    eligible: Sequence[RoutableTarget],
    *,
    rng: random.Random,
    rotation: int = 0,
    limit: int | None = None,
) -> list[RoutableTarget]:
    """The order in which to try (or, for "simultaneous", ring together) eligible targets."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown routing strategy {strategy!r}")
    if limit is not None and limit < 0:
        raise ValueError("limit must not be negative")
    _refuse_duplicates(eligible)
    count = len(eligible) if limit is None else min(limit, len(eligible))
    if strategy == "round_robin":
        if not eligible:
            return []
        ring = sorted(eligible, key=lambda target: (target.priority, target.target_id))
        start = rotation % len(ring)
        return (ring[start:] + ring[:start])[:count]
    if strategy == "simultaneous":
        count = min(count, MAX_SIMULTANEOUS)
    return _by_priority(eligible, rng, count)


@dataclass(frozen=True)
class RoutingDecision:
    """The targets to try for one call, in order, and why the others were left out."""

    attempts: tuple[RoutableTarget, ...]
    excluded: Mapping[str, str] = field(hash=False)


def route_call(
    targets: Iterable[RoutableTarget],
    facts: CallFacts,
    strategy: Strategy,
    *,
    rng: random.Random,
    rotation: int = 0,
    limit: int | None = None,
) -> RoutingDecision:
    """eligibility() then order_targets(): the whole routing decision for one call."""
    eligible, excluded = eligibility(targets, facts)
    attempts = order_targets(strategy, eligible, rng=rng, rotation=rotation, limit=limit)
    return RoutingDecision(tuple(attempts), MappingProxyType(excluded))
