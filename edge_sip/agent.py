"""The SIP edge's agent: keeps Kamailio's credentials in step with the app and sends the app
Kamailio's own registration table so the app's presence heals after a lost report.

Usage: python3 agent.py [--once]

Reads the same environment as render.py (and refuses it the same way). Every
CREDENTIALS_INTERVAL seconds it pulls `GET {APP_URL}/edge/v1/credentials` (X-Edge-Secret, with
If-None-Match) and writes the difference into Kamailio over JSON-RPC on loopback: the call
token into the `edge` htable; into `cred`, `htable.sets` for a new or changed credential and
`htable.delete` for a revoked one, each followed by `ul.rm` for one that had a registration
(a revoked phone stops ringing at once). Every PRESENCE_INTERVAL seconds, and once right after
the first credentials are loaded, it reads `ul.dump` and posts it to
`{APP_URL}/edge/v1/registrations/sync`. With --once it does one of each and exits (status 1
when either failed). Never logs an HA1, the call token or the shared secret. Standard library
only: it runs in the edge image with Debian's python3.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

from render import EdgeSettings, RenderError, settings_from_env

HTTP_TIMEOUT_SECONDS = 30


class AgentError(Exception):
    """One sync step failed (app or Kamailio unreachable, or an unexpected answer)."""


def log(message: str) -> None:
    print(f"edge-agent: {message}", file=sys.stderr, flush=True)


class KamailioRpc:
    """JSON-RPC over HTTP to the local Kamailio (xhttp + jsonrpcs, loopback only)."""

    def __init__(self, port: int, secret: str) -> None:
        self.url = f"http://127.0.0.1:{port}/RPC"
        self._secret = secret  # Kamailio answers JSON-RPC only with the shared secret
        self._ids = 0

    def call(self, method: str, *params: str) -> Any:
        self._ids += 1
        body = {"jsonrpc": "2.0", "method": method, "params": list(params), "id": self._ids}
        request = urllib.request.Request(  # noqa: S310 - fixed loopback http URL
            self.url,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "X-Edge-Secret": self._secret},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_SECONDS) as answer:  # noqa: S310
                reply = json.loads(answer.read() or b"{}")
        except (OSError, ValueError) as exc:
            raise AgentError(f"kamailio {method}: {exc}") from exc
        if "error" in reply:
            raise AgentError(f"kamailio {method}: {reply['error'].get('message', reply['error'])}")
        return reply.get("result")

    def table(self, name: str) -> dict[str, str]:
        """An htable as Kamailio holds it now (empty after a Kamailio restart): `cred` is
        extension => HA1, `edge` holds the call token."""
        held: dict[str, str] = {}
        for entry in self.call("htable.dump", name) or []:
            for slot in entry.get("slot", []):
                held[str(slot["name"])] = str(slot["value"])
        return held

    def registrations(self, now: float) -> list[dict[str, Any]]:
        """One entry per registered extension, as /edge/v1/registrations/sync takes them."""
        found = []
        for domain in (self.call("ul.dump") or {}).get("Domains", []):
            for aor in domain.get("Domain", {}).get("AoRs", []):
                info = aor.get("Info", {})
                contacts = [c.get("Contact", {}) for c in info.get("Contacts", [])]
                contacts = [c for c in contacts if _seconds_left(c) > 0]
                if not contacts:
                    continue
                latest = max(contacts, key=_seconds_left)
                found.append(
                    {
                        "extension": str(info.get("AoR", "")).split("@", 1)[0],
                        "contact_count": min(len(contacts), 100),
                        "user_agent": str(latest.get("User-Agent", ""))[:256],
                        "source": _source(latest),
                        "expires": now + _seconds_left(latest),
                    }
                )
        return found


def _seconds_left(contact: dict[str, Any]) -> int:
    """ul.dump's Expires: seconds left, or a word for a contact that has run out but is not
    removed yet ("expired"), is being removed ("deleted") or never runs out ("permanent")."""
    left = contact.get("Expires")
    if isinstance(left, int):
        return left
    return 10**9 if left == "permanent" else 0


def _source(contact: dict[str, Any]) -> str:
    """proto:ip:port the phone registered from (the NAT'd source when Kamailio saw one)."""
    proto = str(contact.get("Socket", "udp:")).split(":", 1)[0]
    where = str(contact.get("Received", "[not set]"))
    if where == "[not set]":
        where = str(contact.get("Address", ""))
    where = where.split(";", 1)[0].split("@", 1)[-1].removeprefix("sip:")
    return f"{proto}:{where}"[:80]


@dataclass(frozen=True)
class Pulled:
    credentials: dict[str, str]  # extension => HA1
    call_token: str  # the CPaaS sends it with every INVITE for this edge


class App:
    """The app's /edge/v1 endpoints, authenticated with the shared secret."""

    def __init__(self, settings: EdgeSettings) -> None:
        self.base = f"{settings.app_url}/edge/v1"
        self._secret = settings.shared_secret

    def _request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Message, bytes]:
        request = urllib.request.Request(  # noqa: S310 - APP_URL is validated http(s)
            self.base + path,
            data=None if body is None else json.dumps(body).encode(),
            headers={
                "X-Edge-Secret": self._secret,
                "Content-Type": "application/json",
                **(headers or {}),
            },
            method=method,
        )
        try:
            with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_SECONDS) as answer:  # noqa: S310
                return answer.status, answer.headers, answer.read()
        except urllib.error.HTTPError as exc:
            if exc.code == 304:
                return 304, exc.headers, b""
            raise AgentError(f"app {method} {path}: HTTP {exc.code}") from exc
        except OSError as exc:
            raise AgentError(f"app {method} {path}: {exc}") from exc

    def credentials(self, etag: str | None) -> tuple[str | None, Pulled | None]:
        """(etag, what the edge may authenticate), or (etag, None) when unchanged since etag."""
        status, headers, raw = self._request(
            "GET", "/credentials", headers={"If-None-Match": etag} if etag else None
        )
        if status == 304:
            return etag, None
        try:
            answer = json.loads(raw)
            pairs = {str(c["extension"]): str(c["ha1"]) for c in answer["credentials"]}
            pulled = Pulled(pairs, str(answer["call_token"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise AgentError("app GET /credentials: unexpected answer") from exc
        return headers.get("ETag"), pulled  # (case-insensitive)

    def sync(self, at: float, registrations: list[dict[str, Any]], interval: int) -> dict[str, Any]:
        body = {"at": at, "registrations": registrations, "interval": interval}
        _, _, raw = self._request("POST", "/registrations/sync", body)
        return dict(json.loads(raw or b"{}"))


@dataclass
class Agent:
    rpc: KamailioRpc
    app: App
    presence_interval: int  # sent with each snapshot: the app's clock for "edge gone"
    etag: str | None = None
    wanted: Pulled = field(default_factory=lambda: Pulled({}, ""))

    def sync_credentials(self) -> tuple[int, int]:
        """Pulls the credentials and writes the difference; returns (set, removed)."""
        self.etag, pulled = self.app.credentials(self.etag)
        if pulled is not None:
            self.wanted = pulled
        wanted = self.wanted.credentials
        if self.rpc.table("edge").get("call_token") != self.wanted.call_token:
            self.rpc.call("htable.sets", "edge", "call_token", self.wanted.call_token)
        held = self.rpc.table("cred")
        changed = [ext for ext, ha1 in wanted.items() if held.get(ext) != ha1]
        removed = [ext for ext in held if ext not in wanted]
        for ext in changed:
            self.rpc.call("htable.sets", "cred", ext, wanted[ext])
        for ext in removed:
            self.rpc.call("htable.delete", "cred", ext)
        # A revoked phone, or one whose password was replaced (or revoked and created again
        # between two pulls), stops ringing now, not when its registration runs out; with a
        # new password it registers again. (An extension that is not registered answers with
        # an error, which is fine.)
        for ext in removed + [ext for ext in changed if ext in held]:
            with contextlib.suppress(AgentError):
                self.rpc.call("ul.rm", "location", ext)
        if changed or removed:
            log(f"credentials: {len(changed)} set, {len(removed)} removed")
        return len(changed), len(removed)

    def sync_presence(self) -> dict[str, Any]:
        at = time.time()
        answer = self.app.sync(at, self.rpc.registrations(at), self.presence_interval)
        if answer.get("unknown"):
            log(f"registered but unknown to the app: {len(answer['unknown'])}")
        return answer


def _problem(exc: Exception) -> str:
    # AgentError messages are written to be logged; anything else is a bug, named by type.
    return str(exc) if isinstance(exc, AgentError) else f"unexpected {type(exc).__name__}: {exc}"


def run(settings: EdgeSettings, once: bool) -> int:
    agent = Agent(
        KamailioRpc(settings.rpc_port, settings.shared_secret),
        App(settings),
        settings.presence_interval,
    )
    next_presence = 0.0
    loaded = False
    while True:
        failed = False
        try:
            agent.sync_credentials()
            loaded = True
        except Exception as exc:  # noqa: BLE001 - log, and try again next round
            failed = True
            log(_problem(exc))
        now = time.monotonic()
        if loaded and now >= next_presence:
            try:
                agent.sync_presence()
                next_presence = now + settings.presence_interval
            except Exception as exc:  # noqa: BLE001 - log, and try again next round
                failed = True
                log(_problem(exc))
        if once:
            return 1 if failed or not loaded else 0
        time.sleep(settings.credentials_interval if loaded else 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--once", action="store_true", help="one pull and one snapshot, then exit")
    args = parser.parse_args(argv)
    try:
        settings = settings_from_env(os.environ)
    except RenderError as exc:
        for problem in exc.problems:
            log(problem)
        return 2
    return run(settings, args.once)


if __name__ == "__main__":
    sys.exit(main())
