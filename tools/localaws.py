"""A moto server on loopback as the AWS endpoint, for the local stack, tests and benchmarks."""

from __future__ import annotations

import itertools
import logging
import os
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

# moto's in-memory backends are not safe under concurrent requests (a TransactWriteItems
# racing another write fails with a 500), unlike DynamoDB itself. Requests are served one
# at a time; snapshots take the same lock, so they never see half a transaction.
backend_lock = threading.Lock()
# Connections waiting to be accepted. The stdlib's default of 5 (werkzeug's 128) makes the
# kernel drop or reset connections when a burst of requests arrives at once.
LISTEN_BACKLOG = 1024


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (tests never use `make run`'s defaults)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


# Actions that change nothing (X-Amz-Target's operation names); any other request counts.
_READS = ("Get", "Query", "Scan", "Describe", "List", "BatchGet", "TransactGet")
_changes = itertools.count(1)
_version = 0


def changes() -> int:
    """Goes up with every request that may have changed moto's state (snapshots skip the
    stack's state while it stays put)."""
    return _version


def _serialised(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    def serve(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        global _version
        action = str(environ.get("HTTP_X_AMZ_TARGET", "")).rpartition(".")[2]
        with backend_lock:
            if not action.startswith(_READS):
                _version = next(_changes)
            return list(app(environ, start_response))

    return serve


@contextmanager
def moto_server(host: str = "127.0.0.1", port: int | None = None) -> Iterator[str]:
    """Serve moto (DynamoDB, Cognito, SSM, ...) on `host:port`; yields its endpoint URL.

    It speaks the real AWS wire protocols, so the code under test is configured exactly
    as in AWS apart from the endpoint. Dummy credentials are set if none are. DynamoDB
    transactions roll back by item (tools/moto_transactions.py), not by copying tables.
    """
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import ThreadedWSGIServer

    from tools import moto_transactions

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    moto_transactions.install()
    port = port or free_port(host)
    app = _serialised(DomainDispatcherApplication(create_backend_app))

    class MotoServer(ThreadedWSGIServer):
        request_queue_size = LISTEN_BACKLOG

    server = MotoServer(host, port, app, handler=MotoRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


def main(argv: list[str] | None = None) -> int:
    """`python -m tools.localaws --port N`: a moto server of its own, until SIGTERM. The local
    stack runs its queue here, so the queue stays up while the table's endpoint is down."""
    import argparse
    import signal

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    with moto_server(args.host, args.port) as endpoint:
        print(f"localaws: serving {endpoint}", flush=True)
        stopping.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
