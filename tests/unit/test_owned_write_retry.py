"""The owned-item-and-lookups write retries a transaction conflict, a bounded number of times."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from chalicelib.store import transactions
from chalicelib.store.models import AppItem, EntryPointItem
from chalicelib.store.transactions import Conflict, Lookup, Owned, write_with_lookups


class FakeTransaction:
    """Stands in for the DynamoDB transaction: records what each attempt would write."""

    def __init__(self) -> None:
        self.ops: list[tuple[str, str]] = []

    def save(self, label: str, item: Any, condition: Any = None) -> None:
        self.ops.append(("put", label))

    def update(self, label: str, item: Any, actions: Any, condition: Any = None) -> None:
        self.ops.append(("update", label))

    def delete(self, label: str, item: Any, condition: Any = None) -> None:
        self.ops.append(("delete", label))


def conflicting(times: int, attempts: list[FakeTransaction]) -> Any:
    @contextmanager
    def fake() -> Iterator[FakeTransaction]:
        tx = FakeTransaction()
        attempts.append(tx)
        yield tx
        if len(attempts) <= times:
            raise Conflict()

    return fake


@pytest.fixture
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr(transactions.time, "sleep", slept.append)
    return slept


def owned_and_lookup() -> tuple[Owned, Lookup]:
    owned = Owned.new(AppItem("ACCT#acc_1", "WIDGET#w1"))
    return owned, Lookup(EntryPointItem("TESTWIDGET#k1", "META"), "acc_1")


def test_a_conflict_is_retried_with_the_same_writes(
    monkeypatch: pytest.MonkeyPatch, no_sleep: list[float]
) -> None:
    # Given a store where the first two attempts collide with another transaction
    attempts: list[FakeTransaction] = []
    monkeypatch.setattr(transactions, "labelled_transaction", conflicting(2, attempts))
    owned, lookup = owned_and_lookup()
    # When the item and its lookup are written
    write_with_lookups(owned, claim=[lookup])
    # Then the third attempt wrote them, each attempt the same two puts, after two pauses
    assert len(attempts) == 3
    assert {tuple(tx.ops) for tx in attempts} == {
        (("put", transactions.OWNED), ("put", "TESTWIDGET#k1 META"))
    }
    assert len(no_sleep) == 2 and all(0 < pause < 1 for pause in no_sleep)


def test_conflicts_past_the_limit_are_raised(
    monkeypatch: pytest.MonkeyPatch, no_sleep: list[float]
) -> None:
    attempts: list[FakeTransaction] = []
    monkeypatch.setattr(transactions, "labelled_transaction", conflicting(100, attempts))
    owned, lookup = owned_and_lookup()
    with pytest.raises(Conflict):
        write_with_lookups(owned, release=[lookup])
    assert len(attempts) == transactions.CONFLICT_ATTEMPTS
