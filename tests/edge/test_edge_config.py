"""The SIP edge: render.py's validation, `kamailio -c` on the rendered configuration, the image
staying in step with the renderer, and one live run driven by sipp."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.support import system_tool
from tests.support.edge import DOMAIN, EDGE, ROOT, Edge, free_port, ha1, render, sipp, wait_for

SECRET = "edge-shared-secret-0123456789"
PASSWORD = "pw-1001-correct"
CALL_TOKEN = "call-token-of-this-edge"

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
            "mqueue",
            "rtimer",
            "dialog",
        ],
        "kamailio",
    ),
    "http_client": "kamailio-utils-modules",
    "tls": "kamailio-tls-modules",
}


def valid_env(**overrides: str) -> dict[str, str]:
    env = {
        "SIP_DOMAIN": DOMAIN,
        "SIP_LISTEN": "udp:127.0.0.1:15060,tcp:127.0.0.1:15060",
        "APP_URL": "http://127.0.0.1:9/",
        "EDGE_SHARED_SECRET": SECRET,
        "CPAAS_ALLOW": "127.0.0.2/32,2001:db8::/32",
        "MIN_EXPIRES": "60",
        "MAX_EXPIRES": "3600",
        "RPC_PORT": "15090",
        "CREDENTIALS_INTERVAL": "1",
        "PRESENCE_INTERVAL": "60",
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
    advertised = render.write_edge(valid_env(SIP_ADVERTISE="203.0.113.10"), tmp_path / "public")
    assert "listen=udp:127.0.0.1:15060 advertise 203.0.113.10:15060" in advertised.read_text()
    assert 'modparam("registrar", "min_expires", 60)' in text
    assert "http://127.0.0.1:9/edge/v1/registrations" in text
    assert "#!define WITH_TLS" not in text
    assert (tmp_path / "address.list").read_text().splitlines()[1:] == [
        "1 127.0.0.2 32 0 cpaas",
        "1 2001:db8:: 32 0 cpaas",
    ]
    for name in ("kamailio.cfg", "address.list"):
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
        ("APP_URL", "http://app.example"),
        ("APP_URL", "https://app.example/$var(x)"),
        ("SIP_ADVERTISE", "not a host!"),
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
        ("CREDENTIALS_INTERVAL", "0"),
        ("PRESENCE_INTERVAL", "soon"),
    ],
)
def test_invalid_env_is_refused_naming_the_variable(name: str, value: str, tmp_path: Path) -> None:
    env = valid_env(**{name: value})
    with pytest.raises(render.RenderError) as refused:
        render.write_edge(env, tmp_path)
    assert any(problem.startswith(name) for problem in refused.value.problems), refused.value
    assert not (tmp_path / "kamailio.cfg").exists()


def test_the_cli_refuses_with_a_message_and_never_echoes_the_secret(tmp_path: Path) -> None:
    env = {
        "PATH": os.environ.get("PATH", ""),
        **valid_env(EDGE_SHARED_SECRET=SECRET + '"'),
        "SIP_DOMAIN": "",
    }
    for command in (["render.py", "--out", str(tmp_path)], ["agent.py", "--once"]):
        result = subprocess.run(
            [sys.executable, str(EDGE / command[0]), *command[1:]],
            env=env, capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        assert result.returncode == 2, command
        assert "SIP_DOMAIN: required and not set" in result.stderr
        assert "EDGE_SHARED_SECRET" in result.stderr
        assert SECRET not in result.stderr + result.stdout


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
        r"^COPY kamailio\.cfg\.tmpl render\.py agent\.py entrypoint\.sh /opt/edge/",
        dockerfile,
        re.M,
    )
    assert "--template /opt/edge/kamailio.cfg.tmpl" in entrypoint
    assert "python3 /opt/edge/render.py" in entrypoint
    assert re.search(r"python3 /opt/edge/agent.py \|\| true; sleep 2; done\) &$", entrypoint, re.M)
    assert re.search(r"^COPY [^\n]*\bagent\.py\b", dockerfile, re.M)
    assert re.search(r'^exec kamailio -DD -E -f "\$config"$', entrypoint, re.M)
    assert re.search(r'^ENTRYPOINT \["/opt/edge/entrypoint.sh"\]', dockerfile, re.M)
    assert dockerfile.startswith("#") and "FROM debian:bookworm-slim" in dockerfile
    # Kamailio and the agent do not run as root.
    assert re.search(r"^USER kamailio$", dockerfile, re.M)


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


class AppStub(ThreadingHTTPServer):
    """Stands in for the app: serves `credentials`, records reports and snapshots."""

    credentials: dict[str, str]
    reports: list[tuple[str, dict[str, Any]]]
    snapshots: list[dict[str, Any]]


class StubHandler(BaseHTTPRequestHandler):
    server: AppStub

    def do_GET(self) -> None:
        if self.headers.get("X-Edge-Secret") != SECRET:
            self.send_response(401)
            self.end_headers()
            return
        listed = [{"extension": e, "ha1": h} for e, h in sorted(self.server.credentials.items())]
        answer = {"domain": DOMAIN, "call_token": CALL_TOKEN, "credentials": listed}
        body = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        if self.path.endswith("/sync"):
            self.server.snapshots.append(body)
        else:
            self.server.reports.append(
                (self.path + " " + self.headers.get("X-Edge-Secret", ""), body)
            )
        answer = b"{}"
        self.send_response(200)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def app_stub() -> Iterator[AppStub]:
    server = AppStub(("127.0.0.1", 0), StubHandler)
    server.credentials = {"1001": ha1("1001", PASSWORD)}
    server.reports, server.snapshots = [], []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def edge(tmp_path: Path, app_stub: AppStub) -> Iterator[Edge]:
    port = free_port()
    env = valid_env(
        SIP_LISTEN=f"udp:127.0.0.1:{port},tcp:127.0.0.1:{port}",
        RPC_PORT=str(free_port()),
        APP_URL=f"http://127.0.0.1:{app_stub.server_address[1]}",
        MIN_EXPIRES="1",
    )
    running = Edge(tmp_path, env)
    try:
        running.start()
        assert wait_for(lambda: running.has_credential("1001")), running.log("agent.log")
        yield running
    finally:
        running.stop()


def cpaas_invite(tmp_path: Path, edge: Edge, ext: str, final: int, **options: Any) -> int:
    result = sipp(tmp_path, edge.port, "invite_expect.xml", final, "-key", "ext", ext,
                  local_ip=options.pop("local_ip", "127.0.0.2"), **options)  # fmt: skip
    assert isinstance(result, subprocess.CompletedProcess)
    return result.returncode


def test_live_register_and_invite(edge: Edge, app_stub: AppStub, tmp_path: Path) -> None:
    # The agent loaded the app's credential and call token, and sent a first (empty) snapshot.
    assert wait_for(lambda: app_stub.snapshots)
    assert app_stub.snapshots[0]["registrations"] == []
    assert edge.rpc("htable.dump", "edge")[0]["slot"][0]["value"] == CALL_TOKEN
    # A phone with the right password registers, and the app hears of it.
    phone = ("-key", "ext", "1001", "-au", "1001", "-ap", PASSWORD)
    assert sipp(tmp_path, edge.port, "register.xml", 200, *phone).returncode == 0
    assert wait_for(lambda: app_stub.reports, timeout=5)
    assert len(app_stub.reports) == 1
    where, report = app_stub.reports[0]
    assert where == f"/edge/v1/registrations {SECRET}"
    assert report["extension"] == "1001"
    assert report["registered"] is True
    assert report["contact_count"] == 1
    assert report["user_agent"] == "sipp-phone/1.0"
    assert report["source"].startswith("udp:127.0.0.1:")
    assert 110 <= report["expires"] - report["at"] <= 121
    assert abs(report["at"] - time.time()) < 10

    # Over TCP too (the connection stays open for calls to reach the phone behind NAT).
    assert sipp(tmp_path, edge.port, "register.xml", 200, *phone, transport="t1").returncode == 0
    assert wait_for(lambda: len(app_stub.reports) == 2, timeout=5)
    over_tcp = app_stub.reports[1][1]
    assert (over_tcp["registered"], over_tcp["contact_count"]) == (True, 2)
    assert over_tcp["source"].startswith("tcp:127.0.0.1:")
    # Unregistering that contact (Expires: 0) leaves the UDP one: still registered.
    tcp_port = int(over_tcp["source"].rsplit(":", 1)[1])
    assert sipp(tmp_path, edge.port, "register.xml", 200, *phone, transport="t1",
                expires=0, local_port=tcp_port).returncode == 0  # fmt: skip
    assert wait_for(lambda: len(app_stub.reports) == 3, timeout=5)
    assert (app_stub.reports[2][1]["registered"], app_stub.reports[2][1]["contact_count"]) == (
        True,
        1,
    )

    # A wrong password is challenged again (401) and the app hears nothing.
    wrong = ("-key", "ext", "1001", "-au", "1001", "-ap", "wrong-password")
    assert sipp(tmp_path, edge.port, "register.xml", 401, *wrong).returncode == 0
    time.sleep(0.3)
    assert len(app_stub.reports) == 3

    # The CPaaS (allowed source) with the edge's call token calls an extension nobody
    # registered: 480. Without the token, or with another edge's, even a registered one: 403.
    assert cpaas_invite(tmp_path, edge, "2002", 480, token=CALL_TOKEN) == 0
    assert cpaas_invite(tmp_path, edge, "1001", 403) == 0
    assert cpaas_invite(tmp_path, edge, "1001", 403, token="another-edges-token") == 0
    # A stranger (not on the allow-list, no credentials) gets 403 too.
    assert cpaas_invite(tmp_path, edge, "1001", 403, local_ip="127.0.0.3", token=CALL_TOKEN) == 0
    # A forged in-dialog request (a Route to the edge, a To tag, no call it relayed): 403.
    forged = sipp(tmp_path, edge.port, "forged_bye.xml", 403, "-key", "ext", "1001",
                  local_ip="127.0.0.3", contact_port=free_port())  # fmt: skip
    assert isinstance(forged, subprocess.CompletedProcess)
    assert forged.returncode == 0, forged.stdout + forged.stderr

    # JSON-RPC answers only with the shared secret, even on loopback.
    refused = urllib.request.Request(
        f"http://127.0.0.1:{edge.rpc_port}/RPC",
        data=b'{"jsonrpc": "2.0", "method": "htable.dump", "params": ["cred"], "id": 1}',
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as forbidden:
        urllib.request.urlopen(refused, timeout=5)
    assert forbidden.value.code == 403

    # The agent's snapshot lists the registration as Kamailio holds it.
    ran = edge.run_agent_once()
    assert ran.returncode == 0, ran.stderr
    latest = app_stub.snapshots[-1]["registrations"]
    assert [(r["extension"], r["contact_count"], r["user_agent"]) for r in latest] == [
        ("1001", 1, "sipp-phone/1.0")
    ]
    assert latest[0]["source"].startswith("udp:127.0.0.1:")

    # The app revokes 1001: the agent drops the credential and the registration with it.
    app_stub.credentials = {}
    assert wait_for(lambda: not edge.has_credential("1001")), edge.log("agent.log")
    assert wait_for(lambda: edge.registered_users() == 0)
    assert sipp(tmp_path, edge.port, "register.xml", 401, *phone).returncode == 0
    logs = edge.log("agent.log") + edge.log("kamailio.log")
    for secret in (PASSWORD, ha1("1001", PASSWORD), SECRET, CALL_TOKEN):
        assert secret not in logs


def test_live_expiry_is_reported_and_a_strange_user_agent_keeps_the_report_valid(
    edge: Edge, app_stub: AppStub, tmp_path: Path
) -> None:
    # A phone whose User-Agent has a quote and a backslash registers for 2 seconds.
    phone = ("-key", "ext", "1001", "-au", "1001", "-ap", PASSWORD)
    odd = 'Evil"Phone\\1.0 (x)'
    assert sipp(tmp_path, edge.port, "register.xml", 200, *phone, expires=2,
                user_agent=odd).returncode == 0  # fmt: skip
    assert wait_for(lambda: app_stub.reports, timeout=5), edge.log("kamailio.log")
    first = app_stub.reports[0][1]
    assert (first["registered"], first["user_agent"]) == (True, "EvilPhone1.0 (x)")
    # usrloc finds the expired contact (every 5 s) and the edge reports the phone gone.
    assert wait_for(lambda: len(app_stub.reports) >= 2, timeout=15), edge.log("kamailio.log")
    gone = app_stub.reports[1][1]
    assert (gone["extension"], gone["registered"], gone["contact_count"]) == ("1001", False, 0)
    assert gone["at"] >= first["at"] + 2
    # And the agent's snapshot, taken while ul.dump may still list it as "expired", works.
    ran = edge.run_agent_once()
    assert ran.returncode == 0, ran.stderr
    assert app_stub.snapshots[-1]["registrations"] == []
