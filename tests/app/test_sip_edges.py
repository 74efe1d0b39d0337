"""SIP edges: the management API (edges, phones' credentials, presence views) and the
`/edge/v1` endpoints an edge calls with its shared secret (credentials, registration reports,
registration snapshots)."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from chalice.test import Client

from tests.support.app import Tenant, api

EDGES = "/api/v1/sip-edges"
DEVICES = "/api/v1/sip-devices"
CREDENTIALS = "/edge/v1/credentials"
REPORTS = "/edge/v1/registrations"
SYNC = "/edge/v1/registrations/sync"


# --- helpers -------------------------------------------------------------------------------


def uid() -> str:
    return secrets.token_hex(4)


def md5_ha1(extension: str, domain: str, password: str) -> str:
    return hashlib.md5(f"{extension}:{domain}:{password}".encode()).hexdigest()  # noqa: S324


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def header(reply: Any, name: str) -> str | None:
    for key, value in reply.headers.items():
        if key.lower() == name.lower():
            return str(value)
    return None


def text(reply: Any) -> str:
    return bytes(reply.body).decode()


def changes(edge_id: str, ext: str) -> list[tuple[str, str, dict[str, Any] | None]]:
    """Every request that changes an edge or its phone `ext` (an admin's, and no one else's)."""
    return [
        ("POST", f"{EDGES}/{edge_id}/devices", {"extension": f"8{uid()}"}),
        ("POST", f"{EDGES}/{edge_id}/devices/{ext}/password", None),
        ("POST", f"{EDGES}/{edge_id}/secret", None),
        ("DELETE", f"{EDGES}/{edge_id}/devices/{ext}", None),
        ("DELETE", f"{EDGES}/{edge_id}", None),
    ]


def new_edge(client: Client, token: str, name: str = "Office") -> tuple[dict[str, Any], str]:
    """An edge with a fresh domain; returns its view (as created) and its secret."""
    domain = f"sip-{uid()}.example.test"
    reply = api(client, "POST", EDGES, token, {"name": name, "domain": domain})
    assert reply.status_code == 201, reply.body
    edge = reply.json_body["edge"]
    return edge, str(edge["secret"])


def new_device(
    client: Client, token: str, edge_id: str, extension: str, **extra: Any
) -> dict[str, Any]:
    body = {"extension": extension, "label": f"desk {extension}", **extra}
    reply = api(client, "POST", f"{EDGES}/{edge_id}/devices", token, body)
    assert reply.status_code == 201, reply.body
    return dict(reply.json_body["device"])


def edge_call(
    client: Client, method: str, path: str, secret: str | None, body: Any = None, **headers: str
) -> Any:
    all_headers = dict(headers)
    if secret is not None:
        all_headers["X-Edge-Secret"] = secret
    return api(client, method, path, body=body, headers=all_headers)


def credentials(client: Client, secret: str) -> tuple[dict[str, Any], str]:
    reply = edge_call(client, "GET", CREDENTIALS, secret)
    assert reply.status_code == 200, reply.body
    etag = header(reply, "ETag")
    assert etag
    return reply.json_body, etag


def ha1s(body: dict[str, Any]) -> dict[str, str]:
    return {c["extension"]: c["ha1"] for c in body["credentials"]}


def report(client: Client, secret: str, extension: str, **fields: Any) -> Any:
    body = {"extension": extension, "registered": True, "contact_count": 1, **fields}
    return edge_call(client, "POST", REPORTS, secret, body)


def device_views(client: Client, token: str, edge_id: str, query: str = "") -> dict[str, Any]:
    """This edge's phones by extension, as GET /sip-devices lists them."""
    reply = api(client, "GET", f"{DEVICES}{query}", token)
    assert reply.status_code == 200, reply.body
    return {d["extension"]: d for d in reply.json_body["devices"] if d["edge_id"] == edge_id}


def edge_view(client: Client, token: str, edge_id: str) -> dict[str, Any]:
    reply = api(client, "GET", f"{EDGES}/{edge_id}", token)
    assert reply.status_code == 200, reply.body
    return dict(reply.json_body)


def agent_user_id(client: Client, admin_token: str, agent_token: str) -> str:
    assert agent_token  # the fixture made the agent user
    users = api(client, "GET", "/api/v1/users", admin_token).json_body["users"]
    return next(u["id"] for u in users if u["email"] == "agent@demo.example.com")


# --- edges ---------------------------------------------------------------------------------


def test_an_edge_secret_is_shown_once_and_never_listed(client: Client, admin_token: str) -> None:
    # Given an admin creating an edge
    domain = f"sip-{uid()}.example.test"
    made = api(client, "POST", EDGES, admin_token, {"name": "HQ", "domain": domain})
    # Then the answer carries the secret, once, not to be cached
    assert made.status_code == 201
    assert header(made, "Cache-Control") == "no-store"
    edge = made.json_body["edge"]
    secret = edge["secret"]
    assert secret.startswith("edg_") and len(secret) > 30
    assert text(made).count(secret) == 1
    assert edge["name"] == "HQ" and edge["domain"] == domain
    assert edge["secret_prefix"] == secret[:8]
    assert (edge["devices"], edge["online"], edge["last_sync_at"]) == (0, 0, None)
    digest = hashlib.sha256(secret.encode()).hexdigest()
    # When the edge is listed or opened
    listed = api(client, "GET", EDGES, admin_token)
    opened = api(client, "GET", f"{EDGES}/{edge['id']}", admin_token)
    # Then it is there, without the secret or its hash
    assert listed.status_code == 200 and opened.status_code == 200
    mine = [e for e in listed.json_body["edges"] if e["id"] == edge["id"]]
    assert len(mine) == 1 and mine[0]["domain"] == domain
    assert opened.json_body["edge"]["domain"] == domain
    assert opened.json_body["devices"] == []
    # nor the call token, which only the edge (and routing's TwiML) gets
    call_token = credentials(client, secret)[0]["call_token"]
    for reply in (made, listed, opened):
        assert call_token not in text(reply)
    for reply in (listed, opened):
        assert secret not in text(reply)
        assert digest not in text(reply)
        assert "secret" not in (mine[0].keys() | opened.json_body["edge"].keys())


@pytest.mark.parametrize(
    "domain",
    ["not a domain", "-lead.example.com", "under_score.example.com", "a..b.example.com", ""],
)
def test_a_bad_edge_domain_is_a_400_on_domain(
    client: Client, admin_token: str, domain: str
) -> None:
    before = len(api(client, "GET", EDGES, admin_token).json_body["edges"])
    reply = api(client, "POST", EDGES, admin_token, {"name": "Bad", "domain": domain})
    assert reply.status_code == 400
    assert reply.json_body["error"] == "validation_error"
    assert set(reply.json_body["fields"]) == {"domain"}
    assert len(api(client, "GET", EDGES, admin_token).json_body["edges"]) == before


def test_an_account_has_one_edge_per_domain(client: Client, admin_token: str) -> None:
    edge, _ = new_edge(client, admin_token)
    # The same domain again, in any letter case, is taken
    for domain in (edge["domain"], edge["domain"].upper()):
        again = api(client, "POST", EDGES, admin_token, {"name": "Again", "domain": domain})
        assert again.status_code == 409
        assert again.json_body["fields"] == {"domain": "taken"}
    listed = api(client, "GET", EDGES, admin_token).json_body["edges"]
    assert [e["domain"] for e in listed].count(edge["domain"]) == 1


# --- devices -------------------------------------------------------------------------------


def test_a_device_password_is_shown_once_and_only_the_edge_gets_its_ha1(
    client: Client, admin_token: str
) -> None:
    edge, secret = new_edge(client, admin_token)
    ext = f"1{uid()}"
    # When an admin adds a phone
    made = api(client, "POST", f"{EDGES}/{edge['id']}/devices", admin_token, {"extension": ext})
    # Then it gets a password with what the phone needs, and starts offline
    assert made.status_code == 201
    assert header(made, "Cache-Control") == "no-store"
    device = made.json_body["device"]
    password = device["password"]
    assert len(password) >= 16
    assert device["username"] == ext
    assert device["realm"] == edge["domain"]
    assert device["sip_uri"] == f"sip:{ext}@{edge['domain']}"
    assert device["edge_id"] == edge["id"]
    assert device["status"] == "offline" and device["contacts"] == 0
    assert device["last_seen"] is None and device["registered_until"] is None
    ha1 = md5_ha1(ext, edge["domain"], password)
    assert ha1 not in text(made)
    # And no later view shows the password or the HA1
    views = [
        api(client, "GET", EDGES, admin_token),
        api(client, "GET", f"{EDGES}/{edge['id']}", admin_token),
        api(client, "GET", DEVICES, admin_token),
        api(client, "GET", f"{DEVICES}?status=offline", admin_token),
    ]
    for reply in views:
        assert reply.status_code == 200
        assert password not in text(reply)
        assert ha1 not in text(reply)
    opened = views[1].json_body
    assert opened["edge"]["devices"] == 1
    assert [d["extension"] for d in opened["devices"]] == [ext]
    assert "password" not in opened["devices"][0] and "ha1" not in opened["devices"][0]
    # But the edge's credentials carry the HA1 of that password
    body, _ = credentials(client, secret)
    assert body["domain"] == edge["domain"]
    assert body["credentials"] == [{"extension": ext, "ha1": ha1}]
    assert password not in text(edge_call(client, "GET", CREDENTIALS, secret))


def test_a_device_can_belong_to_a_user_of_the_account(
    client: Client, admin_token: str, agent_token: str, other_tenant: Tenant
) -> None:
    edge, _ = new_edge(client, admin_token)
    agent_id = agent_user_id(client, admin_token, agent_token)
    ext = f"2{uid()}"
    device = new_device(client, admin_token, edge["id"], ext, user_id=agent_id)
    assert device["user_id"] == agent_id and device["label"] == f"desk {ext}"
    mine = device_views(client, admin_token, edge["id"], f"?user_id={agent_id}")
    assert set(mine) == {ext}
    # A user of another account, or no user at all, is refused
    theirs = api(client, "GET", "/api/v1/users", other_tenant.admin_token).json_body["users"]
    for user_id in (theirs[0]["id"], "usr_nobody"):
        reply = api(
            client,
            "POST",
            f"{EDGES}/{edge['id']}/devices",
            admin_token,
            {"extension": f"3{uid()}", "user_id": user_id},
        )
        assert reply.status_code == 400
        assert reply.json_body["fields"] == {"user_id": "unknown"}
    assert set(device_views(client, admin_token, edge["id"])) == {ext}


@pytest.mark.parametrize(
    "extension", ["10 01", "x" * 40, 'a"b', "", "1001;x", "1001@x", "<1001>", 1001]
)
def test_a_bad_extension_is_a_400_on_extension(
    client: Client, admin_token: str, extension: Any
) -> None:
    edge, _ = new_edge(client, admin_token)
    reply = api(
        client, "POST", f"{EDGES}/{edge['id']}/devices", admin_token, {"extension": extension}
    )
    assert reply.status_code == 400
    assert set(reply.json_body["fields"]) == {"extension"}
    assert device_views(client, admin_token, edge["id"]) == {}


def test_an_extension_has_one_credential_per_edge(client: Client, admin_token: str) -> None:
    edge, secret = new_edge(client, admin_token)
    ext = f"4{uid()}"
    first = new_device(client, admin_token, edge["id"], ext)
    again = api(client, "POST", f"{EDGES}/{edge['id']}/devices", admin_token, {"extension": ext})
    assert again.status_code == 409
    assert again.json_body["fields"] == {"extension": "taken"}
    # The first password still holds
    body, _ = credentials(client, secret)
    assert ha1s(body) == {ext: md5_ha1(ext, edge["domain"], first["password"])}
    # The same extension on another edge is a separate credential
    other, _ = new_edge(client, admin_token)
    assert new_device(client, admin_token, other["id"], ext)["sip_uri"] == (
        f"sip:{ext}@{other['domain']}"
    )


def test_devices_of_an_unknown_edge_are_404(client: Client, admin_token: str) -> None:
    missing = f"edge_{uid()}"
    assert api(client, "GET", f"{EDGES}/{missing}", admin_token).status_code == 404
    added = api(client, "POST", f"{EDGES}/{missing}/devices", admin_token, {"extension": "1001"})
    assert added.status_code == 404
    assert api(client, "POST", f"{EDGES}/{missing}/secret", admin_token).status_code == 404
    rotated = api(client, "POST", f"{EDGES}/{missing}/devices/1001/password", admin_token)
    assert rotated.status_code == 404
    edge, _ = new_edge(client, admin_token)
    unknown_ext = api(
        client, "POST", f"{EDGES}/{edge['id']}/devices/9{uid()}/password", admin_token
    )
    assert unknown_ext.status_code == 404
    gone = api(client, "DELETE", f"{EDGES}/{edge['id']}/devices/9{uid()}", admin_token)
    assert gone.status_code == 404


# --- roles and tenants ---------------------------------------------------------------------


def test_agents_see_phones_but_cannot_manage_them(
    client: Client, admin_token: str, agent_token: str
) -> None:
    edge, secret = new_edge(client, admin_token)
    ext = f"5{uid()}"
    new_device(client, admin_token, edge["id"], ext)
    _, etag = credentials(client, secret)
    # An agent reads the edges and the phones
    listed = api(client, "GET", EDGES, agent_token)
    assert listed.status_code == 200
    assert edge["id"] in {e["id"] for e in listed.json_body["edges"]}
    assert edge_view(client, agent_token, edge["id"])["edge"]["devices"] == 1
    assert set(device_views(client, agent_token, edge["id"])) == {ext}
    # But changes nothing
    new_edge_request = ("POST", EDGES, {"name": "Mine", "domain": f"sip-{uid()}.example.test"})
    for method, path, body in [new_edge_request, *changes(edge["id"], ext)]:
        reply = api(client, method, path, agent_token, body)
        assert reply.status_code == 403, (method, path)
        assert reply.json_body["error"] == "forbidden"
    assert set(device_views(client, admin_token, edge["id"])) == {ext}
    # The secret and the HA1 are the same as before
    assert header(edge_call(client, "GET", CREDENTIALS, secret), "ETag") == etag


def test_another_account_neither_sees_nor_touches_the_edge(
    client: Client, admin_token: str, other_tenant: Tenant
) -> None:
    edge, secret = new_edge(client, admin_token)
    ext = f"7{uid()}"
    new_device(client, admin_token, edge["id"], ext)
    _, etag = credentials(client, secret)
    theirs = other_tenant.admin_token
    # It cannot open, extend, rotate or revoke it
    assert api(client, "GET", f"{EDGES}/{edge['id']}", theirs).status_code == 404
    for method, path, body in changes(edge["id"], ext):
        assert api(client, method, path, theirs, body).status_code == 404, (method, path)
    # Nor does it list the edge or its phones
    listed = api(client, "GET", EDGES, theirs).json_body["edges"]
    assert edge["id"] not in {e["id"] for e in listed}
    assert device_views(client, theirs, edge["id"]) == {}
    # And this account's edge is as it was
    assert set(device_views(client, admin_token, edge["id"])) == {ext}
    assert header(edge_call(client, "GET", CREDENTIALS, secret), "ETag") == etag


def test_an_edge_of_another_account_on_the_same_domain_gets_none_of_its_phones(
    client: Client, admin_token: str, other_tenant: Tenant
) -> None:
    edge, secret = new_edge(client, admin_token)
    ext = f"1{uid()}"
    new_device(client, admin_token, edge["id"], ext)
    reply = api(
        client, "POST", EDGES, other_tenant.admin_token, {"name": "X", "domain": edge["domain"]}
    )
    assert reply.status_code == 201
    theirs = reply.json_body["edge"]
    body, _ = credentials(client, theirs["secret"])
    mine, _ = credentials(client, secret)
    assert body["domain"] == edge["domain"] and body["credentials"] == []
    assert set(ha1s(mine)) == {ext}
    # Each edge has its own call token: the other account's calls cannot ring these phones.
    assert len(body["call_token"]) >= 32 and len(mine["call_token"]) >= 32
    assert body["call_token"] != mine["call_token"]


# --- /edge/v1 authentication and credentials -----------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"), [("GET", CREDENTIALS), ("POST", REPORTS), ("POST", SYNC)]
)
@pytest.mark.parametrize("presented", [None, "", "edg_wrong", "edg", "prefix", "bearer"])
def test_edge_endpoints_need_the_edge_secret(
    client: Client, admin_token: str, method: str, path: str, presented: str | None
) -> None:
    edge, secret = new_edge(client, admin_token)
    ext = f"1{uid()}"
    new_device(client, admin_token, edge["id"], ext)
    now = time.time()
    bodies = {
        CREDENTIALS: None,
        REPORTS: {"extension": ext, "registered": True, "contact_count": 1, "at": now},
        SYNC: {"at": now, "registrations": [{"extension": ext, "contact_count": 1}]},
    }
    headers: dict[str, str] = {}
    if presented == "prefix":  # what the management API shows of the secret
        presented = edge["secret_prefix"]
    elif presented == "bearer":  # a dashboard login is not an edge
        headers = {"Authorization": f"Bearer {admin_token}"}
        presented = None
    reply = edge_call(client, method, path, presented, bodies[path], **headers)
    assert reply.status_code == 401
    assert reply.json_body["error"] == "unauthorized"
    # Nothing was reported
    assert device_views(client, admin_token, edge["id"])[ext]["status"] == "offline"
    assert edge_view(client, admin_token, edge["id"])["edge"]["last_sync_at"] is None
    assert edge_call(client, "GET", CREDENTIALS, secret).status_code == 200


def test_credentials_are_the_ha1_of_each_phone_with_an_etag(
    client: Client, admin_token: str
) -> None:
    edge, secret = new_edge(client, admin_token)
    domain = edge["domain"]
    exts = [f"30{uid()}", f"10{uid()}", f"20{uid()}"]
    passwords = {ext: new_device(client, admin_token, edge["id"], ext)["password"] for ext in exts}
    # When the edge pulls its credentials
    reply = edge_call(client, "GET", CREDENTIALS, secret)
    # Then they are every phone's HA1, sorted by extension, not to be cached
    assert reply.status_code == 200
    assert header(reply, "Cache-Control") == "no-store"
    body = reply.json_body
    assert body["domain"] == domain
    assert body["credentials"] == [
        {"extension": ext, "ha1": md5_ha1(ext, domain, passwords[ext])} for ext in sorted(exts)
    ]
    etag = header(reply, "ETag")
    assert etag and etag.startswith('"') and etag.endswith('"')
    # And an unchanged set is a 304 with the same ETag
    unchanged = edge_call(client, "GET", CREDENTIALS, secret, **{"If-None-Match": etag})
    assert unchanged.status_code == 304
    assert unchanged.body == b""
    assert header(unchanged, "ETag") == etag
    # While another ETag gets the whole set
    stale = edge_call(client, "GET", CREDENTIALS, secret, **{"If-None-Match": '"other"'})
    assert stale.status_code == 200 and stale.json_body == body


def test_a_new_password_changes_the_ha1_and_the_etag(client: Client, admin_token: str) -> None:
    edge, secret = new_edge(client, admin_token)
    ext, keep = f"1{uid()}", f"2{uid()}"
    old = new_device(client, admin_token, edge["id"], ext)["password"]
    kept = new_device(client, admin_token, edge["id"], keep)["password"]
    before, etag = credentials(client, secret)
    # When an admin rotates the phone's password
    rotated = api(client, "POST", f"{EDGES}/{edge['id']}/devices/{ext}/password", admin_token)
    # Then a new password is shown, once
    assert rotated.status_code == 200
    assert header(rotated, "Cache-Control") == "no-store"
    device = rotated.json_body["device"]
    new = device["password"]
    assert new != old and len(new) >= 16
    assert device["username"] == ext and device["realm"] == edge["domain"]
    assert device["password_rotated_at"] is not None
    new_ha1 = md5_ha1(ext, edge["domain"], new)
    # And the edge gets the new HA1 (the other phone's is unchanged), under a new ETag
    assert (
        edge_call(client, "GET", CREDENTIALS, secret, **{"If-None-Match": etag}).status_code == 200
    )
    after, new_etag = credentials(client, secret)
    assert new_etag != etag
    assert ha1s(after) == {
        ext: new_ha1,
        keep: md5_ha1(keep, edge["domain"], kept),
    }
    assert ha1s(before)[ext] == md5_ha1(ext, edge["domain"], old) != new_ha1
    # Nowhere else does the new password or its HA1 show
    for path in (EDGES, f"{EDGES}/{edge['id']}", DEVICES):
        reply = api(client, "GET", path, admin_token)
        assert new not in text(reply) and new_ha1 not in text(reply)
    assert device_views(client, admin_token, edge["id"])[ext]["password_rotated_at"] is not None


def test_a_revoked_phone_is_gone_from_the_edge_and_the_lists(
    client: Client, admin_token: str
) -> None:
    edge, secret = new_edge(client, admin_token)
    gone, stays = f"1{uid()}", f"2{uid()}"
    new_device(client, admin_token, edge["id"], gone)
    new_device(client, admin_token, edge["id"], stays)
    assert report(client, secret, gone, at=time.time() - 5).json_body == {"result": "applied"}
    _, etag = credentials(client, secret)
    # When an admin revokes one
    reply = api(client, "DELETE", f"{EDGES}/{edge['id']}/devices/{gone}", admin_token)
    assert reply.status_code == 204
    # Then the edge no longer authenticates it, and the lists no longer show it
    body, new_etag = credentials(client, secret)
    assert set(ha1s(body)) == {stays} and new_etag != etag
    assert set(device_views(client, admin_token, edge["id"])) == {stays}
    opened = edge_view(client, admin_token, edge["id"])
    assert [d["extension"] for d in opened["devices"]] == [stays]
    assert (opened["edge"]["devices"], opened["edge"]["online"]) == (1, 0)
    # And its reports and a second revocation find nothing
    assert report(client, secret, gone, at=time.time()).status_code == 404
    again = api(client, "DELETE", f"{EDGES}/{edge['id']}/devices/{gone}", admin_token)
    assert again.status_code == 404


def test_a_rotated_edge_secret_replaces_the_old_one_at_once(
    client: Client, admin_token: str
) -> None:
    edge, old = new_edge(client, admin_token)
    ext = f"1{uid()}"
    new_device(client, admin_token, edge["id"], ext)
    before, _ = credentials(client, old)
    # When an admin rotates the edge's secret
    reply = api(client, "POST", f"{EDGES}/{edge['id']}/secret", admin_token)
    # Then a new secret is shown, once
    assert reply.status_code == 200
    assert header(reply, "Cache-Control") == "no-store"
    view = reply.json_body["edge"]
    new = view["secret"]
    assert new.startswith("edg_") and new != old
    assert view["secret_prefix"] == new[:8] and view["secret_rotated_at"] is not None
    assert view["devices"] == 1
    # And the old one is refused everywhere while the new one works
    assert edge_call(client, "GET", CREDENTIALS, old).status_code == 401
    assert report(client, old, ext, at=time.time()).status_code == 401
    body, _ = credentials(client, new)
    assert body["domain"] == edge["domain"] and set(ha1s(body)) == {ext}
    # And the call token was replaced with it
    assert body["call_token"] != before["call_token"]
    assert report(client, new, ext, at=time.time()).json_body == {"result": "applied"}
    # The views show neither secret
    opened = api(client, "GET", f"{EDGES}/{edge['id']}", admin_token)
    assert old not in text(opened) and new not in text(opened)
    assert opened.json_body["edge"]["secret_prefix"] == new[:8]


def test_an_edge_secret_opens_only_its_own_edge(client: Client, admin_token: str) -> None:
    # Given two edges of one account, each with a phone (one extension on both)
    first, first_secret = new_edge(client, admin_token, "First")
    second, second_secret = new_edge(client, admin_token, "Second")
    shared, only_first, only_second = f"1{uid()}", f"2{uid()}", f"3{uid()}"
    pw1 = new_device(client, admin_token, first["id"], shared)["password"]
    new_device(client, admin_token, first["id"], only_first)
    pw2 = new_device(client, admin_token, second["id"], shared)["password"]
    new_device(client, admin_token, second["id"], only_second)
    # Then each secret lists only its own edge's credentials, in its own realm
    one, _ = credentials(client, first_secret)
    two, _ = credentials(client, second_secret)
    assert one["domain"] == first["domain"] and two["domain"] == second["domain"]
    assert set(ha1s(one)) == {shared, only_first}
    assert set(ha1s(two)) == {shared, only_second}
    assert ha1s(one)[shared] == md5_ha1(shared, first["domain"], pw1)
    assert ha1s(two)[shared] == md5_ha1(shared, second["domain"], pw2)
    # And reports only its own edge's phones
    assert report(client, first_secret, only_second, at=time.time()).status_code == 404
    assert report(client, first_secret, shared, at=time.time()).status_code == 200
    assert device_views(client, admin_token, first["id"])[shared]["status"] == "online"
    assert device_views(client, admin_token, second["id"])[shared]["status"] == "offline"


# --- presence reports ----------------------------------------------------------------------


def test_a_registration_report_brings_a_phone_online(client: Client, admin_token: str) -> None:
    edge, secret = new_edge(client, admin_token)
    ext, idle = f"1{uid()}", f"2{uid()}"
    new_device(client, admin_token, edge["id"], ext)
    new_device(client, admin_token, edge["id"], idle)
    at = int(time.time()) - 30
    until = at + 3600
    # When the edge reports the phone registered
    reply = report(
        client,
        secret,
        ext,
        contact_count=2,
        user_agent="Yealink SIP-T46U 108.86.0.45",
        source="udp:203.0.113.7:5062",
        expires=until,
        at=at,
    )
    # Then it is online with what the edge said
    assert reply.status_code == 200 and reply.json_body == {"result": "applied"}
    device = device_views(client, admin_token, edge["id"])[ext]
    assert device["status"] == "online"
    assert device["contacts"] == 2
    assert device["user_agent"] == "Yealink SIP-T46U 108.86.0.45"
    assert device["source"] == "udp:203.0.113.7:5062"
    assert device["last_seen"] == iso(at)
    assert device["registered_until"] == iso(until)
    # And the other phone is still offline; the edge counts one online
    assert device_views(client, admin_token, edge["id"])[idle]["status"] == "offline"
    assert edge_view(client, admin_token, edge["id"])["edge"]["online"] == 1
    listed = api(client, "GET", EDGES, admin_token).json_body["edges"]
    assert next(e for e in listed if e["id"] == edge["id"])["online"] == 1


def test_a_report_older_than_the_recorded_one_changes_nothing(
    client: Client, admin_token: str
) -> None:
    edge, secret = new_edge(client, admin_token)
    ext = f"1{uid()}"
    new_device(client, admin_token, edge["id"], ext)
    at = int(time.time()) - 60
    assert report(client, secret, ext, user_agent="new", at=at).json_body == {"result": "applied"}
    before = device_views(client, admin_token, edge["id"])[ext]
    # When an older unregister and an older register arrive late
    late_off = report(client, secret, ext, registered=False, contact_count=0, at=at - 10)
    late_on = report(client, secret, ext, user_agent="old", contact_count=3, at=at - 5)
    # Then both are stale and the phone is as the newer report said
    assert late_off.status_code == 200 and late_off.json_body == {"result": "stale"}
    assert late_on.status_code == 200 and late_on.json_body == {"result": "stale"}
    after = device_views(client, admin_token, edge["id"])[ext]
    assert after == before
    assert (after["status"], after["user_agent"], after["contacts"]) == ("online", "new", 1)


def test_an_unregister_takes_the_phone_offline_and_keeps_last_seen(
    client: Client, admin_token: str
) -> None:
    edge, secret = new_edge(client, admin_token)
    ext = f"1{uid()}"
    new_device(client, admin_token, edge["id"], ext)
    at = int(time.time()) - 60
    report(client, secret, ext, expires=at + 3600, at=at)
    assert device_views(client, admin_token, edge["id"])[ext]["status"] == "online"
    # When the edge reports it unregistered
    off = report(client, secret, ext, registered=False, contact_count=0, expires=0, at=at + 30)
    # Then it is offline, last seen when it was registered
    assert off.json_body == {"result": "applied"}
    device = device_views(client, admin_token, edge["id"])[ext]
    assert device["status"] == "offline"
    assert device["contacts"] == 0
    assert device["registered_until"] is None
    assert device["last_seen"] == iso(at)
    assert edge_view(client, admin_token, edge["id"])["edge"]["online"] == 0
    # "Registered" with no contacts left is offline too
    report(client, secret, ext, at=at + 40)
    zero = report(client, secret, ext, registered=True, contact_count=0, at=at + 50)
    assert zero.json_body == {"result": "applied"}
    device = device_views(client, admin_token, edge["id"])[ext]
    assert device["status"] == "offline" and device["last_seen"] == iso(at + 40)


def test_a_report_for_an_unknown_extension_is_404(client: Client, admin_token: str) -> None:
    edge, secret = new_edge(client, admin_token)
    reply = report(client, secret, f"9{uid()}", at=time.time())
    assert reply.status_code == 404
    assert reply.json_body["error"] == "not_found"
    assert device_views(client, admin_token, edge["id"]) == {}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda body, now: body.update(contact_count=-1), "contact_count"),
        (lambda body, now: body.update(contact_count=101), "contact_count"),
        (lambda body, now: body.update(extension='10"01'), "extension"),
        (lambda body, now: body.pop("registered"), "registered"),
        (lambda body, now: body.update(registered="maybe"), "registered"),
        (lambda body, now: body.update(at=now + 86400 + 600), "at"),
        (lambda body, now: body.update(at=now - 2 * 86400), "at"),
        (lambda body, now: body.update(at=0), "at"),
        (lambda body, now: body.update(expires=-1), "expires"),
        (lambda body, now: body.update(user_agent="x" * 300), "user_agent"),
        (lambda body, now: body.update(source="y" * 100), "source"),
        (lambda body, now: body.update(surprise=1), "surprise"),
    ],
)
def test_a_bad_report_is_a_400_naming_the_field(
    client: Client, admin_token: str, change: Callable[[dict[str, Any], float], Any], field: str
) -> None:
    edge, secret = new_edge(client, admin_token)
    ext = f"1{uid()}"
    new_device(client, admin_token, edge["id"], ext)
    now = time.time()
    body: dict[str, Any] = {
        "extension": ext,
        "registered": True,
        "contact_count": 1,
        "expires": now + 600,
        "at": now,
    }
    change(body, now)
    reply = edge_call(client, "POST", REPORTS, secret, body)
    assert reply.status_code == 400
    assert reply.json_body["error"] == "validation_error"
    assert set(reply.json_body["fields"]) == {field}
    device = device_views(client, admin_token, edge["id"])[ext]
    assert device["status"] == "offline" and device["last_seen"] is None


def test_a_registration_that_has_run_out_shows_offline(client: Client, admin_token: str) -> None:
    edge, secret = new_edge(client, admin_token)
    ext, live = f"1{uid()}", f"2{uid()}"
    new_device(client, admin_token, edge["id"], ext)
    new_device(client, admin_token, edge["id"], live)
    now = int(time.time())
    # Given a registered report whose expiry is already past, and one with no expiry known
    assert report(client, secret, ext, expires=now - 10, at=now - 20).json_body == {
        "result": "applied"
    }
    assert report(client, secret, live, expires=0, at=now - 20).json_body == {"result": "applied"}
    views = device_views(client, admin_token, edge["id"])
    # Then the first is offline (though seen), the second online with no expiry
    assert views[ext]["status"] == "offline"
    assert views[ext]["registered_until"] is None and views[ext]["contacts"] == 0
    assert views[ext]["last_seen"] == iso(now - 20)
    assert views[live]["status"] == "online" and views[live]["registered_until"] is None
    assert edge_view(client, admin_token, edge["id"])["edge"]["online"] == 1
    assert set(device_views(client, admin_token, edge["id"], "?status=online")) == {live}


# --- registration snapshots ----------------------------------------------------------------


def test_a_snapshot_makes_presence_match_the_edge(client: Client, admin_token: str) -> None:
    edge, secret = new_edge(client, admin_token)
    joins, stays, leaves, ghost = f"1{uid()}", f"2{uid()}", f"3{uid()}", f"9{uid()}"
    for ext in (joins, stays, leaves):
        new_device(client, admin_token, edge["id"], ext)
    now = int(time.time())
    # Given two phones reported online and one never seen
    report(client, secret, stays, expires=now + 3600, at=now - 100)
    report(client, secret, leaves, expires=now + 3600, at=now - 100)
    # When the edge's table lists the never-seen one, one of the online ones and a stranger
    at = now - 10
    snapshot = {
        "at": at,
        "registrations": [
            {
                "extension": joins,
                "contact_count": 1,
                "user_agent": "Grandstream GXP2170",
                "source": "tls:198.51.100.4:5061",
                "expires": now + 1800,
            },
            {"extension": stays, "contact_count": 1, "expires": now + 3600},
            {"extension": ghost, "contact_count": 1},
        ],
    }
    reply = edge_call(client, "POST", SYNC, secret, snapshot)
    # Then listed phones are online, the other is offline, the stranger is named
    assert reply.status_code == 200
    assert reply.json_body == {"devices": 3, "online": 2, "changed": 2, "unknown": [ghost]}
    views = device_views(client, admin_token, edge["id"])
    assert {ext: v["status"] for ext, v in views.items()} == {
        joins: "online",
        stays: "online",
        leaves: "offline",
    }
    assert views[joins]["user_agent"] == "Grandstream GXP2170"
    assert views[joins]["source"] == "tls:198.51.100.4:5061"
    assert views[joins]["registered_until"] == iso(now + 1800)
    assert views[joins]["last_seen"] == iso(at)
    assert views[leaves]["last_seen"] == iso(now - 100)
    opened = edge_view(client, admin_token, edge["id"])["edge"]
    assert opened["online"] == 2 and opened["last_sync_at"] == iso(at)
    # And the filter by status agrees
    assert set(device_views(client, admin_token, edge["id"], "?status=online")) == {joins, stays}
    assert set(device_views(client, admin_token, edge["id"], "?status=offline")) == {leaves}
    # An empty table takes every phone offline
    empty = edge_call(client, "POST", SYNC, secret, {"at": at + 5, "registrations": []})
    assert empty.json_body == {"devices": 3, "online": 0, "changed": 2, "unknown": []}
    assert device_views(client, admin_token, edge["id"], "?status=online") == {}


def test_a_snapshot_leaves_phones_reported_after_it(client: Client, admin_token: str) -> None:
    edge, secret = new_edge(client, admin_token)
    came, went = f"1{uid()}", f"2{uid()}"
    new_device(client, admin_token, edge["id"], came)
    new_device(client, admin_token, edge["id"], went)
    now = int(time.time())
    report(client, secret, went, at=now - 100)
    # Given reports newer than the snapshot: one phone registered, one unregistered
    report(client, secret, came, user_agent="after", at=now - 5)
    report(client, secret, went, registered=False, contact_count=0, at=now - 5)
    # When a snapshot taken before them says the opposite
    snapshot = {"at": now - 20, "registrations": [{"extension": went, "contact_count": 1}]}
    reply = edge_call(client, "POST", SYNC, secret, snapshot)
    # Then the reports stand
    assert reply.status_code == 200
    assert reply.json_body["changed"] == 0 and reply.json_body["unknown"] == []
    views = device_views(client, admin_token, edge["id"])
    assert views[came]["status"] == "online" and views[came]["user_agent"] == "after"
    assert views[went]["status"] == "offline"
    assert views[went]["last_seen"] == iso(now - 100)


@pytest.mark.parametrize(
    ("snapshot", "field"),
    [
        ({"registrations": []}, "at"),
        ({"at": 1.0, "registrations": []}, "at"),
        ({"at": "now"}, "at"),
        ({"at": None, "registrations": [{"extension": "1001", "contact_count": 0}]}, None),
        ({"at": None, "registrations": [{"extension": "a b", "contact_count": 1}]}, None),
    ],
)
def test_a_bad_snapshot_is_a_400_and_changes_nothing(
    client: Client, admin_token: str, snapshot: dict[str, Any], field: str | None
) -> None:
    edge, secret = new_edge(client, admin_token)
    ext = f"1{uid()}"
    new_device(client, admin_token, edge["id"], ext)
    body = dict(snapshot)
    if "at" in body and body["at"] is None:
        body["at"] = time.time()
    reply = edge_call(client, "POST", SYNC, secret, body)
    assert reply.status_code == 400
    fields = set(reply.json_body["fields"])
    if field is not None:
        assert field in fields
    else:
        assert len(fields) == 1 and next(iter(fields)).startswith("registrations.0.")
    assert edge_view(client, admin_token, edge["id"])["edge"]["last_sync_at"] is None


def test_listing_phones_by_an_unknown_status_is_a_400(client: Client, admin_token: str) -> None:
    reply = api(client, "GET", f"{DEVICES}?status=bogus", admin_token)
    assert reply.status_code == 400
    assert set(reply.json_body["fields"]) == {"status"}


# --- an edge that stops sending snapshots, and removing an edge ------------------------------


def test_phones_of_an_edge_that_missed_three_snapshots_are_offline_and_not_dialled(
    client: Client, admin_token: str
) -> None:
    from chalicelib.clock import utcnow
    from chalicelib.edge import phones
    from chalicelib.store import sip_edges

    edge, secret = new_edge(client, admin_token)
    ext = f"1{uid()}"
    new_device(client, admin_token, edge["id"], ext)
    entry = {"extension": ext, "contact_count": 1, "expires": time.time() + 3600}

    def snapshot(at: float) -> None:
        body = {"at": at, "registrations": [entry], "interval": 10}
        reply = edge_call(client, "POST", SYNC, secret, body=body)
        assert reply.status_code == 200, reply.body

    def edge_now() -> dict[str, Any]:
        return dict(edge_view(client, admin_token, edge["id"])["edge"])

    # Given an edge whose last snapshot (every 10 s) came 2 minutes ago, the phone registered
    snapshot(time.time() - 120)
    # Then the edge counts as gone and its phone as offline, in every view and for routing
    assert (edge_now()["stale"], edge_now()["online"]) == (True, 0)
    assert device_views(client, admin_token, edge["id"])[ext]["status"] == "offline"
    principal = phones.authenticate_edge(secret)
    assert principal is not None
    desk = sip_edges.edge_phones(principal.account_id, {"desk": f"sip:{ext}@{edge['domain']}"})
    assert phones.offline_targets(principal.account_id, desk, utcnow()) == {"desk"}
    # When a snapshot comes again, the phone is back
    snapshot(time.time())
    assert (edge_now()["stale"], edge_now()["online"]) == (False, 1)
    assert device_views(client, admin_token, edge["id"])[ext]["status"] == "online"
    assert phones.offline_targets(principal.account_id, desk, utcnow()) == set()
    # And an older snapshot arriving late does not turn the clock back
    snapshot(time.time() - 120)
    assert edge_now()["stale"] is False


def test_an_edge_is_removed_once_its_phones_are_revoked(client: Client, admin_token: str) -> None:
    edge, secret = new_edge(client, admin_token)
    ext = f"1{uid()}"
    new_device(client, admin_token, edge["id"], ext)
    path = f"{EDGES}/{edge['id']}"
    # While it has a phone, it stays
    refused = api(client, "DELETE", path, admin_token)
    assert refused.status_code == 409 and refused.json_body["fields"] == {"devices": "not empty"}
    assert api(client, "DELETE", f"{path}/devices/{ext}", admin_token).status_code == 204
    # Then it goes: its secret no longer works and its domain can be used again
    assert api(client, "DELETE", path, admin_token).status_code == 204
    assert api(client, "GET", path, admin_token).status_code == 404
    assert edge_call(client, "GET", CREDENTIALS, secret).status_code == 401
    again = api(client, "POST", EDGES, admin_token, {"name": "Again", "domain": edge["domain"]})
    assert again.status_code == 201
    assert api(client, "DELETE", path, admin_token).status_code == 404
