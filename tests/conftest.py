"""In-process platform for tests: a moto server on a free loopback port, bootstrapped by the
same code as `make run`, and the Chalice app imported against it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.support import free_port

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


@pytest.fixture(scope="session")
def aws_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    os.environ.update(
        AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1"
    )
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture(scope="session")
def platform(aws_endpoint: str) -> Platform:
    from tools import devstack

    pool_id, client_id = devstack.ensure_user_pool(aws_endpoint, "us-east-1")
    env = devstack.app_environment(aws_endpoint, "us-east-1", pool_id, client_id, PUBLIC_BASE_URL)
    env["APP_TABLE_NAME"] = "ppc-test-app"
    env["IDEMPOTENCY_TABLE_NAME"] = "ppc-test-idempotency"
    secrets = devstack.LocalSecrets(
        admin_email="admin@demo.example.com",
        admin_password="Demo-admin-pass-1",
        super_admin_email="root@platform.example.com",
        super_admin_password="Root-admin-pass-1",
        twilio_auth_token="test-auth-token-0123456789abcdef",
    )
    devstack.seed(env, secrets)  # sets os.environ and the settings the app reads
    import app as app_module

    return Platform(app=app_module.app, env=env, secrets=secrets, endpoint=aws_endpoint)
