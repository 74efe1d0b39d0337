"""A scripted HTTP bidder on loopback for RTB tests: latency, faults and bids by path."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs


@dataclass(frozen=True)
class Seen:
    """One request as the bidder server received it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    connection: int


def destination_for(cents: int) -> str:
    return f"+1415555{cents:04d}"


class BidderServer:
    """One HTTP/1.1 server on loopback, in its own thread and event loop, answering as
    scripted bidders by path:

    /bid/<dollars>/<delay ms>  a Ringba-style bid after the delay
    /echo/<name>               a $1.00 bid (the test reads what was sent)
    /slow  /drip  /huge  /huge-chunked  /status/<code>  /invalid-json  /redirect  /reject
    /nested  /gzip  /set-cookie
    /close/<name>   a $1.00 bid with `Connection: close`
    /hangup/<name>  a $1.00 bid, then the server drops the idle connection

    It listens on two ports, so that two bidder addresses can compete for connections.
    """

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self.port = 0
        self.other_port = 0
        self._connections = 0
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(),), daemon=True)

    def url(self, path: str, *, other: bool = False) -> str:
        return f"http://127.0.0.1:{self.other_port if other else self.port}{path}"

    def requests_to(self, path: str) -> list[Seen]:
        return [seen for seen in list(self.seen) if seen.path == path]

    def __enter__(self) -> BidderServer:
        self._thread.start()
        assert self._ready.wait(5), "bidder server did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(5)

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        other = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self.other_port = other.sockets[0].getsockname()[1]
        self._ready.set()
        async with server, other:
            await self._stop.wait()
        # asyncio.run cancels the handlers still sleeping or dripping.

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections += 1
        connection = self._connections
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                request_line, *lines = head.decode("latin-1").rstrip("\r\n").split("\r\n")
                method, target, _ = request_line.split(" ", 2)
                headers = {}
                for line in lines:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                path, _, query = target.partition("?")
                self.seen.append(Seen(method, path, parse_qs(query), headers, body, connection))
                if not await self._answer(path, writer):
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client hung up: after a timeout or a too-large body, that is the point
        except asyncio.CancelledError:
            pass  # the server is stopping while a handler sleeps or drips
        finally:
            writer.close()

    @staticmethod
    async def _send(
        writer: asyncio.StreamWriter,
        status: int,
        body: bytes,
        headers: dict[str, str] | None = None,
    ) -> None:
        lines = [f"HTTP/1.1 {status} Scripted", f"Content-Length: {len(body)}"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        await writer.drain()

    async def _answer(self, path: str, writer: asyncio.StreamWriter) -> bool:
        """Answer as the path says; False when the connection is to be closed."""
        parts = path.strip("/").split("/")
        ok = {"Content-Type": "application/json"}
        one_dollar = json.dumps({"bidAmount": "1.00", "phoneNumber": destination_for(100)})
        if parts[0] == "close":
            await self._send(writer, 200, one_dollar.encode(), ok | {"Connection": "close"})
            return False
        if parts[0] == "hangup":
            await self._send(writer, 200, one_dollar.encode(), ok)
            return False
        if parts[0] == "bid":
            dollars, delay_ms = parts[1], int(parts[2])
            await asyncio.sleep(delay_ms / 1000)
            cents = round(float(dollars) * 100)
            bid = {
                "bidAmount": float(dollars),
                "phoneNumber": destination_for(cents),
                "bidId": f"bid-{dollars}-{delay_ms}",
                "expireInSeconds": 30,
            }
            await self._send(writer, 200, json.dumps(bid).encode(), ok)
        elif parts[0] == "echo":
            bid = {"bidAmount": "1.00", "phoneNumber": destination_for(100)}
            await self._send(writer, 200, json.dumps(bid).encode(), ok)
        elif parts[0] == "set-cookie":
            bid = {"bidAmount": "1.00", "phoneNumber": destination_for(100)}
            cookie = {"Set-Cookie": "buyer=secret; Path=/"}
            await self._send(writer, 200, json.dumps(bid).encode(), ok | cookie)
        elif parts[0] == "slow":
            await asyncio.sleep(30)
        elif parts[0] == "status":
            await self._send(writer, int(parts[1]), b'{"bidAmount": 9, "phoneNumber": "+1"}', ok)
        elif parts[0] == "invalid-json":
            await self._send(writer, 200, b'{"bidAmount": 9,', ok)
        elif parts[0] == "redirect":
            # Where a redirect-following client would find the best bid of all.
            await self._send(writer, 302, b"", {"Location": "/bid/99.00/0"})
        elif parts[0] == "reject":
            await self._send(writer, 200, b'{"rejectReason": "no capacity"}', ok)
        elif parts[0] == "huge":
            await self._send(writer, 200, b" " * 1_000_000, ok)
        elif parts[0] == "huge-chunked":
            await self._chunked(writer, (b" " * 16_384 for _ in range(64)), 0)
        elif parts[0] == "drip":
            # Bytes slowly, for far longer than any deadline: only the client can end it.
            await self._chunked(writer, (b" " for _ in range(3000)), 0.01)
        elif parts[0] == "gzip":
            await self._send(writer, 200, b"\x1f\x8b", ok | {"Content-Encoding": "gzip"})
        elif parts[0] == "nested":
            nested = {
                "data": {
                    "offers": [{"price": {"cents": 725}, "route": {"sip": "sip:q@b.example"}}]
                },
                "meta": {"id": "n-1", "ttl": "45"},
            }
            await self._send(writer, 200, json.dumps(nested).encode(), ok)
        else:
            await self._send(writer, 404, b"")
        return True

    @staticmethod
    async def _chunked(writer: asyncio.StreamWriter, chunks: Iterator[bytes], pause: float) -> None:
        head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked"
        writer.write(head.encode() + b"\r\n\r\n")
        for chunk in chunks:
            if writer.is_closing():
                return
            writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            await writer.drain()
            await asyncio.sleep(pause)
        writer.write(b"0\r\n\r\n")
        await writer.drain()
