"""Number pools for dynamic number insertion: create, edit, and size them (admin)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from chalice.app import Blueprint, Response

from chalicelib.api.http import ApiError, json_response, not_found, parse_body, user_view
from chalicelib.auth.roles import Principal, Role
from chalicelib.clock import utcnow
from chalicelib.requests import current_request
from chalicelib.store import catalog, keys, numbers, tenants
from chalicelib.store import dni as dni_store
from chalicelib.store.models import CampaignItem, PoolItem

# Imported by the handlers that parse a body, not with the blueprint (see api.catalog).
if TYPE_CHECKING:
    from chalicelib.api.catalog_schemas import PoolBody

bp = Blueprint(__name__)

SETTINGS = (
    "idle_seconds",
    "overflow_number",
    "attribution_grace_seconds",
    "source_numbers",
    "local_presence",
)
MAX_STATS_HOURS = 24 * 31


def _invalid(field: str, problem: str) -> ApiError:
    return ApiError(400, "validation_error", "request has invalid fields", {field: problem})


def _view(item: PoolItem) -> dict[str, Any]:
    return {
        "id": item.pool_id,
        "name": item.name,
        "campaign_id": item.campaign_id,
        "publisher_id": item.publisher_id,
        "numbers": _numbers_of(item),
        "public_key": item.public_key,
        **(item.settings or {}),
        "created_at": item.created_at.isoformat(),
        "updated_at": item.updated_at.isoformat(),
    }


def _check_and_store(account_id: str, body: PoolBody, pool_id: str | None) -> dict[str, Any]:
    """The pool's fields once every id and number in the body is this account's."""
    if catalog.get(CampaignItem, account_id, body.campaign_id) is None:
        raise _invalid("campaign_id", "unknown campaign")
    if body.publisher_id and tenants.get_publisher(account_id, body.publisher_id) is None:
        raise _invalid("publisher_id", "unknown publisher")
    owned = {n.e164: n for n in numbers.list_tracking_numbers(account_id)}
    for index, number in enumerate(body.numbers):
        if number not in owned:
            raise _invalid(f"numbers.{index}", "unknown tracking number")
        other_pool = owned[number].pool_id
        if other_pool and other_pool != pool_id:
            raise _invalid(f"numbers.{index}", f"already in pool {other_pool}")
    statics = {"overflow_number": body.overflow_number} if body.overflow_number else {}
    statics |= {f"source_numbers.{k}": v for k, v in body.source_numbers.items()}
    for field, number in statics.items():
        if number not in owned:
            raise _invalid(field, "unknown tracking number")
        if number in body.numbers:
            raise _invalid(field, "must not be one of the pool's own numbers")
    return {
        "campaign_id": body.campaign_id,
        "publisher_id": body.publisher_id,
        "numbers": list(body.numbers),
        "settings": body.model_dump(mode="json", include=set(SETTINGS)),
    }


def _numbers_of(pool: PoolItem) -> list[str]:
    return [str(number) for number in pool.numbers]


def _attribute_numbers(account_id: str, pool: PoolItem, released: list[str]) -> None:
    """Point the pool's numbers at its campaign and publisher; released ones leave it."""
    for number in _numbers_of(pool):
        current = numbers.get_tracking_number(account_id, number)
        source = current.source if current else None
        attribution = numbers.Attribution(pool.campaign_id, pool.publisher_id, source, pool.pool_id)
        numbers.assign(account_id, number, attribution)
    for number in released:
        current = numbers.get_tracking_number(account_id, number)
        if current is not None and current.pool_id == pool.pool_id:
            attribution = numbers.Attribution(
                current.campaign_id, current.publisher_id, current.source, None
            )
            numbers.assign(account_id, number, attribution)
    dni_store.sync_leases(account_id, pool.pool_id, _numbers_of(pool))


@bp.route("/pools", methods=["GET"])
@user_view(Role.AGENT)
def list_pools(principal: Principal) -> Response:
    items = catalog.list_all(PoolItem, principal.account_id)
    return json_response({"pools": [_view(p) for p in items]})


@bp.route("/pools", methods=["POST"])
@user_view(Role.ADMIN)
def create_pool(principal: Principal) -> Response:
    from chalicelib.api.catalog_schemas import PoolBody

    body = parse_body(current_request(), PoolBody)
    fields = _check_and_store(principal.account_id, body, None)
    item = dni_store.create_pool(principal.account_id, body.name, keys.new_id("pk"), **fields)
    _attribute_numbers(principal.account_id, item, [])
    return json_response({"pool": _view(item)}, 201)


def _pool(principal: Principal, pool_id: str) -> PoolItem:
    item = catalog.get(PoolItem, principal.account_id, pool_id)
    if item is None:
        raise not_found("pool")
    return item


@bp.route("/pools/{pool_id}", methods=["GET"])
@user_view(Role.AGENT)
def get_pool(principal: Principal, pool_id: str) -> Response:
    return json_response({"pool": _view(_pool(principal, pool_id))})


@bp.route("/pools/{pool_id}", methods=["PUT"])
@user_view(Role.ADMIN)
def replace_pool(principal: Principal, pool_id: str) -> Response:
    from chalicelib.api.catalog_schemas import PoolBody

    body = parse_body(current_request(), PoolBody)
    item = _pool(principal, pool_id)
    released = [n for n in _numbers_of(item) if n not in body.numbers]
    fields = _check_and_store(principal.account_id, body, pool_id)
    item = catalog.replace(item, body.name, **fields)
    _attribute_numbers(principal.account_id, item, released)
    return json_response({"pool": _view(item)})


def _query_number(
    query: dict[str, str], name: str, default: float, low: float, high: float
) -> float:
    raw = query.get(name)
    if raw is None:
        return default
    if not re.fullmatch(r"[0-9]+(\.[0-9]+)?", raw) or not low <= float(raw) <= high:
        raise ApiError(400, "validation_error", "bad query", {name: f"a number in {low}..{high}"})
    return float(raw)


@bp.route("/pools/{pool_id}/stats", methods=["GET"])
@user_view(Role.AGENT)
def stats(principal: Principal, pool_id: str) -> Response:
    """Utilization, overflow, arrivals and holds over `hours` (default 24), and the pool
    size that keeps overflow at or below `target_overflow` (default 0.01), by Erlang-B."""
    from chalicelib.dni.advisor import SessionFacts, pool_stats  # this route's alone

    query = dict(current_request().query_params or {})
    hours = _query_number(query, "hours", 24, 1, MAX_STATS_HOURS)
    target = _query_number(query, "target_overflow", 0.01, 0.0001, 0.5)
    item = _pool(principal, pool_id)
    now = utcnow()
    since = now - timedelta(hours=hours)
    leases = dni_store.leases(principal.account_id, pool_id)
    held_now = sum(1 for lease in leases if lease.held_until >= now.timestamp())
    facts = [
        SessionFacts(
            s.created_at,
            datetime.fromtimestamp(int(s.held_until), UTC) if s.held_until else None,
            s.kind == "overflow",
        )
        for s in dni_store.sessions_since(principal.account_id, pool_id, since)
        if s.kind != "source"  # a source number's visitors never wanted a pool number
    ]
    result = pool_stats(
        size=len(item.numbers),
        held_now=held_now,
        sessions=facts,
        since=since,
        now=now,
        target_overflow=target,
    )
    return json_response({"pool_id": pool_id, "stats": result.view()})
