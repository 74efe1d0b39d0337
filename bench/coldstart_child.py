"""The fresh process of bench.coldstart: one import, or the app's first inbound webhooks.

Run as a script (`python bench/coldstart_child.py import boto3`), not as a module, so that
nothing but `sys` and `time` is loaded before the timed import: the numbers are what the
import itself costs. Prints one JSON object on its last line.
"""

import os  # loaded by the interpreter's start-up anyway
import sys
import time


def time_import(module: str) -> dict[str, float]:
    """Wall and CPU time of the import (CPU time shows the work when the machine is busy)."""
    started, cpu_started = time.perf_counter(), time.process_time()
    __import__(module)
    return {
        "import_ms": (time.perf_counter() - started) * 1000.0,
        "import_cpu_ms": (time.process_time() - cpu_started) * 1000.0,
    }


def first_webhooks() -> dict[str, float | int]:
    """`import app`, then the signed requests in BENCH_REQUESTS one by one through
    `chalice.test.Client`: the first is timed on its own, the rest give the warm time."""
    started = time.perf_counter()
    import app

    import_ms = (time.perf_counter() - started) * 1000.0
    # The test client and JSON are the harness (a Lambda's runtime has its own): loaded
    # after the timed import and before the timed request.
    import json
    import statistics
    from typing import Any

    from chalice.test import Client

    from chalicelib.store import tables

    requests: list[dict[str, Any]] = json.loads(os.environ["BENCH_REQUESTS"])
    client = Client(app.app)
    ddb = {"requests": 0, "ms": 0.0, "started": 0.0}

    def before(**_: Any) -> None:
        ddb["requests"] += 1
        ddb["started"] = time.perf_counter()

    def after(**_: Any) -> None:
        ddb["ms"] += (time.perf_counter() - ddb["started"]) * 1000.0

    def post(request: dict[str, Any]) -> tuple[float, float, int]:
        ddb["requests"], ddb["ms"] = 0, 0.0
        began = time.perf_counter()
        if request is requests[0]:
            # Handlers registered on the session reach the client it creates (lazily, in
            # the first request): the botocore session is made inside the timed window.
            session = tables.connection().session
            session.register("before-call.dynamodb", before)
            session.register("after-call.dynamodb", after)
        reply = client.http.post(
            request["path"], headers=request["headers"], body=request["body"].encode()
        )
        elapsed = (time.perf_counter() - began) * 1000.0
        if reply.status_code != 200 or request["expect"].encode() not in reply.body:
            raise RuntimeError(f"unexpected answer: {reply.status_code} {reply.body!r}")
        return elapsed, float(ddb["ms"]), int(ddb["requests"])

    first_ms, first_ddb_ms, first_ddb_requests = post(requests[0])
    warm = [post(request) for request in requests[1:]]
    return {
        "import_ms": import_ms,
        "first_request_ms": first_ms,
        "first_request_ddb_ms": first_ddb_ms,
        "first_request_ddb_requests": first_ddb_requests,
        "warm_request_ms": statistics.median(w[0] for w in warm),
        "warm_request_ddb_ms": statistics.median(w[1] for w in warm),
        "warm_request_ddb_requests": statistics.median(w[2] for w in warm),
    }


def main(argv: list[str]) -> None:
    if argv[:1] == ["import"] and len(argv) == 2:
        result: dict[str, float | int] = dict(time_import(argv[1]))
    elif argv == ["webhook"]:
        result = first_webhooks()
    else:
        raise SystemExit("usage: coldstart_child.py import MODULE | webhook")
    import json

    print(json.dumps(result))


if __name__ == "__main__":
    # Run as a script, the repository root is not on the path (the script's folder is).
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    main(sys.argv[1:])
