"""The SIP edge: render.py's validation, `kamailio -c` on the rendered configuration, the image
staying in step with the renderer, and one live run driven by sipp."""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.support import system_tool

ROOT = Path(__file__).resolve().parents[2]
EDGE = ROOT / "edge_sip"
SCENARIOS = Path(__file__).resolve().parent / "scenarios"
sys.path.insert(0, str(EDGE))
import render  # noqa: E402  (edge_sip is not a package: the image runs render.py as a script)

DOMAIN = "edge.test"
SECRET = "edge-shared-secret-0123456789"
PASSWORD = "pw-1001-correct"

# Which Debian package ships each module the template loads (dpkg -S on Debian 12).
MODULE_PACKAGE = {
    **dict.fromkeys(
        [
            "kex",
            "corex",
            "tm",
            "tmx",
            "sl",
            "rr",
            "pv",
            "maxfwd",
            "textops",
            "siputils",
            "xlog",
            "sanity",
            "ctl",
            "cfg_rpc",
            "htable",
            "auth",
            "usrloc",
            "registrar",
            "permissions",
            "nathelper",
            "xhttp",
            "jsonrpcs",
        ],
        "kamailio",
    ),
    "http_client": "kamailio-utils-modules",
    "tls": "kamailio-tls-modules",
}


def ha1(extension: str, password: str) -> str:
    return hashlib.md5(f"{extension}:{DOMAIN}:{password}".encode()).hexdigest()  # noqa: S324


def valid_env(**overrides: str) -> dict[str, str]:
    env = {
        "SIP_DOMAIN": DOMAIN,
        "SIP_LISTEN": "udp:127.0.0.1:15060,tcp:127.0.0.1:15060",
        "APP_URL": "http://127.0.0.1:9/",
        "EDGE_SHARED_SECRET": SECRET,
        "CPAAS_ALLOW": "127.0.0.0/8,2001:db8::/32",
        "MIN_EXPIRES": "60",
        "MAX_EXPIRES": "3600",
        "RPC_PORT": "15090",
        "SIP_CREDENTIALS": f"1001:{ha1('1001', PASSWORD)}",
    }
    env.update(overrides)
    return env


def kamailio_binary() -> str:
    return system_tool("kamailio", "kamailio")


def config_check(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [kamailio_binary(), "-c", "-f", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


# --- the renderer ---------------------------------------------------------------------------


def test_valid_env_renders_a_config_kamailio_accepts(tmp_path: Path) -> None:
    # Given a complete environment, When rendered
    config = render.write_edge(valid_env(), tmp_path)
    text = config.read_text()
    # Then no placeholder is left, the listeners, expiry and files are in, secrets are private
    assert "{{" not in text
    assert "listen=udp:127.0.0.1:15060" in text
    assert "listen=tcp:127.0.0.1:15060" in text
    assert "listen=tcp:127.0.0.1:15090" in text
    assert 'modparam("registrar", "min_expires", 60)' in text
    assert "http://127.0.0.1:9/edge/v1/registrations" in text
    assert "#!define WITH_TLS" not in text
    assert (tmp_path / "address.list").read_text().splitlines()[1:] == [
        "1 127.0.0.0 8 0 cpaas",
        "1 2001:db8:: 32 0 cpaas",
    ]
    assert ha1("1001", PASSWORD) in (tmp_path / "credentials.cfg").read_text()
    for name in ("kamailio.cfg", "address.list", "credentials.cfg"):
        assert (tmp_path / name).stat().st_mode & 0o077 == 0
    # And Kamailio's own config check passes
    checked = config_check(config)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "config file ok" in checked.stdout + checked.stderr


def test_tls_is_configured_only_with_cert_and_key(tmp_path: Path) -> None:
    cert, key = tmp_path / "edge.crt", tmp_path / "edge.key"
    openssl = system_tool("openssl", "openssl")
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", f"/CN={DOMAIN}", "-keyout", str(key), "-out", str(cert)],
        capture_output=True, check=True, timeout=30,
    )  # fmt: skip
    env = valid_env(
        SIP_LISTEN="udp:127.0.0.1:15060,tcp:127.0.0.1:15060,tls:127.0.0.1:15061",
        TLS_CERT=str(cert),
        TLS_KEY=str(key),
    )
    config = render.write_edge(env, tmp_path / "out")
    text = config.read_text()
    assert "#!define WITH_TLS" in text
    assert "listen=tls:127.0.0.1:15061" in text
    checked = config_check(config)
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SIP_DOMAIN", ""),
        ("SIP_DOMAIN", 'edge.test" ; exec'),
        ("SIP_LISTEN", "udp:127.0.0.1"),
        ("SIP_LISTEN", "sctp:127.0.0.1:5060"),
        ("SIP_LISTEN", "udp:not-an-ip:5060"),
        ("SIP_LISTEN", "udp:127.0.0.1:70000"),
        ("SIP_LISTEN", "tls:127.0.0.1:5061"),
        ("APP_URL", ""),
        ("APP_URL", "ftp://app.example"),
        ("APP_URL", 'https://app.example/"x'),
        ("EDGE_SHARED_SECRET", ""),
        ("EDGE_SHARED_SECRET", "short"),
        ("EDGE_SHARED_SECRET", 'has "quotes" and is long enough'),
        ("CPAAS_ALLOW", ""),
        ("CPAAS_ALLOW", "10.0.0.5/24"),
        ("CPAAS_ALLOW", "10.0.0.0/8,nonsense"),
        ("TLS_CERT", "/nonexistent/edge.crt"),
        ("MIN_EXPIRES", "abc"),
        ("MIN_EXPIRES", "7200"),
        ("MAX_EXPIRES", "0"),
        ("RPC_PORT", "0"),
        ("RPC_PORT", "15060"),
        ("SIP_CREDENTIALS", "1001:not-a-ha1"),
    ],
)
def test_invalid_env_is_refused_naming_the_variable(name: str, value: str, tmp_path: Path) -> None:
    env = valid_env(**{name: value})
    with pytest.raises(render.RenderError) as refused:
        render.write_edge(env, tmp_path)
    assert any(problem.startswith(name) for problem in refused.value.problems), refused.value
    assert not (tmp_path / "kamailio.cfg").exists()


def test_the_cli_refuses_with_a_message_and_never_echoes_a_ha1(tmp_path: Path) -> None:
    secret_ha1 = ha1("1001", PASSWORD)
    env = {
        "PATH": os.environ.get("PATH", ""),
        **valid_env(SIP_CREDENTIALS=f"1001:{secret_ha1}x"),
        "SIP_DOMAIN": "",
    }
    result = subprocess.run(
        [sys.executable, str(EDGE / "render.py"), "--out", str(tmp_path)],
        env=env, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "SIP_DOMAIN: required and not set" in result.stderr
    assert "SIP_CREDENTIALS" in result.stderr
    assert secret_ha1 not in result.stderr + result.stdout


# --- the image stays in step with the renderer ----------------------------------------------


def test_dockerfile_and_entrypoint_document_exactly_the_renderer_variables() -> None:
    dockerfile = (EDGE / "Dockerfile").read_text()
    entrypoint = (EDGE / "entrypoint.sh").read_text()
    env_block = re.search(r"^ENV (.*?)(?:\n\n|\Z)", dockerfile, re.S | re.M)
    assert env_block is not None
    docker_vars = set(re.findall(r"\b([A-Z][A-Z0-9_]+)=", env_block.group(1)))
    entrypoint_vars = set(re.findall(r"^#   ([A-Z][A-Z0-9_]+)\s", entrypoint, re.M))
    assert docker_vars == set(render.VARIABLES)
    assert entrypoint_vars == set(render.VARIABLES)
    # Defaults agree too (empty in the image = required by the renderer).
    for name, value in re.findall(r'\b([A-Z][A-Z0-9_]+)="([^"]*)"', env_block.group(1)):
        assert (render.VARIABLES[name] or "") == value, name
    # Same template and renderer as the tests use, run before exec'ing kamailio in the foreground.
    assert re.search(
        r"^COPY kamailio\.cfg\.tmpl render\.py entrypoint\.sh /opt/edge/", dockerfile, re.M
    )
    assert "--template /opt/edge/kamailio.cfg.tmpl" in entrypoint
    assert "python3 /opt/edge/render.py" in entrypoint
    assert re.search(r'^exec kamailio -DD -E -f "\$config"$', entrypoint, re.M)
    assert re.search(r'^ENTRYPOINT \["/opt/edge/entrypoint.sh"\]', dockerfile, re.M)
    assert dockerfile.startswith("#") and "FROM debian:bookworm-slim" in dockerfile


def test_dockerfile_installs_the_package_of_every_loaded_module() -> None:
    template = (EDGE / "kamailio.cfg.tmpl").read_text()
    dockerfile = (EDGE / "Dockerfile").read_text()
    modules = set(re.findall(r'^loadmodule "([a-z_0-9]+)\.so"', template, re.M))
    unknown = modules - set(MODULE_PACKAGE)
    assert not unknown, f"add these modules to MODULE_PACKAGE: {sorted(unknown)}"
    install = re.search(r"apt-get install[^\n]*\n((?:\s+[^\n]*\\?\n)+)", dockerfile)
    assert install is not None
    installed = set(re.findall(r"\b(kamailio[a-z-]*|python3)\b", install.group(0)))
    needed = {MODULE_PACKAGE[module] for module in modules} | {"python3"}
    assert needed <= installed, needed - installed
    # And the tests' machine gets the same packages (plus sipp).
    wanted = {
        line.split("#")[0].strip()
        for line in (ROOT / "debian-packages.txt").read_text().splitlines()
    }
    assert needed - {"python3"} <= wanted
    assert "sip-tester" in wanted


# --- live: Kamailio on loopback, driven by sipp ---------------------------------------------


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


class AppStub(ThreadingHTTPServer):
    reports: list[tuple[str, dict[str, Any]]]


class ReportHandler(BaseHTTPRequestHandler):
    server: AppStub

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.reports.append(
            (self.path + " " + self.headers.get("X-Edge-Secret", ""), json.loads(body))
        )
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def app_stub() -> Iterator[AppStub]:
    server = AppStub(("127.0.0.1", 0), ReportHandler)
    server.reports = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def edge(tmp_path: Path, app_stub: AppStub) -> Iterator[int]:
    binary = kamailio_binary()
    system_tool("sipp", "sip-tester")
    port, rpc = free_port(), free_port()
    env = valid_env(
        SIP_LISTEN=f"udp:127.0.0.1:{port}",
        RPC_PORT=str(rpc),
        APP_URL=f"http://127.0.0.1:{app_stub.server_address[1]}",
    )
    config = render.write_edge(env, tmp_path / "edge")
    log = (tmp_path / "kamailio.log").open("w")
    process = subprocess.Popen(
        [binary, "-DD", "-E", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", rpc)) == 0:
                    break
            assert process.poll() is None, (tmp_path / "kamailio.log").read_text()
            time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def sipp(tmp_path: Path, edge_port: int, scenario: str, final: int, *extra: str) -> int:
    text = (SCENARIOS / scenario).read_text().replace("FINAL", str(final))
    path = tmp_path / f"{final}-{scenario}"
    path.write_text(text)
    result = subprocess.run(
        [system_tool("sipp", "sip-tester"), f"127.0.0.1:{edge_port}", "-sf", str(path),
         "-m", "1", "-i", "127.0.0.1",
         "-p", str(free_port()), "-t", "u1", "-nostdin", "-timeout", "8", "-timeout_error",
         "-key", "domain", DOMAIN, *extra],
        capture_output=True, text=True, timeout=20, check=False, cwd=tmp_path,
    )  # fmt: skip
    return result.returncode


def test_live_register_and_invite(edge: int, app_stub: AppStub, tmp_path: Path) -> None:
    # A phone with the right password registers, and the app hears of it.
    assert sipp(tmp_path, edge, "register.xml", 200, "-key", "ext", "1001",
                "-au", "1001", "-ap", PASSWORD) == 0  # fmt: skip
    deadline = time.monotonic() + 5
    while not app_stub.reports and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(app_stub.reports) == 1
    where, report = app_stub.reports[0]
    assert where == f"/edge/v1/registrations {SECRET}"
    assert report["extension"] == "1001"
    assert report["registered"] is True
    assert report["contact_count"] == 1
    assert report["user_agent"] == "sipp-phone/1.0"
    assert report["source"].startswith("udp:127.0.0.1:")

    # A wrong password is challenged again (401) and the app hears nothing.
    assert sipp(tmp_path, edge, "register.xml", 401, "-key", "ext", "1001",
                "-au", "1001", "-ap", "wrong-password") == 0  # fmt: skip
    time.sleep(0.3)
    assert len(app_stub.reports) == 1

    # The CPaaS (allowed source) calls an extension nobody registered: 480.
    assert sipp(tmp_path, edge, "invite_expect.xml", 480, "-key", "ext", "2002") == 0
