"""The local stack's state file: written by a forked copy of the process while the AWS
endpoint goes on serving, only when something changed, and holding what was written."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import boto3
from moto.core.models import DEFAULT_ACCOUNT_ID

from tools.devstack import Snapshots


def stored(path: Path, table: str) -> list[dict[str, Any]]:
    blob = pickle.loads(path.read_bytes())  # noqa: S301 - the file this test just wrote
    backend = blob["backends"]["dynamodb"][DEFAULT_ACCOUNT_ID]["us-east-1"]
    return [item.to_json()["Attributes"] for item in backend.tables[table].items.values()]


def test_a_snapshot_is_saved_once_per_change_with_what_was_written(
    aws_endpoint: str, tmp_path: Path
) -> None:
    client = boto3.client("dynamodb", endpoint_url=aws_endpoint, region_name="us-east-1")
    client.create_table(
        TableName="snapshot-test",
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
    )
    client.put_item(TableName="snapshot-test", Item={"id": {"S": "first"}})
    path = tmp_path / "moto-state.pickle"
    snapshots = Snapshots(path, every=0, spacing=0)

    snapshots.tick()
    assert snapshots.child is not None  # saved by another process
    snapshots.wait()
    assert stored(path, "snapshot-test") == [{"id": {"S": "first"}}]

    # Reads change nothing: no new save
    client.get_item(TableName="snapshot-test", Key={"id": {"S": "first"}})
    client.scan(TableName="snapshot-test")
    snapshots.tick()
    assert snapshots.child is None

    # A write does
    client.put_item(TableName="snapshot-test", Item={"id": {"S": "second"}})
    snapshots.tick()
    assert snapshots.child is not None
    snapshots.wait()
    assert sorted(i["id"]["S"] for i in stored(path, "snapshot-test")) == ["first", "second"]
    assert snapshots.failed == 0
    assert len(snapshots.pauses_ms) == 2
