"""API the dashboard needs beyond the catalog: publisher edits, cap usage, routing times."""

from __future__ import annotations

from datetime import datetime

from chalice.test import Client

from tests.support.app import Setup, Tenant, api, record
from tools.callsim import CallSimulator, PartyBehaviour

PIXEL = {"url": "https://hooks.example.com/pixel", "secret": "s" * 20}


def test_a_publisher_is_edited_and_its_pixel_secret_kept(
    client: Client, admin_token: str, agent_token: str, other_tenant: Tenant
) -> None:
    body = {"name": "Pub", "pixels": [PIXEL]}
    created = api(client, "POST", "/api/v1/publishers", admin_token, body).json_body["publisher"]
    path = f"/api/v1/publishers/{created['id']}"
    shown = {**PIXEL, "secret": "****"}
    edit = {"name": "Pub 2", "payout_overrides": {"cmp_x": 1234}, "pixels": [shown]}
    reply = api(client, "PUT", path, admin_token, edit)
    assert reply.status_code == 200, reply.body
    assert reply.json_body["publisher"]["payout_overrides"] == {"cmp_x": 1234}
    assert reply.json_body["publisher"]["pixels"][0]["secret"] == "****"
    from chalicelib.store import tenants

    stored = tenants.get_publisher("acc_demo", created["id"])
    assert stored is not None and stored.pixels[0]["secret"] == PIXEL["secret"]
    assert stored.name == "Pub 2"
    # A masked secret for a URL it never had is refused, naming the field.
    moved = {**edit, "pixels": [{**shown, "url": "https://elsewhere.example.com/p"}]}
    refused = api(client, "PUT", path, admin_token, moved)
    assert refused.status_code == 400 and "pixels.0.secret" in refused.json_body["fields"]
    assert api(client, "PUT", path, agent_token, edit).status_code == 403
    assert api(client, "PUT", path, other_tenant.admin_token, edit).status_code == 404
    masked_new = api(
        client, "POST", "/api/v1/publishers", admin_token, {"name": "P", "pixels": [shown]}
    )
    assert masked_new.status_code == 400


def test_cap_usage_counts_what_calls_used(
    client: Client, admin_token: str, cpaas: CallSimulator
) -> None:
    setup = Setup(client, admin_token)
    buyer = setup.buyer(caps={"daily": 100})
    target = setup.target(buyer, "+14155550951", caps={"concurrency": 2, "daily": 10})
    _, number = setup.campaign([{"target_id": target}])
    before = api(client, "GET", "/api/v1/caps/usage", admin_token).json_body
    assert before["targets"][target] == {
        "concurrency": 0, "hourly": 0, "daily": 0, "monthly": 0, "total": 0,
    }  # fmt: skip
    call = cpaas.place_call("+13105550951", number, default_party=PartyBehaviour.answer(talk=20))
    after = api(client, "GET", "/api/v1/caps/usage", admin_token).json_body
    assert after["targets"][target]["daily"] == 1  # counted when routed
    assert after["targets"][target]["concurrency"] == 0  # the call is over
    assert after["buyers"][buyer]["daily"] == 1
    # Each routing step says when it happened.
    tried = record(call.call_sid).routing["tried"]
    assert tried[0]["outcome"] == "connected"
    assert datetime.fromisoformat(tried[0]["at"]).tzinfo is not None
