"""The SIP edge under registration load, and what a registration report costs the app.

Edge side: Kamailio and its agent on loopback (the image's template), 200 phones (sipp)
registering and re-registering, reporting to a stand-in app that answers after a set delay.
Measured: the phone's REGISTER→200 time (the authenticated transaction, from sipp's rtd
timer), failed registrations, reports received, and Kamailio's own count — with the app
answering at once (the baseline) and after `--app-delay-ms` (a Lambda + DynamoDB round trip),
at a steady rate and in a burst.

App side: `POST /edge/v1/registrations` and a 200-phone `/edge/v1/registrations/sync` in
process against moto, DynamoDB requests counted, against `GET /health` through the same
middleware (baseline).
"""

from __future__ import annotations

import csv
import json
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bench.harness import InProcessApp, emit, machine, parser, percentile, summary, time_calls
from tools.sipedge import Edge, free_port, ha1, sipp, wait_for

SECRET = "edge-bench-secret-0123456789"
DOMAIN = "edge.bench"


class StandInApp(ThreadingHTTPServer):
    """Serves the credentials and counts reports, answering each after `delay` seconds."""

    daemon_threads = True
    credentials: dict[str, str]
    delay: float
    reports: int
    last_report: float


class _Handler(BaseHTTPRequestHandler):
    server: StandInApp
    protocol_version = "HTTP/1.1"

    def _answer(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        listed = [{"extension": e, "ha1": h} for e, h in sorted(self.server.credentials.items())]
        answer = {"domain": DOMAIN, "call_token": "bench-call-token", "credentials": listed}
        self._answer(json.dumps(answer).encode())

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        time.sleep(self.server.delay)
        if not self.path.endswith("/sync"):
            self.server.reports += 1
            self.server.last_report = time.monotonic()
        self._answer(b"{}")

    def log_message(self, format: str, *args: Any) -> None:
        return


@contextmanager
def edge_with_app(
    folder: Path, phones: list[tuple[str, str]], delay_ms: float
) -> Iterator[tuple[Edge, StandInApp]]:
    app = StandInApp(("127.0.0.1", 0), _Handler)
    app.credentials = {ext: ha1(ext, password, DOMAIN) for ext, password in phones}
    app.delay, app.reports, app.last_report = delay_ms / 1000.0, 0, 0.0
    threading.Thread(target=app.serve_forever, daemon=True).start()
    env = {
        "SIP_DOMAIN": DOMAIN,
        "SIP_LISTEN": f"udp:127.0.0.1:{free_port()}",
        "APP_URL": f"http://127.0.0.1:{app.server_address[1]}",
        "EDGE_SHARED_SECRET": SECRET,
        "CPAAS_ALLOW": "127.0.0.2/32",
        "RPC_PORT": str(free_port()),
        "CREDENTIALS_INTERVAL": "1",
        "PRESENCE_INTERVAL": "3600",
    }
    edge = Edge(folder, env)
    try:
        edge.start()
        if not wait_for(lambda: edge.has_credential(phones[-1][0]), timeout=30):
            raise RuntimeError("the agent did not load the credentials:\n" + edge.log("agent.log"))
        yield edge, app
    finally:
        edge.stop()
        app.shutdown()
        app.server_close()


def register_run(
    phones: list[tuple[str, str]], delay_ms: float, per_second: int, rounds: int
) -> dict[str, Any]:
    """Every phone registers `rounds` times at `per_second` REGISTER transactions a second."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        with edge_with_app(folder, phones, delay_ms) as (edge, app):
            users = folder / "phones.csv"
            users.write_text(
                "SEQUENTIAL\n"
                + "".join(f"{e};[authentication username={e} password={p}]\n" for e, p in phones)
            )
            calls = rounds * len(phones)
            started = time.monotonic()
            run = sipp(
                folder, edge.port, "register_many.xml", None,
                "-inf", str(users), "-r", str(per_second), "-rp", "1000",
                "-trace_rtt", "-rtt_freq", "1", "-max_socket", "1",
                domain=DOMAIN, calls=calls, timeout=calls / per_second + 60,
            )  # fmt: skip
            elapsed = time.monotonic() - started
            # Reports still queued when sipp finished: how long the senders take to drain them.
            wait_for(lambda: app.reports >= calls, timeout=60, every=0.01)
            drained = max(0.0, app.last_report - started - elapsed)
            rtts = [
                # sipp's rtd timer has a 1 ms resolution (0 = under a millisecond).
                float(row["response_time_ms"])
                for path in folder.glob("*_rtt.csv")
                for row in csv.DictReader(path.open(), delimiter=";")
                if row.get("rtd_no") == "1"
            ]
            registered = edge.registered_users()
    failed = calls - len(rtts)
    return {
        "app_delay_ms": delay_ms,
        "rate_per_s": per_second,
        "registrations": calls,
        "seconds": round(elapsed, 1),
        "failed": failed,
        "sipp_exit": getattr(run, "returncode", None),
        "reports": app.reports,
        "reports_done_after_s": round(drained, 2),
        "kamailio_registered": registered,
        "register_p50_ms": round(percentile(rtts, 50), 2),
        "register_p99_ms": round(percentile(rtts, 99), 2),
        "register_max_ms": round(max(rtts, default=float("nan")), 2),
    }


def app_side(endpoint: str, reports: int, warmup: int) -> dict[str, Any]:
    """Handler time and DynamoDB requests of reports and of a 200-phone snapshot."""
    bench_app = InProcessApp(endpoint)
    from chalicelib.edge import phones

    edge, secret = phones.create_edge("acc_bench", "Bench office", "office.bench")
    for index in range(200):
        phones.add_device(edge, f"{index + 1000}", None, None)
    headers = {"Content-Type": "application/json", "X-Edge-Secret": secret}

    def report(i: int) -> None:
        body = {
            "extension": str(1000 + abs(i) % 200),
            "registered": True,
            "contact_count": 1,
            "user_agent": "Grandstream GXP1625 1.0.11.23",
            "source": "udp:203.0.113.7:5060",
            "expires": time.time() + 3600,
            "at": time.time(),
        }
        reply = bench_app.client.http.post(
            "/edge/v1/registrations", headers=headers, body=json.dumps(body)
        )
        if reply.status_code != 200:
            raise RuntimeError(f"report refused: {reply.body!r}")

    def health(_: int) -> None:
        if bench_app.client.http.get("/health").status_code != 200:
            raise RuntimeError("health failed")

    bench_app.reset_counts()
    timed = time_calls(report, reports, warmup)
    requests_per_report = bench_app.requests / (reports + warmup)
    base = time_calls(health, reports, warmup)
    everyone = [
        {"extension": str(1000 + i), "contact_count": 1, "expires": time.time() + 3600}
        for i in range(200)
    ]

    def sync(registrations: list[dict[str, Any]]) -> tuple[float, int]:
        snapshot = {"at": time.time(), "registrations": registrations}
        bench_app.reset_counts()
        started = time.perf_counter()
        reply = bench_app.client.http.post(
            "/edge/v1/registrations/sync", headers=headers, body=json.dumps(snapshot)
        )
        if reply.status_code != 200:
            raise RuntimeError(f"sync refused: {reply.body!r}")
        return (time.perf_counter() - started) * 1000.0, bench_app.requests

    # The usual case: every phone registered as its reports said, nothing to write. Then an
    # edge that restarted: nobody registered, every phone goes offline (the worst case).
    same_ms, same_requests = sync(everyone)
    empty_ms, empty_requests = sync([])
    got, ref = summary(timed), summary(base)
    return {
        "report": got,
        "baseline": ref,
        "report_p99_ratio": round(got["p99_ms"] / ref["p99_ms"], 2),
        "ddb_requests_per_report": round(requests_per_report, 3),
        "sync_200_unchanged_ms": round(same_ms, 1),
        "sync_200_unchanged_ddb_requests": same_requests,
        "sync_200_all_offline_ms": round(empty_ms, 1),
        "sync_200_all_offline_ddb_requests": empty_requests,
    }


def _ratio(measured: float, baseline: float) -> float:
    # sipp times in whole milliseconds: below 1 ms counts as 1 ms.
    return round(max(measured, 1.0) / max(baseline, 1.0), 2)


def main(argv: list[str] | None = None) -> int:
    import logging

    from tools.localaws import moto_server

    p = parser(__doc__ or "")
    p.add_argument("--phones", type=int, default=200)
    p.add_argument("--rate", type=int, default=20, help="steady REGISTERs per second")
    p.add_argument("--burst-rate", type=int, default=100, help="burst REGISTERs per second")
    p.add_argument("--app-delay-ms", type=float, default=50.0)
    p.add_argument("--reports", type=int, default=300, help="app-side reports measured")
    args = p.parse_args(argv)
    logging.disable(logging.WARNING)
    phones = [(f"{7000 + i}", f"pw{i:04d}Bench{i * 7919 % 1000:03d}") for i in range(args.phones)]
    steady = [register_run(phones, delay, args.rate, 2) for delay in (0.0, args.app_delay_ms)]
    burst = [register_run(phones, delay, args.burst_rate, 1) for delay in (0.0, args.app_delay_ms)]
    with moto_server() as endpoint:
        app = app_side(endpoint, args.reports, 30)
    base, slow = steady
    emit(
        {
            "benchmark": "edge",
            "machine": machine(),
            "steady": steady,
            "burst": burst,
            "steady_p99_ratio": _ratio(slow["register_p99_ms"], base["register_p99_ms"]),
            "burst_p99_ratio": _ratio(burst[1]["register_p99_ms"], burst[0]["register_p99_ms"]),
            "app": app,
        },
        args.json,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
