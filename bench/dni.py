"""Dynamic number insertion: visitor-session assignments (rate and DynamoDB requests each)
against a trivial JSON route, and the pool advisor's recommended size against Erlang-B on
simulated visitor traffic.

Assignments run in process through `chalice.test.Client` on a loopback DynamoDB: each is a
fresh visitor (no session yet) on a pool with free numbers, the common path; the overflow,
resume and heartbeat paths are counted too. The baseline is a route behind the same
middleware, CORS and body validation that answers a constant session view.

The traffic simulation plays Poisson visitors whose pages stay open an exponential time and
heartbeat as `dni.js` does, so each holds its number from arrival to its last heartbeat plus
the pool's idle limit; a visitor who finds every number held overflows. The advisor gets the
sessions of a 24-hour window exactly as the stats route builds them from stored sessions,
and its recommended size is compared with the Erlang-B minimum for the true offered load,
computed here by an independent recursion; the recommended size is then run in a longer
simulation to check that it meets the overflow target.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
import statistics
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from bench.harness import InProcessApp, emit, machine, parser, summary

ACCOUNT = "acc_bench"
POOL_SIZE = 50
FILL = 40  # visitors per pool, so every assignment finds free numbers
TARGET_OVERFLOW = 0.01
LOADS = (5.0, 20.0, 50.0, 200.0)  # erlangs: small to large pools
WINDOW = timedelta(hours=24)  # the stats route's default window
VERIFY_ARRIVALS = 400_000


# --- assignments through the app ---------------------------------------------------------------


@dataclass
class Pool:
    pool_id: str
    key: str
    numbers: list[str]


_numbers = itertools.count(1)


def _new_number(area: str) -> str:
    return f"+1{area}555{next(_numbers):04d}"


def build_pools(count: int, size: int) -> list[Pool]:
    """`count` pools of `size` numbers (half 415, half 212) on one active campaign."""
    from chalicelib.store import catalog, keys
    from chalicelib.store import dni as store
    from chalicelib.store.models import CampaignItem

    campaign = catalog.create(
        CampaignItem, ACCOUNT, "DNI bench", status="active", settings={"plan": []}
    )
    pools = []
    for n in range(count):
        numbers = [_new_number("415" if i % 2 else "212") for i in range(size)]
        item = store.create_pool(
            ACCOUNT,
            f"pool {n}",
            keys.new_id("pk"),
            campaign_id=campaign.campaign_id,
            numbers=numbers,
            settings={"idle_seconds": 300, "overflow_number": _new_number("800")},
        )
        store.sync_leases(ACCOUNT, item.pool_id, numbers)
        pools.append(Pool(item.pool_id, item.public_key or "", numbers))
    return pools


def add_baseline_route(app: InProcessApp) -> None:
    """`POST /dni/v1/bench-baseline`: the session route's middleware, CORS and body
    validation, answering a constant view without touching DynamoDB."""
    from chalice.app import Blueprint
    from chalice.test import Client

    import app as app_module
    from chalicelib.api import dni as routes
    from chalicelib.api.http import json_response, parse_body, public_view
    from chalicelib.dni import sessions
    from chalicelib.requests import current_request

    bp = Blueprint("bench_dni_baseline")
    fixed = sessions.Assignment("dns_bench", "vis_bench", "+14155550100", "pool", 0, 300)

    @bp.route("/bench-baseline", methods=["POST"], cors=routes.CORS)
    @public_view
    def baseline() -> Any:
        parse_body(current_request(), routes.SessionRequest).visit()
        return json_response(fixed.view(datetime.now(UTC)))

    app_module.app.register_blueprint(bp, url_prefix="/dni/v1")
    app.client = Client(app_module.app)


_visitors = itertools.count(1)


def visit_body() -> dict[str, Any]:
    """What `dni.js` sends for a new visitor arriving from a paid search ad."""
    n = next(_visitors)
    return {
        "page_url": f"https://shop.example/landing?utm_source=google&gclid=Cj0K{n}",
        "referrer": "https://www.google.com/",
        "utm_source": "google",
        "utm_medium": "cpc",
        "utm_campaign": "spring",
        "gclid": f"Cj0K{n}",
        "tags": {"keyword": "plumber near me"},
        "area_code": "415" if n % 3 else None,
    }


def post_json(app: InProcessApp, path: str, key: str, body: dict[str, Any]) -> dict[str, Any]:
    import json

    reply = app.client.http.post(
        path,
        headers={"Content-Type": "application/json", "X-Pool-Key": key},
        body=json.dumps({k: v for k, v in body.items() if v is not None}),
    )
    if reply.status_code != 200:
        raise RuntimeError(f"unexpected answer from {path}: {reply.status_code} {reply.body!r}")
    return dict(json.loads(reply.body))


class Requests:
    """The DynamoDB operations of each call, with the pool and campaign cache reloads (once
    per `CONFIG_CACHE_SECONDS` per process, any call may pay them) told apart."""

    def __init__(self) -> None:
        from chalicelib.store import tables

        self.sent: list[str] = []
        tables.connection().client.meta.events.register("before-call.dynamodb", self._before)

    def _before(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        import json

        name = model.name
        if name in ("GetItem", "BatchGetItem"):
            key = json.loads(params.get("body") or b"{}").get("Key", {})
            if not str(key.get("pk", {}).get("S", "")).startswith("DNI#"):
                name += " (cache reload)"
        self.sent.append(name)

    def take(self) -> list[str]:
        sent, self.sent = self.sent, []
        return sent


@dataclass
class Measured:
    ms: list[float]
    ddb_ms: list[float]
    ops: list[list[str]]
    replies: list[dict[str, Any]]

    def requests_per_call(self, reloads: bool = False) -> float:
        return statistics.fmean(
            sum(1 for op in ops if reloads or "reload" not in op) for ops in self.ops
        )

    def sequences(self) -> dict[str, int]:
        found = Counter(
            " + ".join(op for op in ops if "reload" not in op) or "none" for ops in self.ops
        )
        return dict(found.most_common())


def measure(
    app: InProcessApp, requests: Requests, calls: list[tuple[str, str, dict[str, Any]]]
) -> Measured:
    out = Measured([], [], [], [])
    for path, key, body in calls:
        app.reset_counts()
        requests.take()
        started = time.perf_counter()
        reply = post_json(app, path, key, body)
        out.ms.append((time.perf_counter() - started) * 1000.0)
        out.ddb_ms.append(app.ddb_ms)
        out.ops.append(requests.take())
        out.replies.append(reply)
    return out


def assignments(app: InProcessApp, calls: int, warmup: int) -> dict[str, Any]:
    add_baseline_route(app)
    requests = Requests()
    pools = build_pools(math.ceil((calls + warmup) / FILL), POOL_SIZE)
    sessions_path = "/dni/v1/sessions"
    # Warm-up: every pool's key and the campaign are cached, as on a warm Lambda.
    warm = [(sessions_path, pools[i % len(pools)].key, visit_body()) for i in range(warmup)]
    measure(app, requests, warm)
    plan = [(sessions_path, pools[i % len(pools)].key, visit_body()) for i in range(calls)]
    got = measure(app, requests, plan)
    kinds = {reply["kind"] for reply in got.replies}
    if kinds != {"pool"}:
        raise RuntimeError(f"a fresh visitor on a pool with free numbers got {kinds}")
    held = [reply["number"] for reply in got.replies]
    if len(held) != len(set(held)):
        raise RuntimeError("a number was handed to two live sessions")

    # The other paths: the same visitor on another page, a heartbeat, and overflow.
    first = [(key, reply) for (_, key, _), reply in zip(plan, got.replies, strict=True)][:50]
    resumed = measure(
        app,
        requests,
        [
            (sessions_path, key, {**visit_body(), "session_id": reply["session_id"]})
            for key, reply in first
        ],
    )
    if [r["number"] for r in resumed.replies] != [reply["number"] for _, reply in first]:
        raise RuntimeError("a resumed session lost its number")
    beats = measure(
        app,
        requests,
        [(f"{sessions_path}/{reply['session_id']}/heartbeat", key, {}) for key, reply in first],
    )
    full = build_pools(1, 2)[0]
    measure(app, requests, [(sessions_path, full.key, visit_body()) for _ in range(2)])
    spilled = measure(app, requests, [(sessions_path, full.key, visit_body()) for _ in range(50)])
    if {reply["kind"] for reply in spilled.replies} != {"overflow"}:
        raise RuntimeError("a full pool handed out a pool number")

    baseline = [("/dni/v1/bench-baseline", pools[0].key, visit_body()) for _ in plan]
    base = measure(app, requests, baseline)
    mine, ref = summary(got.ms), summary(base.ms)
    own = summary([total - ddb for total, ddb in zip(got.ms, got.ddb_ms, strict=True)])
    per_s = 1000.0 * calls / sum(got.ms)
    base_per_s = 1000.0 * calls / sum(base.ms)
    return {
        "assignments": calls,
        "assignments_per_s": round(per_s, 1),
        "baseline_per_s": round(base_per_s, 1),
        "assignments_over_baseline_per_s": round(per_s / base_per_s, 3),
        "ddb_requests_per_assignment": round(got.requests_per_call(), 3),
        "ddb_requests_per_assignment_with_cache_reloads": round(
            got.requests_per_call(reloads=True), 3
        ),
        "ddb_operations_per_assignment": got.sequences(),
        "ddb_requests_per_overflow": round(spilled.requests_per_call(), 3),
        "ddb_requests_per_resume": round(resumed.requests_per_call(), 3),
        "ddb_requests_per_heartbeat": round(beats.requests_per_call(), 3),
        "ddb_operations_per_heartbeat": beats.sequences(),
        **{f"assignment_{k}": v for k, v in mine.items()},
        "baseline_p50_ms": ref["p50_ms"],
        "baseline_p99_ms": ref["p99_ms"],
        "ddb_ms_per_assignment": round(statistics.fmean(got.ddb_ms), 3),
        "handler_p50_ms_without_ddb": own["p50_ms"],
        "handler_p99_ms_without_ddb": own["p99_ms"],
        "handler_p50_ratio_without_ddb": round(own["p50_ms"] / ref["p50_ms"], 2),
        "handler_p99_ratio_without_ddb": round(own["p99_ms"] / ref["p99_ms"], 2),
        "assignments_per_s_without_ddb": round(1000.0 / own["mean_ms"], 1),
    }


# --- Erlang-B, written here independently of the advisor ------------------------------------------


def erlang_b(servers: int, load: float) -> float:
    """Blocking of `servers` lines offered `load` erlangs, by 1/B(n) = 1 + n/A * 1/B(n-1)."""
    if load == 0:
        return 0.0 if servers else 1.0
    inverse = 1.0
    for n in range(1, servers + 1):
        inverse = 1.0 + inverse * n / load
    return 1.0 / inverse


def erlang_minimum(load: float, target: float) -> int:
    """The fewest lines whose blocking is at most `target`."""
    servers, inverse = 0, 1.0
    while 1.0 / inverse > target:
        servers += 1
        inverse = 1.0 + inverse * servers / load
    return servers


def _check_erlang_b() -> None:
    """Against published Erlang-B table values, so a slip here cannot pass unseen."""
    for servers, load, table in ((10, 5.0, 0.018384), (20, 12.0, 0.0098), (2, 1.0, 0.2)):
        if abs(erlang_b(servers, load) - table) > 5e-5:
            raise AssertionError(f"erlang_b({servers}, {load}) = {erlang_b(servers, load)}")
    if erlang_minimum(5.0, 0.01) != 11 or erlang_minimum(12.0, 0.0098) != 20:
        raise AssertionError("erlang_minimum disagrees with the tables")


# --- visitor traffic ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Visitors:
    """Poisson arrivals; each page open an exponential time, heart-beating as dni.js does."""

    load: float  # offered erlangs
    idle_seconds: int = 300
    mean_view_seconds: float = 180.0

    @property
    def heartbeat_seconds(self) -> int:
        from chalicelib.dni.sessions import Assignment

        return Assignment("", "", None, "pool", 0, self.idle_seconds).heartbeat_seconds

    @property
    def mean_hold_seconds(self) -> float:
        """Idle limit + beat * E[floor(view / beat)]; E[floor(V/h)] = q / (1 - q), q = e^-h/V."""
        q = math.exp(-self.heartbeat_seconds / self.mean_view_seconds)
        return self.idle_seconds + self.heartbeat_seconds * q / (1 - q)

    @property
    def per_second(self) -> float:
        return self.load / self.mean_hold_seconds


class Visit(NamedTuple):
    arrived: float
    view: float
    overflow: bool


def play(
    visitors: Visitors,
    size: int,
    start: float,
    end: float,
    rng: random.Random,
    held: list[float] | None = None,
) -> tuple[list[Visit], list[float]]:
    """Every visitor arriving in [start, end) on a pool of `size` whose numbers are `held`
    until the given times; and the hold ends still pending at `end`."""
    beat, idle = visitors.heartbeat_seconds, visitors.idle_seconds
    rate, view_rate = visitors.per_second, 1.0 / visitors.mean_view_seconds
    expovariate, push, pop = rng.expovariate, heapq.heappush, heapq.heappop
    releases = list(held or [])  # min-heap of the times held numbers fall free
    heapq.heapify(releases)
    visits = []
    t = start + expovariate(rate)
    while t < end:
        while releases and releases[0] < t:  # free once held_until is in the past
            pop(releases)
        view = expovariate(view_rate)
        overflow = len(releases) >= size
        if not overflow:
            push(releases, t + idle + beat * (view // beat))
        visits.append(Visit(t, view, overflow))
        t += expovariate(rate)
    return visits, [r for r in releases if r >= end]


def recorded(visitors: Visitors, visits: list[Visit], now: float, epoch: datetime) -> list[Any]:
    """The sessions the stats route hands the advisor: created at arrival; a pool session's
    held_until moved by each heartbeat sent before `now`."""
    from chalicelib.dni.advisor import SessionFacts

    beat, idle = visitors.heartbeat_seconds, visitors.idle_seconds
    facts = []
    for visit in visits:
        created = epoch + timedelta(seconds=visit.arrived)
        if visit.overflow:
            facts.append(SessionFacts(created, None, True))
            continue
        beats = min(visit.view, now - visit.arrived) // beat
        held_until = int(visit.arrived + idle + beat * beats)  # stored in whole seconds
        facts.append(SessionFacts(created, epoch + timedelta(seconds=held_until), False))
    return facts


def advise(visitors: Visitors, size: int, rng: random.Random) -> dict[str, Any]:
    """A day of a pool of `size` (after six hours to reach steady state), as the advisor
    sees it."""
    from chalicelib.dni.advisor import pool_stats

    epoch = datetime(2026, 11, 23, tzinfo=UTC)
    day = WINDOW.total_seconds()
    _, held = play(visitors, size, -6 * 3600.0, 0.0, rng)
    visits, held_now = play(visitors, size, 0.0, day, rng, held)
    return pool_stats(
        size=size,
        held_now=len(held_now),
        sessions=recorded(visitors, visits, day, epoch),
        since=epoch,
        now=epoch + WINDOW,
        target_overflow=TARGET_OVERFLOW,
    ).view()


def overflow_share(visitors: Visitors, size: int, rng: random.Random) -> tuple[float, float]:
    """Simulated share of visitors who overflow a pool of `size`, over VERIFY_ARRIVALS
    arrivals after a warm-up, with its standard error from 20 batch means."""
    _, held = play(visitors, size, -6 * 3600.0, 0.0, rng)
    visits, _ = play(visitors, size, 0.0, VERIFY_ARRIVALS / visitors.per_second, rng, held)
    batch = len(visits) // 20
    shares = [
        sum(v.overflow for v in visits[i * batch : (i + 1) * batch]) / batch for i in range(20)
    ]
    return statistics.fmean(shares), statistics.stdev(shares) / math.sqrt(len(shares))


def traffic(seed: int, replications: int) -> dict[str, Any]:
    """For each load: the advisor's advice after days of an undersized and of a right-sized
    pool, against the Erlang-B minimum; then the typical advice simulated at length."""
    _check_erlang_b()
    by_load: dict[str, Any] = {}
    ratios: list[float] = []
    for load in LOADS:
        visitors = Visitors(load)
        minimum = erlang_minimum(load, TARGET_OVERFLOW)
        observed_sizes = {"undersized": max(1, round(0.75 * minimum)), "right_sized": minimum}
        runs: dict[str, Any] = {}
        recommended_all: list[int] = []
        for name, size in observed_sizes.items():
            advice = [
                advise(visitors, size, random.Random(f"{seed}/{load}/{name}/{r}"))
                for r in range(replications)
            ]
            recommended = [int(a["recommended_size"]) for a in advice]
            recommended_all += recommended
            runs[name] = {
                "pool_size": size,
                "observed_overflow_rate": round(
                    statistics.fmean(a["overflow_rate"] for a in advice), 4
                ),
                "advisor_load_erlangs": [a["offered_load_erlangs"] for a in advice],
                "recommended_sizes": recommended,
            }
        ratios += [r / minimum for r in recommended_all]
        checked = {}
        for size in sorted(set(recommended_all)):
            rng = random.Random(f"{seed}/{load}/verify/{size}")
            share, error = overflow_share(visitors, size, rng)
            checked[str(size)] = {
                "times_recommended": recommended_all.count(size),
                "simulated_overflow": round(share, 5),
                "stderr": round(error, 5),
                "erlang_b": round(erlang_b(size, load), 5),
            }
        by_load[f"{load:g}"] = {
            "true_load_erlangs": load,
            "mean_hold_seconds": round(visitors.mean_hold_seconds, 1),
            "erlang_b_minimum": minimum,
            "erlang_b_one_below_minimum": round(erlang_b(minimum - 1, load), 5),
            **runs,
            "advisor_over_erlang_range": [
                round(min(recommended_all) / minimum, 3),
                round(max(recommended_all) / minimum, 3),
            ],
            "recommended_sizes_simulated": checked,
        }
    worst = max(ratios, key=lambda r: abs(r - 1.0))
    checks = [c for v in by_load.values() for c in v["recommended_sizes_simulated"].values()]
    met = sum(c["times_recommended"] for c in checks if c["simulated_overflow"] <= TARGET_OVERFLOW)
    return {
        "target_overflow": TARGET_OVERFLOW,
        "advisor_over_erlang": round(worst, 3),
        "advisor_over_erlang_mean": round(statistics.fmean(ratios), 3),
        "advisor_within_10pct": all(abs(r - 1.0) <= 0.10 for r in ratios),
        "recommendations": len(ratios),
        "recommendations_meeting_target_in_simulation": met,
        "simulation_within_3_stderr_of_erlang_b": all(
            abs(c["simulated_overflow"] - c["erlang_b"]) <= 3 * c["stderr"] for c in checks
        ),
        "traffic": by_load,
    }


# --- command line ---------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    import logging

    from tools.localaws import moto_server

    p = parser(__doc__ or "")
    p.add_argument("--calls", type=int, default=300, help="measured assignments")
    p.add_argument("--warmup", type=int, default=30)
    p.add_argument("--seed", type=int, default=14)
    p.add_argument("--replications", type=int, default=5, help="simulated days per load")
    args = p.parse_args(argv)
    logging.disable(logging.WARNING)
    with moto_server() as endpoint:
        measured = assignments(InProcessApp(endpoint), args.calls, args.warmup)
    simulated = traffic(args.seed, args.replications)
    emit({"benchmark": "dni", **measured, **simulated, **machine()}, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
