"""Pinging bidders over one shared async HTTP client, each ping bounded in time and size."""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import time
import weakref
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import lru_cache
from http.cookiejar import CookieJar, CookiePolicy
from typing import Final, Literal, TypeAlias
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import h11
import httpx

from chalicelib import outbound
from chalicelib.bidding.bidders import (
    MAX_TEXT,
    Bidder,
    BidProblem,
    ParsedBid,
    PingContext,
    parse_bid,
    render_request,
    static_bid,
)

PingOutcome: TypeAlias = Literal["bid", "rejected", "below_floor", "timeout", "error"]

USER_AGENT: Final = "ppc-rtb/1"
DEFAULT_MAX_CONNECTIONS: Final = 100
# httpx's default; many servers (Node's among them) drop idle connections after about 5 s.
KEEPALIVE_EXPIRY_S: Final = 5.0
# How long a checked bidder address is reused: about a DNS TTL.
CHECK_TTL_S: Final = 30.0
CHECK_CACHE_SIZE: Final = 4096
# Pings that may start sending in one event-loop iteration (see _SendPacer).
PING_BURST: Final = 16


class _NoCookies(CookiePolicy):
    """Bidders share one client and, behind a CDN, one IP address: a cookie set by one buyer
    must never ride along on another buyer's ping, so none is kept or sent."""

    netscape = True
    rfc2965 = False
    hide_cookie2 = True

    def set_ok(self, cookie: object, request: object) -> bool:
        return False

    def return_ok(self, cookie: object, request: object) -> bool:
        return False

    def domain_return_ok(self, domain: str, request: object) -> bool:
        return False

    def path_return_ok(self, path: str, request: object) -> bool:
        return False


PoolKey: TypeAlias = tuple[str, str, int, str]  # scheme, connected address, port, TLS name
_READ_CHUNK: Final = 64 * 1024


class _Connection:
    """One HTTP/1.1 connection: asyncio streams driven by h11, which does the parsing."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, key: PoolKey
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.key = key
        self.h11 = h11.Connection(h11.CLIENT)
        self.idle_since = 0.0

    @property
    def broken(self) -> bool:
        # A keep-alive peer that hung up while we were idle shows as EOF or a closing socket.
        return self.reader.at_eof() or self.writer.is_closing()

    @property
    def reusable(self) -> bool:
        return self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE

    async def next_event(self) -> object:
        """The next h11 event, reading from the socket as h11 needs (EOF included)."""
        while True:
            event = self.h11.next_event()
            if event is not h11.NEED_DATA:
                return event
            self.h11.receive_data(await self.reader.read(_READ_CHUNK))

    def close(self) -> None:
        self.writer.close()  # no wait_closed: closing must not cost a cancelled ping time


@lru_cache(maxsize=1)
def _default_ssl_context() -> ssl.SSLContext:
    # Loading the CA bundle takes tens of ms; one context serves every client and loop.
    context = httpx.create_ssl_context(trust_env=False)
    context.set_alpn_protocols(["http/1.1"])
    return context


class BidderTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 for pings, with a keep-alive pool whose every operation is O(1).

    httpcore's pool (httpx's default transport; 1.0.9 is the newest release) hands one idle
    connection to every request that arrives before the first marks it busy, so a burst of
    pings piles onto one connection, all but one fail and requeue, and each retry rescans
    the pool (encode/httpcore#822, #1111): with 50 pings the slow bidders' requests leave
    0.5-1.3 s late and the auction runs out its deadline (measured: overhead p99 ≈540 ms
    against ≈9 ms here; bench.rtb --transport stock). Here each (scheme, address, port, TLS
    name) keeps a stack of idle connections, so a connection is only reused for the same
    pinned address and the same verified name.
    At `max_connections` a request waits for a connection to its address to come back, or
    for the slot of a connection that is closed (an idle one is closed to make room).

    Time limits are the caller's: every ping runs under asyncio.timeout, so the request's
    httpx timeouts are not applied here.
    """

    def __init__(
        self,
        *,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        keepalive_expiry: float = KEEPALIVE_EXPIRY_S,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self._ssl = ssl_context or _default_ssl_context()
        self._max = max_connections
        self._expiry = keepalive_expiry
        self._idle: dict[PoolKey, deque[_Connection]] = {}
        self._open: set[_Connection] = set()
        self._connecting = 0  # slots held by connections being opened
        self._waiting: dict[PoolKey, deque[asyncio.Future[_Connection | None]]] = {}
        self._swept = time.monotonic()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"cannot ping {request.url.scheme} URLs")
        sni = request.extensions.get("sni_hostname") or request.url.host
        port = request.url.port or (443 if request.url.scheme == "https" else 80)
        key: PoolKey = (request.url.scheme, request.url.host, port, str(sni))
        connection = await self._acquire(key, request)
        try:
            head = await self._exchange(connection, request)
        except BaseException:
            self.discard(connection)  # cancelled or failed mid-exchange: state unknown
            raise
        return httpx.Response(
            head.status_code,
            headers=list(head.headers),
            stream=_Body(self, connection, request),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": head.reason},
        )

    async def _acquire(self, key: PoolKey, request: httpx.Request) -> _Connection:
        self._sweep()
        idle = self._take_idle(key)
        if idle is not None:
            return idle
        if len(self._open) + self._connecting >= self._max:
            self._evict_one_idle()
        if len(self._open) + self._connecting < self._max:
            self._connecting += 1
            return await self._connect(key, request)
        waiter: asyncio.Future[_Connection | None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, deque()).append(waiter)
        try:
            handed = await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                # Served in the same instant as cancelled: pass the gift on.
                served = waiter.result()
                if served is None:
                    self._connecting -= 1
                    self._serve_a_waiter()
                else:
                    self._recycle(served)
            raise
        if handed is not None:
            return handed
        return await self._connect(key, request)  # a slot was set aside for us

    def _take_idle(self, key: PoolKey) -> _Connection | None:
        stack = self._idle.get(key)
        now = time.monotonic()
        while stack:
            connection = stack.pop()  # the most recently used is the least likely stale
            if connection.broken or now - connection.idle_since > self._expiry:
                self.discard(connection)
                continue
            return connection
        return None

    def _sweep(self) -> None:
        # Idle connections to addresses not pinged again would linger until evicted.
        now = time.monotonic()
        if now - self._swept < self._expiry:
            return
        self._swept = now
        for stack in self._idle.values():
            for connection in [c for c in stack if now - c.idle_since > self._expiry]:
                stack.remove(connection)
                self.discard(connection)

    async def _connect(self, key: PoolKey, request: httpx.Request) -> _Connection:
        """Open a connection in a slot already counted in `_connecting`."""
        scheme, host, port, sni = key
        try:
            reader, writer = await asyncio.open_connection(
                host,
                port,
                ssl=self._ssl if scheme == "https" else None,
                server_hostname=sni if scheme == "https" else None,
                limit=_READ_CHUNK,
            )
        except BaseException as err:
            self._connecting -= 1
            self._serve_a_waiter()
            if isinstance(err, OSError):  # ssl.SSLError included: a bad certificate
                raise httpx.ConnectError(f"{err}", request=request) from err
            raise
        self._connecting -= 1
        connection = _Connection(reader, writer, key)
        self._open.add(connection)
        return connection

    @staticmethod
    async def _exchange(connection: _Connection, request: httpx.Request) -> h11.Response:
        body = await request.aread()
        wire = connection.h11.send(
            h11.Request(
                method=request.method,
                target=request.url.raw_path,
                headers=list(request.headers.raw),
            )
        )
        if body:
            wire = (wire or b"") + (connection.h11.send(h11.Data(data=body)) or b"")
        wire = (wire or b"") + (connection.h11.send(h11.EndOfMessage()) or b"")
        try:
            connection.writer.write(wire)
            await connection.writer.drain()
            while True:
                event = await connection.next_event()
                if isinstance(event, h11.Response):
                    return event
                if not isinstance(event, h11.InformationalResponse):
                    raise httpx.RemoteProtocolError(
                        "connection closed before a response", request=request
                    )
        except h11.RemoteProtocolError as err:
            raise httpx.RemoteProtocolError(str(err), request=request) from err
        except OSError as err:
            raise httpx.ReadError(str(err) or type(err).__name__, request=request) from err

    def release(self, connection: _Connection) -> None:
        """After a whole response: back to the pool if HTTP/1.1 allows it, else closed."""
        if not connection.reusable or connection.broken:
            self.discard(connection)
            return
        connection.h11.start_next_cycle()
        connection.idle_since = time.monotonic()
        self._recycle(connection)

    def _recycle(self, connection: _Connection) -> None:
        waiters = self._waiting.get(connection.key)
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return
        if any(self._waiting.values()):
            self.discard(connection)  # its slot serves a request to another address
            return
        self._idle.setdefault(connection.key, deque()).append(connection)

    def discard(self, connection: _Connection) -> None:
        connection.close()
        if connection in self._open:
            self._open.remove(connection)
            self._serve_a_waiter()

    def _serve_a_waiter(self) -> None:
        """Give a freed slot to a waiting request (first come first served per address)."""
        for key in list(self._waiting):
            waiters = self._waiting[key]
            while waiters:
                waiter = waiters.popleft()
                if not waiter.done():
                    self._connecting += 1
                    waiter.set_result(None)
                    return
            del self._waiting[key]

    def _evict_one_idle(self) -> None:
        for stack in self._idle.values():
            if stack:
                self.discard(stack.popleft())  # the oldest idle connection
                return

    async def aclose(self) -> None:
        for waiters in self._waiting.values():
            for waiter in waiters:
                waiter.cancel()
        self._waiting.clear()
        for stack in self._idle.values():
            while stack:
                self.discard(stack.pop())
        for connection in list(self._open):
            self.discard(connection)


class _Body(httpx.AsyncByteStream):
    """A response body read off its connection; the connection goes back to the pool only
    when the whole body was read."""

    def __init__(
        self, transport: BidderTransport, connection: _Connection, request: httpx.Request
    ) -> None:
        self._transport = transport
        self._connection: _Connection | None = connection
        self._request = request
        self._complete = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        connection = self._connection
        if connection is None:
            return
        try:
            while True:
                event = await connection.next_event()
                if isinstance(event, h11.Data):
                    yield bytes(event.data)
                elif isinstance(event, h11.EndOfMessage):
                    self._complete = True
                    return
                else:
                    raise httpx.RemoteProtocolError("body cut short", request=self._request)
        except h11.RemoteProtocolError as err:
            raise httpx.RemoteProtocolError(str(err), request=self._request) from err
        except OSError as err:
            raise httpx.ReadError(str(err) or type(err).__name__, request=self._request) from err

    async def aclose(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        if self._complete:
            self._transport.release(connection)
        else:
            # An unread or half-read body (too large, timed out) leaves the stream unusable.
            self._transport.discard(connection)


def new_client(
    *,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ssl_context: ssl.SSLContext | None = None,
) -> httpx.AsyncClient:
    """The client every ping of an event loop shares, so keep-alive connections are reused.

    No redirects (a redirect could point anywhere, past the SSRF check), no proxy or netrc
    from the environment, no cookies, and no compression: a small compressed body could
    inflate far beyond the 64 KB we agree to read. `ssl_context` replaces the default
    certificate verification (certifi's CAs), for a private CA.
    """
    return httpx.AsyncClient(
        transport=BidderTransport(max_connections=max_connections, ssl_context=ssl_context),
        follow_redirects=False,
        trust_env=False,
        cookies=CookieJar(policy=_NoCookies()),
        headers={
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
            "Accept-Encoding": "identity",
        },
    )


@dataclass(frozen=True)
class PingResult:
    """One bidder's answer to one ping, as the auction and the bid log need it."""

    bidder_id: str
    outcome: PingOutcome
    latency_ms: float  # from the start of the ping to its end, on the loop's monotonic clock
    http_status: int | None = None
    amount_cents: int | None = None
    destination: str | None = None
    bid_id: str | None = None
    expires_in: int | None = None
    reason: str = ""


class _TooLarge(Exception):
    pass


class _Unreadable(Exception):
    pass


class _Exchange:
    """What one request got as far as it got: the status survives a timeout mid-body."""

    def __init__(self) -> None:
        self.status: int | None = None
        self.body = b""


def judged(
    bidder: Bidder, answer: ParsedBid | BidProblem, latency_ms: float, status: int | None
) -> PingResult:
    """A parsed answer (or a static bid) as a ping result."""
    if isinstance(answer, BidProblem):
        return PingResult(
            bidder.bidder_id,
            answer.outcome,
            latency_ms,
            status,
            amount_cents=answer.amount_cents,
            bid_id=answer.bid_id,
            reason=answer.reason,
        )
    return PingResult(
        bidder.bidder_id,
        "bid",
        latency_ms,
        status,
        amount_cents=answer.amount_cents,
        destination=answer.destination,
        bid_id=answer.bid_id,
        expires_in=answer.expires_in,
    )


def static_result(bidder: Bidder) -> PingResult:
    """A static bidder's answer: no request, no latency."""
    return judged(bidder, static_bid(bidder), 0.0, None)


async def _exchange(
    client: httpx.AsyncClient,
    bidder: Bidder,
    ctx: PingContext,
    ends: float,
    seen: _Exchange,
) -> None:
    loop = asyncio.get_running_loop()
    await _pacer(loop).turn()
    if loop.time() >= ends:
        # Rendering and sending run without a pause until the answer is awaited, so a ping
        # whose time ran out while it queued (an overloaded loop) must not spend CPU that
        # pings still in time need.
        raise TimeoutError
    method, url, fields = render_request(bidder, ctx)
    target = await checked_target(url)
    headers = {"Host": urlsplit(url).netloc.rsplit("@", 1)[-1]}
    connect_url = target.connect_url
    content: bytes | None = None
    if method == "POST":
        headers["Content-Type"] = "application/json"
        content = json.dumps(dict(fields), separators=(",", ":")).encode()
    else:
        # httpx's `params` would replace the URL's own query (an API key, say), not add to it.
        parts = urlsplit(connect_url)
        pairs = [*parse_qsl(parts.query, keep_blank_values=True), *fields.items()]
        connect_url = urlunsplit(parts._replace(query=urlencode(pairs)))
    async with client.stream(
        method,
        connect_url,
        headers=headers,
        content=content,
        timeout=httpx.Timeout(max(ends - loop.time(), 0.001)),
        extensions={"sni_hostname": target.host},
    ) as response:
        seen.status = response.status_code
        if not 200 <= response.status_code < 300:
            return  # parse_bid judges the status; the body would not change that
        encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            raise _Unreadable(f"compressed response ({_clip(encoding)}) although none was asked")
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > outbound.MAX_BODY_BYTES:
            raise _TooLarge
        body = bytearray()
        async for chunk in response.aiter_raw():
            body += chunk
            if len(body) > outbound.MAX_BODY_BYTES:
                raise _TooLarge
        seen.body = bytes(body)


class _SendPacer:
    """At most PING_BURST pings start sending per event-loop iteration.

    Sending a ping (httpx, h11, the socket write) runs without yielding and costs about half
    a millisecond. Without pacing, 200 auctions of 50 bidders put 10,000 sends into one loop
    iteration, and no timer (no deadline) runs until all of them are done; paced, deadlines
    fire between bursts, and pings whose time ran out while queued are dropped unsent.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._started = 0  # sends let through since the last refill
        self._queue: deque[asyncio.Future[None]] = deque()
        self._refill_due = False

    async def turn(self) -> None:
        if self._started < PING_BURST and not self._queue:
            self._started += 1
            self._schedule_refill()
            return
        turn: asyncio.Future[None] = self._loop.create_future()
        self._queue.append(turn)
        self._schedule_refill()
        await turn

    def _schedule_refill(self) -> None:
        if not self._refill_due:
            self._refill_due = True
            self._loop.call_soon(self._refill)  # runs in the next loop iteration

    def _refill(self) -> None:
        self._refill_due = False
        self._started = 0
        while self._queue and self._started < PING_BURST:
            turn = self._queue.popleft()
            if not turn.done():  # a cancelled ping gave up its place
                turn.set_result(None)
                self._started += 1
        if self._queue or self._started:
            self._schedule_refill()


_pacers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _SendPacer] = (
    weakref.WeakKeyDictionary()
)


def _pacer(loop: asyncio.AbstractEventLoop) -> _SendPacer:
    # One per event loop: its futures and callbacks belong to that loop.
    pacer = _pacers.get(loop)
    if pacer is None:
        pacer = _pacers[loop] = _SendPacer(loop)
    return pacer


# (origin, local-mode switch) -> (checked at, pinned netloc, TLS name)
CheckKey: TypeAlias = tuple[str, str | None]
_checked: dict[CheckKey, tuple[float, str, str]] = {}


async def checked_target(url: str) -> outbound.Target:
    """outbound.check_url for `url`, its origin's answer remembered for CHECK_TTL_S.

    check_url resolves the host with a blocking getaddrinfo, so a miss runs it in a thread:
    50 bidders' lookups overlap instead of queueing on the event loop, and asyncio.timeout
    stops waiting for one that hangs (the thread itself cannot be interrupted). A hit skips
    the thread hop, and keeps the pinned address stable so keep-alive connections (pooled by
    address) are reused. An expired answer is still used while a thread re-checks the origin
    in the background: a worker thread competes for the GIL with the loop, which is busy
    sending the tree's other pings, so waiting for it could cost a ping 20 ms. Using an
    address that was checked seconds ago is as safe as checking again: what is refused is
    the address, and it was public. The check depends on the scheme and the host alone, so
    the origin is checked and the path carried over; the key holds the local-mode switch, so
    leaving local mode never reuses a loopback address.
    """
    parts = urlsplit(url)
    key = (f"{parts.scheme}://{parts.netloc}/", os.environ.get("OUTBOUND_ALLOW_PRIVATE"))
    now = time.monotonic()
    hit = _checked.get(key)
    if hit is None:
        origin = await asyncio.to_thread(outbound.check_url, key[0])
        hit = _remember(key, origin, now)
    elif now - hit[0] >= CHECK_TTL_S:
        _checked[key] = (now, hit[1], hit[2])  # so that one ping, not fifty, re-checks
        _recheck_in_background(key)
    _, pinned, host = hit
    return outbound.Target(url, urlunsplit(parts._replace(netloc=pinned)), host)


def _remember(key: CheckKey, origin: outbound.Target, now: float) -> tuple[float, str, str]:
    if len(_checked) >= CHECK_CACHE_SIZE:
        _checked.clear()  # rare and cheap: a burst of misses, then warm again
    hit = _checked[key] = (now, urlsplit(origin.connect_url).netloc, origin.host)
    return hit


def _recheck_in_background(key: CheckKey) -> None:
    checking = asyncio.get_running_loop().run_in_executor(None, outbound.check_url, key[0])

    def checked(done: asyncio.Future[outbound.Target]) -> None:
        if done.cancelled():
            return
        if done.exception() is not None:
            _checked.pop(key, None)  # refused now (or unresolvable): the next ping finds out
            return
        _remember(key, done.result(), time.monotonic())

    checking.add_done_callback(checked)


def _clip(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "…"


async def ping(
    client: httpx.AsyncClient, bidder: Bidder, ctx: PingContext, *, deadline: float
) -> PingResult:
    """Ping one bidder and judge its answer; never raises (except when cancelled).

    `deadline` is on the running loop's clock (`loop.time()`): the whole exchange (address
    check, connect, request, every byte of the answer) ends by the earlier of it and the
    bidder's own timeout.
    """
    if bidder.is_static:
        return static_result(bidder)
    loop = asyncio.get_running_loop()
    started = loop.time()
    ends = min(started + bidder.timeout_ms / 1000, deadline)
    seen = _Exchange()

    def failed(outcome: PingOutcome, reason: str) -> PingResult:
        latency = (loop.time() - started) * 1000
        return PingResult(bidder.bidder_id, outcome, latency, seen.status, reason=_clip(reason))

    waited = f"no complete answer within {round((ends - started) * 1000)} ms"
    try:
        async with asyncio.timeout_at(ends):
            await _exchange(client, bidder, ctx, ends, seen)
    except TimeoutError:
        return failed("timeout", waited)
    except outbound.Refused as err:
        return failed("error", f"refused: {err}")
    except _TooLarge:
        return failed("error", "response too large")
    except _Unreadable as err:
        return failed("error", str(err))
    except httpx.TimeoutException:
        # httpx's per-step backstop fired a hair before asyncio's: the same timeout.
        return failed("timeout", waited)
    except httpx.HTTPError as err:
        return failed("error", f"{type(err).__name__}: {err}".rstrip(": "))
    except Exception as err:  # noqa: BLE001 - one bidder's surprise must not sink the auction
        return failed("error", f"unexpected {type(err).__name__}: {err}")
    if seen.status is None:
        return failed("error", "no response")  # unreachable: _exchange returns after one
    latency = (loop.time() - started) * 1000
    return judged(bidder, parse_bid(bidder, seen.status, seen.body), latency, seen.status)
