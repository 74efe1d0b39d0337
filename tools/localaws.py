"""A moto server on loopback as the AWS endpoint, for the local stack, tests and benchmarks."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (tests never use `make run`'s defaults)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


@contextmanager
def moto_server(host: str = "127.0.0.1", port: int | None = None) -> Iterator[str]:
    """Serve moto (DynamoDB, Cognito, SSM, ...) on `host:port`; yields its endpoint URL.

    It speaks the real AWS wire protocols, so the code under test is configured exactly
    as in AWS apart from the endpoint. Dummy credentials are set if none are.
    """
    from moto.server import ThreadedMotoServer

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    port = port or free_port(host)
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
