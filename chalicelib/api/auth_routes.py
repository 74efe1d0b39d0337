"""Login, token refresh and the current user."""

from __future__ import annotations

from chalice.app import Blueprint, Response

from chalicelib.api.http import ApiError, json_response, parse_body, public_view, user_view
from chalicelib.api.schemas import LoginRequest, RefreshRequest
from chalicelib.auth import cognito
from chalicelib.auth.roles import Principal, Role
from chalicelib.requests import current_request

bp = Blueprint(__name__)


def _tokens_body(tokens: cognito.Tokens) -> dict[str, object]:
    return {
        "id_token": tokens.id_token,
        "access_token": tokens.access_token,
        "refresh_token": tokens.refresh_token,
        "expires_in": tokens.expires_in,
        "token_type": "Bearer",
    }


@bp.route("/auth/login", methods=["POST"])
@public_view
def login() -> Response:
    body = parse_body(current_request(), LoginRequest)
    try:
        tokens = cognito.login(body.email.lower(), body.password)
    except cognito.LoginFailed as err:
        raise ApiError(401, "login_failed", "email or password is not correct") from err
    return json_response(_tokens_body(tokens))


@bp.route("/auth/refresh", methods=["POST"])
@public_view
def refresh() -> Response:
    body = parse_body(current_request(), RefreshRequest)
    try:
        tokens = cognito.refresh(body.refresh_token)
    except cognito.LoginFailed as err:
        raise ApiError(401, "refresh_failed", "the refresh token is not valid") from err
    return json_response(_tokens_body(tokens))


@bp.route("/me", methods=["GET"])
@user_view(Role.AGENT)
def me(principal: Principal) -> Response:
    return json_response(
        {
            "user_id": principal.user_id,
            "account_id": principal.account_id,
            "role": principal.role.wire,
            "email": principal.email,
        }
    )
