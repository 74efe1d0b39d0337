"""Publishers and their API keys (a key's plaintext is returned once, at creation)."""

from __future__ import annotations

from chalice.app import Blueprint, Response

from chalicelib.api import serializers
from chalicelib.api.catalog import keep_pixel_secrets
from chalicelib.api.http import json_response, not_found, parse_body, user_view
from chalicelib.api.schemas import CreateApiKeyRequest, CreatePublisherRequest
from chalicelib.auth.roles import Principal, Role
from chalicelib.requests import current_request
from chalicelib.store import api_keys, tenants

bp = Blueprint(__name__)


@bp.route("/publishers", methods=["GET"])
@user_view(Role.AGENT)
def list_publishers(principal: Principal) -> Response:
    items = tenants.list_publishers(principal.account_id)
    return json_response({"publishers": [serializers.publisher(p) for p in items]})


@bp.route("/publishers", methods=["POST"])
@user_view(Role.ADMIN)
def create_publisher(principal: Principal) -> Response:
    body = parse_body(current_request(), CreatePublisherRequest)
    settings = {"pixels": [pixel.model_dump() for pixel in body.pixels]}
    keep_pixel_secrets(settings, None)  # "****" names no secret for a new publisher
    item = tenants.create_publisher(
        principal.account_id,
        body.name,
        body.contact_email,
        body.payout_overrides,
        settings["pixels"],
    )
    return json_response({"publisher": serializers.publisher(item)}, 201)


@bp.route("/publishers/{publisher_id}", methods=["GET"])
@user_view(Role.AGENT)
def get_publisher(principal: Principal, publisher_id: str) -> Response:
    item = tenants.get_publisher(principal.account_id, publisher_id)
    if item is None:
        raise not_found("publisher")
    return json_response({"publisher": serializers.publisher(item)})


@bp.route("/publishers/{publisher_id}", methods=["PUT"])
@user_view(Role.ADMIN)
def replace_publisher(principal: Principal, publisher_id: str) -> Response:
    """Name, contact, payout overrides and pixels; a pixel sent back with the masked secret
    keeps the secret stored for its URL."""
    body = parse_body(current_request(), CreatePublisherRequest)
    item = tenants.get_publisher(principal.account_id, publisher_id)
    if item is None:
        raise not_found("publisher")
    settings = {"pixels": [pixel.model_dump() for pixel in body.pixels]}
    keep_pixel_secrets(settings, {"pixels": list(item.pixels or [])})
    item = tenants.update_publisher(
        item, body.name, body.contact_email, body.payout_overrides, settings["pixels"]
    )
    return json_response({"publisher": serializers.publisher(item)})


@bp.route("/publishers/{publisher_id}/keys", methods=["GET"])
@user_view(Role.ADMIN)
def list_keys(principal: Principal, publisher_id: str) -> Response:
    if tenants.get_publisher(principal.account_id, publisher_id) is None:
        raise not_found("publisher")
    items = api_keys.list_keys(principal.account_id, publisher_id)
    return json_response({"keys": [serializers.api_key(k) for k in items]})


@bp.route("/publishers/{publisher_id}/keys", methods=["POST"])
@user_view(Role.ADMIN)
def create_key(principal: Principal, publisher_id: str) -> Response:
    body = parse_body(current_request(), CreateApiKeyRequest)
    if tenants.get_publisher(principal.account_id, publisher_id) is None:
        raise not_found("publisher")
    issued = api_keys.issue_key(principal.account_id, publisher_id, body.label)
    view = serializers.api_key(issued.item)
    # The only time the plaintext leaves the platform.
    view["key"] = issued.plaintext
    return json_response({"key": view}, 201, headers={"Cache-Control": "no-store"})


@bp.route("/publishers/{publisher_id}/keys/{key_id}", methods=["DELETE"])
@user_view(Role.ADMIN)
def revoke_key(principal: Principal, publisher_id: str, key_id: str) -> Response:
    item = api_keys.revoke_key(principal.account_id, publisher_id, key_id)
    if item is None:
        raise not_found("API key")
    return json_response({"key": serializers.api_key(item)})
