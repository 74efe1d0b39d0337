"""The RTB bid log: storing every auction's bids, listing, paging, CSV, tenancy, failures."""

from __future__ import annotations

import base64
import csv
import io
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from chalice.test import Client
from pynamodb.connection import Connection
from pynamodb.exceptions import PutError

from chalicelib import observability
from chalicelib.api.bids import CSV_COLUMNS
from chalicelib.bidding.auction import BidLogEntry
from chalicelib.store import bids as bid_store
from chalicelib.store.bids import AuctionRecord, record_auction
from chalicelib.store.models import AppItem, BidItem
from tests.support.app import Tenant, api

# Days no other test writes bids on, so listings of them hold exactly what these tests wrote.
CALL_DAY = "2024-02-03"
PING_DAY = "2024-02-04"
CALL_STARTED = datetime(2024, 2, 3, 18, 30, 5, 250000, tzinfo=UTC)
PING_STARTED = datetime(2024, 2, 4, 9, 15, 0, tzinfo=UTC)
BOTH_DAYS = f"from={CALL_DAY}&to={PING_DAY}"

CALL_LOG = (
    BidLogEntry("bdr_a", "buy_1", "won", "highest bid", 41.5, 200, 3500, "a-77"),
    BidLogEntry("bdr_b", "buy_2", "lost", "outbid by bdr_a (3500 cents)", 88.25, 200, 2900),
    BidLogEntry("bdr_c", "buy_2", "timeout", "cut off at the auction deadline (2000 ms)", 2001.0),
    BidLogEntry("bdr_d", "buy_3", "capped", "capped before the auction"),
)
PING_LOG = (
    BidLogEntry(
        "bdr_a", "buy_1", "below_floor", "bid 900 cents is below the floor", 12.0, 200, 900
    ),
    BidLogEntry("bdr_e", "buy_4", "rejected", '=HYPERLINK("http://x")', 30.0, 200, None, "=1+1"),
)


@dataclass(frozen=True)
class Recorded:
    """The two auctions of the demo account that the listing tests read."""

    account_id: str
    call: AuctionRecord
    ping: AuctionRecord

    def keys(self, record: AuctionRecord, positions: range | list[int]) -> list[tuple[str, int]]:
        return [(record.auction_id, n) for n in positions]


def _account_of(client: Client, token: str) -> str:
    return str(api(client, "GET", "/api/v1/me", token).json_body["account_id"])


@pytest.fixture(scope="module")
def recorded(client: Client, admin_token: str) -> Recorded:
    # Given one auction for a live call and, the next day, one for a publisher's ping
    account_id = _account_of(client, admin_token)
    call = AuctionRecord(
        account_id, "auc_call1", "call", "cmp_bids", "pub_9", "CA" + "b" * 32, None, CALL_STARTED
    )
    ping = AuctionRecord(
        account_id, "auc_ping1", "ping", "cmp_bids", "pub_7", None, "pbid_42", PING_STARTED
    )
    record_auction(call, CALL_LOG)
    record_auction(ping, PING_LOG)
    return Recorded(account_id, call, ping)


def _listed(reply: Any) -> list[tuple[str, int]]:
    assert reply.status_code == 200, reply.body
    return [(b["auction_id"], b["position"]) for b in reply.json_body["bids"]]


def test_every_bid_is_listed_newest_first_with_all_its_attributes(
    client: Client, admin_token: str, recorded: Recorded
) -> None:
    # When the admin lists both days
    reply = api(client, "GET", f"/api/v1/bids?{BOTH_DAYS}", admin_token)
    # Then every bidder of both auctions is there, newest auction first, once each
    assert _listed(reply) == recorded.keys(recorded.ping, [1, 0]) + recorded.keys(
        recorded.call, [3, 2, 1, 0]
    )
    assert reply.json_body["cursor"] is None
    by_key = {(b["auction_id"], b["position"]): b for b in reply.json_body["bids"]}
    assert by_key[("auc_call1", 0)] == {
        "auction_id": "auc_call1",
        "position": 0,
        "kind": "call",
        "started_at": "2024-02-03T18:30:05.250000+00:00",
        "account_id": recorded.account_id,
        "campaign_id": "cmp_bids",
        "publisher_id": "pub_9",
        "call_sid": "CA" + "b" * 32,
        "ping_bid_id": None,
        "bidder_id": "bdr_a",
        "buyer_id": "buy_1",
        "outcome": "won",
        "reason": "highest bid",
        "latency_ms": 41.5,
        "http_status": 200,
        "amount_cents": 3500,
        "bid_id": "a-77",
        "created_at": by_key[("auc_call1", 0)]["created_at"],
    }
    # A capped bidder was never pinged: no latency, status or amount
    capped = by_key[("auc_call1", 3)]
    assert (capped["outcome"], capped["latency_ms"], capped["http_status"]) == (
        "capped",
        None,
        None,
    )
    assert capped["amount_cents"] is None
    # A ping has no call, but the id its publisher was given
    ping = by_key[("auc_ping1", 0)]
    assert (ping["kind"], ping["call_sid"], ping["ping_bid_id"]) == ("ping", None, "pbid_42")
    assert datetime.fromisoformat(ping["created_at"]).tzinfo is not None


def test_bids_expire_ninety_days_after_their_auction(recorded: Recorded) -> None:
    stored = list(bid_store.bids_of_day(recorded.account_id, "20240204"))
    assert {item.auction_id for item in stored} == {"auc_ping1"}
    assert {item.expires_at for item in stored} == {PING_STARTED + timedelta(days=90)}
    assert [item.sk for item in stored] == [
        "2024-02-04T09:15:00.000000+00:00#auc_ping1#01",
        "2024-02-04T09:15:00.000000+00:00#auc_ping1#00",
    ]


PING_BIDS = [("auc_ping1", 1), ("auc_ping1", 0)]
CALL_BIDS = [("auc_call1", n) for n in (3, 2, 1, 0)]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("campaign_id=cmp_bids", PING_BIDS + CALL_BIDS),
        ("campaign_id=cmp_other", []),
        ("publisher_id=pub_7", PING_BIDS),
        ("buyer_id=buy_2", [("auc_call1", 2), ("auc_call1", 1)]),
        ("bidder_id=bdr_a", [("auc_ping1", 0), ("auc_call1", 0)]),
        ("outcome=won", [("auc_call1", 0)]),
        ("outcome=below_floor", [("auc_ping1", 0)]),
        ("outcome=error", []),
        ("call_sid=CA" + "b" * 32, CALL_BIDS),
        ("auction_id=auc_ping1", PING_BIDS),
        ("kind=ping", PING_BIDS),
        ("kind=call&outcome=lost", [("auc_call1", 1)]),
        ("bidder_id=bdr_a&kind=call", [("auc_call1", 0)]),
        (f"day={CALL_DAY}&auction_id=auc_ping1", []),
    ],
)  # fmt: skip
def test_each_filter_keeps_only_its_bids(
    client: Client, agent_token: str, recorded: Recorded, query: str, expected: list[Any]
) -> None:
    # An agent may read the bid log, like the call log
    days = "" if "day=" in query else f"{BOTH_DAYS}&"
    assert _listed(api(client, "GET", f"/api/v1/bids?{days}{query}", agent_token)) == expected


@pytest.mark.parametrize("limit", [1, 2, 4, 5, 6, 7])
def test_pages_cover_the_log_without_gaps_or_repeats(
    client: Client, admin_token: str, recorded: Recorded, limit: int
) -> None:
    whole = _listed(api(client, "GET", f"/api/v1/bids?{BOTH_DAYS}&limit=200", admin_token))
    assert len(whole) == 6
    seen: list[tuple[str, int]] = []
    cursor = None
    for _ in range(10):
        page_query = f"{BOTH_DAYS}&limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        reply = api(client, "GET", f"/api/v1/bids?{page_query}", admin_token)
        page = _listed(reply)
        assert 1 <= len(page) <= limit
        seen += page
        cursor = reply.json_body["cursor"]
        if cursor is None:
            break
    assert seen == whole


def test_paging_with_a_filter_pages_the_filtered_log(
    client: Client, admin_token: str, recorded: Recorded
) -> None:
    query = f"{BOTH_DAYS}&buyer_id=buy_2&limit=1"
    first = api(client, "GET", f"/api/v1/bids?{query}", admin_token)
    second = api(
        client, "GET", f"/api/v1/bids?{query}&cursor={first.json_body['cursor']}", admin_token
    )
    assert _listed(first) + _listed(second) == [("auc_call1", 2), ("auc_call1", 1)]
    assert second.json_body["cursor"] is None


def test_export_is_a_csv_of_the_filtered_log(
    client: Client, admin_token: str, recorded: Recorded
) -> None:
    reply = api(client, "GET", f"/api/v1/bids/export?{BOTH_DAYS}", admin_token)
    assert reply.status_code == 200
    assert reply.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert reply.headers["Content-Disposition"] == 'attachment; filename="bids.csv"'
    rows = list(csv.DictReader(io.StringIO(reply.body.decode())))
    assert list(rows[0]) == CSV_COLUMNS
    assert [(r["auction_id"], r["position"]) for r in rows] == [
        ("auc_ping1", "1"), ("auc_ping1", "0"),
        ("auc_call1", "3"), ("auc_call1", "2"), ("auc_call1", "1"), ("auc_call1", "0"),
    ]  # fmt: skip
    won = rows[-1]
    assert won["outcome"] == "won"
    assert (won["amount_cents"], won["latency_ms"], won["http_status"]) == ("3500", "41.5", "200")
    assert won["started_at"] == "2024-02-03T18:30:05.250000+00:00"
    assert won["call_sid"] == "CA" + "b" * 32
    assert rows[2]["amount_cents"] == rows[2]["latency_ms"] == ""  # capped: never pinged
    # A bidder's own text never reaches a spreadsheet as a formula
    assert rows[0]["reason"] == '\'=HYPERLINK("http://x")'
    assert rows[0]["bid_id"] == "'=1+1"
    # The same filters apply
    only_won = api(client, "GET", f"/api/v1/bids/export?{BOTH_DAYS}&outcome=won", admin_token)
    assert [r["bidder_id"] for r in csv.DictReader(io.StringIO(only_won.body.decode()))] == [
        "bdr_a"
    ]


CALL_CURSOR = base64.urlsafe_b64encode(b"2024-02-03T18:30:05+00:00#CA" + b"b" * 32).decode()


BAD_QUERIES = [
    ("outcome=winning", "outcome"),
    ("outcome=WON", "outcome"),
    ("kind=sms", "kind"),
    ("cursor=%%%", "cursor"),
    ("cursor=bm90IGEgY3Vyc29y", "cursor"),  # "not a cursor"
    (f"cursor={CALL_CURSOR}", "cursor"),  # the call log's cursors are not the bid log's
    ("day=2024-02-30", "day"),
    ("day=03-02-2024", "day"),
    ("from=2024-02-05&to=2024-02-04", "to"),
    ("from=2024-01-01&to=2024-06-01", "to"),
    ("limit=0", "limit"),
    ("limit=201", "limit"),
    ("limit=ten", "limit"),
]


@pytest.mark.parametrize(
    ("path", "query", "field"),
    [
        *[("/api/v1/bids", query, field) for query, field in BAD_QUERIES],
        # the export has no pages, so no limit
        *[("/api/v1/bids/export", q, f) for q, f in BAD_QUERIES if f != "limit"],
    ],
)
def test_bad_queries_are_400_naming_the_parameter(
    client: Client, admin_token: str, path: str, query: str, field: str
) -> None:
    reply = api(client, "GET", f"{path}?{query}", admin_token)
    assert reply.status_code == 400, reply.body
    assert set(reply.json_body["fields"]) == {field}
    if field == "cursor":
        assert reply.json_body["fields"]["cursor"] == "not a cursor from this API"
    if field == "outcome":
        assert "below_floor" in reply.json_body["fields"]["outcome"]


def test_the_bid_log_needs_a_login(client: Client) -> None:
    assert api(client, "GET", f"/api/v1/bids?{BOTH_DAYS}").status_code == 401
    assert api(client, "GET", f"/api/v1/bids/export?{BOTH_DAYS}").status_code == 401


def test_another_tenant_sees_none_of_the_bids(
    client: Client, admin_token: str, other_tenant: Tenant, recorded: Recorded
) -> None:
    theirs = other_tenant.admin_token
    assert _listed(api(client, "GET", f"/api/v1/bids?{BOTH_DAYS}", theirs)) == []
    for query in ("auction_id=auc_call1", "call_sid=CA" + "b" * 32, "campaign_id=cmp_bids"):
        assert _listed(api(client, "GET", f"/api/v1/bids?{BOTH_DAYS}&{query}", theirs)) == []
    export = api(client, "GET", f"/api/v1/bids/export?{BOTH_DAYS}", theirs)
    assert export.body.decode().strip() == ",".join(CSV_COLUMNS)
    # And the first tenant's cursor only positions a listing of the other tenant's own bids
    first = api(client, "GET", f"/api/v1/bids?{BOTH_DAYS}&limit=1", admin_token).json_body
    stolen = api(client, "GET", f"/api/v1/bids?{BOTH_DAYS}&cursor={first['cursor']}", theirs)
    assert _listed(stolen) == []
    # While the other tenant's own bids of the same day are its alone
    mine = AuctionRecord(
        other_tenant.account_id, "auc_theirs", "ping", "cmp_x", None, None, "pb1", PING_STARTED
    )
    record_auction(mine, (BidLogEntry("bdr_z", "buy_z", "error", "HTTP 500", 5.0, 500),))
    assert _listed(api(client, "GET", f"/api/v1/bids?{BOTH_DAYS}", theirs)) == [("auc_theirs", 0)]
    assert ("auc_theirs", 0) not in _listed(
        api(client, "GET", f"/api/v1/bids?{BOTH_DAYS}&limit=200", admin_token)
    )


class _Recorder:
    """Stands in for `logger.exception`: what was logged, and the exception being handled."""

    def __init__(self) -> None:
        self.calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
        self.errors: list[BaseException | None] = []

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        self.calls.append((args, kwargs))
        self.errors.append(sys.exc_info()[1])


def _throttled(*_args: Any, **_kwargs: Any) -> Any:
    raise PutError("Failed to batch write items: ProvisionedThroughputExceededException")


def _missing_table(monkeypatch: pytest.MonkeyPatch) -> None:
    # The same endpoint and settings, another table name: DynamoDB answers ResourceNotFound.
    missing = type("Missing", (AppItem.Meta,), {"table_name": "ppc-test-no-such-table"})
    monkeypatch.setattr(BidItem, "Meta", missing)
    monkeypatch.setattr(BidItem, "_connection", None)


@pytest.mark.parametrize("failure", ["missing table", "throttled"])
def test_a_store_failure_is_logged_and_never_reaches_the_caller(
    client: Client, admin_token: str, monkeypatch: pytest.MonkeyPatch, failure: str
) -> None:
    # Given a store that refuses the write
    logged = _Recorder()
    monkeypatch.setattr(observability.logger, "exception", logged)
    if failure == "missing table":
        _missing_table(monkeypatch)
    else:
        monkeypatch.setattr(Connection, "batch_write_item", _throttled)
    started = datetime(2024, 3, 9, 12, 0, tzinfo=UTC)
    record = AuctionRecord(
        _account_of(client, admin_token),
        "auc_lost",
        "call",
        "c",
        None,
        "CA" + "0" * 32,
        None,
        started,
    )
    # When an auction is recorded, nothing is raised
    record_auction(record, CALL_LOG)
    monkeypatch.undo()
    # Then the failure is logged with the auction, and nothing was stored
    assert len(logged.calls) == 1
    args, kwargs = logged.calls[0]
    assert args == ("bid log not stored",)
    assert kwargs["extra"]["auction_id"] == "auc_lost"
    assert kwargs["extra"]["entries"] == len(CALL_LOG)
    cause = {"missing table": "ResourceNotFound", "throttled": "ProvisionedThroughput"}[failure]
    assert isinstance(logged.errors[0], PutError)
    assert cause in str(logged.errors[0])
    assert _listed(api(client, "GET", "/api/v1/bids?day=2024-03-09", admin_token)) == []


def test_malformed_records_raise_before_anything_is_written(recorded: Recorded) -> None:
    naive = AuctionRecord(
        recorded.account_id, "auc_naive", "call", "c", None, None, None, datetime(2024, 3, 9)
    )
    with pytest.raises(ValueError, match="timezone"):
        record_auction(naive, CALL_LOG)
    bad_id = AuctionRecord(
        recorded.account_id, "auc#1", "call", "c", None, None, None, CALL_STARTED
    )
    with pytest.raises(ValueError, match="auction_id"):
        record_auction(bad_id, CALL_LOG)
    assert list(bid_store.bids_of_day(recorded.account_id, "20240309")) == []


def test_a_big_auction_is_stored_whole_in_rounds_of_25(
    client: Client, admin_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an auction of 30 bidders that started late on 10 March in New York
    rounds: list[int] = []
    real = Connection.batch_write_item

    def counting(self: Connection, table_name: str, put_items: Any = None, **kw: Any) -> Any:
        rounds.append(len(put_items or []))
        return real(self, table_name, put_items=put_items, **kw)

    monkeypatch.setattr(Connection, "batch_write_item", counting)
    new_york = timezone(timedelta(hours=-5))
    started = datetime(2024, 3, 10, 23, 30, tzinfo=new_york)  # 04:30 UTC on 11 March
    log = [
        BidLogEntry(f"bdr_{n:02d}", "buy_big", "lost", "outbid", float(n), 200, 100 + n)
        for n in range(30)
    ]
    record = AuctionRecord(
        _account_of(client, admin_token), "auc_big", "ping", "cmp_big", "pub_1", None, "pb", started
    )
    # When it is recorded
    record_auction(record, log)
    # Then two BatchWriteItem rounds stored all 30, under the auction's UTC day, in log order
    assert rounds == [25, 5]
    reply = api(
        client, "GET", "/api/v1/bids?day=2024-03-11&auction_id=auc_big&limit=200", admin_token
    )
    listed = reply.json_body["bids"]
    assert [b["position"] for b in listed] == list(range(29, -1, -1))
    assert [b["bidder_id"] for b in reversed(listed)] == [f"bdr_{n:02d}" for n in range(30)]
    assert {b["started_at"] for b in listed} == {"2024-03-11T04:30:00+00:00"}
    assert _listed(api(client, "GET", "/api/v1/bids?day=2024-03-10", admin_token)) == []
    # And an empty log writes nothing at all
    record_auction(record, [])
    assert rounds == [25, 5]
