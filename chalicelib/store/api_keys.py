"""Publisher API keys: stored as SHA-256 hashes, the plaintext shown once at creation."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from pynamodb.exceptions import DoesNotExist

from chalicelib.clock import utcnow
from chalicelib.store import keys
from chalicelib.store.models import ApiKeyItem, ApiKeyLookupItem
from chalicelib.store.transactions import Lookup, Owned, Refused, write_with_lookups

KEY_PREFIX = "ppk"


@dataclass(frozen=True)
class IssuedKey:
    """A new key: `plaintext` is returned to the caller once and never stored."""

    plaintext: str
    item: ApiKeyItem


@dataclass(frozen=True)
class KeyPrincipal:
    """Who a presented, valid API key speaks for."""

    account_id: str
    publisher_id: str
    key_id: str


def hash_key(plaintext: str) -> str:
    # Keys are 256-bit random secrets, so a fast hash is enough: there is nothing
    # to brute-force that a slow hash would protect.
    return hashlib.sha256(plaintext.encode()).hexdigest()


def issue_key(account_id: str, publisher_id: str, label: str | None) -> IssuedKey:
    key_id = keys.new_id("key")
    plaintext = f"{KEY_PREFIX}_{secrets.token_urlsafe(32)}"
    digest = hash_key(plaintext)
    item = ApiKeyItem(
        keys.account_pk(account_id),
        keys.api_key_sk(publisher_id, key_id),
        account_id=account_id,
        key_id=key_id,
        publisher_id=publisher_id,
        label=label,
        key_prefix=plaintext[:10],
        key_hash=digest,
        created_at=utcnow(),
    )
    lookup = ApiKeyLookupItem(
        keys.api_key_hash_pk(digest),
        keys.META,
        account_id=account_id,
        key_id=key_id,
        publisher_id=publisher_id,
        revoked=False,
    )
    write_with_lookups(Owned.new(item), claim=[Lookup(lookup, account_id)])
    return IssuedKey(plaintext=plaintext, item=item)


def authenticate_key(plaintext: str) -> KeyPrincipal | None:
    """The principal of a live key, or None for an unknown or revoked one (one GetItem)."""
    if not plaintext.startswith(f"{KEY_PREFIX}_") or len(plaintext) > 128:
        return None
    try:
        lookup = ApiKeyLookupItem.get(keys.api_key_hash_pk(hash_key(plaintext)), keys.META)
    except DoesNotExist:
        return None
    if lookup.revoked:  # revoked before revoking deleted the lookup
        return None
    return KeyPrincipal(lookup.account_id, lookup.publisher_id, lookup.key_id)


def list_keys(account_id: str, publisher_id: str) -> list[ApiKeyItem]:
    return list(
        ApiKeyItem.query(
            keys.account_pk(account_id), ApiKeyItem.sk.startswith(keys.api_key_sk(publisher_id))
        )
    )


def revoke_key(account_id: str, publisher_id: str, key_id: str) -> ApiKeyItem | None:
    """Revoke a key of this account's publisher; None when no such key (or another tenant's)."""
    try:
        item = ApiKeyItem.get(keys.account_pk(account_id), keys.api_key_sk(publisher_id, key_id))
    except DoesNotExist:
        return None
    if item.revoked_at is not None:
        return item
    now = utcnow()
    lookup = ApiKeyLookupItem(keys.api_key_hash_pk(item.key_hash), keys.META)
    try:
        # The key's own item keeps its revocation time; its lookup goes, so nothing global
        # leads to the account through it any more.
        write_with_lookups(
            Owned.changed(
                item, [ApiKeyItem.revoked_at.set(now)], ApiKeyItem.revoked_at.does_not_exist()
            ),
            release=[Lookup(lookup, account_id)],
        )
    except Refused:
        # Another request revoked it first; read the time it recorded.
        item.refresh()
        if item.revoked_at is None:
            raise
        return item
    item.revoked_at = now
    return item
