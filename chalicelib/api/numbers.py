"""Tracking numbers: add, search and buy through the CPaaS, and point them at campaigns."""

from __future__ import annotations

from urllib.parse import unquote

from chalice.app import Blueprint, Response

from chalicelib.api import serializers
from chalicelib.api.http import ApiError, json_response, not_found, parse_body, user_view
from chalicelib.api.schemas import (
    CreateTrackingNumberRequest,
    NumberAttributionRequest,
)
from chalicelib.auth.roles import Principal, Role
from chalicelib.phone import parse_e164
from chalicelib.requests import current_request
from chalicelib.store import catalog, numbers, tenants
from chalicelib.store.models import CampaignItem

bp = Blueprint(__name__)


def attribution_of(account_id: str, body: NumberAttributionRequest) -> numbers.Attribution:
    """Check the campaign and publisher belong to the account; 400 naming the field if not."""
    unknown = {}
    if body.campaign_id and catalog.get(CampaignItem, account_id, body.campaign_id) is None:
        unknown["campaign_id"] = "unknown campaign"
    if body.publisher_id and tenants.get_publisher(account_id, body.publisher_id) is None:
        unknown["publisher_id"] = "unknown publisher"
    if unknown:
        raise ApiError(400, "validation_error", "request has invalid fields", unknown)
    return numbers.Attribution(body.campaign_id, body.publisher_id, body.source)


@bp.route("/numbers", methods=["GET"])
@user_view(Role.AGENT)
def list_numbers(principal: Principal) -> Response:
    items = numbers.list_tracking_numbers(principal.account_id)
    return json_response({"numbers": [serializers.tracking_number(n) for n in items]})


@bp.route("/numbers", methods=["POST"])
@user_view(Role.ADMIN)
def add_number(principal: Principal) -> Response:
    body = parse_body(current_request(), CreateTrackingNumberRequest)
    attribution = attribution_of(principal.account_id, body)
    try:
        item = numbers.add_tracking_number(
            principal.account_id, body.number, body.friendly_name, body.greeting, attribution
        )
    except numbers.NumberTaken as err:
        raise ApiError(
            409, "conflict", "this number is already in use", {"number": "taken"}
        ) from err
    return json_response({"number": serializers.tracking_number(item)}, 201)


@bp.route("/numbers/{number}", methods=["PUT"])
@user_view(Role.ADMIN)
def assign_number(principal: Principal, number: str) -> Response:
    body = parse_body(current_request(), NumberAttributionRequest)
    text = unquote(number)
    try:
        e164 = parse_e164(text if text.startswith("+") else "+" + text)
    except ValueError as err:
        raise not_found("number") from err
    item = numbers.assign(principal.account_id, e164, attribution_of(principal.account_id, body))
    if item is None:
        raise not_found("number")
    return json_response({"number": serializers.tracking_number(item)})
