"""`/edge/v1`: called by the SIP edge (Kamailio and its agent), authenticated by the edge's
shared secret in `X-Edge-Secret`.

- `GET /credentials`: the HA1 of every credential of the edge and the edge's call token (the
  agent loads them into Kamailio); `ETag` / `If-None-Match` make an unchanged set a 304.
- `POST /registrations`: one registration change (register, re-register, unregister, expiry).
- `POST /registrations/sync`: the edge's whole registration table (from `ul.dump`), which
  heals any report that was lost.
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated

from chalice.app import Blueprint, Request, Response
from pydantic import Field

from chalicelib import clock
from chalicelib.api.http import ApiError, authenticated, json_response, parse_body
from chalicelib.api.schemas import Strict
from chalicelib.edge import phones
from chalicelib.edge.devices import edge_stale_after
from chalicelib.observability import logger
from chalicelib.requests import current_request
from chalicelib.sip import EXTENSION
from chalicelib.store import sip_edges
from chalicelib.store.sip_edges import EdgePrincipal, Registration

bp = Blueprint(__name__)

# An edge's clock may drift, and a report may arrive late; one stamped further in the past or
# the future than these is refused (a far-future stamp would make every later report stale).
MAX_REPORT_AGE_SECONDS = 86400
MAX_CLOCK_AHEAD_SECONDS = 300
MAX_SNAPSHOT = 1000

Extension = Annotated[str, Field(pattern=EXTENSION.pattern)]
UserAgent = Annotated[str, Field(max_length=256)] | None
Source = Annotated[str, Field(max_length=80)] | None
Epoch = Annotated[float, Field(gt=0)]


class RegistrationReport(Strict):
    extension: Extension
    registered: bool
    contact_count: Annotated[int, Field(ge=0, le=100)]
    user_agent: UserAgent = None
    source: Source = None
    # When the registration runs out (epoch seconds; 0 or absent: not known / not registered).
    expires: Annotated[float, Field(ge=0)] | None = None
    at: Epoch | None = None  # when the edge saw the change (epoch seconds)


class SnapshotEntry(Strict):
    extension: Extension
    contact_count: Annotated[int, Field(ge=1, le=100)]
    user_agent: UserAgent = None
    source: Source = None
    expires: Epoch | None = None


class RegistrationSnapshot(Strict):
    at: Epoch
    # The edge's PRESENCE_INTERVAL: three missed snapshots and its phones count as offline.
    interval: Annotated[int, Field(ge=1, le=3600)] | None = None
    registrations: Annotated[list[SnapshotEntry], Field(max_length=MAX_SNAPSHOT)]


def authenticate_edge(request: Request) -> EdgePrincipal:
    principal = phones.authenticate_edge(request.headers.get("x-edge-secret", ""))
    if principal is None:
        raise ApiError(401, "unauthorized", "the edge secret is not valid")
    logger.append_keys(account_id=principal.account_id, edge_id=principal.edge_id)
    return principal


edge_view = authenticated(authenticate_edge)


def _moment(at: float | None) -> float:
    now = clock.timestamp()
    if at is None:
        return now
    if at < now - MAX_REPORT_AGE_SECONDS or at > now + MAX_CLOCK_AHEAD_SECONDS:
        raise ApiError(
            400, "validation_error", "request has invalid fields", {"at": "too far from now"}
        )
    return at


@bp.route("/credentials", methods=["GET"])
@edge_view
def credentials(principal: EdgePrincipal) -> Response:
    pairs = sip_edges.credentials_of(principal)
    body = {
        "domain": principal.domain,
        "call_token": principal.call_token,
        "credentials": [{"extension": ext, "ha1": ha1} for ext, ha1 in pairs],
    }
    text = json.dumps(body, sort_keys=True)
    etag = '"' + hashlib.sha256(text.encode()).hexdigest()[:32] + '"'
    headers: dict[str, str | list[str]] = {"ETag": etag, "Cache-Control": "no-store"}
    if current_request().headers.get("if-none-match", "") == etag:
        return Response(body="", status_code=304, headers=headers)
    return Response(
        body=text, status_code=200, headers={"Content-Type": "application/json", **headers}
    )


@bp.route("/registrations", methods=["POST"])
@edge_view
def report_registration(principal: EdgePrincipal) -> Response:
    body = parse_body(current_request(), RegistrationReport)
    at = _moment(body.at)
    registration = Registration(
        extension=body.extension,
        registered=body.registered and body.contact_count > 0,
        contact_count=body.contact_count,
        registered_until=body.expires or None,
        user_agent=body.user_agent,
        source=body.source,
    )
    result = sip_edges.apply_report(principal, registration, at)
    if result == "unknown":
        raise ApiError(404, "not_found", "no SIP credential for this extension")
    return json_response({"result": result})


@bp.route("/registrations/sync", methods=["POST"])
@edge_view
def sync_registrations(principal: EdgePrincipal) -> Response:
    body = parse_body(current_request(), RegistrationSnapshot)
    at = _moment(body.at)
    registrations = [
        Registration(e.extension, True, e.contact_count, e.expires, e.user_agent, e.source)
        for e in body.registrations
    ]
    stale_after = edge_stale_after(at, body.interval)
    result = sip_edges.apply_snapshot(principal, registrations, at, stale_after)
    return json_response(
        {
            "devices": result.devices,
            "online": result.online,
            "changed": result.changed,
            "unknown": list(result.unknown),
        }
    )
