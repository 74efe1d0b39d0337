"""Call records: written once when a call arrives, finished once by the final status callback."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pynamodb.attributes import MapAttribute
from pynamodb.exceptions import DoesNotExist, PutError, UpdateError

from chalicelib.clock import utcnow
from chalicelib.store import keys
from chalicelib.store.errors import condition_failed
from chalicelib.store.models import CallItem

FINAL_STATUSES = frozenset({"completed", "busy", "no-answer", "failed", "canceled"})


@dataclass(frozen=True)
class NewCall:
    call_sid: str
    account_id: str
    direction: str
    from_number: str
    to_number: str
    status: str
    tags: dict[str, str]


def tags_of(item: CallItem) -> dict[str, str]:
    """A call's tags as a plain dict (a loaded MapAttribute or a fresh dict)."""
    tags = item.tags
    if isinstance(tags, MapAttribute):
        return {str(k): str(v) for k, v in tags.as_dict().items()}  # type: ignore[no-untyped-call]
    return dict(tags or {})


def new_call_item(call: NewCall, now: datetime) -> CallItem:
    return CallItem(
        keys.call_pk(call.call_sid),
        keys.META,
        account_id=call.account_id,
        call_sid=call.call_sid,
        direction=call.direction,
        from_number=call.from_number,
        to_number=call.to_number,
        status=call.status,
        started_at=now,
        updated_at=now,
        tags=call.tags,
        gsi1pk=keys.calls_by_day_pk(call.account_id, keys.day_of(now)),
        gsi1sk=f"{now.isoformat()}#{call.call_sid}",
    )


def record_new_call(call: NewCall, at: datetime | None = None) -> bool:
    """Write the call record once; a retried webhook for the same call changes nothing.

    Returns True when this request created the record.
    """
    item = new_call_item(call, at or utcnow())
    try:
        item.save(condition=CallItem.pk.does_not_exist())
    except PutError as err:
        if condition_failed(err):
            return False
        raise
    return True


# Progress statuses in the order a call goes through them; a late, out-of-order
# callback may not move a call backwards.
PROGRESS_ORDER = ("queued", "initiated", "ringing", "in-progress")


def _update_open_call(call_sid: str, actions: list[Any], condition: Any = None) -> str | None:
    """Apply `actions` to a call that exists and has not ended; its account id, or None."""
    item = CallItem(keys.call_pk(call_sid), keys.META)
    guard = CallItem.pk.exists() & CallItem.ended_at.does_not_exist()
    try:
        item.update(actions=actions, condition=guard if condition is None else guard & condition)
    except UpdateError as err:
        if condition_failed(err):
            return None
        raise
    return item.account_id


def finish_call(
    call_sid: str, status: str, duration_seconds: int, at: datetime | None = None
) -> str | None:
    """Record the final status and duration once (one conditional UpdateItem).

    Returns the call's account id, or None when the call is unknown or was already
    finished (a retried callback) and nothing changed.
    """
    now = at or utcnow()
    return _update_open_call(
        call_sid,
        [
            CallItem.status.set(status),
            CallItem.duration_seconds.set(duration_seconds),
            CallItem.ended_at.set(now),
            CallItem.updated_at.set(now),
        ],
    )


def note_progress(call_sid: str, status: str, at: datetime | None = None) -> str | None:
    """Record a progress status (ringing, in-progress) if it moves the open call forward.

    Returns the call's account id, or None when nothing changed.
    """
    earlier = PROGRESS_ORDER[: PROGRESS_ORDER.index(status)] if status in PROGRESS_ORDER else ()
    if not earlier:
        return None
    now = at or utcnow()
    return _update_open_call(
        call_sid,
        [CallItem.status.set(status), CallItem.updated_at.set(now)],
        CallItem.status.is_in(*earlier),
    )


def call_by_sid(call_sid: str) -> CallItem | None:
    """A call by the CPaaS's call id (the entry point of every callback), or None."""
    try:
        return CallItem.get(keys.call_pk(call_sid), keys.META)
    except DoesNotExist:
        return None


def get_call(account_id: str, call_sid: str) -> CallItem | None:
    """A call of this account; another tenant's call reads as missing."""
    try:
        item = CallItem.get(keys.call_pk(call_sid), keys.META)
    except DoesNotExist:
        return None
    return item if item.account_id == account_id else None


def calls_of_day(account_id: str, day: str, before: str | None = None) -> Iterator[CallItem]:
    """An account's calls of one UTC day, newest first, optionally only those before a
    listing position (`gsi1sk` of the last call already shown). Paged GSI1 Query."""
    partition = keys.calls_by_day_pk(account_id, day)
    condition = CallItem.gsi1sk < before if before else None
    return iter(CallItem.by_account_day.query(partition, condition, scan_index_forward=False))
