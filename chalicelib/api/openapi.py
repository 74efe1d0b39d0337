"""The OpenAPI 3.1 document of every route: the contract other parties code against."""

from __future__ import annotations

from typing import Any

from chalicelib.api import catalog_schemas, schemas
from chalicelib.api.dni import SessionRequest
from chalicelib.api.edge import RegistrationReport, RegistrationSnapshot

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json_body(name: str) -> dict[str, Any]:
    return {"required": True, "content": {JSON: {"schema": _ref(name)}}}


def _ok(description: str, status: str = "200") -> dict[str, Any]:
    return {
        status: {"description": description, "content": {JSON: {"schema": {"type": "object"}}}},
        "400": {"$ref": "#/components/responses/BadRequest"},
        "401": {"$ref": "#/components/responses/Unauthorized"},
        "403": {"$ref": "#/components/responses/Forbidden"},
        "404": {"$ref": "#/components/responses/NotFound"},
    }


def _op(
    summary: str,
    tag: str,
    security: str | None = "cognito",
    body: str | None = None,
    status: str = "200",
    params: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "tags": [tag], "responses": _ok(summary, status)}
    op["security"] = [{security: []}] if security else []
    if body:
        op["requestBody"] = _json_body(body)
    if params:
        op["parameters"] = params
    return op


def _path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def _query(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": {"type": "string"},
    }


def _voice(summary: str, *params: str) -> dict[str, Any]:
    return {
        "summary": summary,
        "parameters": [_path(name) for name in params],
        "tags": ["voice"],
        "security": [{"twilioSignature": []}],
        "requestBody": {
            "required": True,
            "content": {
                FORM: {"schema": {"type": "object", "additionalProperties": {"type": "string"}}}
            },
        },
        "responses": {
            "200": {
                "description": "TwiML (fallback TwiML on any error)",
                "content": {"text/xml": {"schema": {"type": "string"}}},
            },
            "403": {"description": "missing or wrong X-Twilio-Signature; nothing was written"},
            "415": {"description": "body is not form-encoded"},
        },
    }


PUB = [_path("publisher_id")]
EDGE = [_path("edge_id")]
CALL_FILTERS = [
    _query("day", "one UTC day, YYYY-MM-DD"),
    _query("from", "first UTC day, YYYY-MM-DD (default today)"),
    _query("to", "last UTC day, YYYY-MM-DD (default today; at most 93 days)"),
    *[
        _query(name, f"only calls with this {name}")
        for name in ("campaign_id", "publisher_id", "buyer_id", "target_id", "status", "source")
    ],
    _query("converted", "true|false"),
    _query("duplicate", "true|false"),
]

BID_FILTERS = [
    *CALL_FILTERS[:3],
    *[
        _query(name, f"only bids with this {name}")
        for name in ("campaign_id", "publisher_id", "buyer_id", "bidder_id", "call_sid")
    ],
    _query("auction_id", "only the bids of this auction"),
    _query("outcome", "won|lost|below_floor|timeout|error|rejected|capped"),
    _query("kind", "call|ping"),
]


def _crud(plural: str, id_name: str, body: str, tag: str) -> dict[str, Any]:
    one = plural.rstrip("s")
    return {
        f"/api/v1/{plural}": {
            "get": _op(f"List {plural}", tag),
            "post": _op(f"Create a {one} (admin)", tag, body=body, status="201"),
        },
        f"/api/v1/{plural}/{{{id_name}}}": {
            "get": _op(f"One {one}", tag, params=[_path(id_name)]),
            "put": _op(f"Replace a {one} (admin)", tag, body=body, params=[_path(id_name)]),
        },
    }


def document() -> dict[str, Any]:
    models = {
        m.__name__: m.model_json_schema(ref_template="#/components/schemas/{model}")
        for m in (
            schemas.LoginRequest,
            schemas.RefreshRequest,
            schemas.CreateUserRequest,
            schemas.CreateAccountRequest,
            schemas.CreatePublisherRequest,
            schemas.CreateApiKeyRequest,
            schemas.CreateTrackingNumberRequest,
            schemas.NumberAttributionRequest,
            schemas.PurchaseNumberRequest,
            schemas.BidRequest,
            catalog_schemas.CampaignBody,
            catalog_schemas.BuyerBody,
            catalog_schemas.TargetBody,
            catalog_schemas.PoolBody,
            SessionRequest,
            schemas.CreateSipEdgeRequest,
            schemas.CreateSipDeviceRequest,
            RegistrationReport,
            RegistrationSnapshot,
        )
    }
    for model in list(models.values()):
        # Nested models come back under $defs; lift them into components.
        for name, nested in model.pop("$defs", {}).items():
            models.setdefault(name, nested)
    error = {
        "type": "object",
        "required": ["error", "message"],
        "properties": {
            "error": {"type": "string"},
            "message": {"type": "string"},
            "fields": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    }
    models["Error"] = error
    responses = {
        name: {"description": desc, "content": {JSON: {"schema": _ref("Error")}}}
        for name, desc in (
            ("BadRequest", "invalid input; `fields` names each bad field"),
            ("Unauthorized", "missing, expired or forged credentials"),
            ("Forbidden", "the role is not allowed to do this"),
            ("NotFound", "no such item in this account"),
        )
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "Pay-per-call platform API", "version": "1.0.0"},
        "components": {
            "schemas": models,
            "responses": responses,
            "securitySchemes": {
                "cognito": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT (Cognito ID token)",
                },
                "publisherKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "publisher API key",
                },
                "twilioSignature": {"type": "apiKey", "in": "header", "name": "X-Twilio-Signature"},
                "poolKey": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-Pool-Key",
                    "description": "a pool's public key (it only opens DNI sessions)",
                },
                "edgeSecret": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-Edge-Secret",
                    "description": "a SIP edge's shared secret (EDGE_SHARED_SECRET)",
                },
            },
        },
        "paths": {
            "/health": {"get": _op("Liveness check", "meta", security=None)},
            "/openapi.json": {"get": _op("This document", "meta", security=None)},
            "/voice/inbound": {"post": _voice("A call arrives on a tracking number")},
            "/voice/status": {"post": _voice("Call status callback (final status and duration)")},
            "/voice/fallback": {"post": _voice("CPaaS fallback URL: polite message and hang-up")},
            "/voice/ivr/{node}/{tries}": {
                "post": _voice("IVR answer (Gather action)", "node", "tries")
            },
            "/voice/dial/{attempt}": {
                "post": _voice("Dial result: bridge ended or fall through", "attempt")
            },
            "/voice/whisper/{attempt}": {"post": _voice("Whisper to an offered target", "attempt")},
            "/voice/whisper/{attempt}/accept": {
                "post": _voice("Target pressed a key to accept", "attempt")
            },
            "/api/v1/auth/login": {
                "post": _op(
                    "Exchange email and password for tokens",
                    "auth",
                    security=None,
                    body="LoginRequest",
                )
            },
            "/api/v1/auth/refresh": {
                "post": _op("Refresh tokens", "auth", security=None, body="RefreshRequest")
            },
            "/api/v1/me": {"get": _op("The logged-in user", "auth")},
            "/api/v1/accounts": {
                "get": _op("List accounts (super admin)", "accounts"),
                "post": _op(
                    "Create an account and its first admin (super admin)",
                    "accounts",
                    body="CreateAccountRequest",
                    status="201",
                ),
            },
            "/api/v1/users": {
                "get": _op("List the account's users (admin)", "accounts"),
                "post": _op(
                    "Create a user (admin)", "accounts", body="CreateUserRequest", status="201"
                ),
            },
            "/api/v1/publishers": {
                "get": _op("List publishers", "publishers"),
                "post": _op(
                    "Create a publisher (admin)",
                    "publishers",
                    body="CreatePublisherRequest",
                    status="201",
                ),
            },
            "/api/v1/publishers/{publisher_id}/keys": {
                "get": _op(
                    "List a publisher's API keys (never the secret)", "publishers", params=PUB
                ),
                "post": _op(
                    "Issue an API key; the plaintext is in this answer only",
                    "publishers",
                    body="CreateApiKeyRequest",
                    status="201",
                    params=PUB,
                ),
            },
            "/api/v1/publishers/{publisher_id}": {
                "get": _op("One publisher", "publishers", params=PUB),
                "put": _op(
                    "Replace a publisher's name, contact, payouts and pixels (admin)",
                    "publishers",
                    body="CreatePublisherRequest",
                    params=PUB,
                ),
            },
            "/api/v1/publishers/{publisher_id}/keys/{key_id}": {
                "delete": _op("Revoke an API key", "publishers", params=[*PUB, _path("key_id")]),
            },
            "/api/v1/numbers": {
                "get": _op("List tracking numbers", "numbers"),
                "post": _op(
                    "Add a tracking number (admin)",
                    "numbers",
                    body="CreateTrackingNumberRequest",
                    status="201",
                ),
            },
            "/api/v1/calls": {
                "get": _op(
                    "The call log, newest first, filtered and paged",
                    "calls",
                    params=[
                        *CALL_FILTERS,
                        _query("limit", "1..200 (default 50)"),
                        _query("cursor", "from the previous page"),
                    ],
                ),
            },
            "/api/v1/calls/export": {
                "get": _op("The filtered call log as CSV", "calls", params=CALL_FILTERS),
            },
            "/api/v1/bids": {
                "get": _op(
                    "The RTB bid log, newest first, filtered and paged",
                    "bids",
                    params=[
                        *BID_FILTERS,
                        _query("limit", "1..200 (default 50)"),
                        _query("cursor", "from the previous page"),
                    ],
                ),
            },
            "/api/v1/bids/export": {
                "get": _op("The filtered bid log as CSV", "bids", params=BID_FILTERS),
            },
            "/api/v1/reports/summary": {
                "get": _op(
                    "Calls, connected, converted, revenue, payout, profit by group",
                    "reports",
                    params=[
                        *CALL_FILTERS,
                        _query("group_by", "campaign|publisher|buyer|target|source|day|hour"),
                    ],
                ),
            },
            "/api/v1/live": {"get": _op("Calls in progress per campaign and target", "reports")},
            "/api/v1/caps/usage": {
                "get": _op("Cap usage now of every target and buyer", "reports"),
            },
            **_crud("campaigns", "campaign_id", "CampaignBody", "campaigns"),
            **_crud("buyers", "buyer_id", "BuyerBody", "buyers"),
            **_crud("targets", "target_id", "TargetBody", "targets"),
            "/api/v1/pools": {
                "get": _op("List number pools", "numbers"),
                "post": _op(
                    "Create a pool of tracking numbers (admin)",
                    "numbers",
                    body="PoolBody",
                    status="201",
                ),
            },
            "/api/v1/pools/{pool_id}": {
                "get": _op("One number pool", "numbers", params=[_path("pool_id")]),
                "put": _op(
                    "Replace a number pool (admin)",
                    "numbers",
                    body="PoolBody",
                    params=[_path("pool_id")],
                ),
            },
            "/api/v1/pools/{pool_id}/stats": {
                "get": _op(
                    "Pool utilization, overflow, arrivals, holds and the Erlang-B size",
                    "numbers",
                    params=[
                        _path("pool_id"),
                        _query("hours", "observation window, 1..744 (default 24)"),
                        _query("target_overflow", "0.0001..0.5 (default 0.01)"),
                    ],
                ),
            },
            "/api/v1/calls/google-ads-conversions": {
                "get": _op(
                    "Converted calls with a gclid, as a Google Ads offline conversion CSV",
                    "calls",
                    params=[
                        *CALL_FILTERS,
                        _query("conversion_name", "default: Phone call"),
                        _query("currency", "ISO 4217, default USD"),
                    ],
                ),
            },
            "/dni/v1/sessions": {
                "post": _op(
                    "A web visitor's tracking number (X-Pool-Key, or a publisher key and pool_id)",
                    "dni",
                    security="poolKey",
                    body="SessionRequest",
                ),
            },
            "/dni/v1/sessions/{session_id}/heartbeat": {
                "post": _op(
                    "Keep the visitor's number while the page is open (410: released)",
                    "dni",
                    security="poolKey",
                    body="SessionRequest",
                    params=[_path("session_id")],
                ),
            },
            "/dni.js": {"get": _op("The DNI snippet for publishers' pages", "dni", security=None)},
            "/api/v1/numbers/available": {
                "get": _op(
                    "Search numbers the CPaaS can sell (admin)",
                    "numbers",
                    params=[
                        _query("area_code", "3 digits"),
                        _query("toll_free", "true|false"),
                        _query("contains", "digits, letters or *"),
                        _query("country", "ISO code"),
                    ],
                ),
            },
            "/api/v1/numbers/purchase": {
                "post": _op(
                    "Buy a number and point its webhooks here (admin)",
                    "numbers",
                    body="PurchaseNumberRequest",
                    status="201",
                ),
            },
            "/api/v1/numbers/{number}": {
                "put": _op(
                    "Point a number at a campaign, publisher and source (admin)",
                    "numbers",
                    body="NumberAttributionRequest",
                    params=[_path("number")],
                ),
            },
            "/api/v1/calls/{call_sid}": {
                "get": _op("One call record", "calls", params=[_path("call_sid")]),
            },
            "/rtb/v1/bid/{campaign_key}": {
                "post": _op(
                    "Ping before post: the campaign's best bid for a caller, held until it "
                    "expires (429 past the per-minute ping limit)",
                    "publisher api",
                    security="publisherKey",
                    body="BidRequest",
                    params=[_path("campaign_key")],
                )
            },
            "/api/v1/sip-edges": {
                "get": _op("SIP edges with their phone and online counts", "sip"),
                "post": _op(
                    "Add a SIP edge; its shared secret is in this answer only (admin)",
                    "sip",
                    body="CreateSipEdgeRequest",
                    status="201",
                ),
            },
            "/api/v1/sip-edges/{edge_id}": {
                "get": _op("One SIP edge and its phones' status", "sip", params=EDGE),
                "delete": _op(
                    "Remove an edge without phones (409 while it has some) (admin)",
                    "sip",
                    status="204",
                    params=EDGE,
                ),
            },
            "/api/v1/sip-edges/{edge_id}/secret": {
                "post": _op(
                    "Replace the edge's shared secret; the old one stops working (admin)",
                    "sip",
                    params=EDGE,
                ),
            },
            "/api/v1/sip-edges/{edge_id}/devices": {
                "post": _op(
                    "Give an extension SIP credentials; the password is in this answer only "
                    "(admin)",
                    "sip",
                    body="CreateSipDeviceRequest",
                    status="201",
                    params=EDGE,
                ),
            },
            "/api/v1/sip-edges/{edge_id}/devices/{extension}": {
                "delete": _op(
                    "Revoke a phone's credentials; the edge unregisters it (admin)",
                    "sip",
                    status="204",
                    params=[*EDGE, _path("extension")],
                ),
            },
            "/api/v1/sip-edges/{edge_id}/devices/{extension}/password": {
                "post": _op(
                    "Replace a phone's password; the new one is in this answer only (admin)",
                    "sip",
                    params=[*EDGE, _path("extension")],
                ),
            },
            "/api/v1/sip-devices": {
                "get": _op(
                    "Every phone: online or offline, user agent, source, last seen",
                    "sip",
                    params=[_query("status", "online|offline"), _query("user_id", "operator")],
                ),
            },
            "/edge/v1/credentials": {
                "get": _op(
                    "The edge's credentials as HA1 and its call token (ETag: 304 when unchanged)",
                    "sip edge",
                    security="edgeSecret",
                ),
            },
            "/edge/v1/registrations": {
                "post": _op(
                    "A phone registered, re-registered, unregistered or expired",
                    "sip edge",
                    security="edgeSecret",
                    body="RegistrationReport",
                ),
            },
            "/edge/v1/registrations/sync": {
                "post": _op(
                    "The edge's whole registration table (ul.dump); heals lost reports",
                    "sip edge",
                    security="edgeSecret",
                    body="RegistrationSnapshot",
                ),
            },
            "/rtb/v1/me": {
                "get": _op(
                    "Who a publisher API key speaks for", "publisher api", security="publisherKey"
                )
            },
        },
    }
