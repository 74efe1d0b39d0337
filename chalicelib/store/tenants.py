"""Accounts, users and publishers: tenant-owned configuration items."""

from __future__ import annotations

from pynamodb.exceptions import DoesNotExist, PutError

from chalicelib.clock import utcnow
from chalicelib.store import keys
from chalicelib.store.cache import forget_configuration
from chalicelib.store.models import AccountItem, PublisherItem, UserItem


class AlreadyExists(Exception):
    """A conditional create found the item already there."""


def create_account(name: str, account_id: str | None = None) -> AccountItem:
    account_id = account_id or keys.new_id("acc")
    now = utcnow()
    item = AccountItem(
        keys.account_pk(account_id),
        keys.META,
        account_id=account_id,
        name=name,
        created_at=now,
        gsi1pk=keys.ALL_ACCOUNTS,
        gsi1sk=f"{now.isoformat()}#{account_id}",
    )
    try:
        item.save(condition=AccountItem.pk.does_not_exist())
    except PutError as err:
        raise AlreadyExists(account_id) from err
    return item


def get_account(account_id: str) -> AccountItem | None:
    try:
        return AccountItem.get(keys.account_pk(account_id), keys.META)
    except DoesNotExist:
        return None


def list_accounts(limit: int = 100) -> list[AccountItem]:
    """All tenants, newest first, for the super admin (GSI1 partition `ACCOUNTS`)."""
    return list(
        AccountItem.all_accounts.query(keys.ALL_ACCOUNTS, scan_index_forward=False, limit=limit)
    )


def put_user(account_id: str, user_id: str, email: str, role: str) -> UserItem:
    item = UserItem(
        keys.account_pk(account_id),
        keys.user_sk(user_id),
        account_id=account_id,
        user_id=user_id,
        email=email,
        role=role,
        created_at=utcnow(),
    )
    item.save()
    return item


def list_users(account_id: str) -> list[UserItem]:
    return list(
        UserItem.query(keys.account_pk(account_id), UserItem.sk.startswith(keys.user_sk("")))
    )


def create_publisher(
    account_id: str,
    name: str,
    contact_email: str | None,
    payout_overrides: dict[str, int] | None = None,
    pixels: list[dict[str, object]] | None = None,
) -> PublisherItem:
    publisher_id = keys.new_id("pub")
    item = PublisherItem(
        keys.account_pk(account_id),
        keys.publisher_sk(publisher_id),
        account_id=account_id,
        publisher_id=publisher_id,
        name=name,
        contact_email=contact_email,
        payout_overrides=payout_overrides or {},
        pixels=pixels or [],
        created_at=utcnow(),
    )
    item.save(condition=PublisherItem.pk.does_not_exist())
    return item


def update_publisher(
    item: PublisherItem,
    name: str,
    contact_email: str | None,
    payout_overrides: dict[str, int],
    pixels: list[dict[str, object]],
) -> PublisherItem:
    """Replace a publisher's editable fields (the item must still exist)."""
    item.name, item.contact_email = name, contact_email
    item.payout_overrides, item.pixels = payout_overrides, pixels
    item.save(condition=PublisherItem.pk.exists())
    forget_configuration()  # payouts and pixels are cached by the voice webhooks
    return item


def get_publisher(account_id: str, publisher_id: str) -> PublisherItem | None:
    try:
        return PublisherItem.get(keys.account_pk(account_id), keys.publisher_sk(publisher_id))
    except DoesNotExist:
        return None


def list_publishers(account_id: str) -> list[PublisherItem]:
    return list(
        PublisherItem.query(
            keys.account_pk(account_id), PublisherItem.sk.startswith(keys.publisher_sk(""))
        )
    )
