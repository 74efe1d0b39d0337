"""A tenant's item written with its global lookup items, all or nothing (moto server)."""

from __future__ import annotations

import secrets

import pytest
from pynamodb.exceptions import DoesNotExist

from chalicelib.clock import utcnow
from chalicelib.store import entry_points, keys
from chalicelib.store.models import EntryPointItem, PublisherItem
from chalicelib.store.transactions import OWNED, Owned, Refused, write_with_lookups
from tests.support.app import Platform


def widget_key_pk(public_key: str) -> str:
    """A kind of entry point the store does not know: all it takes is this key function."""
    return f"TESTWIDGET#{public_key}"


def new_key() -> str:
    return secrets.token_hex(8)


def new_account() -> str:
    return keys.new_id("acc")


def publisher(account_id: str, name: str = "Banner owner") -> PublisherItem:
    publisher_id = keys.new_id("pub")
    return PublisherItem(
        keys.account_pk(account_id),
        keys.publisher_sk(publisher_id),
        account_id=account_id,
        publisher_id=publisher_id,
        name=name,
        created_at=utcnow(),
    )


def stored(item: PublisherItem) -> PublisherItem | None:
    try:
        return PublisherItem.get(item.pk, item.sk, consistent_read=True)
    except DoesNotExist:
        return None


def create(owned: PublisherItem, *public_keys: str) -> None:
    write_with_lookups(
        Owned.new(owned),
        claim=[entry_points.lookup(widget_key_pk(k), owned.account_id, owned) for k in public_keys],
    )


def test_creating_claims_the_lookup_for_the_owner(platform: Platform) -> None:
    # Given an account's new item and a public key nobody holds
    account, key = new_account(), new_key()
    owned = publisher(account)
    # When both are written
    create(owned, key)
    # Then the item is the account's and the key leads to it
    assert stored(owned) is not None
    assert entry_points.find(widget_key_pk(key)) == entry_points.EntryPoint(account, owned.sk)


def test_a_second_owners_claim_is_refused_and_leaves_no_owned_item(platform: Platform) -> None:
    # Given a key held by one account
    first, second, key = new_account(), new_account(), new_key()
    create(publisher(first), key)
    # When another account creates its own item claiming the same key
    theirs = publisher(second)
    with pytest.raises(Refused) as refused:
        create(theirs, key)
    # Then the refusal names the lookup, not their item
    assert refused.value.labels == {f"{widget_key_pk(key)} META"}
    # And nothing of theirs was written, and the key still leads to the first account
    assert stored(theirs) is None
    found = entry_points.find(widget_key_pk(key))
    assert found is not None and found.account_id == first


def test_releasing_deletes_the_item_and_its_lookups(platform: Platform) -> None:
    # Given an item with two keys
    account, keys_held = new_account(), [new_key(), new_key()]
    owned = publisher(account)
    create(owned, *keys_held)
    # When it is removed, releasing both
    write_with_lookups(
        Owned.removed(owned, PublisherItem.account_id == account),
        release=[entry_points.lookup(widget_key_pk(k), account) for k in keys_held],
    )
    # Then the item and both lookups are gone, and the keys can be claimed again
    assert stored(owned) is None
    assert [entry_points.find(widget_key_pk(k)) for k in keys_held] == [None, None]
    create(publisher(new_account()), *keys_held)


def test_moving_releases_one_lookup_and_claims_another(platform: Platform) -> None:
    # Given an item whose key is K1
    account, old, new = new_account(), new_key(), new_key()
    owned = publisher(account)
    create(owned, old)
    # When it moves to K2 (as a rotated secret or a changed domain does)
    write_with_lookups(
        Owned.changed(owned, [PublisherItem.name.set("rotated")]),
        release=[entry_points.lookup(widget_key_pk(old), account)],
        claim=[entry_points.lookup(widget_key_pk(new), account, owned)],
    )
    # Then K1 leads nowhere, K2 leads to the item, and the item changed with them
    assert entry_points.find(widget_key_pk(old)) is None
    assert entry_points.find(widget_key_pk(new)) == entry_points.EntryPoint(account, owned.sk)
    changed = stored(owned)
    assert changed is not None and changed.name == "rotated"


def test_a_move_onto_a_taken_key_changes_nothing(platform: Platform) -> None:
    # Given two accounts' items, each with its own key
    mine, theirs = new_account(), new_account()
    old, taken = new_key(), new_key()
    owned = publisher(mine)
    create(owned, old)
    create(publisher(theirs), taken)
    # When the first tries to move onto the other's key
    with pytest.raises(Refused):
        write_with_lookups(
            Owned.changed(owned, [PublisherItem.name.set("moved")]),
            release=[entry_points.lookup(widget_key_pk(old), mine)],
            claim=[entry_points.lookup(widget_key_pk(taken), mine, owned)],
        )
    # Then its item and its old key are as they were, and the other's key is still theirs
    kept = stored(owned)
    assert kept is not None and kept.name == "Banner owner"
    assert entry_points.find(widget_key_pk(old)) == entry_points.EntryPoint(mine, owned.sk)
    found = entry_points.find(widget_key_pk(taken))
    assert found is not None and found.account_id == theirs


def test_a_lookup_moved_to_another_owner_survives_the_old_owners_release(
    platform: Platform,
) -> None:
    # Given an item that held K1, then moved to K2, and another account claimed K1 since
    first, second = new_account(), new_account()
    k1, k2 = new_key(), new_key()
    owned = publisher(first)
    create(owned, k1)
    write_with_lookups(
        Owned.changed(owned, [PublisherItem.name.set("on K2")]),
        release=[entry_points.lookup(widget_key_pk(k1), first)],
        claim=[entry_points.lookup(widget_key_pk(k2), first, owned)],
    )
    newcomer = publisher(second)
    create(newcomer, k1)
    # When the first account removes its item from a stale view that still lists K1
    write_with_lookups(
        Owned.removed(owned),
        release=[entry_points.lookup(widget_key_pk(k), first) for k in (k1, k2)],
    )
    # Then its item and its own K2 are gone, but K1 still leads to the other account's item
    assert stored(owned) is None
    assert entry_points.find(widget_key_pk(k2)) is None
    assert entry_points.find(widget_key_pk(k1)) == entry_points.EntryPoint(second, newcomer.sk)


def test_an_update_of_a_lookup_held_by_another_owner_writes_nothing(platform: Platform) -> None:
    # Given a key held by another account
    mine, theirs, key = new_account(), new_account(), new_key()
    owned = publisher(mine)
    create(owned, new_key())
    create(publisher(theirs), key)
    # When the first account changes its item and, in step, that lookup
    lookup = entry_points.lookup(widget_key_pk(key), mine)
    with pytest.raises(Refused) as refused:
        write_with_lookups(
            Owned.changed(owned, [PublisherItem.name.set("renamed")]),
            update=[(lookup, [EntryPointItem.owned_sk.set(owned.sk)])],
        )
    # Then the lookup is named, and neither item changed
    assert refused.value.labels == {lookup.label}
    kept = stored(owned)
    assert kept is not None and kept.name == "Banner owner"
    found = entry_points.find(widget_key_pk(key))
    assert found is not None and found.account_id == theirs


def test_a_refused_owned_condition_is_named_and_releases_nothing(platform: Platform) -> None:
    # Given an item with a key
    account, key = new_account(), new_key()
    owned = publisher(account)
    create(owned, key)
    # When its removal is conditioned on something that no longer holds
    with pytest.raises(Refused) as refused:
        write_with_lookups(
            Owned.removed(owned, PublisherItem.name == "someone renamed it"),
            release=[entry_points.lookup(widget_key_pk(key), account)],
        )
    # Then the owned item is named and both are still there
    assert refused.value.labels == {OWNED}
    assert stored(owned) is not None
    assert entry_points.find(widget_key_pk(key)) is not None


def test_an_entry_point_leads_only_into_its_own_account(platform: Platform) -> None:
    with pytest.raises(ValueError, match="own account"):
        entry_points.lookup(widget_key_pk(new_key()), new_account(), publisher(new_account()))
