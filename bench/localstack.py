"""The local stack as data grows: routed inbound calls end to end over HTTP (the call
simulator against `chalice local` and the moto server) with 1,000 and with 100,000 items in
the application table, and the same with moto's own whole-table transaction rollback.

The stack is started as `make run` starts it (tools/devstack.py's functions: moto in this
process, `chalice local` through tools/localapi.py in a subprocess, the state file saved in
the background), with the campaign of bench.inbound (three targets, caps on every target
and the buyer reserved in one transaction, duplicate window, recording). Each measured call
comes from a new caller and runs to its end: the inbound webhook (routing), the dial result
and the final status. Filler items are copies of the run's own call records under another
account, put straight into moto's table storage (the same table: scans, queries and
transactions see them). One save of the state file runs during the 100,000-item calls.
"""

from __future__ import annotations

import copy
import itertools
import logging
import secrets
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.harness import emit, machine, parser, percentile, summary

if TYPE_CHECKING:
    from tools.devstack import Snapshots

HOST = "127.0.0.1"
SNAPSHOT_EVERY = 5.0  # tools/devstack.py's default
FILLER_ACCOUNT = "acc_filler"


class Stack:
    """moto in this process, the app in `chalice local`, a call simulator against it."""

    def __init__(self, endpoint: str, api_port: int) -> None:
        from chalicelib.config import get_settings
        from tools import devstack

        self.url = f"http://{HOST}:{api_port}"
        pool_id, client_id = devstack.ensure_user_pool(endpoint, "us-east-1")
        self.env = devstack.app_environment(endpoint, "us-east-1", pool_id, client_id, self.url)
        self.env["APP_TABLE_NAME"] = "ppc-bench-localstack"
        self.env["IDEMPOTENCY_TABLE_NAME"] = "ppc-bench-localstack-idempotency"
        self.token = secrets.token_hex(16)
        local = devstack.LocalSecrets(
            admin_email="admin@bench.example.com",
            admin_password=secrets.token_urlsafe(12) + "aA1!",
            super_admin_email="root@bench.example.com",
            super_admin_password=secrets.token_urlsafe(12) + "aA1!",
            twilio_auth_token=self.token,
        )
        devstack.seed(self.env, local)  # tables, Cognito users, the CPaaS token in SSM
        self.table_name = get_settings().app_table
        self.api_port = api_port
        self.callers = (f"+1312{n:07d}" for n in itertools.count(2_000_000))
        self.fillers = itertools.count()

    @contextmanager
    def api(self) -> Iterator[None]:
        from tools import devstack

        process = devstack.start_chalice(HOST, self.api_port, self.env, subprocess.DEVNULL)
        try:
            devstack.wait_http(f"{self.url}/health", 60)
            yield
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)

    def table(self) -> Any:
        from moto.backends import get_backend
        from moto.core.models import DEFAULT_ACCOUNT_ID

        backend = get_backend("dynamodb")[DEFAULT_ACCOUNT_ID]["us-east-1"]
        return backend.tables[self.table_name]

    def items(self) -> int:
        from tools.localaws import backend_lock

        with backend_lock:
            return len(self.table())

    def calls(self, count: int, number: str) -> tuple[list[float], int]:
        """Milliseconds per call, each from a new caller, run to its end; and how many
        were not routed (the app's fallback after a DynamoDB timeout, say)."""
        from tools.callsim import CallSimulator

        samples, failed = [], 0
        with CallSimulator(self.url, self.token) as cpaas:
            for _ in range(count):
                started = time.perf_counter()
                transcript = cpaas.place_call(next(self.callers), number)
                samples.append((time.perf_counter() - started) * 1000.0)
                failed += transcript.application_error or not transcript.dialled()
        return samples, failed

    def fill_to(self, wanted: int) -> float:
        """Copies of this run's call records (under another account) until the table holds
        `wanted` items; returns the seconds it took."""
        from moto.dynamodb.models.dynamo_type import DynamoType

        from tools.localaws import backend_lock

        started = time.perf_counter()
        with backend_lock:
            table = self.table()
            templates = [
                item
                for bucket in table.items.values()
                for item in bucket.values()
                if item.hash_key.value.startswith("CALL#") and "account_id" in item.attrs
            ]
            if not templates:
                raise RuntimeError("no call records to copy yet")
            for n in itertools.islice(self.fillers, max(0, wanted - len(table))):
                # moto's own copy of a stored item; put_item would re-validate the size of
                # the whole item on every attribute (about 2 ms for a call record).
                item = copy.deepcopy(templates[n % len(templates)])
                sid = f"CAfill{n:026d}"
                keys = {"pk": f"CALL#{sid}", "call_sid": sid, "account_id": FILLER_ACCOUNT}
                if "gsi1pk" in item.attrs:
                    day = item.attrs["gsi1pk"].value.rsplit("#", 1)[-1]
                    keys["gsi1pk"] = f"ACCT#{FILLER_ACCOUNT}#DAY#{day}"
                for name, value in keys.items():
                    dict.__setitem__(item.attrs, name, DynamoType({"S": value}))
                item.hash_key = DynamoType({"S": keys["pk"]})
                table.items[item.hash_key][item.range_key] = item
        return time.perf_counter() - started

    @contextmanager
    def snapshots(self, folder: Path, every: float) -> Iterator[Snapshots]:
        """The state file saved as `make run` saves it (tools/devstack.py's loop)."""
        from tools.devstack import Snapshots

        saving = Snapshots(folder / "moto-state.pickle", every)
        stop = threading.Event()

        def loop() -> None:
            while not stop.wait(0.5):
                saving.tick()

        thread = threading.Thread(target=loop, name="snapshots", daemon=True)
        thread.start()
        try:
            yield saving
        finally:
            stop.set()
            thread.join()
            saving.wait()

    def snapshot_in_process_ms(self, folder: Path) -> float:
        """One save in this process: how long the AWS endpoint would be locked without fork."""
        from tools import devstack

        started = time.perf_counter()
        if not devstack.save_snapshot(folder / "in-process.pickle"):
            raise RuntimeError("snapshot failed")
        return (time.perf_counter() - started) * 1000.0


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__.splitlines()[0] if __doc__ else "")
    p.add_argument("--calls", type=int, default=100, help="measured calls per size")
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--large", type=int, default=100_000, help="items in the large table")
    p.add_argument("--unpatched-calls", type=int, default=10)
    p.add_argument(
        "--unpatched-large",
        type=int,
        default=2_000,
        help="items for moto's own rollback (each of its calls copies the whole table)",
    )
    args = p.parse_args(argv)
    logging.disable(logging.WARNING)
    result = run(args.calls, args.warmup, args.large, args.unpatched_calls, args.unpatched_large)
    emit(result, args.json)
    return 0


def run(
    calls: int, warmup: int, large: int, unpatched_calls: int, unpatched_large: int
) -> dict[str, Any]:
    from bench.inbound import NUMBER, build_campaign
    from tools import moto_transactions
    from tools.localaws import free_port, moto_server

    result: dict[str, Any] = {"benchmark": "localstack", "calls": calls}
    with moto_server(HOST) as endpoint, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        stack = Stack(endpoint, free_port(HOST))
        build_campaign()
        with stack.api(), stack.snapshots(folder, SNAPSHOT_EVERY) as saving:
            if stack.calls(warmup, NUMBER)[1]:
                raise RuntimeError("warm-up calls were not routed")

            def measure(label: str, count: int, whole_table: bool = False) -> list[float]:
                before, saves = stack.items(), len(saving.pauses_ms)
                if whole_table:
                    with moto_transactions.whole_table_copies():
                        samples, failed = stack.calls(count, NUMBER)
                else:
                    samples, failed = stack.calls(count, NUMBER)
                result[f"items_{label}"] = [before, stack.items()]
                result[f"failed_calls_{label}"] = failed
                result[f"snapshots_{label}"] = len(saving.pauses_ms) - saves
                return samples

            result["fill_s_1k"] = round(stack.fill_to(1_000), 2)
            small = measure("1k", calls)
            old_small = measure("unpatched_1k", unpatched_calls, whole_table=True)
            result["fill_s_unpatched_large"] = round(stack.fill_to(unpatched_large), 2)
            old_large = measure("unpatched_large", unpatched_calls, whole_table=True)
            result["fill_s_100k"] = round(stack.fill_to(large), 2)
            # One save of the full table runs during the measurement (in `make run` one
            # runs about a fifth of the time).
            saving.wait()
            saves = len(saving.pauses_ms)
            saving.soon()
            big = measure("100k", calls)
            saving.wait()
            result["snapshots_100k"] = len(saving.pauses_ms) - saves
            result["snapshot_pause_ms_max_100k"] = round(max(saving.pauses_ms[saves:]), 1)
            result["snapshot_s_100k"] = round(saving.seconds[saves], 1)
            result["snapshot_failures"] = saving.failed
        result["snapshot_in_process_ms_100k"] = round(stack.snapshot_in_process_ms(folder), 1)
    one, hundred = summary(small), summary(big)
    old_one, old_large_summary = summary(old_small), summary(old_large)
    result.update(
        {
            "p50_ms_1k": one["p50_ms"],
            "p99_ms_1k": one["p99_ms"],
            "p50_ms_100k": hundred["p50_ms"],
            "p99_ms_100k": hundred["p99_ms"],
            "ratio_100k_over_1k": round(hundred["p50_ms"] / one["p50_ms"], 2),
            "p99_ratio_100k_over_1k": round(hundred["p99_ms"] / one["p99_ms"], 2),
            "unpatched_calls": unpatched_calls,
            "unpatched_large_items": unpatched_large,
            "unpatched_p50_ms_1k": old_one["p50_ms"],
            "unpatched_p50_ms_large": old_large_summary["p50_ms"],
            "unpatched_p99_ms_large": old_large_summary["p99_ms"],
            "unpatched_ratio_large_over_1k": round(
                old_large_summary["p50_ms"] / old_one["p50_ms"], 2
            ),
            "max_ms_100k": round(percentile(big, 100), 3),
            **machine(),
        }
    )
    return result


if __name__ == "__main__":
    raise SystemExit(main())
