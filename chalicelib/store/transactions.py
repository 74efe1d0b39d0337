"""TransactWriteItems with a label per operation, to tell which condition refused it; and
the one write of a tenant's item together with its global lookup items."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

from pynamodb.exceptions import TransactWriteError
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from chalicelib.store.models import AppItem
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
        self._deletes: list[str] = []
        self._puts: list[str] = []
        self._updates: list[str] = []

    def check(self, label: str, model: type[Model], pk: str, sk: str, condition: Condition) -> None:
        self._tx.condition_check(model, pk, sk, condition=condition)
        self._checks.append(label)

    def delete(self, label: str, item: Model, condition: Condition | None = None) -> None:
        self._tx.delete(item, condition=condition)
        self._deletes.append(label)

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
        return self._checks + self._deletes + self._puts + self._updates


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


def transact(build: Callable[[LabelledTransaction], None], attempts: int | None = None) -> None:
    """Write what `build` adds, all or nothing, trying again (after a short random pause)
    when the transaction collides with another one; Refused propagates at once, Conflict
    after `attempts` tries."""
    attempts = attempts or CONFLICT_ATTEMPTS
    for attempt in range(1, attempts + 1):
        try:
            with labelled_transaction() as tx:
                build(tx)
            return
        except Conflict:
            if attempt >= attempts:
                raise
            time.sleep(random.uniform(0.01, 0.05) * attempt)  # noqa: S311 - jitter


# --- a tenant's item and its global lookup items --------------------------------------------

OWNED = "owned"  # the label of the tenant's own item in a Refused
CONFLICT_ATTEMPTS = 5


@dataclass(frozen=True)
class Lookup:
    """A global entry-point item (`NUM#<e164>`, `KEYHASH#<sha256>`, `POOLKEY#<key>`, ...) and
    the owner whose id it holds in `attribute`: a request that arrives without an account
    reads the account from it, so it may only ever point at an owner of the matching item.

    To claim one, `item` is the whole item; to update or release one, its key is enough.
    """

    item: AppItem
    owner: str
    attribute: str = "account_id"

    @property
    def label(self) -> str:
        return f"{self.item.pk} {self.item.sk}"

    def points_at_owner(self) -> Condition:
        return getattr(type(self.item), self.attribute) == self.owner  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Owned:
    """The tenant's own item (`ACCT#<account>` / ...) and what the write does to it."""

    item: AppItem
    action: Literal["put", "update", "delete"]
    actions: Sequence[Action] = ()
    condition: Condition | None = None

    @classmethod
    def new(cls, item: AppItem) -> Owned:
        """Put the item, which must not exist yet."""
        return cls(item, "put", condition=type(item).pk.does_not_exist())

    @classmethod
    def changed(
        cls, item: AppItem, actions: Sequence[Action], condition: Condition | None = None
    ) -> Owned:
        """Update the item (mark it revoked, rotate a secret, ...) if `condition` holds."""
        return cls(item, "update", actions, condition)

    @classmethod
    def removed(cls, item: AppItem, condition: Condition | None = None) -> Owned:
        """Delete the item if `condition` holds."""
        return cls(item, "delete", condition=condition)

    def add_to(self, tx: LabelledTransaction) -> None:
        if self.action == "put":
            tx.save(OWNED, self.item, self.condition)
        elif self.action == "update":
            tx.update(OWNED, self.item, list(self.actions), self.condition)
        else:
            tx.delete(OWNED, self.item, self.condition)


def write_with_lookups(
    owned: Owned,
    *,
    claim: Sequence[Lookup] = (),
    update: Sequence[tuple[Lookup, Sequence[Action]]] = (),
    release: Sequence[Lookup] = (),
) -> None:
    """Write a tenant's item and its global lookup items all or nothing: the one way an entry
    point (number, API key, edge secret or domain, pool key, ...) is created, moved or freed.

    - `claim`: put each lookup if nothing holds its key yet (another owner's number, domain...).
    - `update`: change each lookup in step with the owned item, if it still points at the owner.
    - `release`: delete each lookup if it still points at the owner. One that another owner
      holds by now is left alone and the rest is written without it.

    Creating is `Owned.new` + `claim`; moving (a rotated secret, a changed domain) is
    `Owned.changed` + `release` of the old lookup + `claim` of the new; freeing is
    `Owned.removed` (or `Owned.changed` to mark it) + `release`. Raises Refused naming `OWNED`
    and/or the refused lookups' labels, with nothing written; retries a transaction conflict.
    """
    releasing = list(release)

    def build(tx: LabelledTransaction) -> None:
        owned.add_to(tx)
        for lookup in claim:
            tx.save(lookup.label, lookup.item, type(lookup.item).pk.does_not_exist())
        for lookup, actions in update:
            tx.update(lookup.label, lookup.item, list(actions), lookup.points_at_owner())
        for lookup in releasing:
            # Gone already is as good as deleted; pointing at another owner, not ours.
            mine = type(lookup.item).pk.does_not_exist() | lookup.points_at_owner()
            tx.delete(lookup.label, lookup.item, mine)

    while True:
        try:
            transact(build)
            return
        except Refused as refusal:
            if not refusal.labels <= {lookup.label for lookup in releasing}:
                raise
            releasing = [lookup for lookup in releasing if lookup.label not in refusal.labels]
