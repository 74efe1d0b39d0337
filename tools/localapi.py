"""`chalice local`, made to take a burst of connections: the local stack's API server.

Run as `python -m tools.localapi <chalice local options>`; the rest is chalice's own command.
Two changes to chalice's local server (a thread per connection):

- The listen backlog. Chalice keeps the stdlib's 5, so a burst of new connections (200
  visitors opening a page at once) overflowed it and the kernel reset or dropped the rest
  (79 to 130 resets in 200, the others answered after seconds of SYN retries).
- At most `CONCURRENT_REQUESTS` requests run the app at once; the others wait, connected,
  for a slot (as Lambda's concurrency limit does). The local AWS endpoint serves one
  request at a time, and the app gives each DynamoDB request 4 s (chalicelib/store/models.py)
  as it should in AWS: 200 requests running at once queued so many DynamoDB requests that
  they timed out, and all 200 answered 500. Idle keep-alive connections hold no slot. A
  request that calls the same server (a ring tree bidding to this platform's own RTB
  endpoint) holds a slot while its inner request needs another: with 8 such requests at
  once the inner ones wait until the auctions' deadline and their bids are lost.
"""

from __future__ import annotations

import functools
import sys
import threading
from collections.abc import Callable
from typing import Any

from tools.localaws import LISTEN_BACKLOG

CONCURRENT_REQUESTS = 8


def _one_slot_each(handle: Callable[..., Any], slots: threading.Semaphore) -> Callable[..., Any]:
    @functools.wraps(handle)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        with slots:
            return handle(*args, **kwargs)

    return bounded


def main(argv: list[str] | None = None) -> int:
    from chalice import local
    from chalice.cli import main as chalice_main

    # LocalDevServer's default server class; the kernel caps it at net.core.somaxconn.
    local.ThreadedHTTPServer.request_queue_size = LISTEN_BACKLOG
    # The gateway's call into the app: what Lambda would run once per request.
    gateway: Any = local.LocalGateway
    gateway.handle_request = _one_slot_each(
        gateway.handle_request, threading.Semaphore(CONCURRENT_REQUESTS)
    )
    sys.argv = ["chalice", "local", *(sys.argv[1:] if argv is None else argv)]
    return int(chalice_main() or 0)


if __name__ == "__main__":
    raise SystemExit(main())
