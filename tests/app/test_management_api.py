"""The management API: validated input with named fields, numbers, the call log, OpenAPI."""

from __future__ import annotations

import base64
import json
import secrets
from datetime import UTC, datetime

import pytest
from chalice.test import Client
from openapi_spec_validator import validate

from chalicelib.store import calls as call_store
from tests.support.app import Platform, Tenant, api


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"name"}),
        ({"name": ""}, {"name"}),
        ({"name": "x" * 200, "contact_email": "not-an-email"}, {"name", "contact_email"}),
        ({"name": "ok", "surprise": 1}, {"surprise"}),
    ],
)
def test_invalid_bodies_name_each_bad_field_and_write_nothing(
    client: Client, admin_token: str, body: dict[str, object], fields: set[str]
) -> None:
    before = api(client, "GET", "/api/v1/publishers", admin_token).json_body["publishers"]
    reply = api(client, "POST", "/api/v1/publishers", admin_token, body)
    assert reply.status_code == 400
    assert reply.json_body["error"] == "validation_error"
    assert set(reply.json_body["fields"]) == fields
    after = api(client, "GET", "/api/v1/publishers", admin_token).json_body["publishers"]
    assert len(after) == len(before)


@pytest.mark.parametrize(
    ("raw", "code"),
    [("{not json", "invalid_json"), ("[1, 2]", "invalid_body"), ('"text"', "invalid_body")],
)
def test_unparseable_json_is_400(client: Client, admin_token: str, raw: str, code: str) -> None:
    reply = api(client, "POST", "/api/v1/publishers", admin_token, raw)
    assert reply.status_code == 400
    assert reply.json_body["error"] == code


def test_oversized_json_is_413(client: Client, admin_token: str) -> None:
    reply = api(
        client, "POST", "/api/v1/publishers", admin_token, '{"name": "%s"}' % ("x" * 300_000)
    )
    assert reply.status_code == 413


def test_wrong_content_type_is_415(client: Client, admin_token: str) -> None:
    reply = api(
        client,
        "POST",
        "/api/v1/publishers",
        admin_token,
        "name=x",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert reply.status_code == 415


def test_tracking_numbers_are_validated_owned_and_unique(
    client: Client, admin_token: str, other_tenant: Tenant
) -> None:
    bad = api(client, "POST", "/api/v1/numbers", admin_token, {"number": "(800) 555-0199"})
    assert bad.status_code == 400 and set(bad.json_body["fields"]) == {"number"}
    made = api(
        client,
        "POST",
        "/api/v1/numbers",
        admin_token,
        {"number": "+18005550199", "friendly_name": "TV"},
    )
    assert made.status_code == 201
    numbers = api(client, "GET", "/api/v1/numbers", admin_token).json_body["numbers"]
    assert "+18005550199" in {n["number"] for n in numbers}
    # Another account cannot take it, nor see it
    taken = api(
        client, "POST", "/api/v1/numbers", other_tenant.admin_token, {"number": "+18005550199"}
    )
    assert taken.status_code == 409 and taken.json_body["fields"] == {"number": "taken"}
    theirs = api(client, "GET", "/api/v1/numbers", other_tenant.admin_token).json_body["numbers"]
    assert "+18005550199" not in {n["number"] for n in theirs}


def test_call_log_pages_newest_first_and_stays_in_its_tenant(
    client: Client, admin_token: str, other_tenant: Tenant
) -> None:
    # Given three calls of another account on one day
    sids = []
    for n in range(3):
        sid = "CA" + secrets.token_hex(16)
        at = datetime(2026, 3, 14, 15, 9, n, tzinfo=UTC)
        call_store.record_new_call(
            call_store.NewCall(
                sid,
                other_tenant.account_id,
                "inbound",
                f"+1415555020{n}",
                "+18005550111",
                "ringing",
                {},
            ),
            at=at,
        )
        sids.append(sid)
    # When its admin pages through them two at a time
    day = "day=2026-03-14"
    first = api(client, "GET", f"/api/v1/calls?{day}&limit=2", other_tenant.admin_token).json_body
    second = api(
        client,
        "GET",
        f"/api/v1/calls?{day}&limit=2&cursor={first['cursor']}",
        other_tenant.admin_token,
    ).json_body
    listed = [c["call_sid"] for c in first["calls"] + second["calls"]]
    # Then they come newest first, once each
    assert listed == list(reversed(sids))
    # And the demo admin sees none of them, and cannot open one
    mine = api(client, "GET", f"/api/v1/calls?{day}&limit=200", admin_token).json_body["calls"]
    assert not set(sids) & {c["call_sid"] for c in mine}
    assert api(client, "GET", f"/api/v1/calls/{sids[0]}", admin_token).status_code == 404
    assert (
        api(client, "GET", f"/api/v1/calls/{sids[0]}", other_tenant.admin_token).status_code == 200
    )
    # and another tenant's cursor only positions a listing of its own calls
    stolen = api(client, "GET", f"/api/v1/calls?{day}&cursor={first['cursor']}", admin_token)
    assert stolen.status_code == 200
    assert not set(sids) & {c["call_sid"] for c in stolen.json_body["calls"]}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("day=21-11-2026", "day"),
        ("limit=0", "limit"),
        ("limit=abc", "limit"),
        ("limit=%C2%B2", "limit"),  # a superscript two is a digit to str.isdigit()
        ("cursor=%%%", "cursor"),
        (
            "cursor="
            + base64.urlsafe_b64encode(
                json.dumps({"pk": "x", "sk": "y", "gsi1pk": "z", "gsi1sk": "w"}).encode()
            ).decode(),
            "cursor",
        ),
        (
            "cursor="
            + base64.urlsafe_b64encode(
                json.dumps({k: {"N": "1"} for k in ("pk", "sk", "gsi1pk", "gsi1sk")}).encode()
            ).decode(),
            "cursor",
        ),
    ],
)
def test_bad_call_log_queries_name_the_parameter(
    client: Client, admin_token: str, query: str, field: str
) -> None:
    reply = api(client, "GET", f"/api/v1/calls?{query}", admin_token)
    assert reply.status_code == 400
    assert set(reply.json_body["fields"]) == {field}


def test_super_admin_creates_accounts_with_unique_admin_email(
    client: Client, super_token: str, other_tenant: Tenant
) -> None:
    again = api(
        client,
        "POST",
        "/api/v1/accounts",
        super_token,
        {
            "name": "Dup",
            "admin_email": "boss@other.example.com",
            "admin_password": "Other-admin-pass-2",
        },
    )
    assert again.status_code == 409
    listed = api(client, "GET", "/api/v1/accounts", super_token).json_body["accounts"]
    assert other_tenant.account_id in {a["id"] for a in listed}
    assert "Dup" not in {a["name"] for a in listed}


def test_openapi_document_is_valid_and_matches_the_routes(
    client: Client, platform: Platform
) -> None:
    reply = client.http.get("/openapi.json")
    assert reply.status_code == 200
    document = reply.json_body
    validate(document)
    documented = {
        (path, method.upper()) for path, ops in document["paths"].items() for method in ops
    }
    routed = {(path, method) for path, methods in platform.app.routes.items() for method in methods}
    assert documented == routed


def test_a_password_the_pool_refuses_is_a_400_on_that_field_and_leaves_no_login(
    client: Client, admin_token: str
) -> None:
    # Cognito's default policy wants upper case, lower case, digits and symbols
    reply = api(
        client,
        "POST",
        "/api/v1/users",
        admin_token,
        {"email": "weak@demo.example.com", "password": "alllowercaseletters", "role": "agent"},
    )
    assert reply.status_code == 400
    assert set(reply.json_body["fields"]) == {"password"}
    # The email is free again: nothing half-made was left behind
    retry = api(
        client,
        "POST",
        "/api/v1/users",
        admin_token,
        {"email": "weak@demo.example.com", "password": "Strong-enough-1", "role": "agent"},
    )
    assert retry.status_code == 201
