"""The SIP edge's agent: keeps Kamailio's credentials in step with the app and sends the app
Kamailio's own registration table so the app's presence heals after a lost report.

Usage: python3 agent.py [--once]

Reads the same environment as render.py (and refuses it the same way). Every
CREDENTIALS_INTERVAL seconds it pulls `GET {APP_URL}/edge/v1/credentials` (X-Edge-Secret, with
If-None-Match) and writes the difference into Kamailio's `cred` htable over JSON-RPC on
loopback: `htable.sets` for a new or rotated credential, `htable.delete` plus `ul.rm` (its
registrations go too) for a revoked one. Every PRESENCE_INTERVAL seconds, and once right after
the first credentials are loaded, it reads `ul.dump` and posts it to
`{APP_URL}/edge/v1/registrations/sync`. With --once it does one of each and exits (status 1
when either failed). Never logs an HA1 or the shared secret. Standard library only: it runs in
the edge image with Debian's python3.
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
from typing import Any

from render import EdgeSettings, RenderError, settings_from_env

HTTP_TIMEOUT_SECONDS = 30


class AgentError(Exception):
    """One sync step failed (app or Kamailio unreachable, or an unexpected answer)."""


def log(message: str) -> None:
    print(f"edge-agent: {message}", file=sys.stderr, flush=True)


class KamailioRpc:
    """JSON-RPC over HTTP to the local Kamailio (xhttp + jsonrpcs, loopback only)."""

    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}/RPC"
        self._ids = 0

    def call(self, method: str, *params: str) -> Any:
        self._ids += 1
        body = {"jsonrpc": "2.0", "method": method, "params": list(params), "id": self._ids}
        request = urllib.request.Request(  # noqa: S310 - fixed loopback http URL
            self.url,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
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

    def credentials(self) -> dict[str, str]:
        """extension => HA1 as Kamailio holds them now (empty after a Kamailio restart)."""
        held: dict[str, str] = {}
        for entry in self.call("htable.dump", "cred") or []:
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
                contacts = [c for c in contacts if int(c.get("Expires", 0) or 0) > 0]
                if not contacts:
                    continue
                latest = max(contacts, key=lambda c: int(c.get("Expires", 0)))
                found.append(
                    {
                        "extension": str(info.get("AoR", "")).split("@", 1)[0],
                        "contact_count": len(contacts),
                        "user_agent": str(latest.get("User-Agent", ""))[:256],
                        "source": _source(latest),
                        "expires": now + int(latest["Expires"]),
                    }
                )
        return found


def _source(contact: dict[str, Any]) -> str:
    """proto:ip:port the phone registered from (the NAT'd source when Kamailio saw one)."""
    proto = str(contact.get("Socket", "udp:")).split(":", 1)[0]
    where = str(contact.get("Received", "[not set]"))
    if where == "[not set]":
        where = str(contact.get("Address", ""))
    where = where.split(";", 1)[0].split("@", 1)[-1].removeprefix("sip:")
    return f"{proto}:{where}"[:80]


class App:
    """The app's /edge/v1 endpoints, authenticated with the shared secret."""

    def __init__(self, settings: EdgeSettings) -> None:
        self.base = f"{settings.app_url}/edge/v1"
        self._secret = settings.shared_secret

    def _request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
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
                return answer.status, dict(answer.headers), answer.read()
        except urllib.error.HTTPError as exc:
            if exc.code == 304:
                return 304, dict(exc.headers), b""
            raise AgentError(f"app {method} {path}: HTTP {exc.code}") from exc
        except OSError as exc:
            raise AgentError(f"app {method} {path}: {exc}") from exc

    def credentials(self, etag: str | None) -> tuple[str | None, dict[str, str] | None]:
        """(etag, extension => HA1), or (etag, None) when unchanged since `etag`."""
        status, headers, raw = self._request(
            "GET", "/credentials", headers={"If-None-Match": etag} if etag else None
        )
        if status == 304:
            return etag, None
        try:
            listed = json.loads(raw)["credentials"]
            pairs = {str(c["extension"]): str(c["ha1"]) for c in listed}
        except (ValueError, KeyError, TypeError) as exc:
            raise AgentError("app GET /credentials: unexpected answer") from exc
        return headers.get("ETag") or headers.get("Etag"), pairs

    def sync(self, at: float, registrations: list[dict[str, Any]]) -> dict[str, Any]:
        _, _, raw = self._request(
            "POST", "/registrations/sync", {"at": at, "registrations": registrations}
        )
        return dict(json.loads(raw or b"{}"))


@dataclass
class Agent:
    rpc: KamailioRpc
    app: App
    etag: str | None = None
    wanted: dict[str, str] = field(default_factory=dict)

    def sync_credentials(self) -> tuple[int, int]:
        """Pulls the credentials and writes the difference; returns (set, removed)."""
        self.etag, pulled = self.app.credentials(self.etag)
        if pulled is not None:
            self.wanted = pulled
        held = self.rpc.credentials()
        changed = [ext for ext, ha1 in self.wanted.items() if held.get(ext) != ha1]
        removed = [ext for ext in held if ext not in self.wanted]
        for ext in changed:
            self.rpc.call("htable.sets", "cred", ext, self.wanted[ext])
        for ext in removed:
            self.rpc.call("htable.delete", "cred", ext)
            # A revoked phone stops ringing now, not when its registration runs out (an
            # extension that is not registered answers with an error, which is fine).
            with contextlib.suppress(AgentError):
                self.rpc.call("ul.rm", "location", ext)
        if changed or removed:
            log(f"credentials: {len(changed)} set, {len(removed)} removed")
        return len(changed), len(removed)

    def sync_presence(self) -> dict[str, Any]:
        at = time.time()
        answer = self.app.sync(at, self.rpc.registrations(at))
        if answer.get("unknown"):
            log(f"registered but unknown to the app: {len(answer['unknown'])}")
        return answer


def run(settings: EdgeSettings, once: bool) -> int:
    agent = Agent(KamailioRpc(settings.rpc_port), App(settings))
    next_presence = 0.0
    loaded = False
    while True:
        failed = False
        try:
            agent.sync_credentials()
            loaded = True
        except AgentError as exc:
            failed = True
            log(str(exc))
        now = time.monotonic()
        if loaded and now >= next_presence:
            try:
                agent.sync_presence()
                next_presence = now + settings.presence_interval
            except AgentError as exc:
                failed = True
                log(str(exc))
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
