"""The data layer against a real DynamoDB wire endpoint (moto server)."""

from __future__ import annotations

import secrets

import boto3
from chalice.test import Client

from chalicelib.config import get_settings
from chalicelib.store import api_keys, calls, tables, tenants
from tests.support.app import Platform


def test_table_creation_is_idempotent_and_shaped_as_documented(platform: Platform) -> None:
    settings = get_settings()
    assert tables.ensure_tables(settings) == []  # already made by the bootstrap
    ddb = boto3.client("dynamodb", endpoint_url=platform.endpoint, region_name="us-east-1")
    table = ddb.describe_table(TableName=settings.app_table)["Table"]
    assert [k["AttributeName"] for k in table["KeySchema"]] == ["pk", "sk"]
    assert [i["IndexName"] for i in table["GlobalSecondaryIndexes"]] == ["gsi1"]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    ttl = ddb.describe_time_to_live(TableName=settings.app_table)["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}


def test_api_key_plaintext_is_never_stored(platform: Platform, client: Client) -> None:
    publisher = tenants.create_publisher("acc_demo", "Hash Check", None)
    issued = api_keys.issue_key("acc_demo", publisher.publisher_id, None)
    ddb = boto3.client("dynamodb", endpoint_url=platform.endpoint, region_name="us-east-1")
    # A test-only full read of the table: the secret must appear nowhere in it.
    dump = str(ddb.scan(TableName=get_settings().app_table)["Items"])
    assert issued.plaintext not in dump
    assert api_keys.hash_key(issued.plaintext) in dump
    assert api_keys.authenticate_key(issued.plaintext) is not None


def test_revoking_twice_is_harmless(platform: Platform) -> None:
    publisher = tenants.create_publisher("acc_demo", "Revoke Twice", None)
    issued = api_keys.issue_key("acc_demo", publisher.publisher_id, "x")
    first = api_keys.revoke_key("acc_demo", publisher.publisher_id, issued.item.key_id)
    second = api_keys.revoke_key("acc_demo", publisher.publisher_id, issued.item.key_id)
    assert first is not None and second is not None
    assert first.revoked_at == second.revoked_at
    assert api_keys.authenticate_key(issued.plaintext) is None
    assert api_keys.revoke_key("acc_other", publisher.publisher_id, issued.item.key_id) is None


def test_finishing_a_call_applies_once(platform: Platform) -> None:
    sid = "CA" + secrets.token_hex(16)
    assert calls.record_new_call(
        calls.NewCall(
            sid,
            "acc_demo",
            "inbound",
            "+14155550300",
            "+18005550100",
            "ringing",
            {"from_state": "CA"},
        )
    )
    assert not calls.record_new_call(
        calls.NewCall(sid, "acc_demo", "inbound", "+1999", "+18005550100", "ringing", {})
    )
    assert calls.finish_call(sid, "completed", 120) == "acc_demo"
    assert calls.finish_call(sid, "completed", 121) is None
    assert calls.finish_call("CA" + "f" * 32, "completed", 1) is None  # unknown call
    item = calls.get_call("acc_demo", sid)
    assert item is not None and item.duration_seconds == 120 and item.from_number == "+14155550300"
    assert calls.get_call("acc_someone_else", sid) is None
