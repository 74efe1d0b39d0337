"""Items to JSON-ready dicts: the API's view of stored data (never secrets or hashes)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chalicelib.api.schemas import MASKED_SECRET
from chalicelib.edge.devices import edge_is_stale, epoch, is_online
from chalicelib.edge.phones import presence_of
from chalicelib.sip import sip_uri
from chalicelib.store.calls import tags_of
from chalicelib.store.models import (
    AccountItem,
    ApiKeyItem,
    CallItem,
    PublisherItem,
    SipDeviceItem,
    SipEdgeItem,
    TrackingNumberItem,
    UserItem,
)


def account(item: AccountItem) -> dict[str, Any]:
    return {
        "id": item.account_id,
        "name": item.name,
        "status": item.status,
        "created_at": item.created_at.isoformat(),
    }


def user(item: UserItem) -> dict[str, Any]:
    return {
        "id": item.user_id,
        "email": item.email,
        "role": item.role,
        "created_at": item.created_at.isoformat(),
    }


def publisher(item: PublisherItem) -> dict[str, Any]:
    return {
        "id": item.publisher_id,
        "name": item.name,
        "contact_email": item.contact_email,
        "payout_overrides": dict(item.payout_overrides or {}),
        "pixels": masked_pixels(item.pixels),
        "created_at": item.created_at.isoformat(),
    }


def api_key(item: ApiKeyItem) -> dict[str, Any]:
    return {
        "id": item.key_id,
        "publisher_id": item.publisher_id,
        "label": item.label,
        "prefix": item.key_prefix,
        "created_at": item.created_at.isoformat(),
        "revoked_at": item.revoked_at.isoformat() if item.revoked_at else None,
    }


def sip_edge(item: SipEdgeItem, devices: list[SipDeviceItem], now: datetime) -> dict[str, Any]:
    return {
        "id": item.edge_id,
        "name": item.name,
        "domain": item.domain,
        "secret_prefix": item.secret_prefix,
        "devices": len(devices),
        "online": sum(
            1 for device in devices if is_online(presence_of(device, item.stale_after), now)
        ),
        "last_sync_at": _iso(item.last_sync_at),
        # No snapshot for three of its intervals: the edge is down or cut off.
        "stale": edge_is_stale(item.stale_after, now),
        "created_at": item.created_at.isoformat(),
        "secret_rotated_at": _iso(item.secret_rotated_at),
    }


def sip_device(
    item: SipDeviceItem, now: datetime, edge_stale_after: float | None
) -> dict[str, Any]:
    """A phone as the device list shows it; never its HA1."""
    online = is_online(presence_of(item, edge_stale_after), now)
    until = item.registered_until
    return {
        "edge_id": item.edge_id,
        "extension": item.extension,
        "sip_uri": sip_uri(item.extension, item.domain),
        "label": item.label,
        "user_id": item.user_id,
        "status": "online" if online else "offline",
        "contacts": _int(item.contact_count) if online else 0,
        "user_agent": item.user_agent or None,
        "source": item.source or None,
        "registered_until": epoch(float(until)).isoformat() if online and until else None,
        "last_seen": _iso(item.last_seen),
        "created_at": item.created_at.isoformat(),
        "password_rotated_at": _iso(item.password_rotated_at),
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def tracking_number(item: TrackingNumberItem) -> dict[str, Any]:
    return {
        "number": item.e164,
        "friendly_name": item.friendly_name,
        "greeting": item.greeting,
        "campaign_id": item.campaign_id,
        "publisher_id": item.publisher_id,
        "source": item.source,
        "pool_id": item.pool_id,
        "created_at": item.created_at.isoformat(),
    }


def call(item: CallItem) -> dict[str, Any]:
    return {
        "call_sid": item.call_sid,
        "direction": item.direction,
        "from": item.from_number,
        "to": item.to_number,
        "status": item.status,
        "started_at": item.started_at.isoformat(),
        "ended_at": item.ended_at.isoformat() if item.ended_at else None,
        "duration_seconds": _int(item.duration_seconds),
        "tags": tags_of(item),
        "campaign_id": item.campaign_id,
        "publisher_id": item.publisher_id,
        "source": item.source,
        "duplicate": bool(item.duplicate),
        "target_id": item.target_id,
        "buyer_id": item.buyer_id,
        "connected_seconds": _int(item.connected_seconds),
        "converted": item.converted,
        "revenue_cents": _int(item.revenue_cents),
        "payout_cents": _int(item.payout_cents),
        "recording_url": item.recording_url,
        "recording_seconds": _int(item.recording_seconds),
        "routing": _routing(item.routing),
    }


def masked_pixels(pixels: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Pixels as shown back: the shared secret never leaves the platform again."""
    return [{**p, "secret": MASKED_SECRET} for p in pixels or []]


def _int(value: Any) -> int | None:
    return int(value) if value is not None else None


def _routing(raw: dict[str, Any] | None) -> dict[str, Any] | None:
    """What routing did for a call (targets tried and why others were left out)."""
    if not raw:
        return None
    return {
        "tried": raw.get("tried", []),
        "excluded": raw.get("excluded", {}),
        "fallback": raw.get("fallback", False),
        "attempts": raw.get("attempt", 0),
        # Ring tree: the auction (its bids are in /api/v1/bids?auction_id=...) or the held
        # ping bid the call was routed at, and the valid bids in the order they were tried.
        "auction_id": raw.get("auction_id"),
        "held_bid": raw.get("held_bid"),
        "bids": [
            {
                "target_id": target_id,
                "amount_cents": bid.get("amount_cents"),
                "payout_cents": bid.get("payout_cents"),
                "bid_id": bid.get("bid_id"),
            }
            for target_id, bid in (raw.get("bids") or {}).items()
        ],
    }
