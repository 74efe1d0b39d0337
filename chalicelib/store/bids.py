"""The RTB bid log: every bidder's part in every auction, per account and UTC day."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal, Protocol, TypeAlias, get_args

from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.exceptions import PynamoDBException

from chalicelib.clock import utcnow
from chalicelib.observability import logger
from chalicelib.store import keys
from chalicelib.store.models import BidItem

AuctionKind = Literal["call", "ping"]
KINDS: Final[tuple[str, ...]] = get_args(AuctionKind)
# What the log may say a bidder's part was; an auction whose outcomes are not among these
# does not type-check against `BidLine`.
BidOutcome: TypeAlias = Literal[
    "won", "lost", "below_floor", "timeout", "error", "rejected", "capped"
]
OUTCOMES: Final[tuple[str, ...]] = get_args(BidOutcome)
RETENTION: Final = timedelta(days=90)
# Auction ids end up inside sort keys (and so inside listing cursors): no `#`, no spaces.
AUCTION_ID: Final = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
# The bidder's position is two digits up to 100 bidders; a bigger auction uses as many digits
# as its last position needs, all of its entries alike, so they still sort in log order.
MAX_ENTRIES: Final = 10_000


class BidLine(Protocol):
    """One bidder's line of an auction's bid log, as the store takes it: an auction's own log
    entries fit it as they are."""

    @property
    def bidder_id(self) -> str: ...
    @property
    def buyer_id(self) -> str: ...
    @property
    def outcome(self) -> BidOutcome: ...
    @property
    def reason(self) -> str: ...
    @property
    def latency_ms(self) -> float | None: ...  # None: not pinged
    @property
    def http_status(self) -> int | None: ...
    @property
    def amount_cents(self) -> int | None: ...
    @property
    def bid_id(self) -> str | None: ...


@dataclass(frozen=True)
class AuctionRecord:
    """Which auction a bid log belongs to: whose, what for, and when it started."""

    account_id: str
    auction_id: str
    kind: Literal["call", "ping"]
    campaign_id: str
    publisher_id: str | None
    call_sid: str | None
    ping_bid_id: str | None
    started_at: datetime  # timezone-aware UTC


def bids_pk(account_id: str, day: str) -> str:
    """`ACCT#<a>#BIDS#<yyyymmdd>`: an account's bid log of one UTC day."""
    return f"{keys.account_pk(account_id)}#BIDS#{day}"


def _started_utc(record: AuctionRecord) -> datetime:
    started = record.started_at
    if started.tzinfo is None or started.utcoffset() is None:
        raise ValueError("AuctionRecord.started_at must be timezone-aware")
    return started.astimezone(UTC)


def auction_sk_prefix(record: AuctionRecord) -> str:
    """`<started iso>#<auction>#`: what every sort key of this auction starts with.

    Fixed-width ISO time (always microseconds, `+00:00`) so keys sort as times do.
    """
    return f"{_started_utc(record).isoformat(timespec='microseconds')}#{record.auction_id}#"


def _check(record: AuctionRecord, log: Sequence[BidLine]) -> None:
    if record.kind not in KINDS:
        raise ValueError(f"auction kind must be one of {', '.join(KINDS)}")
    if not record.account_id or not record.campaign_id:
        raise ValueError("an auction needs an account and a campaign")
    if not AUCTION_ID.fullmatch(record.auction_id):
        raise ValueError("auction_id must be 1-128 of A-Z a-z 0-9 _ . : -")
    if len(log) > MAX_ENTRIES:
        raise ValueError(f"at most {MAX_ENTRIES} bid log entries per auction")
    bad = sorted({entry.outcome for entry in log} - set(OUTCOMES))
    if bad:
        raise ValueError(f"unknown bid outcomes: {', '.join(bad)}")


def bid_items(
    record: AuctionRecord, log: Sequence[BidLine], now: datetime | None = None
) -> list[BidItem]:
    """The items of one auction's bid log, in log order (raises on malformed arguments)."""
    _check(record, log)
    started = _started_utc(record)
    prefix = auction_sk_prefix(record)
    width = max(2, len(str(len(log) - 1)))
    written = now or utcnow()
    return [
        BidItem(
            bids_pk(record.account_id, keys.day_of(started)),
            f"{prefix}{position:0{width}d}",
            account_id=record.account_id,
            auction_id=record.auction_id,
            kind=record.kind,
            campaign_id=record.campaign_id,
            publisher_id=record.publisher_id,
            call_sid=record.call_sid,
            ping_bid_id=record.ping_bid_id,
            bidder_id=entry.bidder_id,
            buyer_id=entry.buyer_id,
            outcome=entry.outcome,
            reason=entry.reason,
            latency_ms=None if entry.latency_ms is None else round(entry.latency_ms, 3),
            http_status=entry.http_status,
            amount_cents=entry.amount_cents,
            bid_id=entry.bid_id,
            started_at=started,
            created_at=written,
            expires_at=started + RETENTION,
        )
        for position, entry in enumerate(log)
    ]


def record_auction(record: AuctionRecord, log: Sequence[BidLine]) -> None:
    """One BatchWriteItem round per 25 entries (PynamoDB `BidItem.batch_write()`).

    Never raises for a store failure: losing bid log lines must not break the live call or
    the ping that ran the auction, so the failure is logged (with the auction) and dropped.
    Malformed arguments (a naive time, an unknown outcome or kind) raise ValueError before
    anything is written. An empty log writes nothing.
    """
    items = bid_items(record, log)
    if not items:
        return
    try:
        with BidItem.batch_write() as batch:
            for item in items:
                batch.save(item)
    except (PynamoDBException, BotoCoreError, ClientError):
        logger.exception(
            "bid log not stored",
            extra={
                "account_id": record.account_id,
                "auction_id": record.auction_id,
                "kind": record.kind,
                "entries": len(items),
            },
        )


def _where(filters: Mapping[str, str]) -> Any:
    condition: Any = None
    for name, value in filters.items():
        attribute = BidItem.get_attributes().get(name)
        if attribute is None:
            raise ValueError(f"no bid attribute {name!r} to filter on")
        test = attribute == value
        condition = test if condition is None else condition & test
    return condition


def bids_of_day(
    account_id: str,
    day: str,
    before_sk: str | None = None,
    *,
    where: Mapping[str, str] | None = None,
) -> Iterator[BidItem]:
    """An account's bids of one UTC day (`yyyymmdd`), newest first, optionally only those
    before a listing position (`sk` of the last bid already shown) and whose attributes
    equal `where` (a server-side filter). Paged Query of `ACCT#<a>#BIDS#<day>`."""
    condition = BidItem.sk < before_sk if before_sk else None
    return iter(
        BidItem.query(
            bids_pk(account_id, day),
            condition,
            filter_condition=_where(where or {}),
            scan_index_forward=False,
        )
    )
