"""The call log: filtered, paged listing, CSV export, and one call's record."""

from __future__ import annotations

import base64
import binascii
import csv
import io
import re
from collections.abc import Callable, Iterator
from datetime import date, timedelta

from chalice.app import Blueprint, Response

from chalicelib.api import serializers
from chalicelib.api.http import ApiError, json_response, not_found, user_view
from chalicelib.auth.roles import Principal, Role
from chalicelib.clock import utcnow
from chalicelib.requests import current_request
from chalicelib.store import calls
from chalicelib.store.models import CallItem

bp = Blueprint(__name__)

MAX_PAGE = 200
MAX_DAYS = 93
MAX_EXPORT_ROWS = 50_000
FILTERS = ("campaign_id", "publisher_id", "buyer_id", "target_id", "status", "source")
POSITION = re.compile(r"^\d{4}-\d{2}-\d{2}T[0-9:.+]+#CA[0-9a-f]{32}$")
CSV_COLUMNS = [
    "call_sid", "started_at", "from", "to", "campaign_id", "publisher_id", "source",
    "buyer_id", "target_id", "status", "duration_seconds", "connected_seconds",
    "duplicate", "converted", "revenue_cents", "payout_cents",
]  # fmt: skip


def bad_query(field: str, problem: str) -> ApiError:
    return ApiError(400, "validation_error", "bad query", {field: problem})


def _date(query: dict[str, str], name: str, default: date) -> date:
    value = query.get(name)
    if not value:
        return default
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise bad_query(name, "use YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError as err:
        raise bad_query(name, "use YYYY-MM-DD") from err


def _days(query: dict[str, str]) -> list[str]:
    """The UTC days asked for, newest first: `day`, or `from`..`to` (default today)."""
    today = utcnow().date()
    if query.get("day"):
        start = end = _date(query, "day", today)
    else:
        start, end = _date(query, "from", today), _date(query, "to", today)
    if end < start:
        raise bad_query("to", "must not be before from")
    if (end - start).days >= MAX_DAYS:
        raise bad_query("to", f"at most {MAX_DAYS} days")
    return [(end - timedelta(days=n)).strftime("%Y%m%d") for n in range((end - start).days + 1)]


def _predicate(query: dict[str, str]) -> Callable[[CallItem], bool]:
    wanted = {k: query[k] for k in FILTERS if query.get(k)}
    flags: dict[str, bool] = {}
    for flag in ("converted", "duplicate"):
        if flag in query:
            if query[flag] not in {"true", "false"}:
                raise bad_query(flag, "true or false")
            flags[flag] = query[flag] == "true"

    def keep(call: CallItem) -> bool:
        if any(getattr(call, k) != v for k, v in wanted.items()):
            return False
        return all(bool(getattr(call, k)) == v for k, v in flags.items())

    return keep


def _position(cursor: str | None) -> str | None:
    if not cursor:
        return None
    try:
        position = base64.urlsafe_b64decode(cursor.encode()).decode()
    except (binascii.Error, ValueError) as err:
        raise bad_query("cursor", "not a cursor from this API") from err
    if not POSITION.match(position):
        raise bad_query("cursor", "not a cursor from this API")
    return position


def matching_calls(account_id: str, query: dict[str, str]) -> Iterator[CallItem]:
    """The account's calls in the asked days that pass the filters, newest first."""
    keep = _predicate(query)
    before = _position(query.get("cursor"))
    for day in _days(query):
        if before and day > before[:10].replace("-", ""):
            continue
        for call in calls.calls_of_day(account_id, day, before):
            if keep(call):
                yield call


def _limit(value: str | None) -> int:
    if value is None:
        return 50
    if not re.fullmatch(r"[0-9]{1,3}", value) or not 1 <= int(value) <= MAX_PAGE:
        raise bad_query("limit", f"1..{MAX_PAGE}")
    return int(value)


@bp.route("/calls", methods=["GET"])
@user_view(Role.AGENT)
def list_calls(principal: Principal) -> Response:
    """Filters: day or from/to, campaign_id, publisher_id, buyer_id, target_id, status,
    source, converted, duplicate; paged with `limit` and the returned `cursor`."""
    query = dict(current_request().query_params or {})
    limit = _limit(query.get("limit"))
    page: list[CallItem] = []
    cursor = None
    for call in matching_calls(principal.account_id, query):
        if len(page) == limit:
            last = page[-1].gsi1sk or ""
            cursor = base64.urlsafe_b64encode(last.encode()).decode()
            break
        page.append(call)
    return json_response({"calls": [serializers.call(c) for c in page], "cursor": cursor})


@bp.route("/calls/export", methods=["GET"])
@user_view(Role.AGENT)
def export_calls(principal: Principal) -> Response:
    """The filtered call log as CSV (same filters as the listing)."""
    query = dict(current_request().query_params or {})
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for count, call in enumerate(matching_calls(principal.account_id, query)):
        if count >= MAX_EXPORT_ROWS:
            break
        writer.writerow(serializers.call(call))
    return Response(
        body=out.getvalue(),
        status_code=200,
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": 'attachment; filename="calls.csv"',
        },
    )


@bp.route("/calls/{call_sid}", methods=["GET"])
@user_view(Role.AGENT)
def get_call(principal: Principal, call_sid: str) -> Response:
    item = calls.get_call(principal.account_id, call_sid)
    if item is None:
        raise not_found("call")
    return json_response({"call": serializers.call(item)})
