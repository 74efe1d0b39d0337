"""Visitor sessions: which number a web visitor sees, for how long, and what a call on it
is attributed to."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, TypeAlias, cast, get_args

from chalicelib.store import dni as store
from chalicelib.store import keys
from chalicelib.store.models import DniSessionItem, PoolItem

Kind: TypeAlias = Literal["pool", "source", "overflow"]
UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
CLICK_IDS = ("gclid", "fbclid", "msclkid")
POOL_DEFAULTS: dict[str, Any] = {
    "idle_seconds": 300,
    "overflow_number": None,
    "attribution_grace_seconds": 900,
    "source_numbers": {},
    "local_presence": True,
}


class SessionUnknown(Exception):
    """No such session in this pool (never existed, or another pool's)."""


class SessionExpired(Exception):
    """The session's number went back to the pool."""


@dataclass(frozen=True)
class Visit:
    """What a page tells us about its visitor."""

    page_url: str = ""
    referrer: str = ""
    utm: dict[str, str] = field(default_factory=dict, hash=False)
    click_ids: dict[str, str] = field(default_factory=dict, hash=False)
    tags: dict[str, str] = field(default_factory=dict, hash=False)
    visitor_id: str | None = None
    session_id: str | None = None
    area_code: str | None = None


@dataclass(frozen=True)
class Assignment:
    """The number a visitor sees and how long it is theirs."""

    session_id: str
    visitor_id: str
    number: str | None
    kind: Kind
    held_until: int  # epoch seconds (0 when nothing is held: source or overflow)
    idle_seconds: int

    @property
    def overflow(self) -> bool:
        return self.kind == "overflow"

    @property
    def heartbeat_seconds(self) -> int:
        return max(15, min(60, self.idle_seconds // 3))

    def view(self, at: datetime) -> dict[str, Any]:
        expires = self.held_until or int((at + timedelta(seconds=self.idle_seconds)).timestamp())
        return {
            "session_id": self.session_id,
            "visitor_id": self.visitor_id,
            "number": self.number,
            "national": national(self.number) if self.number else None,
            "expires_at": datetime.fromtimestamp(expires, at.tzinfo).isoformat(),
            "idle_seconds": self.idle_seconds,
            "heartbeat_seconds": self.heartbeat_seconds,
            "overflow": self.overflow,
            "kind": self.kind,
        }


def national(e164: str) -> str:
    """`+14155550123` → `(415) 555-0123`: how pages in the number's country write it."""
    import phonenumbers  # with the first session, not with every cold start

    number = phonenumbers.parse(e164, None)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)


def pool_settings(pool: PoolItem) -> dict[str, Any]:
    return {**POOL_DEFAULTS, **(pool.settings or {})}


def attribution_of(visit: Visit, session_id: str, visitor_id: str) -> dict[str, str]:
    """The call tags a call on this visitor's number gets."""
    found = {
        **{k: v for k, v in visit.tags.items()},
        **visit.utm,
        **visit.click_ids,
        "landing_page": visit.page_url,
        "referrer": visit.referrer,
        "dni_session_id": session_id,
        "dni_visitor_id": visitor_id,
    }
    return {k: v for k, v in found.items() if v}


def source_number(settings: dict[str, Any], visit: Visit) -> str | None:
    """A static number that wins over the pool: by click id first, then by utm_source."""
    numbers: dict[str, str] = settings.get("source_numbers") or {}
    for click_id in CLICK_IDS:
        if visit.click_ids.get(click_id) and click_id in numbers:
            return numbers[click_id]
    source = visit.utm.get("utm_source", "").lower()
    return numbers.get(source) if source else None


def free_in_order(
    leases: Sequence[store.Lease], now: int, area_code: str | None, local_presence: bool
) -> list[store.Lease]:
    """Free numbers, least recently released first; the visitor's area code first."""
    free = sorted((lease for lease in leases if lease.held_until < now), key=_released)
    if not (local_presence and area_code):
        return free
    local = [lease for lease in free if lease.area_code == area_code]
    return local + [lease for lease in free if lease.area_code != area_code]


def _released(lease: store.Lease) -> tuple[int, str]:
    return lease.held_until, lease.number


def start_session(pool: PoolItem, visit: Visit, at: datetime) -> Assignment:
    """The visitor's number: its live session's (resumed), a source number, a free pool
    number, or the overflow number."""
    settings = pool_settings(pool)
    idle = int(settings["idle_seconds"])
    now = int(at.timestamp())
    held_until = now + idle
    if visit.session_id:
        resumed = _resume(pool, visit.session_id, at, held_until)
        if resumed is not None:
            return resumed
    visitor_id = visit.visitor_id or keys.new_id("vis")
    session_id = keys.new_id("dns")
    attribution = attribution_of(visit, session_id, visitor_id)

    def session(number: str | None, kind: Kind, held: int) -> DniSessionItem:
        return store.new_session(
            account_id=pool.account_id,
            session_id=session_id,
            visitor_id=visitor_id,
            pool=pool,
            number=number,
            kind=kind,
            attribution=attribution,
            at=at,
            held_until=held,
        )

    kind: Kind = "source"
    number = source_number(settings, visit)
    if number is None:
        number, kind = settings.get("overflow_number"), "overflow"
        candidates = free_in_order(
            store.leases(pool.account_id, pool.pool_id),
            now,
            visit.area_code,
            bool(settings["local_presence"]),
        )
        grace = int(settings["attribution_grace_seconds"])
        for lease in candidates:
            # The session is stored in the transaction that takes its number: a new visitor
            # on a pool with free numbers costs this Query and that one write.
            if store.take(session(lease.number, "pool", held_until), grace, now):
                return Assignment(session_id, visitor_id, lease.number, "pool", held_until, idle)
    store.create_session(session(number, kind, 0))
    return Assignment(session_id, visitor_id, number, kind, 0, idle)


def _kind_of(item: DniSessionItem) -> Kind:
    if item.kind not in get_args(Kind):
        raise ValueError(f"session {item.session_id} has unknown kind {item.kind!r}")
    return cast(Kind, item.kind)


def _session_in(pool: PoolItem, session_id: str) -> DniSessionItem:
    item = store.get_session(session_id)
    if item is None or (item.account_id, item.pool_id) != (pool.account_id, pool.pool_id):
        raise SessionUnknown(session_id)
    return item


def _resume(pool: PoolItem, session_id: str, at: datetime, held_until: int) -> Assignment | None:
    """The same session on another page, while it still holds its number."""
    try:
        item = _session_in(pool, session_id)
    except SessionUnknown:
        return None
    kind = _kind_of(item)
    idle = int(pool_settings(pool)["idle_seconds"])
    if kind == "overflow":
        return None  # a pool number may be free by now
    if kind == "pool":
        number = item.number or ""
        now = int(at.timestamp())
        if not store.keep(pool.account_id, pool.pool_id, number, session_id, held_until, now):
            return None
        store.touch_session(item, at, held_until)
        return Assignment(session_id, item.visitor_id, number, kind, held_until, idle)
    store.touch_session(item, at, 0)
    return Assignment(session_id, item.visitor_id, item.number, kind, 0, idle)


def heartbeat(pool: PoolItem, session_id: str, at: datetime) -> Assignment:
    """Keep the visitor's number while the page is open; SessionUnknown, SessionExpired."""
    item = _session_in(pool, session_id)
    idle = int(pool_settings(pool)["idle_seconds"])
    held_until = int(at.timestamp()) + idle
    kind = _kind_of(item)
    if kind == "pool":
        now = int(at.timestamp())
        number = item.number or ""
        if not store.keep(pool.account_id, pool.pool_id, number, session_id, held_until, now):
            raise SessionExpired(session_id)
    else:
        held_until = 0
    store.touch_session(item, at, held_until)
    return Assignment(session_id, item.visitor_id, item.number, kind, held_until, idle)


def attribution_for_call(
    account_id: str, pool_id: str, number: str, at: datetime
) -> dict[str, str] | None:
    """The tags of the session holding `number` at ring time, or of its last holder within
    the grace period after release; None when nobody visited for it lately."""
    lease = store.lease_of(account_id, pool_id, number)
    if lease is None or lease.session_id is None:
        return None
    if at.timestamp() > lease.held_until + lease.grace_seconds:
        return None
    return lease.attribution
