"""`/dni/v1` (visitor sessions, called from publishers' pages) and `/dni.js`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

from chalice.app import Blueprint, CORSConfig, Request, Response
from pydantic import AfterValidator, Field

from chalicelib.api.http import ApiError, json_response, parse_body, public_view
from chalicelib.api.schemas import Strict
from chalicelib.campaigns import load_campaign
from chalicelib.clock import utcnow
from chalicelib.config import get_settings
from chalicelib.dni import sessions
from chalicelib.requests import current_request
from chalicelib.store import catalog
from chalicelib.store import dni as store
from chalicelib.store.api_keys import authenticate_key
from chalicelib.store.cache import TTLCache
from chalicelib.store.models import PoolItem

bp = Blueprint(__name__)
script_bp = Blueprint(f"{__name__}.script")

# Pages on any site call these; nothing rides on cookies, so any origin may.
CORS = CORSConfig(allow_origin="*", allow_headers=["X-Pool-Key"], max_age=600)
MAX_SESSION_BODY = 8 * 1024
SCRIPT = Path(__file__).parent.parent / "dni" / "static" / "dni.js"
_ID = r"^[A-Za-z0-9_-]{4,64}$"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _printable(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    return value


def _web_address(value: str) -> str:
    if value and not value.lower().startswith(("http://", "https://")):
        raise ValueError("must be an http(s) URL")
    return _printable(value)


Utm = Annotated[str, Field(max_length=200), AfterValidator(_printable)] | None
ClickId = Annotated[str, Field(max_length=200, pattern=r"^[A-Za-z0-9_.~-]+$")] | None
Url = Annotated[str, Field(max_length=2000), AfterValidator(_web_address)]
TagName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


class SessionRequest(Strict):
    """What a page knows about its visitor (all optional)."""

    pool_id: Annotated[str, Field(pattern=_ID)] | None = None  # with a publisher API key
    page_url: Url = ""
    referrer: Url = ""
    utm_source: Utm = None
    utm_medium: Utm = None
    utm_campaign: Utm = None
    utm_term: Utm = None
    utm_content: Utm = None
    gclid: ClickId = None
    fbclid: ClickId = None
    msclkid: ClickId = None
    tags: dict[TagName, Annotated[str, Field(max_length=200), AfterValidator(_printable)]] = Field(
        default_factory=dict, max_length=20
    )
    visitor_id: Annotated[str, Field(pattern=_ID)] | None = None
    session_id: Annotated[str, Field(pattern=_ID)] | None = None
    area_code: Annotated[str, Field(pattern=r"^[2-9][0-9]{2}$")] | None = None

    def visit(self) -> sessions.Visit:
        fields = self.model_dump()
        return sessions.Visit(
            page_url=self.page_url,
            referrer=self.referrer,
            utm={name: fields[name] for name in sessions.UTM_FIELDS if fields[name]},
            click_ids={name: fields[name] for name in sessions.CLICK_IDS if fields[name]},
            tags=dict(self.tags),
            visitor_id=self.visitor_id,
            session_id=self.session_id,
            area_code=self.area_code,
        )


_pools: TTLCache[str, PoolItem | None] = TTLCache(ttl_seconds=get_settings().config_cache_seconds)


def _pool_by_key(public_key: str) -> PoolItem:
    if not re.fullmatch(_ID, public_key):
        raise ApiError(401, "unauthorized", "unknown pool key")
    hit, pool = _pools.get(public_key)
    if not hit:
        pool = store.pool_for_key(public_key)
        _pools.put(public_key, pool)
    if pool is None:
        raise ApiError(401, "unauthorized", "unknown pool key")
    return pool


def _pool_for(request: Request, pool_id: str | None) -> PoolItem:
    """The pool a page's `X-Pool-Key` names, or the one a publisher's API key may use."""
    public_key = request.headers.get("x-pool-key")
    if public_key:
        return _pool_by_key(public_key)
    api_key = request.headers.get("x-api-key")
    principal = authenticate_key(api_key) if api_key else None
    if principal is None:
        raise ApiError(401, "unauthorized", "an X-Pool-Key (or a publisher X-Api-Key) is needed")
    if not pool_id:
        raise ApiError(
            400, "validation_error", "request has invalid fields", {"pool_id": "required"}
        )
    pool = catalog.get(PoolItem, principal.account_id, pool_id)
    if pool is None or pool.publisher_id not in (None, principal.publisher_id):
        raise ApiError(404, "not_found", "pool not found")
    return pool


def _body(request: Request) -> SessionRequest:
    if len(request.raw_body or b"") > MAX_SESSION_BODY:
        raise ApiError(413, "body_too_large", f"at most {MAX_SESSION_BODY} bytes")
    return parse_body(request, SessionRequest)


@bp.route("/sessions", methods=["POST"], cors=CORS)
@public_view
def create_session() -> Response:
    """The visitor's number: a held pool number, a source number, or the overflow number."""
    request = current_request()
    body = _body(request)
    pool = _pool_for(request, body.pool_id)
    campaign = load_campaign(pool.account_id, pool.campaign_id)
    if campaign is None or not campaign.active:
        # The page keeps its own number; calls to it still reach the campaign's fallback.
        raise ApiError(409, "campaign_paused", "the pool's campaign is not taking calls")
    now = utcnow()
    assignment = sessions.start_session(pool, body.visit(), now)
    return json_response(assignment.view(now))


@bp.route("/sessions/{session_id}/heartbeat", methods=["POST"], cors=CORS)
@public_view
def heartbeat(session_id: str) -> Response:
    """Keep the number while the page is open: 404 unknown session, 410 expired."""
    request = current_request()
    body = _body(request)
    pool = _pool_for(request, body.pool_id)
    if not re.fullmatch(_ID, session_id):
        raise ApiError(404, "not_found", "session not found")
    now = utcnow()
    try:
        assignment = sessions.heartbeat(pool, session_id, now)
    except sessions.SessionUnknown as err:
        raise ApiError(404, "not_found", "session not found") from err
    except sessions.SessionExpired as err:
        raise ApiError(410, "session_expired", "the session's number was released") from err
    view: dict[str, Any] = assignment.view(now)
    return json_response({k: view[k] for k in ("session_id", "number", "expires_at")})


@script_bp.route("/dni.js", methods=["GET"])
def script() -> Response:
    """The snippet publishers add to their pages."""
    return Response(
        body=SCRIPT.read_text(encoding="utf-8"),
        status_code=200,
        headers={
            "Content-Type": "application/javascript; charset=utf-8",
            "Cache-Control": "public, max-age=300",
            "Access-Control-Allow-Origin": "*",
            "X-Content-Type-Options": "nosniff",
        },
    )
