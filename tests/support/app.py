"""Driving the app in process (`chalice.test.Client`): the platform, JSON API calls, logins,
signed webhooks and their TwiML, set-up through the API, and reading what was stored."""

from __future__ import annotations

import itertools
import json
import secrets
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chalicelib.store import keys
from chalicelib.store.models import CallItem, CounterItem
from tests.support import bearer, signed_form

if TYPE_CHECKING:
    from chalice.test import Client

PUBLIC_BASE_URL = "https://hooks.example.test/api"  # as behind an API Gateway stage


@dataclass
class Platform:
    app: Any
    env: dict[str, str]
    secrets: Any
    endpoint: str

    @property
    def auth_token(self) -> str:
        return str(self.secrets.twilio_auth_token)


@dataclass
class Tenant:
    account_id: str
    admin_token: str


def api(
    client: Client,
    method: str,
    path: str,
    token: str | None = None,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> Any:
    """A JSON API call; returns the chalice test response (`.status_code`, `.json_body`)."""
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    if token:
        all_headers.update(bearer(token))
    payload = body if isinstance(body, (str, bytes)) or body is None else json.dumps(body)
    return getattr(client.http, method.lower())(path, headers=all_headers, body=payload)


def login(client: Client, email: str, password: str) -> str:
    reply = api(client, "POST", "/api/v1/auth/login", body={"email": email, "password": password})
    assert reply.status_code == 200, reply.body
    return str(reply.json_body["id_token"])


# --- webhooks as the CPaaS sends them, and the TwiML they get ------------------------------------


def new_sid() -> str:
    return "CA" + secrets.token_hex(16)


def post_signed(client: Client, platform: Platform, path: str, params: dict[str, str]) -> Any:
    headers, body = signed_form(platform.auth_token, PUBLIC_BASE_URL + path, params)
    return client.http.post(path, headers=headers, body=body)


def twiml(reply: Any) -> ET.Element:
    """The `<Response>` of a webhook's answer, which must be a 200 with TwiML."""
    assert reply.status_code == 200, reply.body
    assert reply.headers["Content-Type"] == "text/xml"
    root = ET.fromstring(reply.body)
    assert root.tag == "Response"
    return root


def verbs(root: ET.Element) -> list[str]:
    return [child.tag for child in root]


def is_fallback(root: ET.Element) -> bool:
    say = root.find("Say")
    return verbs(root) == ["Say", "Hangup"] and say is not None and "sorry" in (say.text or "")


# --- set-up through the API ----------------------------------------------------------------------

_numbers = itertools.count(100)


def new_number() -> str:
    return f"+1888555{next(_numbers):04d}"


class Setup:
    """Builds buyers, targets, a campaign and a tracking number through the API."""

    def __init__(self, client: Client, token: str) -> None:
        self.client, self.token = client, token

    def post(self, path: str, body: dict[str, Any], status: int = 201) -> dict[str, Any]:
        reply = api(self.client, "POST", path, self.token, body)
        assert reply.status_code == status, reply.body
        return dict(reply.json_body)

    def buyer(self, **body: Any) -> str:
        return str(self.post("/api/v1/buyers", {"name": "Buyer", **body})["buyer"]["id"])

    def target(self, buyer_id: str, destination: str, **body: Any) -> str:
        created = self.post(
            "/api/v1/targets",
            {"name": destination, "buyer_id": buyer_id, "destination": destination, **body},
        )
        return str(created["target"]["id"])

    def campaign(self, plan: list[dict[str, Any]], **body: Any) -> tuple[str, str]:
        campaign = self.post("/api/v1/campaigns", {"name": "Campaign", "plan": plan, **body})
        campaign_id = campaign["campaign"]["id"]
        number = new_number()
        self.post(
            "/api/v1/numbers",
            {"number": number, "campaign_id": campaign_id, "source": "Google Ads"},
        )
        return campaign_id, number


# --- what was stored -----------------------------------------------------------------------------


def stored(call_sid: str) -> CallItem | None:
    try:
        return CallItem.get(keys.call_pk(call_sid), keys.META)
    except CallItem.DoesNotExist:
        return None


def record(call_sid: str) -> CallItem:
    return CallItem.get(keys.call_pk(call_sid), keys.META)


def counter(pk: str, sk: str = "CONC") -> int:
    try:
        return int(CounterItem.get(pk, sk).n)
    except CounterItem.DoesNotExist:
        return 0
