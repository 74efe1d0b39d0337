"""The local stack: moto server as the AWS endpoint, tables, Cognito, demo data, `chalice local`.

`python -m tools.devstack` (what `make run` starts). Nothing in chalicelib/ knows it runs
locally: the app gets endpoints and names through environment variables only, exactly as
in AWS. Moto's state is snapshotted to `<state-dir>/moto-state.pickle` every few seconds
and on exit, and restored on start, so local data survives a restart.
"""

from __future__ import annotations

import argparse
import contextlib
import copyreg
import gc
import http.client
import io
import json
import os
import pickle
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import boto3

from tools.localaws import LISTEN_BACKLOG, backend_lock, changes, free_port, moto_server

ROOT = Path(__file__).resolve().parent.parent
SNAPSHOT_SERVICES = ("dynamodb", "cognito-idp")
POOL_NAME = "ppc-local-users"
CLIENT_NAME = "ppc-dashboard"
AUTH_TOKEN_PARAM = "/ppc/local/twilio/auth-token"
DEMO_ACCOUNT_ID = "acc_demo"
PLATFORM_ACCOUNT_ID = "acc_platform"
DEMO_NUMBER = "+18005550100"


@dataclass
class LocalSecrets:
    """Generated once per state folder and reused, so a restart prints the same logins."""

    admin_email: str
    admin_password: str
    super_admin_email: str
    super_admin_password: str
    twilio_auth_token: str

    @classmethod
    def load_or_create(cls, path: Path) -> LocalSecrets:
        if path.exists():
            return cls(**json.loads(path.read_text()))
        made = cls(
            admin_email="admin@demo.example.com",
            admin_password=_password(),
            super_admin_email="root@platform.example.com",
            super_admin_password=_password(),
            twilio_auth_token=os.environ.get("TWILIO_AUTH_TOKEN") or secrets.token_hex(16),
        )
        path.write_text(json.dumps(asdict(made), indent=2))
        path.chmod(0o600)
        return made


def _password() -> str:
    return secrets.token_urlsafe(12) + "aA1!"


# --- moto state snapshot -----------------------------------------------------------------


def _pickled_state() -> bytes:
    """moto's backends, pickled; the caller holds `backend_lock` (or is a forked copy).
    Cognito's signing key is carried as PEM."""
    import moto
    from joserfc.jwk import RSAKey
    from moto.backends import get_backend

    state = {name: dict(get_backend(name)) for name in SNAPSHOT_SERVICES}  # type: ignore[call-overload]
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
    # A dispatch table is looked up in C; a `reducer_override` method is a Python call for
    # every object pickled, which made a snapshot 2.4 times slower.
    pickler.dispatch_table = {
        **copyreg.dispatch_table,
        RSAKey: lambda key: (RSAKey.import_key, (key.as_pem(private=True),)),
    }
    pickler.dump({"moto": moto.__version__, "backends": state})
    return buffer.getvalue()


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def save_snapshot(path: Path) -> bool:
    """Save moto's state in this process (the backends stay locked while it is pickled)."""
    try:
        with backend_lock:
            data = _pickled_state()
    except Exception as err:  # noqa: BLE001 - a failed snapshot must not stop the stack
        # The previous snapshot file stays in place until one succeeds.
        print(f"devstack: snapshot skipped ({type(err).__name__}); retrying", file=sys.stderr)
        return False
    _write_atomically(path, data)
    return True


class Snapshots:
    """moto's state saved to `path` at most every `every` seconds, when it has changed.

    Each save is pickled by a forked child: the fork copies the process between two AWS
    requests (under `backend_lock`) and the stack goes on serving while the child pickles
    its copy. Pickled in this process, the backends stayed locked for the whole pickling
    (about 10 s with 100,000 call records here, bench.localstack), so every AWS request
    waited that long and the app's DynamoDB requests timed out. Without `os.fork` (not
    POSIX) the save is made in process. A save that took D seconds is followed by the next
    one no sooner than `spacing` * D later, so the saving process takes at most a fifth of a
    core; a clean stop always saves last.
    """

    def __init__(self, path: Path, every: float, spacing: float = 4.0) -> None:
        self.path = path
        self.every = every
        self.spacing = spacing
        self.gap = every  # until the next save may start
        self.saved = -1  # localaws.changes() when the last good snapshot was taken
        self.child: tuple[int, int] | None = None  # (pid, changes() it is saving)
        self.started = -float("inf")
        self.pauses_ms: list[float] = []  # how long each save held the AWS endpoint
        self.seconds: list[float] = []  # how long each save took
        self.failed = 0

    def tick(self) -> None:
        """Reap a finished save; start the next one if it is time and something changed."""
        if not self._reaped(block=False):
            return
        version = changes()
        if version == self.saved or time.monotonic() - self.started < self.gap:
            return
        if not hasattr(os, "fork"):
            self.started = time.monotonic()
            if save_snapshot(self.path):
                self.saved = version
            return
        self.child = (self._fork(), version)

    def soon(self) -> None:
        """Start the next save at the next tick if anything changed, whatever the gap."""
        self.started = -float("inf")

    def _fork(self) -> int:
        import joserfc.jwk  # noqa: F401 - imported before the fork: the child imports nothing
        import moto.backends  # noqa: F401

        with backend_lock:
            began = time.perf_counter()
            self.started = time.monotonic()
            pid = os.fork()
            if pid == 0:
                # Only this thread exists in the child; it must not take locks other
                # threads may have held at the fork (logging, stdout): it pickles, writes
                # and leaves without running any exit handlers.
                code = 1
                try:
                    gc.disable()
                    _write_atomically(self.path, _pickled_state())
                    code = 0
                finally:
                    os._exit(code)
            self.pauses_ms.append((time.perf_counter() - began) * 1000.0)
        return pid

    def _reaped(self, block: bool) -> bool:
        """Whether no save is under way (after collecting a finished one)."""
        if self.child is None:
            return True
        pid, version = self.child
        done, status = os.waitpid(pid, 0 if block else os.WNOHANG)
        if not done:
            return False
        self.child = None
        took = time.monotonic() - self.started
        self.seconds.append(took)
        self.gap = max(self.every, (1 + self.spacing) * took)
        if os.waitstatus_to_exitcode(status) == 0:
            self.saved = version
        else:
            self.failed += 1
            print("devstack: snapshot skipped (the saving process failed); retrying")
        return True

    def wait(self) -> None:
        """Wait for a save under way to finish."""
        self._reaped(block=True)

    def close(self) -> None:
        """Wait for a save under way, then save the latest state in process."""
        self.wait()
        for _ in range(5):
            if save_snapshot(self.path):
                return
            time.sleep(0.2)


def restore_snapshot(path: Path) -> bool:
    import moto
    from moto.backends import get_backend

    if not path.exists():
        return False
    try:
        # The snapshot is a file this tool wrote into the git-ignored state folder.
        blob = pickle.loads(path.read_bytes())  # noqa: S301
        if blob.get("moto") != moto.__version__:
            raise ValueError(f"snapshot from moto {blob.get('moto')}, running {moto.__version__}")
        for name, accounts in blob["backends"].items():
            live = get_backend(name)
            for account_id, regions in accounts.items():
                live[account_id] = regions
    except Exception as err:  # noqa: BLE001 - a bad snapshot must not stop the stack
        aside = path.with_suffix(".unreadable")
        os.replace(path, aside)
        print(f"devstack: could not restore {path.name} ({err}); kept it as {aside.name}")
        return False
    return True


# --- bootstrap -----------------------------------------------------------------------------


def ensure_user_pool(endpoint: str, region: str) -> tuple[str, str]:
    """The local pool and dashboard client, created once (same shape as infra/'s Cognito)."""
    idp = boto3.client("cognito-idp", endpoint_url=endpoint, region_name=region)
    pools = idp.list_user_pools(MaxResults=60)["UserPools"]
    pool_id = next((p["Id"] for p in pools if p["Name"] == POOL_NAME), None)
    if pool_id is None:
        pool_id = idp.create_user_pool(
            PoolName=POOL_NAME,
            UsernameAttributes=["email"],
            Schema=[
                {"Name": "account_id", "AttributeDataType": "String", "Mutable": True},
                {"Name": "role", "AttributeDataType": "String", "Mutable": True},
            ],
        )["UserPool"]["Id"]
    clients = idp.list_user_pool_clients(UserPoolId=pool_id, MaxResults=60)["UserPoolClients"]
    client_id = next((c["ClientId"] for c in clients if c["ClientName"] == CLIENT_NAME), None)
    if client_id is None:
        client_id = idp.create_user_pool_client(
            UserPoolId=pool_id,
            ClientName=CLIENT_NAME,
            GenerateSecret=False,
            ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
            # Users may not rewrite their own account or role claims.
            WriteAttributes=["email"],
        )["UserPoolClient"]["ClientId"]
    return str(pool_id), str(client_id)


def app_environment(
    endpoint: str,
    region: str,
    pool_id: str,
    client_id: str,
    public_base_url: str,
    queue: tuple[str, str] | None = None,
) -> dict[str, str]:
    """What `chalice local` (and in-process tests) need: the same variables as in AWS.
    `queue`: the endpoint and URL of the queue for callbacks that could not be applied."""
    queue_env = {"AWS_ENDPOINT_URL_SQS": queue[0], "DEFERRED_QUEUE_URL": queue[1]} if queue else {}
    return {
        **queue_env,
        "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
        "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        "AWS_ENDPOINT_URL": endpoint,
        "APP_TABLE_NAME": os.environ.get("APP_TABLE_NAME", "ppc-local-app"),
        "IDEMPOTENCY_TABLE_NAME": os.environ.get("IDEMPOTENCY_TABLE_NAME", "ppc-local-idempotency"),
        "COGNITO_USER_POOL_ID": pool_id,
        "COGNITO_CLIENT_ID": client_id,
        "PUBLIC_BASE_URL": public_base_url,
        "TWILIO_AUTH_TOKEN_PARAM": AUTH_TOKEN_PARAM,
        "POWERTOOLS_SERVICE_NAME": "ppc-platform",
        "POWERTOOLS_METRICS_NAMESPACE": "PayPerCallLocal",
        "POWERTOOLS_LOG_LEVEL": os.environ.get("POWERTOOLS_LOG_LEVEL", "INFO"),
        # Local pixel receivers and bidders listen on loopback; in AWS this stays unset and
        # outbound calls go to public https addresses only.
        "OUTBOUND_ALLOW_PRIVATE": "true",
    }


DEFERRED_QUEUE = "ppc-local-deferred"


def start_queue_endpoint(host: str) -> tuple[subprocess.Popen[bytes], str, str]:
    """A moto server of its own (another process) holding the queue of callbacks that could
    not be applied, as SQS is a service apart from DynamoDB in AWS: it stays up while the
    table's endpoint does not answer. Returns the process, its endpoint and the queue URL."""
    port = free_port(host)
    process = subprocess.Popen(
        [sys.executable, "-m", "tools.localaws", "--host", host, "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    endpoint = f"http://{host}:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            sqs = boto3.client("sqs", endpoint_url=endpoint)
            dead = sqs.create_queue(QueueName=f"{DEFERRED_QUEUE}-dlq")["QueueUrl"]
            dead_arn = sqs.get_queue_attributes(QueueUrl=dead, AttributeNames=["QueueArn"])
            # As in AWS: a callback that keeps failing ends in the dead-letter queue.
            redrive = {
                "deadLetterTargetArn": dead_arn["Attributes"]["QueueArn"],
                "maxReceiveCount": "1000",
            }
            url = sqs.create_queue(
                QueueName=DEFERRED_QUEUE, Attributes={"RedrivePolicy": json.dumps(redrive)}
            )["QueueUrl"]
            return process, endpoint, str(url)
        except Exception:
            if time.monotonic() > deadline or process.poll() is not None:
                process.terminate()
                raise
            time.sleep(0.2)


def run_schedules(stopping: threading.Event, every: float) -> None:
    """The app's scheduled functions (EventBridge in AWS), run in this process: callbacks
    kept while the table was down and pixel retries each `every` seconds (a minute by
    default, as in AWS), the sweep every tenth time."""
    from chalicelib.voice import replay, sweep

    ticks = 0
    while not stopping.wait(every):
        ticks += 1
        jobs: tuple[tuple[Callable[[], int], bool], ...] = (
            (replay.replay_due, True),
            (sweep.retry_all_pixels, True),
            (sweep.sweep_all, ticks % 10 == 0),
        )
        for job, due in jobs:
            if not due:
                continue
            try:
                job()
            except Exception as err:  # noqa: BLE001 - the next run tries again
                print(f"devstack: scheduled job failed: {err!r}", file=sys.stderr, flush=True)


def seed(env: dict[str, str], local: LocalSecrets) -> None:
    """Demo data, written once: a platform super admin, a demo account, its admin and number."""
    os.environ.update(env)
    from chalicelib.auth import cognito
    from chalicelib.auth.roles import Role
    from chalicelib.config import get_settings
    from chalicelib.store import numbers, tables, tenants

    get_settings.cache_clear()
    settings = get_settings()
    tables.configure(settings)
    created = tables.ensure_tables(settings)
    if created:
        print(f"devstack: created tables {', '.join(created)}")
    ssm = boto3.client("ssm", endpoint_url=env["AWS_ENDPOINT_URL"], region_name=settings.region)
    ssm.put_parameter(
        Name=AUTH_TOKEN_PARAM, Value=local.twilio_auth_token, Type="SecureString", Overwrite=True
    )
    for account_id, name, email, password, role in (
        (
            PLATFORM_ACCOUNT_ID,
            "Platform",
            local.super_admin_email,
            local.super_admin_password,
            Role.SUPER_ADMIN,
        ),
        (DEMO_ACCOUNT_ID, "Demo Networks", local.admin_email, local.admin_password, Role.ADMIN),
    ):
        # Each step is checked on its own, so a run stopped half-way is completed next time.
        if tenants.get_account(account_id) is None:
            tenants.create_account(name, account_id)
        try:
            user_id = cognito.create_user(email, password, account_id, role)
        except cognito.UserExists:
            continue
        tenants.put_user(account_id, user_id, email, role.wire)
        print(f"devstack: seeded account {account_id} with {role.wire} {email}")
    if numbers.route_for_number(DEMO_NUMBER) is None:
        numbers.add_tracking_number(
            DEMO_ACCOUNT_ID,
            DEMO_NUMBER,
            "Demo toll-free",
            "Thank you for calling Demo Networks. This call is recorded for quality. Goodbye.",
        )


# --- dashboard: the static bundle and the API on one origin ------------------------------

DASHBOARD_DIST = ROOT / "dashboard" / "dist"
# What CloudFront sends to API Gateway in AWS; everything else is the static bundle.
PROXIED_PREFIXES = ("/api/", "/dni/", "/dni.js", "/rtb/", "/openapi.json", "/health")
HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
    "trailers", "transfer-encoding", "upgrade", "host",
}  # fmt: skip
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
}


class DashboardHandler(BaseHTTPRequestHandler):
    """Serves `dashboard/dist/` and passes the API's paths to `chalice local` unchanged."""

    dist: ClassVar[Path] = DASHBOARD_DIST
    api_host: ClassVar[str] = "127.0.0.1"
    api_port: ClassVar[int] = 8000
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_OPTIONS(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        path = urlsplit(self.path).path
        if path.startswith(PROXIED_PREFIXES):
            self._proxy()
        elif self.command in {"GET", "HEAD"}:
            self._static(path)
        else:
            self._send(405, b"method not allowed", "text/plain")

    def _static(self, path: str) -> None:
        relative = "index.html" if path in {"", "/"} else path.lstrip("/")
        root = self.dist.resolve()
        file = (root / relative).resolve()
        if not file.is_relative_to(root) or not file.is_file():
            self._send(404, b"not found", "text/plain")
            return
        # Hashed assets never change; index.html names the current ones, so it is revalidated.
        cache = "no-cache" if file.name == "index.html" else "public, max-age=31536000, immutable"
        kind = CONTENT_TYPES.get(file.suffix, "application/octet-stream")
        self._send(200, file.read_bytes(), kind, {"Cache-Control": cache})

    def _send(
        self, status: int, body: bytes, kind: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _proxy(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        upstream = http.client.HTTPConnection(self.api_host, self.api_port, timeout=120)
        try:
            upstream.request(self.command, self.path, body=body, headers=headers)
            reply = upstream.getresponse()
            self.send_response(reply.status, reply.reason)
            length_known = reply.getheader("Content-Length") is not None
            for name, value in reply.getheaders():
                # send_response wrote this server's own Server and Date already.
                if name.lower() not in HOP_BY_HOP | {"server", "date"}:
                    self.send_header(name, value)
            no_body = self.command == "HEAD" or reply.status in {204, 304}
            if not length_known and not no_body:
                self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            while not no_body and (chunk := reply.read1(65536)):
                self.wfile.write(chunk if length_known else b"%x\r\n%s\r\n" % (len(chunk), chunk))
            if not length_known and not no_body:
                self.wfile.write(b"0\r\n\r\n")
        except OSError as err:
            self._send(502, f"the API is unreachable: {err}".encode(), "text/plain")
        finally:
            upstream.close()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # chalice local logs the API requests; static files are not worth a line


class _DashboardServer(ThreadingHTTPServer):
    request_queue_size = LISTEN_BACKLOG  # the page and its API calls arrive in bursts too
    daemon_threads = True


def start_dashboard(host: str, port: int, api_port: int) -> ThreadingHTTPServer:
    """The dashboard's origin on a loopback port (0: a free one), in a daemon thread."""
    if not (DASHBOARD_DIST / "index.html").exists():
        # `make run` builds it first; a bare `python -m tools.devstack` builds it here.
        subprocess.run([sys.executable, str(ROOT / "dashboard" / "build.py")], check=True)
    handler = type(
        "BoundDashboardHandler", (DashboardHandler,), {"api_host": host, "api_port": api_port}
    )
    server = _DashboardServer((host, port), handler)
    threading.Thread(target=server.serve_forever, name="dashboard", daemon=True).start()
    return server


# --- demo traffic (make run) -----------------------------------------------------------------

DEMO_CAMPAIGN = "Demo: Medicare leads"
# Numbers of their own, so the documented demo number keeps answering with its greeting.
DEMO_TRAFFIC_NUMBERS = {"+18005550111": "Google Ads", "+18005550112": "Facebook"}


def seed_demo_traffic(api_url: str, local: LocalSecrets) -> int:
    """A buyer, two targets, a campaign on two numbers, and today's simulated calls (once a
    day), placed through the call simulator against the running API; returns calls placed."""
    import httpx

    from tools.callsim import CallSimulator, PartyBehaviour

    login = {"email": local.admin_email, "password": local.admin_password}
    token = httpx.post(f"{api_url}/api/v1/auth/login", json=login).json()["id_token"]
    with httpx.Client(base_url=api_url, headers={"Authorization": f"Bearer {token}"}) as api:
        names = {c["name"] for c in api.get("/api/v1/campaigns").json()["campaigns"]}
        if DEMO_CAMPAIGN not in names:
            buyer = api.post("/api/v1/buyers", json={"name": "Demo buyer: Acme Insurance"})
            buyer_id = buyer.json()["buyer"]["id"]
            targets = [
                api.post(
                    "/api/v1/targets",
                    json={"name": name, "buyer_id": buyer_id, "destination": destination},
                ).json()["target"]["id"]
                for name, destination in (
                    ("Acme sales floor", "+14155550181"),
                    ("Acme overflow", "+14155550182"),
                )
            ]
            campaign = api.post(
                "/api/v1/campaigns",
                json={
                    "name": DEMO_CAMPAIGN,
                    "plan": [{"target_id": t} for t in targets],
                    "revenue_cents": 4500,
                    "payout_cents": 3000,
                    "conversion": {"kind": "duration", "buffer_seconds": 60},
                },
            ).json()["campaign"]["id"]
            for number, source in DEMO_TRAFFIC_NUMBERS.items():
                body = {"number": number, "campaign_id": campaign, "source": source}
                api.post("/api/v1/numbers", json=body).raise_for_status()
        today = api.get("/api/v1/reports/summary", params={"group_by": "source"}).json()
        if any(g["key"] in DEMO_TRAFFIC_NUMBERS.values() for g in today["groups"]):
            return 0
    talks = [(180, "Google Ads"), (45, "Google Ads"), (240, "Facebook"), (0, "Google Ads")]
    talks += [(95, "Facebook"), (30, "Facebook")]
    by_source = {source: number for number, source in DEMO_TRAFFIC_NUMBERS.items()}
    with CallSimulator(api_url, local.twilio_auth_token) as cpaas:
        for n, (talk, source) in enumerate(talks):
            party = PartyBehaviour.answer(after=2, talk=talk) if talk else PartyBehaviour.busy()
            cpaas.place_call(f"+1312555{n + 7100:04d}", by_source[source], default_party=party)
    return len(talks)


def _seed_demo_traffic_quietly(api_url: str, local: LocalSecrets) -> None:
    try:
        placed = seed_demo_traffic(api_url, local)
    except Exception as err:  # noqa: BLE001 - demo data is a nicety; the stack runs without it
        print(f"devstack: demo traffic skipped ({type(err).__name__}: {err})", file=sys.stderr)
        return
    if placed:
        print(f"devstack: placed {placed} demo calls (see the dashboard's overview)", flush=True)


# --- process management --------------------------------------------------------------------


def wait_http(url: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1) as reply:  # noqa: S310 - loopback only
                if reply.status == 200:
                    return
        except OSError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.1)


def start_chalice(
    host: str, port: int, env: dict[str, str], output: int | None = None
) -> subprocess.Popen[bytes]:
    """`chalice local` through tools/localapi.py (made for bursts of connections); its log
    goes to this process's stdout, or to `output` (e.g. subprocess.DEVNULL)."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tools.localapi",
            "--host",
            host,
            "--port",
            str(port),
            "--stage",
            "dev",
            "--no-autoreload",
        ],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=output,
        stderr=output,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--api-port", type=int, default=int(os.environ.get("API_PORT", "8000")))
    parser.add_argument("--moto-port", type=int, default=int(os.environ.get("MOTO_PORT", "5100")))
    parser.add_argument(
        "--dashboard-port", type=int, default=int(os.environ.get("DASHBOARD_PORT", "8001"))
    )
    parser.add_argument("--state-dir", type=Path, default=ROOT / ".local")
    parser.add_argument(
        "--demo-traffic",
        action="store_true",
        help="seed a demo campaign and place today's demo calls (make run does)",
    )
    parser.add_argument("--snapshot-every", type=float, default=5.0)
    parser.add_argument(
        "--schedule-every",
        type=float,
        default=60.0,
        help="seconds between runs of the app's per-minute schedules (tests run them faster)",
    )
    args = parser.parse_args(argv)

    wanted = [args.api_port] + ([] if os.environ.get("AWS_ENDPOINT_URL") else [args.moto_port])
    wanted += [args.dashboard_port] if args.dashboard_port else []
    busy = [port for port in wanted if not _port_free(args.host, port)]
    if busy:
        print(
            f"devstack: port(s) {busy} on {args.host} are in use; stop what holds them or "
            "choose others with --api-port/--moto-port/--dashboard-port "
            "(or API_PORT/MOTO_PORT/DASHBOARD_PORT)",
            file=sys.stderr,
        )
        return 1
    args.state_dir.mkdir(parents=True, exist_ok=True)
    local = LocalSecrets.load_or_create(args.state_dir / "credentials.json")
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ["AWS_DEFAULT_REGION"] = region

    with contextlib.ExitStack() as running:
        endpoint = os.environ.get("AWS_ENDPOINT_URL")
        snapshots = None
        if endpoint:
            print(f"devstack: using the AWS endpoint from AWS_ENDPOINT_URL: {endpoint}")
        else:
            snapshot = args.state_dir / "moto-state.pickle"
            if restore_snapshot(snapshot):
                print(f"devstack: restored local data from {snapshot}")
            endpoint = running.enter_context(moto_server(args.host, args.moto_port))
            snapshots = Snapshots(snapshot, args.snapshot_every)
            # Runs before the server stops (exit order), so the last writes are kept.
            running.callback(snapshots.close)
        return _serve(args, local, region, endpoint, snapshots)


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As the servers themselves do: connections closed a moment ago (TIME_WAIT) do not
        # keep a port from being listened on again.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _serve(
    args: argparse.Namespace,
    local: LocalSecrets,
    region: str,
    endpoint: str,
    snapshots: Snapshots | None,
) -> int:
    pool_id, client_id = ensure_user_pool(endpoint, region)
    public = os.environ.get("PUBLIC_BASE_URL") or f"http://{args.host}:{args.api_port}"
    queue_process, queue_endpoint, queue_url = start_queue_endpoint(args.host)
    env = app_environment(endpoint, region, pool_id, client_id, public, (queue_endpoint, queue_url))
    seed(env, local)

    api = start_chalice(args.host, args.api_port, env)
    stopping = threading.Event()
    schedules_done = threading.Event()
    threading.Thread(
        target=run_schedules, args=(schedules_done, args.schedule_every), daemon=True
    ).start()

    def stop(signum: int, _frame: Any) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    api_url = f"http://{args.host}:{args.api_port}"
    dashboard = start_dashboard(args.host, args.dashboard_port, args.api_port)
    dashboard_url = f"http://{args.host}:{dashboard.server_address[1]}"
    try:
        wait_http(f"{api_url}/health", 60)
        _announce(api_url, dashboard_url, endpoint, env, local)
        if args.demo_traffic:
            threading.Thread(
                target=_seed_demo_traffic_quietly, args=(api_url, local), daemon=True
            ).start()
        while not stopping.is_set() and api.poll() is None:
            stopping.wait(0.5)
            if snapshots:
                snapshots.tick()
    finally:
        schedules_done.set()
        dashboard.shutdown()
        dashboard.server_close()
        queue_process.terminate()
        if api.poll() is None:
            api.terminate()
            try:
                api.wait(10)
            except subprocess.TimeoutExpired:
                api.kill()
        print("devstack: stopped")
    return 0 if stopping.is_set() else (api.returncode or 1)


def _announce(
    api_url: str, dashboard_url: str, endpoint: str, env: dict[str, str], local: LocalSecrets
) -> None:
    print(
        f"""
Local stack is up.
  Dashboard:      {dashboard_url}   (log in as the demo admin below)
  API:            {api_url}   (OpenAPI: {api_url}/openapi.json)
  AWS endpoint:   {endpoint}   (DynamoDB, Cognito, SSM)
  Demo admin:     {local.admin_email} / {local.admin_password}
  Super admin:    {local.super_admin_email} / {local.super_admin_password}
  CPaaS token:    {local.twilio_auth_token}

Log in:
  curl -s -X POST {api_url}/api/v1/auth/login -H 'Content-Type: application/json' \\
    -d '{{"email": "{local.admin_email}", "password": "{local.admin_password}"}}'

Place a simulated call to the demo tracking number:
  .venv/bin/python -m tools.callsim --url {api_url} --auth-token {local.twilio_auth_token} \\
    --from +14155550123 --to {DEMO_NUMBER}
""",
        flush=True,
    )
    ready = {
        "api_url": api_url,
        "dashboard_url": dashboard_url,
        "aws_endpoint": endpoint,
        "env": env,
        "admin_email": local.admin_email,
        "admin_password": local.admin_password,
        "super_admin_email": local.super_admin_email,
        "super_admin_password": local.super_admin_password,
        "twilio_auth_token": local.twilio_auth_token,
        "demo_number": DEMO_NUMBER,
        "demo_account_id": DEMO_ACCOUNT_ID,
    }
    print("DEVSTACK_READY " + json.dumps(ready), flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
