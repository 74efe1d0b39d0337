"""moto's TransactWriteItems, made to roll back only the items a transaction touched.

moto 5.2.5 (`DynamoDBBackend.transact_write_items`) deep-copies every table a transaction
names before it starts, so that it can put the copies back if the transaction fails. Every
TransactWriteItems then costs time proportional to all the data in those tables (about
1 ms per stored call record): local routing got slower with every call stored, ≈250 ms per
routed call at test sizes, minutes with 100,000 items.

`install()` keeps moto's method and changes only how it backs up:

- While the method runs, its `copy.deepcopy` of a `Table` returns the table itself, so
  moto's own rollback (putting the "copies" back) changes nothing.
- moto looks every operation's item up with `DynamoDBBackend.get_item` before it checks or
  writes it (after the duplicate-key check). That look-up is hooked: the first time a key
  is seen, a deep copy of its item (or that there was none) and the key order of the dict
  holding it are kept.
- If moto raises (a cancelled transaction, a validation error, a duplicate key), those items
  are put back, last first, in their places, so the tables end as they were, in the same
  order. Everything else (validation, the order of checks, cancellation reasons, messages)
  is moto's own code.

Tables with a stream keep moto's whole-table copy (their stream records would need undoing
too); the app's tables have none. One difference from moto, on purpose: moto raises some
errors mid-transaction without rolling back (an entry with two operations after an entry
that wrote), leaving half a transaction; here every error rolls back, as in DynamoDB.

The patch relies on the shape of the moto functions `_relied_on()` lists; their source is
hashed and `install()` raises if moto's version or any of them changes. Re-check the
points above against the new code, then update `MOTO_VERSION` and `SOURCE_DIGEST`.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

MOTO_VERSION = "5.2.5"
SOURCE_DIGEST = "0d02ea367950126c4e4c44ad4a38345a796719406dc6d0249a260ef235f68437"

_state = threading.local()
_installed: dict[str, Any] = {}
_whole_table_copies = False


class MotoChanged(RuntimeError):
    """moto is not the version (or the code) this patch was written against."""


def _relied_on() -> list[Callable[..., Any]]:
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    return [
        DynamoDBBackend.transact_write_items,
        DynamoDBBackend.get_item,
        DynamoDBBackend.get_keys_value,
        DynamoDBBackend.update_item,
        Table.get_item,
        Table.put_item,
        Table.delete_item,
    ]


def source_digest() -> str:
    """The hash of the moto code the patch relies on (as installed, before patching)."""
    functions = _installed.get("relied_on") or _relied_on()
    digest = hashlib.sha256()
    for function in functions:
        digest.update(inspect.getsource(function).encode())
    return digest.hexdigest()


@dataclass
class _Saved:
    items: dict[Any, Any]  # the dict holding the item: a range key's bucket, or table.items
    key: Any
    before: Any  # a deep copy of the item, or None when there was none
    order: list[Any] | None  # `items`' keys when the item was saved (only if it existed)
    bucket_of: tuple[dict[Any, Any], Any] | None  # (table.items, hash) if the bucket was new


class _Journal:
    def __init__(self, deleting: set[str]) -> None:
        self.deleting = deleting  # tables the transaction may delete from
        self.saved: list[_Saved] = []
        self.seen: set[tuple[int, Any, Any]] = set()

    def save(self, table: Any, hash_key: Any, range_key: Any) -> None:
        seen = (id(table), hash_key, range_key)
        if seen in self.seen:
            return
        self.seen.add(seen)
        # Plain `get`s: moto's own look-up creates an empty bucket in its defaultdict.
        bucket_of = None
        if table.range_key_attr is None:
            items, key = table.items, hash_key
        else:
            bucket = table.items.get(hash_key)
            if bucket is None:
                bucket, bucket_of = {}, (table.items, hash_key)
            items, key = bucket, range_key
        before = items.get(key)
        # The key order is needed only to put a deleted item back in its place; a range
        # key's bucket is small, a hash-only table's order is kept only if it may delete.
        keep_order = before is not None and (
            table.range_key_attr is not None or table.name in self.deleting
        )
        self.saved.append(
            _Saved(
                items,
                key,
                copy.deepcopy(before),
                list(items) if keep_order else None,
                bucket_of,
            )
        )

    def undo(self) -> None:
        for saved in reversed(self.saved):
            items = saved.items
            if saved.bucket_of is not None:
                table_items, hash_key = saved.bucket_of
                items = table_items.get(hash_key, {})
            if saved.before is None:
                items.pop(saved.key, None)
            elif saved.key in items or saved.order is None:
                items[saved.key] = saved.before
            else:
                # Deleted in the transaction: rebuilt in the saved order (what moto's
                # whole-table copy restores), keeping the dict object.
                current = dict(items)
                current[saved.key] = saved.before
                items.clear()
                items.update((key, current[key]) for key in saved.order if key in current)
            if saved.bucket_of is not None:
                table_items, hash_key = saved.bucket_of
                if hash_key in table_items and not table_items[hash_key]:
                    del table_items[hash_key]


class _CopyModule:
    """`copy` as moto's DynamoDB models module sees it: a table named by a running
    transaction is not copied."""

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)

    @staticmethod
    def deepcopy(value: Any, memo: dict[int, Any] | None = None) -> Any:
        from moto.dynamodb.models.table import Table

        if isinstance(value, Table) and getattr(_state, "journal", None) is not None:
            return value
        return copy.deepcopy(value, memo)


def check_moto() -> None:
    """Raise MotoChanged unless moto is the version and code this patch was written for."""
    import moto
    import moto.dynamodb.models as models

    if moto.__version__ != MOTO_VERSION:
        raise MotoChanged(
            f"tools/moto_transactions.py was written for moto {MOTO_VERSION}, "
            f"found {moto.__version__}: re-check it against the new code"
        )
    digest = source_digest()
    if digest != SOURCE_DIGEST or getattr(models, "copy", None) not in (
        copy,
        _installed.get("copy"),
    ):
        raise MotoChanged(
            "moto's DynamoDB transaction code is not what tools/moto_transactions.py "
            f"expects (source digest {digest}): re-check it against the new code"
        )


def install() -> None:
    """Patch moto's DynamoDB backend (idempotent); raises MotoChanged if moto changed."""
    check_moto()
    if _installed:
        return
    import moto.dynamodb.models as models
    from moto.dynamodb.models import DynamoDBBackend

    original_transact = DynamoDBBackend.transact_write_items
    original_get_item = DynamoDBBackend.get_item

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        names = {op.get("TableName") for entry in transact_items for op in entry.values()}
        streamed = any(
            getattr(self.tables.get(name), "stream_shard", None) is not None for name in names
        )
        if _whole_table_copies or streamed:
            original_transact(self, transact_items)
            return
        journal = _Journal(
            {op.get("TableName") for entry in transact_items for kind, op in entry.items()
             if kind == "Delete"}
        )  # fmt: skip
        _state.journal = journal
        try:
            original_transact(self, transact_items)
        except BaseException:
            journal.undo()
            raise
        finally:
            _state.journal = None

    def get_item(self: Any, table_name: str, keys: dict[str, Any], *args: Any) -> Any:
        journal: _Journal | None = getattr(_state, "journal", None)
        if journal is not None:
            try:
                table = self.get_table(table_name)
                hash_key, range_key = self.get_keys_value(table, keys)
            except Exception:  # noqa: BLE001, S110 - moto's own look-up raises the same below
                pass
            else:
                journal.save(table, hash_key, range_key)
        return original_get_item(self, table_name, keys, *args)

    _installed["relied_on"] = _relied_on()
    _installed["transact_write_items"] = original_transact
    _installed["get_item"] = original_get_item
    # Typed as Any: moto's own annotations do not allow replacing methods.
    backend_class: Any = DynamoDBBackend
    backend_class.transact_write_items = transact_write_items
    backend_class.get_item = get_item
    models_module: Any = models
    models_module.copy = _installed["copy"] = _CopyModule()


@contextmanager
def whole_table_copies() -> Iterator[None]:
    """moto's own rollback (a copy of every table named) inside the block, for comparisons."""
    global _whole_table_copies
    _whole_table_copies = True
    try:
        yield
    finally:
        _whole_table_copies = False
