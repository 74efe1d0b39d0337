"""The local AWS endpoint's TransactWriteItems rolls back by item (tools/moto_transactions.py)
and answers exactly as moto's own whole-table rollback does: the same results, errors and
cancellation reasons, and the same tables afterwards, item for item and in the same order."""

from __future__ import annotations

import itertools
from typing import Any

import boto3
import moto
import pytest
from botocore.exceptions import ClientError
from moto.core.models import DEFAULT_ACCOUNT_ID

from tools import moto_transactions

_runs = itertools.count()
Trace = list[tuple[Any, Any]]


def s(value: str) -> dict[str, str]:
    return {"S": value}


def n(value: int) -> dict[str, str]:
    return {"N": str(value)}


class Tables:
    """Two tables on the local endpoint: `main` (pk + sk, many items per pk) and `other`
    (id only), with the same starting items every time."""

    def __init__(self, endpoint: str) -> None:
        self.client = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1")
        run = next(_runs)
        self.main, self.other = f"txn-{run}-main", f"txn-{run}-other"
        self.client.create_table(
            TableName=self.main,
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
        )
        self.client.create_table(
            TableName=self.other,
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        )
        for p in ("a", "b", "c"):
            for k in ("1", "2", "3"):
                self.client.put_item(
                    TableName=self.main,
                    Item={"pk": s(p), "sk": s(k), "count": n(0), "tags": {"SS": ["x"]}},
                )
        for i in ("u", "v", "w", "x"):
            self.client.put_item(TableName=self.other, Item={"id": s(i), "state": s("free")})

    def key(self, p: str, k: str) -> dict[str, Any]:
        return {"pk": s(p), "sk": s(k)}

    def contents(self) -> tuple[Any, Any]:
        """Every item of both tables, in the order moto keeps (and scans) them."""
        return tuple(
            self.client.scan(TableName=name, ConsistentRead=True)["Items"]
            for name in (self.main, self.other)
        )

    def layout(self) -> list[list[tuple[str, list[str]]]]:
        """moto's own storage: partition keys in order, each with its sort keys in order
        (an empty partition left behind by a look-up shows here, not in a scan)."""
        from moto.backends import get_backend

        tables = get_backend("dynamodb")[DEFAULT_ACCOUNT_ID]["us-east-1"].tables
        main = [
            (str(h.value), [str(r.value) for r in bucket])
            for h, bucket in tables[self.main].items.items()
        ]
        other = [(str(h.value), []) for h in tables[self.other].items]
        return [main, other]


def transactions(t: Tables) -> list[list[dict[str, Any]]]:
    """Transactions over both tables: Put, Update, Delete and ConditionCheck, passing,
    failing a condition early, late or twice, invalid, and naming one item twice."""
    m, o = t.main, t.other
    add = {"UpdateExpression": "ADD #c :one", "ExpressionAttributeNames": {"#c": "count"}}
    add["ExpressionAttributeValues"] = {":one": n(1)}  # type: ignore[assignment]
    free = {
        "ConditionExpression": "#s = :free",
        "ExpressionAttributeNames": {"#s": "state"},
        "ExpressionAttributeValues": {":free": s("free")},
    }
    absent = {"ConditionExpression": "attribute_not_exists(pk)"}
    return [
        # 0: every kind of operation, all passing
        [
            {"Put": {"TableName": m, "Item": {"pk": s("d"), "sk": s("1"), "v": n(1)}, **absent}},
            {"Update": {"TableName": m, "Key": t.key("a", "1"), **add}},
            {"Delete": {"TableName": o, "Key": {"id": s("u")}}},
            {"ConditionCheck": {"TableName": o, "Key": {"id": s("v")}, **free}},
        ],
        # 1: writes, deletes from both tables, then a condition fails (ALL_OLD returned)
        [
            {"Put": {"TableName": m, "Item": {"pk": s("e"), "sk": s("1")}, **absent}},
            {"Put": {"TableName": m, "Item": {"pk": s("a"), "sk": s("2"), "v": n(9)}}},
            {"Update": {"TableName": m, "Key": t.key("a", "1"), **add}},
            {"Update": {"TableName": m, "Key": t.key("f", "9"), **add}},  # creates an item
            {"Delete": {"TableName": m, "Key": t.key("b", "2")}},
            {"Delete": {"TableName": o, "Key": {"id": s("w")}}},
            {
                "ConditionCheck": {
                    "TableName": m,
                    "Key": t.key("c", "3"),
                    "ConditionExpression": "attribute_not_exists(pk)",
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            },
        ],
        # 2: the first condition fails, later operations would pass
        [
            {"Update": {"TableName": o, "Key": {"id": s("u")}, **add, **free}},  # u is gone
            {"Delete": {"TableName": m, "Key": t.key("c", "1")}},
            {"Put": {"TableName": o, "Item": {"id": s("y"), "state": s("held")}}},
        ],
        # 3: a delete passes, then two conditions fail (one in a partition that is not there)
        [
            {"Delete": {"TableName": o, "Key": {"id": s("x")}, **free}},
            {"ConditionCheck": {"TableName": m, "Key": t.key("zz", "1"), **free}},
            {"Update": {"TableName": m, "Key": t.key("b", "1"), **add, **free}},
        ],
        # 4: one item named twice (after writes): a ValidationException, nothing written
        [
            {"Update": {"TableName": m, "Key": t.key("a", "3"), **add}},
            {"Delete": {"TableName": o, "Key": {"id": s("v")}}},
            {"Delete": {"TableName": m, "Key": t.key("c", "2")}},
            {"Put": {"TableName": m, "Item": {"pk": s("a"), "sk": s("3")}}},
        ],
        # 5: an update expression moto can only reject while executing it, after writes
        [
            {"Delete": {"TableName": m, "Key": t.key("a", "2")}},
            {"Put": {"TableName": o, "Item": {"id": s("z"), "state": s("held")}}},
            {
                "Update": {
                    "TableName": m,
                    "Key": t.key("b", "3"),
                    "UpdateExpression": "SET #t = #t + :one",
                    "ExpressionAttributeNames": {"#t": "tags"},
                    "ExpressionAttributeValues": {":one": n(1)},
                }
            },
        ],
        # 6: a key of the wrong type, after writes
        [
            {"Update": {"TableName": m, "Key": t.key("c", "3"), **add}},
            {"Put": {"TableName": m, "Item": {"pk": n(7), "sk": s("1")}}},
        ],
        # 7: a key without its sort key, after a delete
        [
            {"Delete": {"TableName": o, "Key": {"id": s("x")}}},
            {"Delete": {"TableName": m, "Key": {"pk": s("a")}}},
        ],
        # 8: passing again, after all the failures (the counters moved by 0 and 2 only)
        [
            {"Update": {"TableName": m, "Key": t.key("a", "1"), **add}},
            {"Delete": {"TableName": m, "Key": t.key("a", "2")}},
            {"Put": {"TableName": o, "Item": {"id": s("u"), "state": s("free")}}},
        ],
    ]


def outcome(t: Tables, items: list[dict[str, Any]]) -> tuple[str, list[str], str]:
    """The error code (or "ok"), the cancellation reasons' codes, and the whole answer."""
    try:
        t.client.transact_write_items(TransactItems=items)
    except ClientError as err:
        reasons = err.response.get("CancellationReasons") or []
        answer = repr((err.response["Error"], reasons))
        answer = answer.replace(t.main, "MAIN").replace(t.other, "OTHER")
        return err.response["Error"]["Code"], [r["Code"] for r in reasons], answer
    return "ok", [], ""


def run(aws_endpoint: str) -> tuple[Trace, list[bool]]:
    """Each transaction's outcome with both tables' contents and layout after it, and
    whether the tables were left exactly as before it."""
    t = Tables(aws_endpoint)
    trace: Trace = []
    unchanged = []
    for items in transactions(t):
        before = (t.contents(), t.layout())
        result = outcome(t, items)
        after = (t.contents(), t.layout())
        trace.append((result, after))
        unchanged.append(after == before)
    return trace, unchanged


def test_item_rollback_answers_and_leaves_tables_exactly_as_moto_does(aws_endpoint: str) -> None:
    with moto_transactions.whole_table_copies():
        expected, _ = run(aws_endpoint)
    got, unchanged = run(aws_endpoint)
    for index, (want, have) in enumerate(zip(expected, got, strict=True)):
        assert have == want, f"transaction {index}"
    codes = [(code, reasons) for (code, reasons, _), _ in got]
    # The cases are the ones named: passing, cancelled with reasons, invalid, duplicate.
    cancelled, failed = "TransactionCanceledException", "ConditionalCheckFailed"
    assert codes == [
        ("ok", []),
        (cancelled, ["None"] * 6 + [failed]),
        (cancelled, [failed, "None", "None"]),
        (cancelled, ["None", failed, failed]),
        ("ValidationException", []),
        ("ValidationException", []),
        ("ValidationException", []),
        ("ValidationException", []),
        ("ok", []),
    ]
    assert "'Item'" in got[1][0][2]  # ALL_OLD: the item that failed the check
    assert "multiple operations on one item" in got[4][0][2]
    # All or nothing: every failed transaction left both tables as they were.
    assert unchanged == [False, True, True, True, True, True, True, True, False]


def test_a_failed_transaction_keeps_the_table_objects(aws_endpoint: str) -> None:
    """The rollback restores items, not a copy of the table (what made it slow)."""
    from moto.backends import get_backend

    t = Tables(aws_endpoint)
    tables = get_backend("dynamodb")[DEFAULT_ACCOUNT_ID]["us-east-1"].tables
    failing = transactions(t)[1]
    table = tables[t.main]
    assert outcome(t, failing)[0] == "TransactionCanceledException"
    assert tables[t.main] is table
    with moto_transactions.whole_table_copies():
        assert outcome(t, failing)[0] == "TransactionCanceledException"
    assert tables[t.main] is not table  # moto's own rollback put a copy in its place


def test_an_entry_with_two_operations_rolls_back_what_came_before(aws_endpoint: str) -> None:
    """The one place the patch differs from moto on purpose: moto raises without rolling
    back, leaving the first write; here nothing is left, as in DynamoDB."""
    t = Tables(aws_endpoint)
    put = {"Put": {"TableName": t.main, "Item": {"pk": s("new"), "sk": s("1")}}}
    two = {
        "Delete": {"TableName": t.other, "Key": {"id": s("u")}},
        "ConditionCheck": {
            "TableName": t.other,
            "Key": {"id": s("v")},
            "ConditionExpression": "attribute_exists(id)",
        },
    }
    before = t.contents()
    assert outcome(t, [put, two])[0] == "ValidationException"
    assert t.contents() == before
    with moto_transactions.whole_table_copies():
        assert outcome(t, [put, two])[0] == "ValidationException"
    assert t.contents() != before


def test_the_patch_refuses_another_moto(monkeypatch: pytest.MonkeyPatch) -> None:
    moto_transactions.check_moto()
    monkeypatch.setattr(moto, "__version__", "5.2.6")
    with pytest.raises(moto_transactions.MotoChanged, match=r"5\.2\.6"):
        moto_transactions.check_moto()
    monkeypatch.undo()
    monkeypatch.setattr(moto_transactions, "SOURCE_DIGEST", "0" * 64)
    with pytest.raises(moto_transactions.MotoChanged, match="source digest"):
        moto_transactions.check_moto()
