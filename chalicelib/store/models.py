"""PynamoDB models of the single application table."""

from __future__ import annotations

from typing import Any

from pynamodb.attributes import (
    BooleanAttribute,
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
    created_at = UTCDateTimeAttribute()


class NumberLookupItem(AppItem):
    """`NUM#<e164>` / `META`: entry point from a dialled number (`To`) to its account."""

    Meta = _AppMeta
    account_id = UnicodeAttribute()
    e164 = UnicodeAttribute()
    greeting = UnicodeAttribute(null=True)


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
)
