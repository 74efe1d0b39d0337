"""JSON API plumbing: error bodies, body parsing into typed models, and authenticated views."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any, TypeVar

from chalice.app import Request, Response
from pydantic import BaseModel, ValidationError

from chalicelib.auth import tokens
from chalicelib.auth.roles import Principal, Role
from chalicelib.config import get_settings
from chalicelib.observability import logger
from chalicelib.requests import current_request
from chalicelib.store.api_keys import KeyPrincipal, authenticate_key

M = TypeVar("M", bound=BaseModel)


class ApiError(Exception):
    """An error the client can act on: status, a machine code, a message, and bad fields."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        fields: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields or {}
        self.headers = headers or {}


def not_found(what: str) -> ApiError:
    # Another tenant's item answers exactly like a missing one.
    return ApiError(404, "not_found", f"{what} not found")


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        body=json.dumps(body, default=str),
        status_code=status,
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def error_response(err: ApiError) -> Response:
    body: dict[str, Any] = {"error": err.code, "message": err.message}
    if err.fields:
        body["fields"] = err.fields
    headers = {"WWW-Authenticate": "Bearer"} if err.status == 401 else {}
    return json_response(body, err.status, {**headers, **err.headers})


def parse_body(request: Request, model: type[M]) -> M:
    """The JSON body as `model`, or a 400 naming every bad field."""
    raw = request.raw_body or b""
    if len(raw) > get_settings().max_api_body_bytes:
        raise ApiError(413, "body_too_large", "request body is too large")
    try:
        data = json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError) as err:
        raise ApiError(400, "invalid_json", "request body is not valid JSON") from err
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_body", "request body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise ApiError(
            400, "validation_error", "request has invalid fields", field_errors(err)
        ) from err


def field_errors(err: ValidationError) -> dict[str, str]:
    fields: dict[str, str] = {}
    for problem in err.errors():
        name = ".".join(str(part) for part in problem["loc"]) or "body"
        fields.setdefault(name, problem["msg"])
    return fields


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "unauthorized", "a bearer token is required")
    return str(token).strip()


def _answer(call: Callable[[], Response]) -> Response:
    try:
        return call()
    except ApiError as err:
        if err.status >= 500:
            logger.error("api error", extra={"code": err.code})
        return error_response(err)


def authenticated(
    authenticate: Callable[[Request], Any],
) -> Callable[[Callable[..., Response]], Callable[..., Response]]:
    """A view that runs `authenticate` first and passes what it returns as the first argument."""

    def decorate(fn: Callable[..., Response]) -> Callable[..., Response]:
        @functools.wraps(fn)
        def view(**uri: Any) -> Response:
            return _answer(lambda: fn(authenticate(current_request()), **uri))

        return view

    return decorate


def user_view(minimum: Role) -> Callable[[Callable[..., Response]], Callable[..., Response]]:
    """Require a verified ID token whose role is at least `minimum`; pass the principal first."""

    def authenticate(request: Request) -> Principal:
        principal = authenticate_user(request)
        if not principal.may(minimum):
            raise ApiError(403, "forbidden", f"this needs the {minimum.wire} role")
        logger.append_keys(account_id=principal.account_id, user_id=principal.user_id)
        return principal

    return authenticated(authenticate)


def authenticate_user(request: Request) -> Principal:
    token = _bearer(request)
    try:
        return tokens.get_verifier().verify(token)
    except tokens.InvalidToken as err:
        raise ApiError(401, "unauthorized", "the token is not valid") from err
    except tokens.AuthUnavailable as err:
        logger.exception("JWKS unavailable")
        raise ApiError(503, "auth_unavailable", "sign-in keys are unavailable, retry") from err


def authenticate_publisher(request: Request) -> KeyPrincipal:
    """A live publisher API key (`Authorization: Bearer <key>` or `X-Api-Key`)."""
    principal = authenticate_key(request.headers.get("x-api-key") or _bearer(request))
    if principal is None:
        raise ApiError(401, "unauthorized", "the API key is not valid")
    logger.append_keys(account_id=principal.account_id, publisher_id=principal.publisher_id)
    return principal


def publisher_view(fn: Callable[..., Response]) -> Callable[..., Response]:
    """Require a live publisher API key; pass its principal first."""
    return authenticated(authenticate_publisher)(fn)


def public_view(fn: Callable[..., Response]) -> Callable[..., Response]:
    """No credentials needed (login, health, the OpenAPI document); errors still shaped."""

    @functools.wraps(fn)
    def view(**uri: Any) -> Response:
        return _answer(lambda: fn(**uri))

    return view
