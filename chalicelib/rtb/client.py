"""Pinging bidders over one shared async HTTP client, each ping bounded in time and size."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from http.cookiejar import CookieJar, CookiePolicy
from typing import Final, Literal, TypeAlias
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

from chalicelib import outbound
from chalicelib.rtb.bidders import (
    DEFAULT_TIMEOUT_MS,
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


def new_client(*, max_connections: int = DEFAULT_MAX_CONNECTIONS) -> httpx.AsyncClient:
    """The client every ping of an event loop shares, so keep-alive connections are reused.

    No redirects (a redirect could point anywhere, past the SSRF check), no proxy or netrc
    from the environment, no cookies, and no compression: a small compressed body could
    inflate far beyond the 64 KB we agree to read.
    """
    return httpx.AsyncClient(
        follow_redirects=False,
        trust_env=False,
        cookies=CookieJar(policy=_NoCookies()),
        # Each ping also runs under asyncio.timeout; this is only the per-step backstop.
        timeout=httpx.Timeout(DEFAULT_TIMEOUT_MS / 1000),
        limits=httpx.Limits(
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=30.0,
        ),
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
    budget_s: float,
    seen: _Exchange,
) -> None:
    method, url, fields = render_request(bidder, ctx)
    # check_url resolves the host with a blocking getaddrinfo; in a thread, 50 bidders'
    # lookups overlap instead of queueing on the event loop (an uncached lookup can take
    # tens of ms). The thread cannot be interrupted, but asyncio.timeout stops waiting for it.
    target = await asyncio.to_thread(outbound.check_url, url)
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
        timeout=httpx.Timeout(budget_s),
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

    try:
        async with asyncio.timeout_at(ends):
            await _exchange(client, bidder, ctx, max(ends - started, 0.001), seen)
    except TimeoutError:
        waited = round((ends - started) * 1000)
        return failed("timeout", f"no complete answer within {waited} ms")
    except outbound.Refused as err:
        return failed("error", f"refused: {err}")
    except _TooLarge:
        return failed("error", "response too large")
    except _Unreadable as err:
        return failed("error", str(err))
    except httpx.TimeoutException:
        # httpx's per-step backstop fired a hair before asyncio's: the same timeout.
        return failed("timeout", f"no complete answer within {round((ends - started) * 1000)} ms")
    except httpx.HTTPError as err:
        return failed("error", f"{type(err).__name__}: {err}".rstrip(": "))
    except Exception as err:  # noqa: BLE001 - one bidder's surprise must not sink the auction
        return failed("error", f"unexpected {type(err).__name__}: {err}")
    if seen.status is None:
        return failed("error", "no response")  # unreachable: _exchange returns after one
    latency = (loop.time() - started) * 1000
    return judged(bidder, parse_bid(bidder, seen.status, seen.body), latency, seen.status)
