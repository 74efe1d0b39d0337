"""The call log: an account's calls by day, and one call's record."""

from __future__ import annotations

import re
from datetime import datetime

from chalice.app import Blueprint, Response

from chalicelib.api import serializers
from chalicelib.api.http import ApiError, json_response, not_found, user_view
from chalicelib.auth.roles import Principal, Role
from chalicelib.clock import utcnow
from chalicelib.store import calls, keys

bp = Blueprint(__name__)

MAX_PAGE = 200


def _day(value: str | None) -> str:
    if not value:
        return keys.day_of(utcnow())
    try:
        return keys.day_of(datetime.strptime(value, "%Y-%m-%d"))
    except ValueError as err:
        raise ApiError(400, "validation_error", "bad query", {"day": "use YYYY-MM-DD"}) from err


def _limit(value: str | None) -> int:
    if value is None:
        return 50
    if not re.fullmatch(r"[0-9]{1,3}", value) or not 1 <= int(value) <= MAX_PAGE:
        raise ApiError(400, "validation_error", "bad query", {"limit": f"1..{MAX_PAGE}"})
    return int(value)


@bp.route("/calls", methods=["GET"])
@user_view(bp, Role.AGENT)
def list_calls(principal: Principal) -> Response:
    query = dict(bp.current_request.query_params or {})
    day = _day(query.get("day"))
    limit = _limit(query.get("limit"))
    try:
        page = calls.list_calls(principal.account_id, day, limit, query.get("cursor"))
    except ValueError as err:
        raise ApiError(400, "validation_error", "bad query", {"cursor": str(err)}) from err
    return json_response(
        {"calls": [serializers.call(c) for c in page.calls], "cursor": page.cursor}
    )


@bp.route("/calls/{call_sid}", methods=["GET"])
@user_view(bp, Role.AGENT)
def get_call(principal: Principal, call_sid: str) -> Response:
    item = calls.get_call(principal.account_id, call_sid)
    if item is None:
        raise not_found("call")
    return json_response({"call": serializers.call(item)})
