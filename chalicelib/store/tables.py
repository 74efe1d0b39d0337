"""Table bootstrap (idempotent) and binding the models to the configured table and endpoint."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError
from pynamodb.connection import Connection

from chalicelib.config import Settings
from chalicelib.store.models import ALL_MODELS, AppItem

# The application table's physical schema. infra/ declares the same schema for AWS;
# a test keeps the two in step.
APP_TABLE_KEYS: dict[str, Any] = {
    "AttributeDefinitions": [
        {"AttributeName": "pk", "AttributeType": "S"},
        {"AttributeName": "sk", "AttributeType": "S"},
        {"AttributeName": "gsi1pk", "AttributeType": "S"},
        {"AttributeName": "gsi1sk", "AttributeType": "S"},
    ],
    "KeySchema": [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ],
    "GlobalSecondaryIndexes": [
        {
            "IndexName": "gsi1",
            "KeySchema": [
                {"AttributeName": "gsi1pk", "KeyType": "HASH"},
                {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        }
    ],
}
TTL_ATTRIBUTE = "expires_at"

# Powertools idempotency table layout (its defaults: key `id`, TTL `expiration`).
IDEMPOTENCY_TABLE_KEYS: dict[str, Any] = {
    "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
    "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
}


_shared: Connection | None = None


def configure(settings: Settings) -> None:
    """Point every model at the configured table, region and endpoint. No I/O.

    All models share one PynamoDB `Connection`, so a cold start builds one botocore
    client and one HTTP connection pool rather than one per model class.
    """
    global _shared
    meta = AppItem.Meta
    wanted = (settings.app_table, settings.region, settings.dynamodb_endpoint)
    if _shared is not None and (meta.table_name, meta.region, meta.host) == wanted:
        return
    meta.table_name, meta.region, meta.host = wanted
    _shared = None
    # A model with the GSI goes first, so the shared table description includes it
    # (every model has the same keys; only some declare the index).
    for model in sorted(ALL_MODELS, key=lambda m: not m._get_schema()["global_secondary_indexes"]):
        model._connection = None
        table = model._get_connection()
        if _shared is None:
            _shared = table.connection
        else:
            table.connection = _shared


def connection() -> Connection:
    """The DynamoDB connection every model uses (also for transactions)."""
    if _shared is None:
        raise RuntimeError("store.tables.configure() has not been called")
    return _shared


def _create_table(client: Any, name: str, layout: dict[str, Any], ttl_attribute: str) -> bool:
    try:
        client.create_table(TableName=name, BillingMode="PAY_PER_REQUEST", **layout)
    except ClientError as err:
        if err.response["Error"]["Code"] != "ResourceInUseException":
            raise
        return False
    client.get_waiter("table_exists").wait(TableName=name)
    client.update_time_to_live(
        TableName=name,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl_attribute},
    )
    return True


def ensure_tables(settings: Settings) -> list[str]:
    """Create the application and idempotency tables if missing; return the ones created."""
    import boto3  # set-up only: the handlers talk to DynamoDB through PynamoDB's botocore client

    client = boto3.client(
        "dynamodb", region_name=settings.region, endpoint_url=settings.dynamodb_endpoint
    )
    created = []
    if _create_table(client, settings.app_table, APP_TABLE_KEYS, TTL_ATTRIBUTE):
        created.append(settings.app_table)
    if _create_table(client, settings.idempotency_table, IDEMPOTENCY_TABLE_KEYS, "expiration"):
        created.append(settings.idempotency_table)
    return created
