"""Accounts (super admin) and the users of an account (admin)."""

from __future__ import annotations

from chalice.app import Blueprint, Response

from chalicelib.api import serializers
from chalicelib.api.http import ApiError, json_response, parse_body, user_view
from chalicelib.api.schemas import CreateAccountRequest, CreateUserRequest
from chalicelib.auth import cognito
from chalicelib.auth.roles import Principal, Role
from chalicelib.requests import current_request
from chalicelib.store import keys, tenants

bp = Blueprint(__name__)


@bp.route("/accounts", methods=["GET"])
@user_view(Role.SUPER_ADMIN)
def list_accounts(principal: Principal) -> Response:
    return json_response({"accounts": [serializers.account(a) for a in tenants.list_accounts()]})


@bp.route("/accounts", methods=["POST"])
@user_view(Role.SUPER_ADMIN)
def create_account(principal: Principal) -> Response:
    body = parse_body(current_request(), CreateAccountRequest)
    account_id = keys.new_id("acc")
    # The login is created first: if the email is taken, nothing has been written.
    user_id = _create_login(body.admin_email, body.admin_password, account_id, Role.ADMIN, "admin_")
    try:
        account = tenants.create_account(body.name, account_id)
        admin = tenants.put_user(account_id, user_id, body.admin_email, Role.ADMIN.wire)
    except Exception:
        cognito.delete_user(body.admin_email)
        raise
    return json_response(
        {"account": serializers.account(account), "admin": serializers.user(admin)}, 201
    )


@bp.route("/users", methods=["GET"])
@user_view(Role.ADMIN)
def list_users(principal: Principal) -> Response:
    users = tenants.list_users(principal.account_id)
    return json_response({"users": [serializers.user(u) for u in users]})


@bp.route("/users", methods=["POST"])
@user_view(Role.ADMIN)
def create_user(principal: Principal) -> Response:
    body = parse_body(current_request(), CreateUserRequest)
    role = Role.parse(body.role)
    if role > principal.role:
        raise ApiError(403, "forbidden", "cannot grant a role above your own", {"role": "too high"})
    user_id = _create_login(body.email, body.password, principal.account_id, role)
    try:
        user = tenants.put_user(principal.account_id, user_id, body.email, role.wire)
    except Exception:
        cognito.delete_user(body.email)
        raise
    return json_response({"user": serializers.user(user)}, 201)


def _create_login(email: str, password: str, account_id: str, role: Role, prefix: str = "") -> str:
    """A Cognito login, with the pool's refusals as 409/400 naming the request's fields."""
    try:
        return cognito.create_user(email, password, account_id, role)
    except cognito.UserExists as err:
        raise ApiError(
            409, "conflict", "a user with this email exists", {f"{prefix}email": "taken"}
        ) from err
    except cognito.UserRejected as err:
        raise ApiError(
            400, "validation_error", "request has invalid fields", {prefix + err.field: err.message}
        ) from err
