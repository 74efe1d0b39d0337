"""Bearer JWTs from the Cognito pool, roles per route, publisher API keys, tenant isolation."""

from __future__ import annotations

import gzip
import json
import time
from importlib import resources
from typing import Any

import boto3
import jwt
import pytest
from chalice.test import Client
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.app import Platform, Tenant, api


def moto_signing_key() -> Any:
    packed = resources.files("moto.cognitoidp").joinpath("resources/jwks-private.json.gz")
    return jwt.PyJWK(json.loads(gzip.decompress(packed.read_bytes()))).key


def claims(platform: Platform, **override: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "iss": f"https://cognito-idp.us-east-1.amazonaws.com/{platform.env['COGNITO_USER_POOL_ID']}",
        "sub": "11111111-2222-3333-4444-555555555555",
        "aud": platform.env["COGNITO_CLIENT_ID"],
        "token_use": "id",
        "iat": now,
        "exp": now + 600,
        "custom:account_id": "acc_demo",
        "custom:role": "admin",
    }
    base.update(override)
    return base


def token(payload: dict[str, Any], key: Any = None, alg: str = "RS256") -> str:
    return jwt.encode(payload, key or moto_signing_key(), algorithm=alg, headers={"kid": "dummy"})


def status(client: Client, path: str, tok: str | None) -> int:
    return int(api(client, "GET", path, tok).status_code)


def test_login_gives_tokens_that_open_the_api(client: Client, platform: Platform) -> None:
    reply = api(
        client,
        "POST",
        "/api/v1/auth/login",
        body={
            "email": platform.secrets.admin_email.upper(),
            "password": platform.secrets.admin_password,
        },
    )
    assert reply.status_code == 200
    body = reply.json_body
    assert {"id_token", "access_token", "refresh_token", "expires_in"} <= set(body)
    me = api(client, "GET", "/api/v1/me", body["id_token"]).json_body
    assert me["account_id"] == "acc_demo" and me["role"] == "admin"
    refreshed = api(
        client, "POST", "/api/v1/auth/refresh", body={"refresh_token": body["refresh_token"]}
    )
    assert refreshed.status_code == 200
    assert status(client, "/api/v1/me", refreshed.json_body["id_token"]) == 200


@pytest.mark.parametrize(
    "body",
    [
        {"email": "admin@demo.example.com", "password": "wrong-password-1"},
        {"email": "nobody@demo.example.com", "password": "whatever-pass-1"},
    ],
    ids=["wrong-password", "unknown-user"],
)
def test_bad_login_is_401_without_saying_why(client: Client, body: dict[str, str]) -> None:
    reply = api(client, "POST", "/api/v1/auth/login", body=body)
    assert reply.status_code == 401
    assert reply.json_body["error"] == "login_failed"


def test_login_with_missing_fields_names_them(client: Client) -> None:
    reply = api(client, "POST", "/api/v1/auth/login", body={"email": "a@b.co"})
    assert reply.status_code == 400
    assert set(reply.json_body["fields"]) == {"password"}


def test_valid_token_signed_by_the_pool_key_is_accepted(client: Client, platform: Platform) -> None:
    # Guards the negative cases below: only the one broken property makes them fail.
    assert status(client, "/api/v1/me", token(claims(platform))) == 200


@pytest.mark.parametrize(
    "case",
    [
        "no-token",
        "garbage",
        "expired",
        "forged",
        "wrong-audience",
        "other-issuer",
        "access-token",
        "no-role",
        "unknown-role",
        "alg-none",
    ],
)
def test_bad_tokens_are_401(client: Client, platform: Platform, case: str) -> None:
    now = int(time.time())
    tok: str | None
    if case == "no-token":
        tok = None
    elif case == "garbage":
        tok = "not.a.jwt"
    elif case == "expired":
        tok = token(claims(platform, iat=now - 7200, exp=now - 3600))
    elif case == "forged":
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        tok = token(claims(platform, **{"custom:role": "super_admin"}), key=other)
    elif case == "wrong-audience":
        tok = token(claims(platform, aud="some-other-client"))
    elif case == "other-issuer":
        tok = token(
            claims(platform, iss="https://cognito-idp.us-east-1.amazonaws.com/us-east-1_other")
        )
    elif case == "access-token":
        tok = token(claims(platform, token_use="access"))
    elif case == "no-role":
        payload = claims(platform)
        del payload["custom:role"]
        tok = token(payload)
    elif case == "unknown-role":
        tok = token(claims(platform, **{"custom:role": "owner"}))
    else:
        tok = jwt.encode(claims(platform), None, algorithm="none", headers={"kid": "dummy"})
    reply = api(client, "GET", "/api/v1/me", tok)
    assert reply.status_code == 401
    assert reply.json_body["error"] == "unauthorized"


def test_token_from_another_user_pool_is_401(client: Client, platform: Platform) -> None:
    # Given a second pool on the same Cognito endpoint (same signing key in moto)
    idp = boto3.client("cognito-idp", endpoint_url=platform.endpoint, region_name="us-east-1")
    pool = idp.create_user_pool(
        PoolName="someone-elses-pool",
        UsernameAttributes=["email"],
        Schema=[
            {"Name": "account_id", "AttributeDataType": "String", "Mutable": True},
            {"Name": "role", "AttributeDataType": "String", "Mutable": True},
        ],
    )["UserPool"]["Id"]
    app_client = idp.create_user_pool_client(
        UserPoolId=pool, ClientName="x", ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"]
    )["UserPoolClient"]["ClientId"]
    idp.admin_create_user(
        UserPoolId=pool,
        Username="mallory@example.com",
        MessageAction="SUPPRESS",
        UserAttributes=[
            {"Name": "custom:account_id", "Value": "acc_demo"},
            {"Name": "custom:role", "Value": "super_admin"},
        ],
    )
    idp.admin_set_user_password(
        UserPoolId=pool, Username="mallory@example.com", Password="Mallory-pass-1", Permanent=True
    )
    foreign = idp.initiate_auth(
        ClientId=app_client,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "mallory@example.com", "PASSWORD": "Mallory-pass-1"},
    )["AuthenticationResult"]["IdToken"]
    # Then its token opens nothing here
    assert status(client, "/api/v1/me", foreign) == 401


def test_roles_are_enforced_per_route(
    client: Client, agent_token: str, admin_token: str, super_token: str
) -> None:
    # agents read, admins manage their account, only super admins manage accounts
    assert status(client, "/api/v1/publishers", agent_token) == 200
    assert status(client, "/api/v1/users", agent_token) == 403
    assert status(client, "/api/v1/users", admin_token) == 200
    assert status(client, "/api/v1/accounts", admin_token) == 403
    assert status(client, "/api/v1/accounts", super_token) == 200
    reply = api(client, "POST", "/api/v1/publishers", agent_token, {"name": "Nope"})
    assert reply.status_code == 403


def test_admin_cannot_grant_a_role_above_their_own(client: Client, admin_token: str) -> None:
    reply = api(
        client,
        "POST",
        "/api/v1/users",
        admin_token,
        {
            "email": "escalate@demo.example.com",
            "password": "Escalate-pass-1",
            "role": "super_admin",
        },
    )
    assert reply.status_code == 403
    assert (
        api(
            client,
            "POST",
            "/api/v1/auth/login",
            body={"email": "escalate@demo.example.com", "password": "Escalate-pass-1"},
        ).status_code
        == 401
    )


def test_another_tenants_items_read_as_missing(
    client: Client, admin_token: str, other_tenant: Tenant
) -> None:
    created = api(client, "POST", "/api/v1/publishers", admin_token, {"name": "Demo Pub"}).json_body
    publisher_id = created["publisher"]["id"]
    assert status(client, f"/api/v1/publishers/{publisher_id}", admin_token) == 200
    # The other account's admin gets 404, not 403: existence is not revealed
    assert status(client, f"/api/v1/publishers/{publisher_id}", other_tenant.admin_token) == 404
    assert (
        status(client, f"/api/v1/publishers/{publisher_id}/keys", other_tenant.admin_token) == 404
    )
    listed = api(client, "GET", "/api/v1/publishers", other_tenant.admin_token).json_body
    assert publisher_id not in {p["id"] for p in listed["publishers"]}


def test_publisher_api_key_lifecycle(
    client: Client, admin_token: str, other_tenant: Tenant
) -> None:
    publisher_id = api(
        client,
        "POST",
        "/api/v1/publishers",
        admin_token,
        {"name": "Key Pub", "contact_email": "Ops@KeyPub.example.com"},
    ).json_body["publisher"]["id"]
    # When a key is created, its plaintext is shown once
    created = api(
        client, "POST", f"/api/v1/publishers/{publisher_id}/keys", admin_token, {"label": "prod"}
    )
    assert created.status_code == 201
    key = created.json_body["key"]["key"]
    key_id = created.json_body["key"]["id"]
    # and never again: listings show only its prefix
    listed = api(client, "GET", f"/api/v1/publishers/{publisher_id}/keys", admin_token).json_body[
        "keys"
    ]
    assert [k["id"] for k in listed] == [key_id]
    assert key not in json.dumps(listed) and listed[0]["prefix"] == key[:10]
    # The key opens the publisher API, by bearer or X-Api-Key
    me = api(client, "GET", "/rtb/v1/me", key).json_body
    assert me == {"account_id": "acc_demo", "publisher_id": publisher_id, "key_id": key_id}
    assert api(client, "GET", "/rtb/v1/me", headers={"X-Api-Key": key}).status_code == 200
    # Another tenant cannot revoke it
    other = api(
        client,
        "DELETE",
        f"/api/v1/publishers/{publisher_id}/keys/{key_id}",
        other_tenant.admin_token,
    )
    assert other.status_code == 404
    assert api(client, "GET", "/rtb/v1/me", key).status_code == 200
    # Revoked, it is refused at once
    revoked = api(client, "DELETE", f"/api/v1/publishers/{publisher_id}/keys/{key_id}", admin_token)
    assert revoked.status_code == 200 and revoked.json_body["key"]["revoked_at"]
    assert api(client, "GET", "/rtb/v1/me", key).status_code == 401


@pytest.mark.parametrize("presented", [None, "ppk_made-up", "x" * 500, "Bearer"])
def test_unknown_api_keys_are_401(client: Client, presented: str | None) -> None:
    assert api(client, "GET", "/rtb/v1/me", presented).status_code == 401


def test_user_jwt_does_not_open_publisher_api(client: Client, admin_token: str) -> None:
    assert api(client, "GET", "/rtb/v1/me", admin_token).status_code == 401


def test_unknown_key_ids_cannot_make_us_refetch_the_key_set_each_time(
    client: Client, platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.auth.tokens import get_verifier

    verifier = get_verifier()
    fetches = []
    real_fetch = verifier._jwks.fetch_data

    def counting_fetch() -> Any:
        fetches.append(time.monotonic())
        return real_fetch()

    monkeypatch.setattr(verifier._jwks, "fetch_data", counting_fetch)
    monkeypatch.setattr(verifier, "_refetched_at", float("-inf"))
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    # When ten tokens arrive, each naming a key id the pool never had
    for n in range(10):
        forged = jwt.encode(claims(platform), other, algorithm="RS256", headers={"kid": f"k{n}"})
        assert api(client, "GET", "/api/v1/me", forged).status_code == 401
    # Then the key set was fetched again once at most, and good tokens still work
    assert len(fetches) <= 1
    assert status(client, "/api/v1/me", token(claims(platform))) == 200
