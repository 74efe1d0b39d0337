"""TransactWriteItems with a label per operation, to tell which condition refused it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pynamodb.exceptions import TransactWriteError
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from chalicelib.store.tables import connection


class Conflict(Exception):
    """Another transaction touched the same items at the same moment: try again."""


class Refused(Exception):
    """Conditions did not hold; `labels` names the operations whose condition failed."""

    def __init__(self, labels: set[str]) -> None:
        super().__init__(", ".join(sorted(labels)))
        self.labels = labels


class LabelledTransaction:
    """Collects operations with labels, in the order PynamoDB sends them.

    PynamoDB sends condition checks, then deletes, then puts, then updates, whatever order
    they were added in; DynamoDB reports cancellation reasons in the order sent.
    """

    def __init__(self, tx: TransactWrite) -> None:
        self._tx = tx
        self._checks: list[str] = []
        self._puts: list[str] = []
        self._updates: list[str] = []

    def check(self, label: str, model: type[Model], pk: str, sk: str, condition: Condition) -> None:
        self._tx.condition_check(model, pk, sk, condition=condition)
        self._checks.append(label)

    def save(self, label: str, item: Model, condition: Condition | None = None) -> None:
        self._tx.save(item, condition=condition)
        self._puts.append(label)

    def update(
        self, label: str, item: Model, actions: list[Action], condition: Condition | None = None
    ) -> None:
        self._tx.update(item, actions=actions, condition=condition)
        self._updates.append(label)

    @property
    def labels(self) -> list[str]:
        return self._checks + self._puts + self._updates


@contextmanager
def labelled_transaction() -> Iterator[LabelledTransaction]:
    """Run the operations atomically; raise Refused naming the failed conditions.

    Any other failure (throttling, a conflict with another transaction) propagates as is.
    """
    labelled: LabelledTransaction | None = None
    try:
        with TransactWrite(connection=connection()) as tx:
            labelled = LabelledTransaction(tx)
            yield labelled
    except TransactWriteError as err:
        reasons: list[Any] = err.cancellation_reasons
        if labelled is None or len(reasons) != len(labelled.labels):
            raise
        codes = [reason.code if reason is not None else None for reason in reasons]
        refused = {
            labelled.labels[i] for i, code in enumerate(codes) if code == "ConditionalCheckFailed"
        }
        if refused:
            raise Refused(refused) from err
        if "TransactionConflict" in codes:
            raise Conflict() from err
        raise
