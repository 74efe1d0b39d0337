"""The request being handled, per thread of execution.

Chalice keeps `app.current_request` in one attribute of the app, which concurrent requests
overwrite under `chalice local`'s threaded server; views read the request from here instead,
set by the middleware for each request.
"""

from __future__ import annotations

from contextvars import ContextVar

from chalice.app import Request

_current: ContextVar[Request] = ContextVar("current_request")


def bind_request(request: Request) -> None:
    _current.set(request)


def current_request() -> Request:
    return _current.get()
