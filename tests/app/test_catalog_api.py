"""Campaigns, buyers, targets, pools and numbers: validated input naming each bad field."""

from __future__ import annotations

from typing import Any

import pytest
from chalice.test import Client

from tests.support.app import Tenant, api


def post(client: Client, token: str, path: str, body: dict[str, Any]) -> Any:
    return api(client, "POST", path, token, body)


@pytest.fixture(scope="module")
def buyer_id(client: Client, admin_token: str) -> str:
    return str(
        post(client, admin_token, "/api/v1/buyers", {"name": "Acme"}).json_body["buyer"]["id"]
    )


def target(buyer: str, **extra: Any) -> dict[str, Any]:
    return {"name": "T", "buyer_id": buyer, "destination": "+14155550300", **extra}


WEEK = {"timezone": "America/New_York", "days": {"monday": [{"start": "09:00", "end": "17:00"}]}}


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"destination": "415-555-0300"}, "destination", "E.164"),
        ({"destination": "sip:not a uri"}, "destination", "SIP"),
        ({"schedule": {**WEEK, "timezone": "Mars/Olympus"}}, "schedule.timezone", "timezone"),
        (
            {
                "schedule": {
                    "timezone": "UTC",
                    "days": {
                        "monday": [
                            {"start": "09:00", "end": "17:00"},
                            {"start": "16:00", "end": "18:00"},
                        ]
                    },
                }
            },
            "schedule",
            "overlaps",
        ),
        (
            {
                "schedule": {
                    "timezone": "UTC",
                    "days": {"friday": [{"start": "17:00", "end": "09:00"}]},
                }
            },
            "schedule",
            "before it starts",
        ),
        ({"schedule": {"timezone": "UTC", "days": {"funday": []}}}, "schedule.days", "weekday"),
        ({"caps": {"daily": -1}}, "caps.daily", "greater than or equal"),
        ({"caps": {"concurrency": 0}}, "caps.concurrency", "greater than or equal"),
        ({"weight": 0}, "weight", "greater than or equal"),
        ({"priority": -2}, "priority", "greater than or equal"),
        ({"geo": {"states": ["California"]}}, "geo.states.0", "pattern"),
        ({"tag_rules": [{"tag": "age", "op": "gt", "value": "old"}]}, "tag_rules.0", "numeric"),
        ({"tag_rules": [{"tag": "zip", "op": "in", "value": "90210"}]}, "tag_rules.0", "list"),
    ],
)
def test_bad_targets_are_400_naming_the_field(
    client: Client, admin_token: str, buyer_id: str, change: dict[str, Any], field: str, words: str
) -> None:
    reply = post(client, admin_token, "/api/v1/targets", target(buyer_id, **change))
    assert reply.status_code == 400, reply.body
    fields = reply.json_body["fields"]
    assert field in fields, fields
    assert words.lower() in fields[field].lower()


def test_a_good_target_round_trips(client: Client, admin_token: str, buyer_id: str) -> None:
    body = target(
        buyer_id,
        destination="sip:1001@pbx.example.com",
        schedule=WEEK,
        priority=2,
        weight=5,
        caps={"concurrency": 3, "daily": 100, "counts": "connected"},
        geo={"states": ["CA", "NV"], "zip_prefixes": ["90"]},
        tag_rules=[{"tag": "age", "op": "gte", "value": 65}],
    )
    made = post(client, admin_token, "/api/v1/targets", body)
    assert made.status_code == 201, made.body
    got = api(client, "GET", f"/api/v1/targets/{made.json_body['target']['id']}", admin_token)
    view = got.json_body["target"]
    assert view["destination"] == "sip:1001@pbx.example.com"
    assert view["caps"]["daily"] == 100
    assert view["schedule"]["days"]["monday"] == [{"start": "09:00", "end": "17:00"}]
    assert view["tag_rules"] == [{"tag": "age", "op": "gte", "value": 65}]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"payout_cents": -5}, "payout_cents"),
        ({"revenue_cents": 1.5}, "revenue_cents"),
        ({"strategy": "random"}, "strategy"),
        ({"fallback_number": "12345"}, "fallback_number"),
        ({"blocklist": ["1900"]}, "blocklist.0"),
        ({"duplicate_window_days": -1}, "duplicate_window_days"),
        ({"conversion": {"kind": "tag"}}, "conversion"),
        ({"ivr": {"start": "a", "nodes": {"a": {"prompt": "x", "tag": "t", "next": "b"}}}}, "ivr"),
        ({"plan": [{"target_id": "tgt_nope"}]}, "plan.0.target_id"),
    ],
)
def test_bad_campaigns_are_400_naming_the_field(
    client: Client, admin_token: str, change: dict[str, Any], field: str
) -> None:
    reply = post(client, admin_token, "/api/v1/campaigns", {"name": "C", **change})
    assert reply.status_code == 400, reply.body
    assert field in reply.json_body["fields"], reply.json_body


def test_another_tenants_ids_are_unknown_here(
    client: Client, admin_token: str, buyer_id: str, other_tenant: Tenant
) -> None:
    mine = post(client, admin_token, "/api/v1/targets", target(buyer_id)).json_body["target"]["id"]
    # Their campaign cannot route to my target, their target cannot join my buyer
    theirs = post(
        client,
        other_tenant.admin_token,
        "/api/v1/campaigns",
        {"name": "X", "plan": [{"target_id": mine}]},
    )
    assert theirs.status_code == 400
    assert theirs.json_body["fields"] == {"plan.0.target_id": "unknown target"}
    joined = post(client, other_tenant.admin_token, "/api/v1/targets", target(buyer_id))
    assert joined.json_body["fields"] == {"buyer_id": "unknown buyer"}
    # and reading or replacing mine is a 404
    assert (
        api(client, "GET", f"/api/v1/targets/{mine}", other_tenant.admin_token).status_code == 404
    )
    replaced = api(
        client, "PUT", f"/api/v1/targets/{mine}", other_tenant.admin_token, target(buyer_id)
    )
    assert replaced.status_code == 404


def test_numbers_point_at_campaigns_of_the_same_account(
    client: Client, admin_token: str, other_tenant: Tenant
) -> None:
    campaign = post(client, admin_token, "/api/v1/campaigns", {"name": "C"}).json_body["campaign"]
    made = post(
        client,
        admin_token,
        "/api/v1/numbers",
        {"number": "+18885550777", "campaign_id": campaign["id"], "source": "Bing"},
    )
    assert made.status_code == 201
    assert made.json_body["number"]["campaign_id"] == campaign["id"]
    foreign = post(
        client,
        other_tenant.admin_token,
        "/api/v1/numbers",
        {"number": "+18885550778", "campaign_id": campaign["id"]},
    )
    assert foreign.json_body["fields"] == {"campaign_id": "unknown campaign"}
    moved = api(client, "PUT", "/api/v1/numbers/+18885550777", admin_token, {"source": "TV"})
    assert moved.status_code == 200
    assert (moved.json_body["number"]["source"], moved.json_body["number"]["campaign_id"]) == (
        "TV",
        None,
    )
    assert (
        api(
            client, "PUT", "/api/v1/numbers/+18885550777", other_tenant.admin_token, {"source": "X"}
        ).status_code
        == 404
    )


def test_agents_read_but_cannot_change_routing(client: Client, agent_token: str) -> None:
    assert api(client, "GET", "/api/v1/campaigns", agent_token).status_code == 200
    assert post(client, agent_token, "/api/v1/campaigns", {"name": "C"}).status_code == 403


def test_search_and_buy_a_number_points_its_webhooks_here(client: Client, admin_token: str) -> None:
    from chalicelib.telephony import FakeTelephony, get_telephony
    from tests.support.app import PUBLIC_BASE_URL

    telephony = get_telephony()
    assert isinstance(telephony, FakeTelephony)  # no CPaaS credentials in tests
    found = api(client, "GET", "/api/v1/numbers/available?area_code=312", admin_token)
    assert found.status_code == 200
    offered = [n["number"] for n in found.json_body["numbers"]]
    assert offered
    assert all(n.startswith("+1312") for n in offered)
    campaign = post(client, admin_token, "/api/v1/campaigns", {"name": "Buy"}).json_body["campaign"]
    bought = post(
        client,
        admin_token,
        "/api/v1/numbers/purchase",
        {"number": offered[0], "campaign_id": campaign["id"], "source": "Radio"},
    )
    assert bought.status_code == 201, bought.body
    assert bought.json_body["number"]["campaign_id"] == campaign["id"]
    owned = {n.e164: n for n in telephony.owned()}
    assert owned[offered[0]].voice_url == PUBLIC_BASE_URL + "/voice/inbound"
    assert owned[offered[0]].status_callback == PUBLIC_BASE_URL + "/voice/status"
    # Buying it again: the CPaaS no longer offers it
    again = post(client, admin_token, "/api/v1/numbers/purchase", {"number": offered[0]})
    assert again.status_code == 409


@pytest.mark.parametrize(
    "query", ["area_code=41", "area_code=abc", "country=usa", "contains=%25%25"]
)
def test_bad_number_searches_name_the_parameter(
    client: Client, admin_token: str, query: str
) -> None:
    reply = api(client, "GET", f"/api/v1/numbers/available?{query}", admin_token)
    assert reply.status_code == 400
    assert set(reply.json_body["fields"]) == {query.split("=")[0]}


def test_pixel_secrets_are_never_shown_and_survive_an_edit(
    client: Client, admin_token: str, buyer_id: str
) -> None:
    pixel = {"url": "https://hooks.buyer.example.com/calls", "secret": "a-very-secret-value"}
    made = post(client, admin_token, "/api/v1/buyers", {"name": "Pix", "pixels": [pixel]})
    assert made.status_code == 201, made.body
    shown = made.json_body["buyer"]
    assert shown["pixels"][0]["secret"] == "****"
    assert "a-very-secret-value" not in str(made.body)
    # The dashboard sends back what it was shown: the stored secret is kept
    body = {"name": "Pix renamed", "pixels": shown["pixels"]}
    edited = api(client, "PUT", f"/api/v1/buyers/{shown['id']}", admin_token, body)
    assert edited.status_code == 200, edited.body
    from chalicelib.store import catalog
    from chalicelib.store.models import BuyerItem

    stored = catalog.get(BuyerItem, "acc_demo", shown["id"])
    assert stored is not None
    assert stored.settings["pixels"][0]["secret"] == "a-very-secret-value"
    # A new URL needs its own secret
    body["pixels"] = [{"url": "https://other.example.com/x", "secret": "****"}]
    refused = api(client, "PUT", f"/api/v1/buyers/{shown['id']}", admin_token, body)
    assert refused.status_code == 400
    assert set(refused.json_body["fields"]) == {"pixels.0.secret"}
