"""The call log: filtered, paged listing, CSV export, and one call's record."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from chalice.app import Blueprint, Response

from chalicelib.api import serializers
from chalicelib.api.http import json_response, not_found, user_view
from chalicelib.api.listing import bad_query as bad_query  # reports.py imports it from here
from chalicelib.api.listing import csv_response, first_page, newest_first, page_limit
from chalicelib.auth.roles import Principal, Role
from chalicelib.requests import current_request
from chalicelib.store import calls
from chalicelib.store.models import CallItem

bp = Blueprint(__name__)

FILTERS = ("campaign_id", "publisher_id", "buyer_id", "target_id", "status", "source")
POSITION = re.compile(r"^\d{4}-\d{2}-\d{2}T[0-9:.+]+#CA[0-9a-f]{32}$")
CSV_COLUMNS = [
    "call_sid", "started_at", "from", "to", "campaign_id", "publisher_id", "source",
    "buyer_id", "target_id", "status", "duration_seconds", "connected_seconds",
    "duplicate", "converted", "revenue_cents", "payout_cents",
]  # fmt: skip


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


def matching_calls(account_id: str, query: dict[str, str]) -> Iterator[CallItem]:
    """The account's calls in the asked days that pass the filters, newest first."""
    keep = _predicate(query)
    for call in newest_first(
        query, POSITION, lambda day, before: calls.calls_of_day(account_id, day, before)
    ):
        if keep(call):
            yield call


@bp.route("/calls", methods=["GET"])
@user_view(Role.AGENT)
def list_calls(principal: Principal) -> Response:
    """Filters: day or from/to, campaign_id, publisher_id, buyer_id, target_id, status,
    source, converted, duplicate; paged with `limit` and the returned `cursor`."""
    query = dict(current_request().query_params or {})
    limit = page_limit(query.get("limit"))
    page, cursor = first_page(
        matching_calls(principal.account_id, query), limit, lambda call: call.gsi1sk or ""
    )
    return json_response({"calls": [serializers.call(c) for c in page], "cursor": cursor})


@bp.route("/calls/export", methods=["GET"])
@user_view(Role.AGENT)
def export_calls(principal: Principal) -> Response:
    """The filtered call log as CSV (same filters as the listing)."""
    query = dict(current_request().query_params or {})
    rows = (serializers.call(call) for call in matching_calls(principal.account_id, query))
    return csv_response(rows, CSV_COLUMNS, "calls.csv")


GOOGLE_ADS_COLUMNS = [
    "Google Click ID", "Conversion Name", "Conversion Time", "Conversion Value",
    "Conversion Currency",
]  # fmt: skip


@bp.route("/calls/google-ads-conversions", methods=["GET"])
@user_view(Role.AGENT)
def google_ads_conversions(principal: Principal) -> Response:
    """Converted calls that came from a Google Ads click (a DNI visitor's gclid), as the CSV
    Google Ads' offline conversion import takes. Same filters as the call log, plus
    `conversion_name` (default "Phone call") and `currency` (default USD)."""
    query = dict(current_request().query_params or {})
    name = query.get("conversion_name", "Phone call")
    currency = query.get("currency", "USD")
    if not 1 <= len(name) <= 100 or any(c in name for c in '\r\n,"'):
        raise bad_query("conversion_name", "1 to 100 characters, no commas, quotes or newlines")
    if not re.fullmatch(r"[A-Z]{3}", currency):
        raise bad_query("currency", "an ISO 4217 code such as USD")
    rows = (
        {
            "Google Click ID": gclid,
            "Conversion Name": name,
            "Conversion Time": call.started_at.strftime("%Y-%m-%d %H:%M:%S"),
            "Conversion Value": f"{int(call.revenue_cents or 0) / 100:.2f}",
            "Conversion Currency": currency,
        }
        for call in matching_calls(principal.account_id, {**query, "converted": "true"})
        if (gclid := calls.tags_of(call).get("gclid"))
    )
    # Times are UTC; Google reads the time zone from this first line.
    return csv_response(
        rows, GOOGLE_ADS_COLUMNS, "google-ads-conversions.csv", preface="Parameters:TimeZone=+0000"
    )


@bp.route("/calls/{call_sid}", methods=["GET"])
@user_view(Role.AGENT)
def get_call(principal: Principal, call_sid: str) -> Response:
    item = calls.get_call(principal.account_id, call_sid)
    if item is None:
        raise not_found("call")
    return json_response({"call": serializers.call(item)})
