"""In-process platform for tests: a moto server on a free loopback port, bootstrapped by the
same code as `make run`, and the Chalice app imported against it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chalicelib import clock as app_clock
from tests.support import Clock
from tests.support.app import PUBLIC_BASE_URL, Platform
from tools.localaws import moto_server


@pytest.fixture(scope="session")
def aws_endpoint() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


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


@pytest.fixture
def clock() -> Iterator[Clock]:
    """The app's clock for this test: it runs as the wall clock until the test sets it, and
    runs again afterwards whatever the test did."""
    try:
        yield Clock()
    finally:
        app_clock.fix(None)
