"""Runs the SIP edge as its image does (render.py, then agent.py and Kamailio) on loopback, and
drives it with sipp (scenarios in edge_sip/scenarios). Used by tests/edge, tests/e2e and
bench.edge. Processes are stopped by the ids recorded when they were started."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EDGE = ROOT / "edge_sip"
SCENARIOS = EDGE / "scenarios"
sys.path.insert(0, str(EDGE))
import render  # noqa: E402  (edge_sip is not a package: the image runs its files as scripts)

from chalicelib.edge import devices  # noqa: E402


class MissingTool(RuntimeError):
    """kamailio or sipp is not installed (debian-packages.txt lists their packages)."""


def binary(name: str, package: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise MissingTool(f"{name} is not installed: apt-get install {package}")
    return found


DOMAIN = "edge.test"


def ha1(extension: str, password: str, domain: str = DOMAIN) -> str:
    """What the app stores for a phone's password (chalicelib.edge.devices.ha1)."""
    return devices.ha1(extension, domain, password)


def free_port() -> int:
    """A port free for both UDP and TCP on loopback."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass
class Edge:
    """Kamailio and the agent, rendered from `env` into `folder`."""

    folder: Path
    env: dict[str, str]
    port: int = 0
    rpc_port: int = 0
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, agent: bool = True) -> Edge:
        kamailio = binary("kamailio", "kamailio")
        self.port = int(self.env["SIP_LISTEN"].split(",")[0].rsplit(":", 1)[1])
        self.rpc_port = int(self.env["RPC_PORT"])
        config = render.write_edge(self.env, self.folder / "edge")
        self._spawn([kamailio, "-DD", "-E", "-f", str(config)], "kamailio.log")
        deadline = time.monotonic() + 10
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.rpc_port)) == 0:
                    break
            assert self.processes[0].poll() is None, self.log("kamailio.log")
            assert time.monotonic() < deadline, "kamailio did not open its RPC port"
            time.sleep(0.1)
        if agent:
            self._spawn([sys.executable, str(EDGE / "agent.py")], "agent.log")
        return self

    def _spawn(self, command: list[str], log_name: str) -> None:
        with (self.folder / log_name).open("w") as log:
            self.processes.append(
                subprocess.Popen(
                    command,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env={"PATH": os.environ.get("PATH", ""), **self.env},
                )
            )

    def stop(self) -> None:
        for process in reversed(self.processes):
            _stop(process)

    def log(self, name: str) -> str:
        path = self.folder / name
        return path.read_text() if path.exists() else ""

    def rpc(self, method: str, *params: str) -> Any:
        body = {"jsonrpc": "2.0", "method": method, "params": list(params), "id": 1}
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.rpc_port}/RPC",
            data=json.dumps(body).encode(),
            headers={"X-Edge-Secret": self.env["EDGE_SHARED_SECRET"]},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as answer:  # noqa: S310 - loopback
            return json.loads(answer.read())["result"]

    def registered_users(self) -> int:
        """Kamailio's own count of registered extensions."""
        for line in self.rpc("stats.get_statistics", "usrloc:"):
            name, _, value = line.partition(" = ")
            if name.strip() == "usrloc:registered_users":
                return int(value)
        raise AssertionError("no usrloc:registered_users statistic")

    def run_agent_once(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(EDGE / "agent.py"), "--once"],
            env={"PATH": os.environ.get("PATH", ""), **self.env},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def has_credential(self, extension: str) -> bool:
        return any(
            slot["name"] == extension
            for entry in self.rpc("htable.dump", "cred") or []
            for slot in entry.get("slot", [])
        )


def sipp(
    folder: Path,
    edge_port: int,
    scenario: str,
    final: int | None = None,
    *extra: str,
    local_ip: str = "127.0.0.1",
    local_port: int | None = None,
    contact_port: int | None = None,
    expires: int = 120,
    domain: str = DOMAIN,
    token: str = "none",  # noqa: S107 - a placeholder the edge refuses
    user_agent: str = "sipp-phone/1.0",
    transport: str = "u1",  # sipp's -t: u1 UDP, t1 TCP
    calls: int = 1,
    timeout: float = 30,
    background: bool = False,
) -> subprocess.CompletedProcess[str] | subprocess.Popen[str]:
    """Runs a scenario of edge_sip/scenarios (FINAL replaced by `final`) against the edge.
    A phone's Contact is its own address unless `contact_port` names another (a UAS); the
    CPaaS's INVITEs carry `token` as the edge's call token."""
    text = (SCENARIOS / scenario).read_text()
    if final is not None:
        text = text.replace("FINAL", str(final))
    path = folder / f"{final}-{scenario}"
    path.write_text(text)
    port = local_port or free_port()
    command = [
        binary("sipp", "sip-tester"), f"127.0.0.1:{edge_port}", "-sf", str(path),
        "-m", str(calls), "-i", local_ip, "-p", str(port), "-t", transport, "-nostdin",
        "-timeout", f"{int(timeout)}s", "-timeout_error", "-key", "domain", domain,
        "-key", "contact_port", str(contact_port or port), "-key", "expires", str(expires),
        "-key", "token", token, "-key", "ua", user_agent,
        *extra,
    ]  # fmt: skip
    if background:
        return subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=folder
        )
    return subprocess.run(
        command, capture_output=True, text=True, timeout=timeout + 30, check=False, cwd=folder
    )


def wait_for(check: Any, timeout: float = 10, every: float = 0.1) -> Any:
    """Polls `check()` until it returns something truthy; returns it (or the last value)."""
    deadline = time.monotonic() + timeout
    value = check()
    while not value and time.monotonic() < deadline:
        time.sleep(every)
        value = check()
    return value
