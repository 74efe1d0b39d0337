"""RTB auctions against real loopback bidders: winners, reroutes, faults, deadline, margins."""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib import outbound
from chalicelib.bidding import client as rtb_client
from chalicelib.bidding.auction import (
    AuctionResult,
    FixedMargin,
    FixedPayout,
    LatencyMemory,
    Margin,
    PercentMargin,
    publisher_offer_cents,
    run_auction,
    run_auction_sync,
    settle,
)
from chalicelib.bidding.bidders import Bidder, PingContext, ResponseMap
from chalicelib.bidding.client import PingOutcome, PingResult, new_client, ping
from tests.support.bidders import BidderServer, destination_for

FAST = settings(max_examples=100, deadline=None, database=None)
CTX = PingContext(
    call_id="CA900",
    caller_id="+14155550123",
    caller_state="CA",
    caller_zip="94107",
    area_code="415",
    campaign_id="cmp-1",
    publisher_id="pub-1",
    tags={"ivr_age": "70"},
)


@pytest.fixture(scope="module")
def server() -> Iterator[BidderServer]:
    with BidderServer() as running:
        yield running


@pytest.fixture(autouse=True)
def loopback_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OUTBOUND_ALLOW_PRIVATE", "true")


def http_bidder(
    server: BidderServer, bidder_id: str, path: str, *, other: bool = False, **fields: Any
) -> Bidder:
    url = server.url(path, other=other)
    return Bidder(bidder_id, f"buyer-{bidder_id}", bidder_id, url=url, **fields)


def static_bidder(bidder_id: str, cents: int, **fields: Any) -> Bidder:
    return Bidder(
        bidder_id,
        f"buyer-{bidder_id}",
        bidder_id,
        static_bid_cents=cents,
        static_destination=destination_for(cents),
        **fields,
    )


def auction(bidders: Sequence[Bidder], **options: Any) -> AuctionResult:
    async def run() -> AuctionResult:
        async with new_client() as client:
            return await run_auction(client, bidders, CTX, **options)

    return asyncio.run(run())


def outcomes(result: AuctionResult) -> dict[str, str]:
    return {entry.bidder_id: entry.outcome for entry in result.log}


def reasons(result: AuctionResult) -> dict[str, str]:
    return {entry.bidder_id: entry.reason for entry in result.log}


# --- winners and the bid log -------------------------------------------------------------


def test_the_highest_valid_bid_wins_and_every_bid_is_logged(server: BidderServer) -> None:
    bidders = [
        http_bidder(server, "five", "/bid/5.00/10"),
        http_bidder(server, "seven", "/bid/7.00/30"),
        http_bidder(server, "cheap", "/bid/2.00/0", floor_cents=300),
        http_bidder(server, "reject", "/reject"),
        http_bidder(server, "broken", "/status/500"),
        http_bidder(server, "garbled", "/invalid-json"),
        http_bidder(server, "huge", "/huge"),
        http_bidder(server, "moved", "/redirect"),
        http_bidder(server, "slow", "/slow", timeout_ms=200),
        http_bidder(server, "gzip", "/gzip"),
        http_bidder(server, "capped", "/echo/capped"),
        static_bidder("static", 600),
    ]
    stamp = datetime(2024, 7, 15, 18, 0, tzinfo=UTC)
    result = auction(bidders, deadline_ms=1500, capped={"capped"}, clock=lambda: stamp)

    assert result.winner is not None
    assert (result.winner.bidder_id, result.winner.amount_cents) == ("seven", 700)
    assert result.winner.destination == "+14155550700"
    assert result.winner.bid_id == "bid-7.00-30"
    assert result.winner.expires_in == 30
    assert [c.bidder_id for c in result.candidates] == ["seven", "static", "five"]
    assert result.started_at == stamp
    assert outcomes(result) == {
        "five": "lost",
        "seven": "won",
        "cheap": "below_floor",
        "reject": "rejected",
        "broken": "error",
        "garbled": "error",
        "huge": "error",
        "moved": "error",
        "slow": "timeout",
        "gzip": "error",
        "capped": "capped",
        "static": "lost",
    }
    why = reasons(result)
    assert why["seven"] == "highest bid"
    assert why["five"] == "outbid by seven (700 cents)"
    assert why["cheap"] == "bid 200 cents is below the floor of 300 cents"
    assert why["reject"] == "no capacity"
    assert why["broken"] == "HTTP 500"
    assert why["garbled"] == "invalid JSON"
    assert why["huge"] == "response too large"
    assert why["moved"] == "redirect not followed (HTTP 302)"
    assert why["slow"] == "no complete answer within 200 ms"
    assert "compressed" in why["gzip"]
    assert why["capped"] == "capped before the auction"
    # The log keeps the tree's order and what each bidder said.
    assert [entry.bidder_id for entry in result.log] == [b.bidder_id for b in bidders]
    log = {entry.bidder_id: entry for entry in result.log}
    assert (log["five"].http_status, log["five"].amount_cents) == (200, 500)
    assert log["broken"].http_status == 500
    assert log["moved"].http_status == 302
    assert log["cheap"].amount_cents == 200
    assert log["slow"].http_status is None
    assert log["slow"].latency_ms is not None and 190 <= log["slow"].latency_ms < 400
    assert log["capped"].latency_ms is None
    assert log["static"].latency_ms == 0.0
    # Neither the capped bidder nor the redirect's target was ever asked.
    assert server.requests_to("/echo/capped") == []
    assert server.requests_to("/bid/99.00/0") == []


def test_ties_go_to_priority_then_to_the_faster_answer(server: BidderServer) -> None:
    bidders = [
        http_bidder(server, "second-priority", "/bid/5.00/1", priority=2),
        http_bidder(server, "slower", "/bid/5.00/150", priority=1),
        http_bidder(server, "faster", "/bid/5.00/2", priority=1),
        http_bidder(server, "lower", "/bid/4.99/0", priority=1),
    ]
    result = auction(bidders, deadline_ms=1000)
    ranked = [c.bidder_id for c in result.candidates]
    assert ranked == ["faster", "slower", "second-priority", "lower"]
    why = reasons(result)
    assert why["slower"] == "tied with faster, which answered faster"
    assert why["second-priority"] == "tied with faster, which has priority 1"
    assert why["lower"] == "outbid by faster (500 cents)"


def test_reroute_goes_down_the_ranked_candidates(server: BidderServer) -> None:
    bidders = [
        http_bidder(server, "a", "/bid/3.00/0"),
        http_bidder(server, "b", "/bid/9.00/0"),
        static_bidder("c", 450),
        http_bidder(server, "d", "/status/503"),
    ]
    result = auction(bidders, deadline_ms=1000)
    assert [c.amount_cents for c in result.candidates] == [900, 450, 300]
    assert result.next_after("b") == result.candidates[1]
    assert result.next_after("c") == result.candidates[2]
    assert result.next_after("a") is None
    assert result.next_after("d") is None  # never a candidate


def test_an_auction_with_no_valid_bid_has_no_winner(server: BidderServer) -> None:
    result = auction([http_bidder(server, "x", "/reject"), static_bidder("y", 0)])
    assert result.winner is None
    assert result.candidates == ()
    assert outcomes(result) == {"x": "rejected", "y": "rejected"}


def test_a_static_only_auction_makes_no_request_and_takes_no_time() -> None:
    result = auction([static_bidder("s1", 300), static_bidder("s2", 500, floor_cents=600)])
    assert result.winner is not None and result.winner.bidder_id == "s1"
    assert outcomes(result) == {"s1": "won", "s2": "below_floor"}
    assert result.wall_ms < 20


def test_duplicate_bidders_and_unknown_caps_are_refused() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        auction([static_bidder("s", 100), static_bidder("s", 200)])
    with pytest.raises(ValueError, match="capped bidders not in the auction"):
        auction([static_bidder("s", 100)], capped={"ghost"})


def test_caps_may_carry_their_own_reason(server: BidderServer) -> None:
    result = auction([static_bidder("s", 100)], capped={"s": "pings per minute"})
    assert reasons(result) == {"s": "pings per minute"}


# --- faults and the deadline -------------------------------------------------------------


def test_the_deadline_holds_against_slow_dripping_and_huge_bidders(server: BidderServer) -> None:
    bidders = [
        http_bidder(server, "fast", "/bid/2.00/5"),
        http_bidder(server, "slow", "/slow"),
        http_bidder(server, "drip", "/drip"),
        http_bidder(server, "huge", "/huge-chunked"),
        http_bidder(server, "late", "/bid/9.00/600"),
    ]
    deadline_ms = 300

    async def run() -> tuple[AuctionResult, float]:
        async with new_client() as client:
            started = time.perf_counter()
            result = await run_auction(client, bidders, CTX, deadline_ms=deadline_ms)
            return result, (time.perf_counter() - started) * 1000

    result, wall_ms = asyncio.run(run())
    assert wall_ms <= deadline_ms + 100
    assert result.wall_ms <= deadline_ms + 100
    assert outcomes(result) == {
        "fast": "won",
        "slow": "timeout",
        "drip": "timeout",
        "huge": "error",
        "late": "timeout",
    }
    assert reasons(result)["huge"] == "response too large"
    log = {entry.bidder_id: entry for entry in result.log}
    assert log["drip"].http_status == 200  # it answered, but never finished
    assert all(
        entry.latency_ms is not None and entry.latency_ms <= deadline_ms + 100
        for entry in result.log
    )


def test_a_bidders_own_timeout_is_shorter_than_the_deadline(server: BidderServer) -> None:
    bidders = [http_bidder(server, "quick-timeout", "/bid/8.00/250", timeout_ms=60)]
    result = auction(bidders, deadline_ms=2000)
    assert outcomes(result) == {"quick-timeout": "timeout"}
    assert result.wall_ms < 200


def test_a_ping_after_the_deadline_times_out_at_once(server: BidderServer) -> None:
    async def run() -> PingResult:
        async with new_client() as client:
            loop = asyncio.get_running_loop()
            bidder = http_bidder(server, "late", "/echo/never")
            return await ping(client, bidder, CTX, deadline=loop.time() - 1)

    result = asyncio.run(run())
    assert result.outcome == "timeout"
    assert server.requests_to("/echo/never") == []


def test_an_unreachable_bidder_is_an_error(server: BidderServer) -> None:
    # Port 1 on loopback refuses connections.
    bidder = Bidder("closed", "buyer", "closed", url="http://127.0.0.1:1/bid")
    result = auction([bidder], deadline_ms=1000)
    assert outcomes(result) == {"closed": "error"}
    assert "ConnectError" in reasons(result)["closed"]


# --- what the bidders are sent -----------------------------------------------------------


def test_caller_ids_are_masked_unless_the_bidder_may_see_them(server: BidderServer) -> None:
    auction(
        [
            http_bidder(server, "masked", "/echo/masked"),
            http_bidder(server, "exposed", "/echo/exposed", expose_caller_id=True),
        ]
    )
    (masked,) = server.requests_to("/echo/masked")
    (exposed,) = server.requests_to("/echo/exposed")
    assert json.loads(masked.body)["CID"] == "+1415555****"
    assert b"0123" not in masked.body
    assert json.loads(exposed.body)["CID"] == "+14155550123"


def test_post_sends_the_rendered_template_as_json(server: BidderServer) -> None:
    template = {"cid": "{caller_id}", "call": "{call_id}", "age": "{tag.ivr_age}"}
    auction([http_bidder(server, "post", "/echo/post", request_template=template)])
    (seen,) = server.requests_to("/echo/post")
    assert seen.method == "POST"
    assert seen.headers["content-type"] == "application/json"
    assert seen.headers["host"] == f"127.0.0.1:{server.port}"
    assert seen.headers["accept-encoding"] == "identity"
    assert json.loads(seen.body) == {"cid": "+1415555****", "call": "CA900", "age": "70"}


def test_get_sends_the_rendered_template_as_query_parameters(server: BidderServer) -> None:
    template = {"zip": "{caller_zip}", "state": "{caller_state}", "pub": "{publisher_id}"}
    bidder = http_bidder(server, "get", "/echo/get?key=k1", method="GET", request_template=template)
    auction([bidder])
    (seen,) = server.requests_to("/echo/get")
    assert seen.method == "GET"
    assert seen.body == b""
    # The URL's own parameters stay, next to the rendered ones.
    assert seen.query == {"key": ["k1"], "zip": ["94107"], "state": ["CA"], "pub": ["pub-1"]}


def test_response_paths_read_a_nested_answer(server: BidderServer) -> None:
    rmap = ResponseMap(
        bid_amount="$.data.offers[0].price.cents",
        amount_in_cents=True,
        destination=("$.data.offers[0].route.sip",),
        bid_id="meta.id",
        expires_in="$.meta.ttl",
    )
    result = auction([http_bidder(server, "nested", "/nested", response_map=rmap)])
    winner = result.winner
    assert winner is not None
    assert (winner.amount_cents, winner.destination) == (725, "sip:q@b.example")
    assert (winner.bid_id, winner.expires_in) == ("n-1", 45)


def test_keep_alive_connections_are_reused_across_auctions(server: BidderServer) -> None:
    bidder = http_bidder(server, "pooled", "/echo/pooled")

    async def run() -> None:
        async with new_client() as client:
            for _ in range(3):
                await run_auction(client, [bidder], CTX)

    asyncio.run(run())
    connections = {seen.connection for seen in server.requests_to("/echo/pooled")}
    assert len(server.requests_to("/echo/pooled")) == 3
    assert len(connections) == 1


def test_cookies_from_one_bidder_never_reach_another(server: BidderServer) -> None:
    async def run() -> None:
        async with new_client() as client:
            await run_auction(client, [http_bidder(server, "a", "/set-cookie")], CTX)
            await run_auction(client, [http_bidder(server, "b", "/echo/after-cookie")], CTX)

    asyncio.run(run())
    (seen,) = server.requests_to("/echo/after-cookie")
    assert "cookie" not in seen.headers


def test_a_connection_the_server_closes_is_not_reused(server: BidderServer) -> None:
    async def run() -> list[str]:
        async with new_client() as client:
            outcomes: list[str] = []
            for path in ("/close/a", "/echo/after-close", "/hangup/b"):
                result = await run_auction(client, [http_bidder(server, "x", path)], CTX)
                outcomes.append(result.log[0].outcome)
            await asyncio.sleep(0.05)  # the hang-up reaches the client while it is idle
            result = await run_auction(
                client, [http_bidder(server, "x", "/echo/after-hangup")], CTX
            )
            return [*outcomes, result.log[0].outcome]

    assert asyncio.run(run()) == ["won", "won", "won", "won"]
    (after_close,) = server.requests_to("/echo/after-close")
    (after_hangup,) = server.requests_to("/echo/after-hangup")
    assert after_close.connection != server.requests_to("/close/a")[0].connection
    assert after_hangup.connection != server.requests_to("/hangup/b")[0].connection


def test_at_the_connection_limit_pings_wait_for_a_connection(server: BidderServer) -> None:
    bidders = [http_bidder(server, f"same-{n}", f"/bid/1.0{n}/20") for n in range(6)]
    bidders += [http_bidder(server, f"other-{n}", "/echo/other", other=True) for n in range(3)]

    async def run() -> AuctionResult:
        async with new_client(max_connections=2) as client:
            return await run_auction(client, bidders, CTX, deadline_ms=2000)

    result = asyncio.run(run())
    assert set(outcomes(result).values()) <= {"won", "lost"}
    assert len(result.candidates) == 9
    # Two connections at most, handed from one address to the other as they came free.
    first_port = {
        seen.connection for n in range(6) for seen in server.requests_to(f"/bid/1.0{n}/20")
    }
    assert len(first_port) <= 2


def test_concurrent_auctions_share_one_client(server: BidderServer) -> None:
    trees = [
        [http_bidder(server, f"t{t}-b{b}", f"/bid/{t}.{b:02d}/{5 * b}") for b in range(10)]
        for t in range(1, 11)
    ]

    async def run() -> list[AuctionResult]:
        async with new_client() as client:
            return await asyncio.gather(
                *(run_auction(client, tree, CTX, deadline_ms=1000) for tree in trees)
            )

    started = time.perf_counter()
    results = asyncio.run(run())
    assert (time.perf_counter() - started) < 1.5
    for t, result in enumerate(results, start=1):
        assert result.winner is not None
        assert result.winner.bidder_id == f"t{t}-b9"  # the highest bid of its own tree
        assert len(result.candidates) == 10


def test_tls_is_verified_for_the_bidders_name_on_the_pinned_address(tmp_path: Path) -> None:
    certificate, key = self_signed("bidder.test", tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(certificate, key)
    trusting = ssl.create_default_context(cafile=str(certificate))

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            body = json.dumps({"bidAmount": 2, "phoneNumber": destination_for(200)}).encode()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            await writer.drain()
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def run(name: str) -> int | str:
        server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=server_tls)
        port = server.sockets[0].getsockname()[1]
        async with server, new_client(ssl_context=trusting) as client:
            try:
                reply = await client.get(
                    f"https://127.0.0.1:{port}/bid",
                    headers={"Host": name},
                    extensions={"sni_hostname": name},
                )
            except httpx.ConnectError as err:
                return str(err)
            return reply.status_code

    assert asyncio.run(run("bidder.test")) == 200
    refused = asyncio.run(run("other.test"))
    assert isinstance(refused, str) and "certificate" in refused.lower()


def self_signed(name: str, directory: Path) -> tuple[Path, Path]:
    """A certificate for `name` that is its own CA, and its key, as PEM files."""
    from datetime import timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    certificate_file = directory / "bidder.pem"
    key_file = directory / "bidder.key"
    certificate_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return certificate_file, key_file


def test_pings_go_out_slowest_bidder_first() -> None:
    memory = LatencyMemory(weight=0.5)
    bidders = [static_bidder(name, 100) for name in ("fast", "new", "slow", "medium")]
    memory.record("fast", 10)
    memory.record("slow", 900)
    memory.record("medium", 300)
    memory.record("medium", 100)  # the mean moves halfway: 200
    assert memory.expected_ms("medium") == 200
    order = [bidder.bidder_id for bidder in memory.slowest_first(bidders)]
    assert order == ["new", "slow", "medium", "fast"]  # nothing says a new bidder is fast


def test_an_auction_teaches_its_latency_memory(server: BidderServer) -> None:
    memory = LatencyMemory()
    auction([http_bidder(server, "learned", "/bid/1.00/30")], latencies=memory)
    learned = memory.expected_ms("learned")
    assert learned is not None and 25 <= learned < 500


# --- SSRF --------------------------------------------------------------------------------


def test_private_addresses_are_refused_without_a_request(
    server: BidderServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OUTBOUND_ALLOW_PRIVATE")
    https_loopback = f"https://127.0.0.1:{server.port}/echo/ssrf"
    bidders = [
        Bidder("private", "buyer", "private", url=https_loopback),
        http_bidder(server, "plain-http", "/echo/ssrf-http"),
        Bidder("metadata", "buyer", "metadata", url="https://169.254.169.254/latest/"),
        static_bidder("fallback", 100),
    ]
    result = auction(bidders, deadline_ms=1000)
    assert outcomes(result) == {
        "private": "error",
        "plain-http": "error",
        "metadata": "error",
        "fallback": "won",
    }
    why = reasons(result)
    assert why["private"] == "refused: 127.0.0.1 resolves to a non-public address"
    assert why["plain-http"] == "refused: only https URLs may be called"
    assert why["metadata"] == "refused: 169.254.169.254 resolves to a non-public address"
    assert server.requests_to("/echo/ssrf") == []
    assert server.requests_to("/echo/ssrf-http") == []


def test_an_expired_address_check_is_redone_in_the_background(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    checked: list[str] = []

    def check_url(url: str) -> outbound.Target:
        checked.append(url)
        if len(checked) > 1:
            raise outbound.Refused("bidder.test resolves to a non-public address")
        return outbound.Target(url, "http://127.0.0.1:9/", "bidder.test")

    monkeypatch.setattr(outbound, "check_url", check_url)
    monkeypatch.setattr(rtb_client, "_checked", {})
    monkeypatch.setattr(rtb_client, "CHECK_TTL_S", 0.0)

    async def run() -> tuple[outbound.Target, outbound.Target]:
        first = await rtb_client.checked_target("http://bidder.test/a?x=1")
        # Expired: this ping keeps the checked address while a thread checks again.
        second = await rtb_client.checked_target("http://bidder.test/b")
        for _ in range(100):
            await asyncio.sleep(0.01)
            if not rtb_client._checked:
                break
        with pytest.raises(outbound.Refused):
            await rtb_client.checked_target("http://bidder.test/c")
        return first, second

    first, second = asyncio.run(run())
    assert (first.connect_url, first.host) == ("http://127.0.0.1:9/a?x=1", "bidder.test")
    assert second.connect_url == "http://127.0.0.1:9/b"
    assert checked == ["http://bidder.test/"] * 3


# --- the synchronous entry point ---------------------------------------------------------


def test_run_auction_sync_runs_a_whole_auction(server: BidderServer) -> None:
    bidders = [http_bidder(server, "http", "/bid/4.00/0"), static_bidder("static", 350)]
    result = run_auction_sync(bidders, CTX, deadline_ms=1000)
    assert [c.bidder_id for c in result.candidates] == ["http", "static"]


def test_a_stuck_auction_is_cut_off_and_the_loop_keeps_serving(server: BidderServer) -> None:
    import time as clock

    from chalicelib.bidding.auction import AUCTIONS

    async def stuck(_: httpx.AsyncClient) -> AuctionResult:
        await asyncio.sleep(30)
        raise AssertionError("not reached")

    started = clock.monotonic()
    with pytest.raises(TimeoutError):
        AUCTIONS.run(stuck, timeout_s=0.2)
    assert clock.monotonic() - started < 1.0
    bidders = [http_bidder(server, "after", "/bid/2.00/0")]
    assert run_auction_sync(bidders, CTX, deadline_ms=1000).winner is not None


def test_synchronous_auctions_from_many_threads_share_keep_alive_connections(
    server: BidderServer,
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    bidders = [http_bidder(server, "sync", "/echo/sync")]
    run_auction_sync(bidders, CTX, deadline_ms=1000)  # opens the connection
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: run_auction_sync(bidders, CTX), range(8)))
    assert all(r.winner is not None for r in results)
    connections = {seen.connection for seen in server.requests_to("/echo/sync")}
    # Eight auctions from four threads, on one loop: at most one connection per auction
    # in flight at once, and far fewer than one per auction.
    assert 1 <= len(connections) <= 4


# --- margins -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("winning", "margin", "offer"),
    [
        (1000, PercentMargin(Decimal(20)), 800),
        (999, PercentMargin(Decimal(15)), 849),  # 849.15 rounds down
        (1001, PercentMargin(Decimal("33.3")), 667),  # 667.667 rounds down
        (1000, PercentMargin(Decimal(0)), 1000),
        (1000, PercentMargin(Decimal(100)), 0),
        (1000, FixedMargin(250), 750),
        (200, FixedMargin(250), 0),  # never negative
        (1000, FixedPayout(600), 600),
        (300, FixedPayout(600), 600),  # a promise to the publisher, whatever the bid
    ],
)
def test_publisher_offers(winning: int, margin: Margin, offer: int) -> None:
    assert publisher_offer_cents(winning, margin) == offer


@pytest.mark.parametrize(
    "build",
    [
        lambda: PercentMargin(Decimal(101)),
        lambda: PercentMargin(Decimal(-1)),
        lambda: PercentMargin(20),  # type: ignore[arg-type]
        lambda: FixedMargin(-1),
        lambda: FixedPayout(-5),
        lambda: FixedPayout(True),
    ],
)
def test_invalid_margins_are_refused(build: Any) -> None:
    with pytest.raises(ValueError, match=r"margin|payout"):
        build()


@FAST
@given(
    st.integers(min_value=0, max_value=1_000_000),
    st.decimals(min_value=0, max_value=100, places=2),
)
def test_a_percent_offer_is_whole_cents_and_never_exceeds_the_bid(
    winning: int, percent: Decimal
) -> None:
    offer = publisher_offer_cents(winning, PercentMargin(percent))
    assert 0 <= offer <= winning
    # The platform keeps at least its margin, and less than one cent more.
    kept = Decimal(winning) - offer
    assert Decimal(winning) * percent / 100 <= kept < Decimal(winning) * percent / 100 + 1


# --- ranking, as a property --------------------------------------------------------------

OUTCOMES: tuple[PingOutcome, ...] = ("bid", "bid", "bid", "rejected", "timeout", "error")


@st.composite
def tree(draw: st.DrawFn) -> tuple[list[Bidder], dict[str, PingResult], set[str]]:
    count = draw(st.integers(min_value=0, max_value=12))
    bidders: list[Bidder] = []
    results: dict[str, PingResult] = {}
    capped: set[str] = set()
    for n in range(count):
        bidder_id = f"b{n}"
        floor = draw(st.sampled_from([0, 0, 300, 500]))
        bidders.append(
            Bidder(
                bidder_id,
                f"buyer{n}",
                bidder_id,
                url=f"https://b{n}.example.com/",
                priority=draw(st.integers(min_value=1, max_value=3)),
                floor_cents=floor,
            )
        )
        if draw(st.integers(min_value=0, max_value=9)) == 0:
            capped.add(bidder_id)
            continue
        outcome = draw(st.sampled_from(OUTCOMES))
        amount = draw(st.sampled_from([100, 300, 500, 500, 700])) if outcome == "bid" else None
        latency = draw(st.sampled_from([5.0, 5.0, 40.0, 900.0]))
        results[bidder_id] = PingResult(
            bidder_id,
            outcome,
            latency,
            200,
            amount_cents=amount,
            destination=destination_for(amount or 0),
        )
    return bidders, results, capped


@FAST
@given(tree())
def test_the_winner_has_the_top_valid_bid_and_no_loser_outranks_it(
    case: tuple[list[Bidder], dict[str, PingResult], set[str]],
) -> None:
    bidders, results, capped = case
    candidates, log = settle(bidders, results, capped)
    floors = {b.bidder_id: b.floor_cents for b in bidders}
    priority = {b.bidder_id: b.priority for b in bidders}
    valid = {
        bidder_id: result.amount_cents
        for bidder_id, result in results.items()
        if result.outcome == "bid"
        and result.amount_cents is not None
        and result.amount_cents >= floors[bidder_id]
    }
    assert {c.bidder_id for c in candidates} == set(valid)
    assert len(log) == len(bidders)
    by_id = {entry.bidder_id: entry for entry in log}
    assert {i for i, e in by_id.items() if e.outcome == "capped"} == capped
    if not valid:
        assert all(entry.outcome != "won" for entry in log)
        return
    winner = candidates[0]
    assert winner.amount_cents == max(valid.values())
    assert [e.bidder_id for e in log if e.outcome == "won"] == [winner.bidder_id]
    for loser in candidates[1:]:
        assert by_id[loser.bidder_id].outcome == "lost"
        assert (loser.amount_cents, -loser.priority, -loser.latency_ms) <= (
            winner.amount_cents,
            -winner.priority,
            -winner.latency_ms,
        )
        assert loser.priority == priority[loser.bidder_id]
    # Each candidate ranks no better than the one before it.
    keys = [(-c.amount_cents, c.priority, c.latency_ms) for c in candidates]
    assert keys == sorted(keys)
