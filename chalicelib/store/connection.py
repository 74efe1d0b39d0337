"""The PynamoDB connection used for transactions, built from the bound model settings."""

from __future__ import annotations

from pynamodb.connection import Connection

from chalicelib.store.models import AppItem


def transaction_connection() -> Connection:
    meta = AppItem.Meta
    return Connection(region=meta.region, host=meta.host)
