"""PynamoDB models of the single application table."""

from __future__ import annotations

from typing import Any

from pynamodb.attributes import (
    BooleanAttribute,
    JSONAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model


class _AppMeta:
    # Names and endpoints are set by `store.tables.configure()` before first use.
    table_name = "ppc-app"
    region = "us-east-1"
    host: str | None = None
    connect_timeout_seconds = 2
    read_timeout_seconds = 4
    max_retry_attempts = 2


class ByAccountDay(GlobalSecondaryIndex["CallItem"]):
    """GSI1: tenant-scoped time-ordered listings, e.g. an account's calls of a day."""

    class Meta:
        index_name = "gsi1"
        projection = AllProjection()

    gsi1pk = UnicodeAttribute(hash_key=True)
    gsi1sk = UnicodeAttribute(range_key=True)


class AllAccounts(GlobalSecondaryIndex["AccountItem"]):
    """GSI1 partition `ACCOUNTS`: every tenant, by creation time (super admin only)."""

    class Meta:
        index_name = "gsi1"
        projection = AllProjection()

    gsi1pk = UnicodeAttribute(hash_key=True)
    gsi1sk = UnicodeAttribute(range_key=True)


class AppItem(Model):
    """Columns shared by every item: the key, the GSI1 key and the TTL."""

    Meta = _AppMeta

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    gsi1pk = UnicodeAttribute(null=True)
    gsi1sk = UnicodeAttribute(null=True)
    expires_at = TTLAttribute(null=True)


class AccountItem(AppItem):
    """`ACCT#<account>` / `META`: a tenant."""

    Meta = _AppMeta
    account_id = UnicodeAttribute()
    name = UnicodeAttribute()
    status = UnicodeAttribute(default="active")
    created_at = UTCDateTimeAttribute()
    all_accounts = AllAccounts()


class UserItem(AppItem):
    """`ACCT#<account>` / `USER#<cognito sub>`: a person who logs in to the dashboard."""

    Meta = _AppMeta
    account_id = UnicodeAttribute()
    user_id = UnicodeAttribute()
    email = UnicodeAttribute()
    role = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()


class PublisherItem(AppItem):
    """`ACCT#<account>` / `PUB#<publisher>`: an affiliate who sends calls."""

    Meta = _AppMeta
    account_id = UnicodeAttribute()
    publisher_id = UnicodeAttribute()
    name = UnicodeAttribute()
    contact_email = UnicodeAttribute(null=True)
    payout_overrides = JSONAttribute(null=True)
    pixels = JSONAttribute(null=True)
    created_at = UTCDateTimeAttribute()


class ApiKeyItem(AppItem):
    """`ACCT#<account>` / `APIKEY#<key id>`: a publisher API key as its owner sees it."""

    Meta = _AppMeta
    account_id = UnicodeAttribute()
    key_id = UnicodeAttribute()
    publisher_id = UnicodeAttribute()
    label = UnicodeAttribute(null=True)
    key_prefix = UnicodeAttribute()
    key_hash = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()
    revoked_at = UTCDateTimeAttribute(null=True)


class ApiKeyLookupItem(AppItem):
    """`KEYHASH#<sha256>` / `META`: entry point from a presented key to its account."""

    Meta = _AppMeta
    account_id = UnicodeAttribute()
    key_id = UnicodeAttribute()
    publisher_id = UnicodeAttribute()
    revoked = BooleanAttribute(default=False)


class TrackingNumberItem(AppItem):
    """`ACCT#<account>` / `NUM#<e164>`: a tracking number as its owner sees it."""

    Meta = _AppMeta
    account_id = UnicodeAttribute()
    e164 = UnicodeAttribute()
    friendly_name = UnicodeAttribute(null=True)
    greeting = UnicodeAttribute(null=True)
    campaign_id = UnicodeAttribute(null=True)
    publisher_id = UnicodeAttribute(null=True)
    source = UnicodeAttribute(null=True)
    pool_id = UnicodeAttribute(null=True)
    cpaas_sid = UnicodeAttribute(null=True)
    created_at = UTCDateTimeAttribute()


class NumberLookupItem(AppItem):
    """`NUM#<e164>` / `META`: entry point from a dialled number (`To`) to its account.

    Carries the attribution the inbound webhook needs, so a call costs no second read.
    """

    Meta = _AppMeta
    account_id = UnicodeAttribute()
    e164 = UnicodeAttribute()
    greeting = UnicodeAttribute(null=True)
    campaign_id = UnicodeAttribute(null=True)
    publisher_id = UnicodeAttribute(null=True)
    source = UnicodeAttribute(null=True)
    pool_id = UnicodeAttribute(null=True)


class CampaignItem(AppItem):
    """`ACCT#<account>` / `CAMP#<campaign>`: what to do with a campaign's calls.

    `settings` holds the validated campaign body (routing plan, conversion rule, prices,
    IVR, blocklist...) as JSON, so one GetItem loads all of it.
    """

    Meta = _AppMeta
    account_id = UnicodeAttribute()
    campaign_id = UnicodeAttribute()
    name = UnicodeAttribute()
    status = UnicodeAttribute(default="active")
    settings = JSONAttribute()
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()


class BuyerItem(AppItem):
    """`ACCT#<account>` / `BUY#<buyer>`: who pays for calls; caps shared by its targets."""

    Meta = _AppMeta
    account_id = UnicodeAttribute()
    buyer_id = UnicodeAttribute()
    name = UnicodeAttribute()
    settings = JSONAttribute()
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()


class TargetItem(AppItem):
    """`ACCT#<account>` / `TGT#<target>`: a phone (number or SIP URI) of a buyer."""

    Meta = _AppMeta
    account_id = UnicodeAttribute()
    target_id = UnicodeAttribute()
    buyer_id = UnicodeAttribute()
    name = UnicodeAttribute()
    settings = JSONAttribute()
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()


class PoolItem(AppItem):
    """`ACCT#<account>` / `POOL#<pool>`: a named set of tracking numbers."""

    Meta = _AppMeta
    account_id = UnicodeAttribute()
    pool_id = UnicodeAttribute()
    name = UnicodeAttribute()
    campaign_id = UnicodeAttribute()
    publisher_id = UnicodeAttribute(null=True)
    numbers = ListAttribute(of=UnicodeAttribute, default=list)
    # DNI: the public key pages use, idle limit, overflow and source numbers, grace.
    public_key = UnicodeAttribute(null=True)
    settings = JSONAttribute(null=True)
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()


class PoolKeyItem(AppItem):
    """`POOLKEY#<public key>` / `META`: entry point from a page's pool key to its pool."""

    Meta = _AppMeta
    account_id = UnicodeAttribute()
    pool_id = UnicodeAttribute()


class LeaseItem(AppItem):
    """`ACCT#<a>#POOL#<p>` / `LEASE#<e164>`: who holds a pool number, until when.

    Only conditional writes change `session_id`/`held_until`, so no two live sessions ever
    hold one number. `attribution` is the holder's (kept after release, for the grace
    period), so a call on the number is attributed with one read.
    """

    Meta = _AppMeta
    number = UnicodeAttribute()
    area_code = UnicodeAttribute(null=True)
    session_id = UnicodeAttribute(null=True)
    held_until = NumberAttribute(default=0)  # epoch seconds; in the past: free
    attribution = JSONAttribute(null=True)
    grace_seconds = NumberAttribute(default=0)  # calls this long after release still count


class PoolSessions(GlobalSecondaryIndex["DniSessionItem"]):
    """GSI1 `ACCT#<a>#POOL#<p>#SESSIONS` / `<created iso>#<session>`: a pool's sessions."""

    class Meta:
        index_name = "gsi1"
        projection = AllProjection()

    gsi1pk = UnicodeAttribute(hash_key=True)
    gsi1sk = UnicodeAttribute(range_key=True)


class DniSessionItem(AppItem):
    """`DNI#<session>` / `META`: a web visitor's session; GSI1 `ACCT#a#POOL#p#SESSIONS`."""

    Meta = _AppMeta
    by_pool = PoolSessions()
    account_id = UnicodeAttribute()
    session_id = UnicodeAttribute()
    visitor_id = UnicodeAttribute()
    pool_id = UnicodeAttribute()
    campaign_id = UnicodeAttribute()
    publisher_id = UnicodeAttribute(null=True)
    number = UnicodeAttribute(null=True)
    kind = UnicodeAttribute()  # pool | source | overflow
    attribution = JSONAttribute()
    created_at = UTCDateTimeAttribute()
    last_seen_at = UTCDateTimeAttribute()
    held_until = NumberAttribute(default=0)


class CounterItem(AppItem):
    """`ACCT#<a>#TGT#<t>` or `ACCT#<a>#BUY#<b>` / `CONC`, `H#<hour>`, `D#<day>`, `M#<month>`,
    `T`; also `ACCT#<a>#CAMP#<c>` / `RR` (round robin): counts changed only by
    conditional updates."""

    Meta = _AppMeta
    n = NumberAttribute(default=0)


class PixelJobItem(AppItem):
    """`ACCT#<a>#PIXELS#queue` / `<due iso>#<job>`: a post-call webhook delivery, stored
    before its first attempt and deleted once delivered; `attempts` counts claims made."""

    Meta = _AppMeta
    account_id = UnicodeAttribute()
    job_id = UnicodeAttribute()
    url = UnicodeAttribute()
    method = UnicodeAttribute()
    secret = UnicodeAttribute()
    payload = JSONAttribute()
    attempts = NumberAttribute(default=0)
    last_error = UnicodeAttribute(null=True)


class CallerSeenItem(AppItem):
    """`ACCT#<a>#CAMP#<c>` / `CALLER#<e164>`: when a caller last called (duplicate window)."""

    Meta = _AppMeta
    last_call_at = NumberAttribute()


class HeldBidItem(AppItem):
    """`NUM#<tracking e164>` / `HELD#<caller e164>`: a publisher's ping bid, held until
    `held_until`; the first call from that caller to that number before then is routed at
    it (and marks it `used`). TTL cleans it up afterwards."""

    Meta = _AppMeta
    account_id = UnicodeAttribute()
    bid_id = UnicodeAttribute()
    campaign_id = UnicodeAttribute()
    publisher_id = UnicodeAttribute()
    tags_key = UnicodeAttribute()  # SHA-256 of the ping's tags: a repeat ping matches it
    bids = JSONAttribute()  # [{target_id, buyer_id, amount_cents, destination, ...}] best first
    offer_cents = NumberAttribute()
    held_until = NumberAttribute()  # epoch seconds
    used_by = UnicodeAttribute(null=True)  # the call sid routed at this bid
    created_at = UTCDateTimeAttribute()


class CallItem(AppItem):
    """`CALL#<CPaaS call sid>` / `META`: the call record; GSI1 `ACCT#a#DAY#<yyyymmdd>`."""

    Meta = _AppMeta
    account_id = UnicodeAttribute()
    call_sid = UnicodeAttribute()
    direction = UnicodeAttribute()
    from_number = UnicodeAttribute()
    to_number = UnicodeAttribute()
    status = UnicodeAttribute()
    started_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()
    ended_at = UTCDateTimeAttribute(null=True)
    duration_seconds = NumberAttribute(null=True)
    tags: MapAttribute[str, Any] = MapAttribute(default=dict)
    by_account_day = ByAccountDay()
    # Attribution and routing (set on arrival; updated by dial results and the final status).
    campaign_id = UnicodeAttribute(null=True)
    publisher_id = UnicodeAttribute(null=True)
    source = UnicodeAttribute(null=True)
    duplicate = BooleanAttribute(default=False)
    routing = JSONAttribute(null=True)
    attempt = NumberAttribute(default=0)  # which <Dial> the call is on (in webhook URLs)
    step = NumberAttribute(default=0)  # bumped by every routing write, which is conditioned on it
    target_id = UnicodeAttribute(null=True)
    buyer_id = UnicodeAttribute(null=True)
    connected_seconds = NumberAttribute(null=True)
    converted = BooleanAttribute(null=True)
    revenue_cents = NumberAttribute(null=True)
    payout_cents = NumberAttribute(null=True)
    recording_url = UnicodeAttribute(null=True)
    recording_seconds = NumberAttribute(null=True)


class BidItem(AppItem):
    """`ACCT#<a>#BIDS#<yyyymmdd>` / `<auction started iso>#<auction>#<nn>`: what one bidder
    did in one RTB auction (the bid log); the auction's bids are adjacent, in log order."""

    Meta = _AppMeta
    account_id = UnicodeAttribute()
    auction_id = UnicodeAttribute()
    kind = UnicodeAttribute()  # "call" or "ping"
    campaign_id = UnicodeAttribute()
    publisher_id = UnicodeAttribute(null=True)
    call_sid = UnicodeAttribute(null=True)
    ping_bid_id = UnicodeAttribute(null=True)
    bidder_id = UnicodeAttribute()
    buyer_id = UnicodeAttribute()
    outcome = UnicodeAttribute()
    reason = UnicodeAttribute()
    latency_ms = NumberAttribute(null=True)
    http_status = NumberAttribute(null=True)
    amount_cents = NumberAttribute(null=True)
    bid_id = UnicodeAttribute(null=True)
    started_at = UTCDateTimeAttribute()  # the auction's start
    created_at = UTCDateTimeAttribute()


class SipEdgeItem(AppItem):
    """`ACCT#<a>` / `SIPEDGE#<edge>`: a SIP edge (Kamailio) the account runs for its phones;
    it authenticates to the app with a shared secret stored only as a SHA-256 hash."""

    Meta = _AppMeta
    account_id = UnicodeAttribute()
    edge_id = UnicodeAttribute()
    name = UnicodeAttribute()
    domain = UnicodeAttribute()  # SIP domain and digest realm
    secret_prefix = UnicodeAttribute()
    secret_hash = UnicodeAttribute()
    call_token = UnicodeAttribute()  # sent by the CPaaS with every INVITE for the edge
    created_at = UTCDateTimeAttribute()
    secret_rotated_at = UTCDateTimeAttribute(null=True)
    last_sync_at = UTCDateTimeAttribute(null=True)  # the edge's last presence snapshot
    # Epoch seconds after which, without a newer snapshot, the edge counts as gone and its
    # phones as offline (three of its snapshot intervals after the last one).
    stale_after = NumberAttribute(null=True)


class SipDomainItem(AppItem):
    """`ACCT#<a>` / `SIPDOMAIN#<domain>`: claims a SIP domain for one edge of the account."""

    Meta = _AppMeta
    edge_id = UnicodeAttribute()


class EntryPointItem(AppItem):
    """`<KIND>#<public value>` / `META`: a global entry point that carries nothing but where
    it leads, the account and the sort key of that account's item (`ACCT#<a>` / `owned_sk`).
    For kinds with no fields of their own to copy: a new kind needs only its key function."""

    Meta = _AppMeta
    account_id = UnicodeAttribute()
    owned_sk = UnicodeAttribute()


class EdgeSecretLookupItem(AppItem):
    """`EDGESECRET#<sha256 of the secret>` / `META`: which edge presents this secret."""

    Meta = _AppMeta
    account_id = UnicodeAttribute()
    edge_id = UnicodeAttribute()
    domain = UnicodeAttribute()
    call_token = UnicodeAttribute()


class SipDeviceItem(AppItem):
    """`ACCT#<a>` / `SIPDEV#<edge>#<extension>`: an operator's SIP credential on an edge (HA1
    only, never the password) and its registration state as the edge last reported it."""

    Meta = _AppMeta
    account_id = UnicodeAttribute()
    edge_id = UnicodeAttribute()
    extension = UnicodeAttribute()
    domain = UnicodeAttribute()
    label = UnicodeAttribute(null=True)
    user_id = UnicodeAttribute(null=True)  # the operator (dashboard user) using the phone
    ha1 = UnicodeAttribute()  # md5(extension:domain:password)
    created_at = UTCDateTimeAttribute()
    password_rotated_at = UTCDateTimeAttribute(null=True)
    # Presence, changed only by reports not older than `reported_at` (epoch seconds).
    registered = BooleanAttribute(default=False)
    contact_count = NumberAttribute(default=0)
    registered_until = NumberAttribute(null=True)  # epoch seconds the registration lasts to
    user_agent = UnicodeAttribute(null=True)
    source = UnicodeAttribute(null=True)  # proto:ip:port the phone registered from
    last_seen = UTCDateTimeAttribute(null=True)  # last report of it registered
    reported_at = NumberAttribute(null=True)


ALL_MODELS: tuple[type[AppItem], ...] = (
    AppItem,
    AccountItem,
    UserItem,
    PublisherItem,
    ApiKeyItem,
    ApiKeyLookupItem,
    TrackingNumberItem,
    NumberLookupItem,
    CallItem,
    CampaignItem,
    BuyerItem,
    TargetItem,
    PoolItem,
    CounterItem,
    CallerSeenItem,
    PixelJobItem,
    BidItem,
    HeldBidItem,
    PoolKeyItem,
    LeaseItem,
    DniSessionItem,
    SipEdgeItem,
    SipDomainItem,
    EntryPointItem,
    EdgeSecretLookupItem,
    SipDeviceItem,
)
