"""The local stack as `make run` starts it (`python -m tools.devstack`), on free ports."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.support import free_port
from tools.callsim import CallSimulator

if TYPE_CHECKING:
    from playwright.sync_api import Browser

ROOT = Path(__file__).resolve().parents[2]
_campaign_numbers = itertools.count(200)


# What the in-process suites put into os.environ; a developer's shell may set them too.
APP_VARIABLES = {
    "AWS_ENDPOINT_URL",
    "PUBLIC_BASE_URL",
    "TWILIO_AUTH_TOKEN",
    "TWILIO_AUTH_TOKEN_PARAM",
    "APP_TABLE_NAME",
    "IDEMPOTENCY_TABLE_NAME",
    "COGNITO_USER_POOL_ID",
    "COGNITO_CLIENT_ID",
}


def clean_environment() -> dict[str, str]:
    """The environment of a fresh shell: nothing the tests configured for in-process use."""
    return {k: v for k, v in os.environ.items() if k not in APP_VARIABLES}


class LocalStack:
    """A running devstack process; `info` is what it announced on its DEVSTACK_READY line."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.api_port = free_port()
        self.moto_port = free_port()
        self.lines: list[str] = []
        self.info: dict[str, Any] = {}
        self.process: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 90) -> LocalStack:
        env = clean_environment()
        self.lines = []
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tools.devstack",
                "--api-port",
                str(self.api_port),
                "--moto-port",
                str(self.moto_port),
                "--dashboard-port",
                str(free_port()),
                "--state-dir",
                str(self.state_dir),
                "--snapshot-every",
                "1",
                "--schedule-every",
                "1",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        ready = threading.Event()
        # Keep draining output so the stack never blocks on a full pipe.
        threading.Thread(target=self._drain, args=(ready,), daemon=True).start()
        if not ready.wait(timeout):
            self.stop()
            raise RuntimeError("devstack did not become ready:\n" + "".join(self.lines[-50:]))
        return self

    def _drain(self, ready: threading.Event) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            if line.startswith("DEVSTACK_READY "):
                self.info = json.loads(line.split(" ", 1)[1])
                ready.set()

    def stop(self) -> None:
        """Stop by the process id we started (SIGTERM lets it snapshot and stop chalice)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)

    @property
    def url(self) -> str:
        return str(self.info["api_url"])


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    local = LocalStack(tmp_path_factory.mktemp("devstack")).start()
    yield local
    local.stop()


class Marketer:
    """The management API as the dashboard uses it, logged in as the demo admin."""

    def __init__(self, stack: LocalStack) -> None:
        token = httpx.post(
            f"{stack.url}/api/v1/auth/login",
            json={"email": stack.info["admin_email"], "password": stack.info["admin_password"]},
        ).json()["id_token"]
        self.http = httpx.Client(base_url=stack.url, headers={"Authorization": f"Bearer {token}"})
        self.number_extra: dict[str, Any] = {}

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        reply = self.http.post(path, json=body)
        assert reply.status_code == 201, reply.text
        return dict(reply.json())

    def buyer(self, **body: Any) -> str:
        return str(self.post("/api/v1/buyers", {"name": "Buyer", **body})["buyer"]["id"])

    def target(self, buyer_id: str, destination: str, **body: Any) -> str:
        body = {"name": destination, "buyer_id": buyer_id, "destination": destination, **body}
        return str(self.post("/api/v1/targets", body)["target"]["id"])

    def campaign(self, plan: list[str | dict[str, Any]], **body: Any) -> str:
        """A campaign with its own tracking number; returns the number."""
        entries = [{"target_id": p} if isinstance(p, str) else p for p in plan]
        created = self.post("/api/v1/campaigns", {"name": "Campaign", "plan": entries, **body})
        number = f"+1877555{next(_campaign_numbers):04d}"
        attribution = {"campaign_id": created["campaign"]["id"], "source": "Google Ads"}
        self.post("/api/v1/numbers", {"number": number, **attribution, **self.number_extra})
        return number

    def pool(self, name: str, destination: str, numbers: list[str], overflow: str) -> str:
        """A DNI pool of `numbers` (and its overflow number) for a campaign ringing
        `destination`; returns the pool's public key."""
        target = self.target(self.buyer(name=f"{name} buyer"), destination)
        campaign = self.post(
            "/api/v1/campaigns", {"name": f"{name} campaign", "plan": [{"target_id": target}]}
        )["campaign"]["id"]
        for number in [*numbers, overflow]:
            self.post("/api/v1/numbers", {"number": number, "campaign_id": campaign})
        pool = self.post(
            "/api/v1/pools",
            {
                "name": name,
                "campaign_id": campaign,
                "numbers": numbers,
                "idle_seconds": 300,
                "overflow_number": overflow,
            },
        )["pool"]
        return str(pool["public_key"])

    def call(self, call_sid: str) -> dict[str, Any]:
        reply = self.http.get(f"/api/v1/calls/{call_sid}")
        assert reply.status_code == 200, reply.text
        return dict(reply.json()["call"])

    def live_targets(self) -> dict[str, int]:
        return dict(self.http.get("/api/v1/live").json()["targets"])


@pytest.fixture(scope="module")
def marketer(stack: LocalStack) -> Marketer:
    return Marketer(stack)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's headless Chromium through Playwright, one per test module."""
    from tests.support.browser import chromium

    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def dashboard(stack: LocalStack) -> str:
    """The dashboard's URL on the local stack, built from the current sources first (the
    stack serves dashboard/dist/ as it is on disk)."""
    subprocess.run([sys.executable, str(ROOT / "dashboard" / "build.py")], check=True)
    return str(stack.info["dashboard_url"])


@pytest.fixture
def cpaas(stack: LocalStack) -> Iterator[CallSimulator]:
    with CallSimulator(stack.url, stack.info["twilio_auth_token"]) as simulator:
        yield simulator
