"""What the paged, filtered logs (calls, bids) share: days, limits, cursors and CSV answers."""

from __future__ import annotations

import base64
import binascii
import csv
import io
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import date, timedelta
from itertools import islice
from typing import Any, TypeVar

from chalice.app import Response

from chalicelib.api.http import ApiError
from chalicelib.clock import utcnow

T = TypeVar("T")

MAX_PAGE = 200
DEFAULT_PAGE = 50
MAX_DAYS = 93
MAX_EXPORT_ROWS = 50_000


def bad_query(field: str, problem: str) -> ApiError:
    return ApiError(400, "validation_error", "bad query", {field: problem})


def query_date(query: Mapping[str, str], name: str, default: date) -> date:
    value = query.get(name)
    if not value:
        return default
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise bad_query(name, "use YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError as err:
        raise bad_query(name, "use YYYY-MM-DD") from err


def query_days(query: Mapping[str, str]) -> list[str]:
    """The UTC days asked for, newest first: `day`, or `from`..`to` (default today)."""
    today = utcnow().date()
    if query.get("day"):
        start = end = query_date(query, "day", today)
    else:
        start, end = query_date(query, "from", today), query_date(query, "to", today)
    if end < start:
        raise bad_query("to", "must not be before from")
    if (end - start).days >= MAX_DAYS:
        raise bad_query("to", f"at most {MAX_DAYS} days")
    return [(end - timedelta(days=n)).strftime("%Y%m%d") for n in range((end - start).days + 1)]


def page_limit(value: str | None) -> int:
    if value is None:
        return DEFAULT_PAGE
    if not re.fullmatch(r"[0-9]{1,3}", value) or not 1 <= int(value) <= MAX_PAGE:
        raise bad_query("limit", f"1..{MAX_PAGE}")
    return int(value)


def encode_cursor(position: str) -> str:
    return base64.urlsafe_b64encode(position.encode()).decode()


def decode_cursor(cursor: str | None, shape: re.Pattern[str]) -> str | None:
    """The listing position inside an opaque cursor, which must have `shape`.

    A position only ever bounds a query of the caller's own partitions, so a cursor taken
    from another tenant's listing positions a listing of one's own items and nothing more.
    """
    if not cursor:
        return None
    try:
        position = base64.urlsafe_b64decode(cursor.encode()).decode()
    except (binascii.Error, ValueError) as err:
        raise bad_query("cursor", "not a cursor from this API") from err
    if not shape.match(position):
        raise bad_query("cursor", "not a cursor from this API")
    return position


def newest_first(
    query: Mapping[str, str],
    shape: re.Pattern[str],
    read_day: Callable[[str, str | None], Iterable[T]],
) -> Iterator[T]:
    """The items of the asked days, newest first, after the query's cursor if it has one.

    Positions start with the item's ISO time, so a cursor's day skips the later days and
    `read_day(day, position)` reads one day's items older than the position.
    """
    before = decode_cursor(query.get("cursor"), shape)
    for day in query_days(query):
        if before and day > before[:10].replace("-", ""):
            continue
        yield from read_day(day, before)


def first_page(
    items: Iterable[T], limit: int, position: Callable[[T], str]
) -> tuple[list[T], str | None]:
    """Up to `limit` items, and the cursor to the next page (None when there is none)."""
    page: list[T] = []
    for item in items:
        if len(page) == limit:
            return page, encode_cursor(position(page[-1]))
        page.append(item)
    return page, None


def csv_response(
    rows: Iterable[Mapping[str, Any]], columns: list[str], filename: str, preface: str = ""
) -> Response:
    """At most MAX_EXPORT_ROWS rows as a CSV attachment; keys outside `columns` are left out.
    `preface`: a line before the header (some importers read parameters from it)."""
    out = io.StringIO()
    if preface:
        out.write(preface + "\r\n")
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(islice(rows, MAX_EXPORT_ROWS))
    return Response(
        body=out.getvalue(),
        status_code=200,
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="{filename}"',
        },
    )
