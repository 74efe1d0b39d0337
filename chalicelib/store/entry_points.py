"""Global entry points that lead to one item of an account and carry nothing else.

A later public key (the dialer's, click-to-call's) is a key function in `keys.py` and these:
`lookup(...)` to claim or release it with its item in `transactions.write_with_lookups`, and
`find(...)` to read where it leads (one GetItem).
"""

from __future__ import annotations

from dataclasses import dataclass

from pynamodb.exceptions import DoesNotExist

from chalicelib.store import keys
from chalicelib.store.models import AppItem, EntryPointItem
from chalicelib.store.transactions import Lookup


@dataclass(frozen=True)
class EntryPoint:
    """Where an entry point leads: the item `ACCT#<account_id>` / `owned_sk`."""

    account_id: str
    owned_sk: str


def lookup(pk: str, account_id: str, owned: AppItem | None = None) -> Lookup:
    """The entry point `pk` of the account: leading to `owned` (to claim it), or just its key
    (to release it)."""
    if owned is None:
        return Lookup(EntryPointItem(pk, keys.META), account_id)
    if owned.pk != keys.account_pk(account_id):
        raise ValueError("an entry point leads to an item of its own account")
    item = EntryPointItem(pk, keys.META, account_id=account_id, owned_sk=owned.sk)
    return Lookup(item, account_id)


def find(pk: str) -> EntryPoint | None:
    try:
        item = EntryPointItem.get(pk, keys.META)
    except DoesNotExist:
        return None
    return EntryPoint(item.account_id, item.owned_sk)
