"""Tracking numbers of an account (campaign and pool binding arrive with inbound routing)."""

from __future__ import annotations

from chalice.app import Blueprint, Response

from chalicelib.api import serializers
from chalicelib.api.http import ApiError, json_response, parse_body, user_view
from chalicelib.api.schemas import CreateTrackingNumberRequest
from chalicelib.auth.roles import Principal, Role
from chalicelib.store import numbers

bp = Blueprint(__name__)


@bp.route("/numbers", methods=["GET"])
@user_view(bp, Role.AGENT)
def list_numbers(principal: Principal) -> Response:
    items = numbers.list_tracking_numbers(principal.account_id)
    return json_response({"numbers": [serializers.tracking_number(n) for n in items]})


@bp.route("/numbers", methods=["POST"])
@user_view(bp, Role.ADMIN)
def add_number(principal: Principal) -> Response:
    body = parse_body(bp.current_request, CreateTrackingNumberRequest)
    try:
        item = numbers.add_tracking_number(
            principal.account_id, body.number, body.friendly_name, body.greeting
        )
    except numbers.NumberTaken as err:
        raise ApiError(
            409, "conflict", "this number is already in use", {"number": "taken"}
        ) from err
    return json_response({"number": serializers.tracking_number(item)}, 201)
