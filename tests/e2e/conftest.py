"""The local stack as `make run` starts it (`python -m tools.devstack`), on free ports."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import free_port

ROOT = Path(__file__).resolve().parents[2]


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
                "--state-dir",
                str(self.state_dir),
                "--snapshot-every",
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
