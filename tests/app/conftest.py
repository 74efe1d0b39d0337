"""Fixtures for driving the app in process with `chalice.test.Client`."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from chalice.test import Client

from tests.support.app import PUBLIC_BASE_URL, Platform, Setup, Tenant, api, login
from tools.callsim import CallSimulator


@pytest.fixture(scope="session")
def client(platform: Platform) -> Iterator[Client]:
    with Client(platform.app) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def admin_token(client: Client, platform: Platform) -> str:
    return login(client, platform.secrets.admin_email, platform.secrets.admin_password)


@pytest.fixture(scope="session")
def super_token(client: Client, platform: Platform) -> str:
    return login(client, platform.secrets.super_admin_email, platform.secrets.super_admin_password)


@pytest.fixture(scope="session")
def other_tenant(client: Client, super_token: str) -> Tenant:
    """A second account, created the way a super admin would, with its own admin."""
    reply = api(
        client,
        "POST",
        "/api/v1/accounts",
        super_token,
        {
            "name": "Other Calls Inc",
            "admin_email": "boss@other.example.com",
            "admin_password": "Other-admin-pass-1",
        },
    )
    assert reply.status_code == 201, reply.body
    token = login(client, "boss@other.example.com", "Other-admin-pass-1")
    return Tenant(reply.json_body["account"]["id"], token)


@pytest.fixture(scope="session")
def agent_token(client: Client, admin_token: str) -> str:
    reply = api(
        client,
        "POST",
        "/api/v1/users",
        admin_token,
        {
            "email": "agent@demo.example.com",
            "password": "Agent-pass-12345",
            "role": "agent",
        },
    )
    assert reply.status_code == 201, reply.body
    return login(client, "agent@demo.example.com", "Agent-pass-12345")


def chalice_transport(client: Client) -> httpx.MockTransport:
    """Lets the call simulator (an httpx client) talk to the in-process app."""

    def handle(request: httpx.Request) -> httpx.Response:
        reply = client.http.request(
            request.method,
            request.url.raw_path.decode(),
            headers=dict(request.headers),
            body=request.content,
        )
        return httpx.Response(reply.status_code, headers=reply.headers, content=reply.body)

    return httpx.MockTransport(handle)


@pytest.fixture
def cpaas(client: Client, platform: Platform) -> Iterator[CallSimulator]:
    """The call simulator playing the CPaaS against the in-process app."""
    http = httpx.Client(transport=chalice_transport(client), base_url="http://app.test")
    with CallSimulator(
        "http://app.test", platform.auth_token, public_base_url=PUBLIC_BASE_URL, client=http
    ) as simulator:
        yield simulator


@pytest.fixture
def setup(client: Client, admin_token: str) -> Setup:
    """Set-up through the API as the demo account's admin."""
    return Setup(client, admin_token)
