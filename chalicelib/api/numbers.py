"""Tracking numbers: add, search and buy through the CPaaS, and point them at campaigns."""

from __future__ import annotations

import re
from urllib.parse import unquote

from chalice.app import Blueprint, Response

from chalicelib.api import serializers
from chalicelib.api.http import ApiError, json_response, not_found, parse_body, user_view
from chalicelib.api.schemas import (
    CreateTrackingNumberRequest,
    NumberAttributionRequest,
    PurchaseNumberRequest,
)
from chalicelib.auth.roles import Principal, Role
from chalicelib.config import absolute_url
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


@bp.route("/numbers/available", methods=["GET"])
@user_view(Role.ADMIN)
def search_numbers(principal: Principal) -> Response:
    """Numbers the CPaaS can sell: `area_code=415`, `toll_free=true`, `contains=`, `country=`."""
    query = dict(current_request().query_params or {})
    area_code = query.get("area_code")
    if area_code is not None and not re.fullmatch(r"[2-9][0-9]{2}", area_code):
        raise ApiError(400, "validation_error", "bad query", {"area_code": "3 digits, e.g. 415"})
    country = query.get("country", "US")
    if not re.fullmatch(r"[A-Z]{2}", country):
        raise ApiError(400, "validation_error", "bad query", {"country": "ISO code, e.g. US"})
    contains = query.get("contains")
    if contains is not None and not re.fullmatch(r"[0-9A-Za-z*]{1,10}", contains):
        raise ApiError(400, "validation_error", "bad query", {"contains": "digits, letters or *"})
    # The CPaaS backend loads with the first search or purchase, not with every cold start.
    from chalicelib.telephony import TelephonyError, get_telephony

    try:
        found = get_telephony().search_numbers(
            country=country,
            area_code=area_code,
            toll_free=query.get("toll_free") == "true",
            contains=contains,
            limit=20,
        )
    except TelephonyError as err:
        raise ApiError(502, "cpaas_error", f"the CPaaS refused the search: {err}") from err
    return json_response(
        {
            "numbers": [
                {
                    "number": n.e164,
                    "friendly_name": n.friendly_name,
                    "locality": n.locality,
                    "region": n.region,
                    "capabilities": sorted(n.capabilities),
                }
                for n in found
            ]
        }
    )


@bp.route("/numbers/purchase", methods=["POST"])
@user_view(Role.ADMIN)
def purchase_number(principal: Principal) -> Response:
    """Buy a number from the CPaaS, point its webhooks at us, and add it to the account."""
    body = parse_body(current_request(), PurchaseNumberRequest)
    attribution = attribution_of(principal.account_id, body)
    if numbers.route_for_number(body.number) is not None:
        raise ApiError(409, "conflict", "this number is already in use", {"number": "taken"})
    from chalicelib.telephony import NumberUnavailable, TelephonyError, get_telephony

    try:
        owned = get_telephony().purchase_number(
            body.number,
            voice_url=absolute_url("/voice/inbound"),
            status_callback=absolute_url("/voice/status"),
            fallback_url=absolute_url("/voice/fallback"),
            friendly_name=body.friendly_name,
        )
    except NumberUnavailable as err:
        raise ApiError(
            409, "conflict", "the number is no longer available", {"number": "unavailable"}
        ) from err
    except TelephonyError as err:
        raise ApiError(502, "cpaas_error", f"the CPaaS refused the purchase: {err}") from err
    item = numbers.add_tracking_number(
        principal.account_id,
        owned.e164,
        body.friendly_name,
        None,
        attribution,
        cpaas_sid=owned.sid,
    )
    return json_response({"number": serializers.tracking_number(item)}, 201)
