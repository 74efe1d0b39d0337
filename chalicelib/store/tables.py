"""Table bootstrap (idempotent) and binding the models to the configured table and endpoint."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.exceptions import ClientError

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


def configure(settings: Settings) -> None:
    """Point every model at the configured table, region and endpoint. No I/O."""
    meta = AppItem.Meta
    if (meta.table_name, meta.region, meta.host) == (
        settings.app_table,
        settings.region,
        settings.dynamodb_endpoint,
    ):
        return
    meta.table_name = settings.app_table
    meta.region = settings.region
    meta.host = settings.dynamodb_endpoint
    for model in ALL_MODELS:
        # Drop any connection made with the previous settings.
        model._connection = None


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
    client = boto3.client(
        "dynamodb", region_name=settings.region, endpoint_url=settings.dynamodb_endpoint
    )
    created = []
    if _create_table(client, settings.app_table, APP_TABLE_KEYS, TTL_ATTRIBUTE):
        created.append(settings.app_table)
    if _create_table(client, settings.idempotency_table, IDEMPOTENCY_TABLE_KEYS, "expiration"):
        created.append(settings.idempotency_table)
    return created
