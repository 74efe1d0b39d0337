"""Cold start: importing the Lambda app against `import boto3`, each in fresh processes side
by side, and the first inbound webhook of a fresh process (import + one signed POST).

Every process gets the environment the tests give the app (`tools.devstack`: endpoint,
tables, Cognito pool, the CPaaS token in SSM), against a moto server this benchmark starts
once and seeds with a tracking number whose campaign routes to a target (bench.inbound's).
Rounds alternate which import runs first, so load on the machine falls on both alike.

Both sides load compiled bytecode, as site-packages does locally: the app's own modules are
compiled once, into a temporary cache, before the timed runs. The `*_no_pyc` figures are
the same imports compiled from source every time, which is what a Lambda deployment
package without .pyc files does on every cold start; `app_xray_ms` is the import with
tracing on (as in Lambda with X-Ray active: the Tracer and the X-Ray SDK are created).
"""

from __future__ import annotations

import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.harness import PUBLIC, TOKEN, emit, machine, parser
from bench.webhook import inbound_params

CHILD = Path(__file__).with_name("coldstart_child.py")
ROOT = CHILD.parent.parent
WARM_REQUESTS = 10


def run_child(args: list[str], env: Mapping[str, str]) -> dict[str, Any]:
    done = subprocess.run(  # noqa: S603 - this interpreter and the child script beside us
        [sys.executable, str(CHILD), *args],
        env=dict(env),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def signed_requests(count: int) -> list[dict[str, Any]]:
    """Inbound webhooks to the bench number, each from a new caller, signed as the CPaaS
    signs them (the signing stays out of the timed process)."""
    from urllib.parse import urlencode

    from twilio.request_validator import RequestValidator

    from bench.inbound import NUMBER

    validator = RequestValidator(TOKEN)
    requests = []
    for _ in range(count):
        params = inbound_params(NUMBER, f"+1312{secrets.randbelow(10**7):07d}")
        requests.append(
            {
                "path": "/voice/inbound",
                "headers": {
                    "Content-Type": "application/x-www-form-urlencoded",
                    "X-Twilio-Signature": validator.compute_signature(
                        PUBLIC + "/voice/inbound", params
                    ),
                },
                "body": urlencode(params),
                "expect": "<Dial",
            }
        )
    return requests


def seed(endpoint: str) -> dict[str, str]:
    """The tests' app environment against `endpoint`, with the bench campaign stored."""
    from bench.inbound import build_campaign
    from tools import devstack

    region = "us-east-1"
    pool_id, client_id = devstack.ensure_user_pool(endpoint, region)
    env = devstack.app_environment(endpoint, region, pool_id, client_id, PUBLIC)
    env.update(
        APP_TABLE_NAME="ppc-bench-coldstart",
        IDEMPOTENCY_TABLE_NAME="ppc-bench-coldstart-idempotency",
        POWERTOOLS_LOG_LEVEL="WARNING",
    )
    devstack.seed(
        env,
        devstack.LocalSecrets(
            admin_email="admin@bench.example.com",
            admin_password="Bench-admin-pass-1",
            super_admin_email="root@bench.example.com",
            super_admin_password="Bench-root-pass-1",
            twilio_auth_token=TOKEN,
        ),
    )
    build_campaign()
    return env


def median(samples: list[float]) -> float:
    return round(statistics.median(samples), 1)


def main(argv: list[str] | None = None) -> int:
    import logging

    from tools.localaws import moto_server

    p = parser(__doc__ or "")
    p.add_argument("--runs", type=int, default=9, help="fresh processes per measurement")
    p.add_argument("--no-pyc-runs", type=int, default=3)
    args = p.parse_args(argv)
    logging.disable(logging.WARNING)
    with moto_server() as endpoint, tempfile.TemporaryDirectory() as tmp:
        app_env = seed(endpoint)
        base = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        # Outside Lambda (and under `chalice local`) Powertools turns tracing off.
        env = {**base, **app_env, "PYTHONPYCACHEPREFIX": str(Path(tmp) / "pyc")}
        traced = {**env, "LAMBDA_TASK_ROOT": str(ROOT), "POWERTOOLS_TRACE_DISABLED": "false"}
        cold = {
            **env,
            "PYTHONPYCACHEPREFIX": str(Path(tmp) / "never-written"),
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        kinds: dict[str, tuple[list[str], dict[str, str]]] = {
            "boto3": (["import", "boto3"], env),
            "app": (["import", "app"], env),
            "app_xray": (["import", "app"], traced),
        }
        requests = signed_requests((args.runs + 1) * (1 + WARM_REQUESTS))
        per_child = 1 + WARM_REQUESTS

        def webhook(index: int) -> dict[str, Any]:
            batch = requests[index * per_child : (index + 1) * per_child]
            return run_child(["webhook"], {**env, "BENCH_REQUESTS": json.dumps(batch)})

        # One unmeasured round compiles every module on these paths into the cache.
        for child_args, child_env in kinds.values():
            run_child(child_args, child_env)
        webhook(args.runs)

        imports: dict[str, list[float]] = {kind: [] for kind in kinds}
        cpu: dict[str, list[float]] = {kind: [] for kind in kinds}
        webhooks: list[dict[str, Any]] = []
        for n in range(args.runs):
            order = list(kinds) if n % 2 == 0 else list(reversed(kinds))
            for kind in order:
                child_args, child_env = kinds[kind]
                timed = run_child(child_args, child_env)
                imports[kind].append(timed["import_ms"])
                cpu[kind].append(timed["import_cpu_ms"])
            webhooks.append(webhook(n))
        no_pyc: dict[str, list[float]] = {"boto3": [], "app": []}
        for n in range(args.no_pyc_runs):
            for kind in ("boto3", "app") if n % 2 == 0 else ("app", "boto3"):
                no_pyc[kind].append(run_child(kinds[kind][0], cold)["import_ms"])

    boto3_ms, app_ms = median(imports["boto3"]), median(imports["app"])
    first = [w["import_ms"] + w["first_request_ms"] for w in webhooks]

    def of_webhooks(key: str) -> float:
        return median([float(w[key]) for w in webhooks])

    result = {
        "benchmark": "coldstart",
        "runs": args.runs,
        "boto3_ms": boto3_ms,
        "app_ms": app_ms,
        "ratio": round(app_ms / boto3_ms, 2),
        "app_ms_min_max": [round(min(imports["app"]), 1), round(max(imports["app"]), 1)],
        "boto3_ms_min_max": [round(min(imports["boto3"]), 1), round(max(imports["boto3"]), 1)],
        "boto3_cpu_ms": median(cpu["boto3"]),
        "app_cpu_ms": median(cpu["app"]),
        "ratio_cpu": round(median(cpu["app"]) / median(cpu["boto3"]), 2),
        "app_xray_ms": median(imports["app_xray"]),
        "first_webhook_ms": median(first),
        "first_webhook_import_ms": of_webhooks("import_ms"),
        "first_request_ms": of_webhooks("first_request_ms"),
        "first_request_ddb_ms": of_webhooks("first_request_ddb_ms"),
        "first_request_ddb_requests": of_webhooks("first_request_ddb_requests"),
        "warm_request_ms": of_webhooks("warm_request_ms"),
        "warm_request_ddb_ms": of_webhooks("warm_request_ddb_ms"),
        "warm_request_ddb_requests": of_webhooks("warm_request_ddb_requests"),
        "no_pyc_runs": args.no_pyc_runs,
        "boto3_ms_no_pyc": median(no_pyc["boto3"]),
        "app_ms_no_pyc": median(no_pyc["app"]),
        "ratio_no_pyc": round(median(no_pyc["app"]) / median(no_pyc["boto3"]), 2),
        **machine(),
    }
    emit(result, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
