"""One step of a call's routing written all or nothing: the call record, the caller's
duplicate marker and every counter the step reserves or gives back."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action

from chalicelib.store import keys, reservations
from chalicelib.store.models import CallerSeenItem, CallItem
from chalicelib.store.reservations import CapCheck
from chalicelib.store.transactions import LabelledTransaction, Refused, transact

# Routing's counters are the hottest items: more tries than the default.
CONFLICT_ATTEMPTS = 8


@dataclass(frozen=True)
class CallChanges:
    """Fields of the call record a step sets (None: left as it is)."""

    status: str | None = None
    tags: dict[str, str] | None = None
    duplicate: bool | None = None
    target_id: str | None = None
    buyer_id: str | None = None
    connected_seconds: int | None = None
    recording_url: str | None = None
    recording_seconds: int | None = None
    duration_seconds: int | None = None
    converted: bool | None = None
    revenue_cents: int | None = None
    payout_cents: int | None = None
    ended_at: datetime | None = None

    def __or__(self, other: CallChanges) -> CallChanges:
        """These changes, then `other`'s on top."""
        return replace(self, **other.fields())

    def fields(self) -> dict[str, Any]:
        return {name: value for name, value in self.__dict__.items() if value is not None}


@dataclass(frozen=True)
class DuplicateCheck:
    """Remember the caller's latest call to the campaign; refused (label `duplicate`) when
    they called within the window, unless the call is already known to be a duplicate."""

    campaign_id: str
    window_days: int
    known: bool = False


@dataclass
class RoutingStep:
    """What one step writes. `create`: the call record is new (the first step); otherwise
    it is updated only if still at the step it was read at, so a retried or concurrent
    webhook changes nothing twice (label `call`)."""

    call: CallItem
    routing: dict[str, Any]
    attempt: int
    at: datetime
    create: bool = False
    changes: CallChanges = field(default_factory=CallChanges)
    duplicate: DuplicateCheck | None = None
    reserve: list[tuple[str, CapCheck]] = field(default_factory=list)
    release: list[tuple[str, str]] = field(default_factory=list)
    # Counters that count what already happened (a late result): added without a bound.
    count: list[tuple[str, str]] = field(default_factory=list)


def apply(step: RoutingStep) -> None:
    """Write the step in one transaction, trying again when it collides with another
    transaction; `transactions.Refused` names the conditions that did not hold."""

    def build(tx: LabelledTransaction) -> None:
        _call_write(tx, step)
        if step.duplicate is not None:
            add_caller_seen(tx, step.call, step.duplicate, step.at)
        for label, check in step.reserve:
            reservations.add_checks(tx, label, [check])
        reservations.add_release(tx, step.release)
        reservations.add_counts(tx, step.count)

    transact(build, CONFLICT_ATTEMPTS)
    step.call.attempt = step.attempt
    step.call.step = 1 if step.create else int(step.call.step) + 1
    step.call.routing = step.routing
    for name, value in step.changes.fields().items():
        setattr(step.call, name, value)


def _call_write(tx: LabelledTransaction, step: RoutingStep) -> None:
    call, updates = step.call, {"updated_at": step.at, **step.changes.fields()}
    if step.create:
        call.routing, call.attempt, call.step = step.routing, step.attempt, 1
        for name, value in updates.items():
            setattr(call, name, value)
        tx.save("call", call, CallItem.pk.does_not_exist())
        return
    actions: list[Action] = [
        CallItem.routing.set(step.routing),
        CallItem.attempt.set(step.attempt),
        CallItem.step.add(1),
    ]
    actions += [getattr(CallItem, name).set(value) for name, value in updates.items()]
    condition: Condition = CallItem.step == int(call.step)
    tx.update("call", call, actions, condition)


def add_caller_seen(
    tx: LabelledTransaction, call: CallItem, check: DuplicateCheck, at: datetime
) -> None:
    window = timedelta(days=check.window_days)
    tx.save(
        "duplicate",
        CallerSeenItem(
            keys.counter_pk(call.account_id, "CAMP", check.campaign_id),
            keys.caller_seen_sk(call.from_number),
            last_call_at=int(at.timestamp()),
            expires_at=at + window,
        ),
        None
        if check.known
        # A known duplicate only moves the window on (it runs from the latest call).
        else CallerSeenItem.pk.does_not_exist()
        | (CallerSeenItem.last_call_at < int((at - window).timestamp())),
    )


def record_arrival(call: CallItem, duplicate: DuplicateCheck | None, at: datetime) -> None:
    """Write a new call record that is not routed (IVR first, blocked, unroutable) and,
    with a duplicate window, mark a repeat caller (`call.duplicate`). Refused (label
    `call`) when the record exists already: a retried webhook."""
    while True:
        try:
            transact(_arrival(call, duplicate, at), CONFLICT_ATTEMPTS)
            return
        except Refused as refusal:
            if "call" in refusal.labels or duplicate is None or duplicate.known:
                raise
            call.duplicate = True
            duplicate = DuplicateCheck(duplicate.campaign_id, duplicate.window_days, known=True)


def _arrival(
    call: CallItem, duplicate: DuplicateCheck | None, at: datetime
) -> Callable[[LabelledTransaction], None]:
    def build(tx: LabelledTransaction) -> None:
        tx.save("call", call, CallItem.pk.does_not_exist())
        if duplicate is not None:
            add_caller_seen(tx, call, duplicate, at)

    return build
