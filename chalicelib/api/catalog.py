"""Campaigns, buyers, targets and pools: the routing configuration of an account (admin)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalice.app import Blueprint, Response

from chalicelib.api import serializers
from chalicelib.api.http import ApiError, json_response, not_found, parse_body, user_view
from chalicelib.api.schemas import MASKED_SECRET
from chalicelib.auth.roles import Principal, Role
from chalicelib.requests import current_request
from chalicelib.routing import tag_rule_to_dict
from chalicelib.store import catalog
from chalicelib.store.models import BuyerItem, CampaignItem, TargetItem

# The request models (≈25 ms of pydantic classes) are imported by the handlers that parse
# a body, not with the blueprint: a cold start serving anything else does not build them.
if TYPE_CHECKING:
    from chalicelib.api.catalog_schemas import CampaignBody, TargetBody

bp = Blueprint(__name__)


def _unknown(field: str, what: str) -> ApiError:
    # Another tenant's id is reported exactly like an id that does not exist.
    return ApiError(
        400, "validation_error", "request has invalid fields", {field: f"unknown {what}"}
    )


def _view(item: CampaignItem | BuyerItem | TargetItem) -> dict[str, Any]:
    ids = {
        CampaignItem: "campaign_id",
        BuyerItem: "buyer_id",
        TargetItem: "target_id",
    }
    body: dict[str, Any] = {
        "id": getattr(item, ids[type(item)]),
        **item.settings,
        "name": item.name,
        "created_at": item.created_at.isoformat(),
        "updated_at": item.updated_at.isoformat(),
    }
    body["pixels"] = serializers.masked_pixels(body.get("pixels"))
    if isinstance(item, TargetItem):
        body["buyer_id"] = item.buyer_id
    if isinstance(item, CampaignItem):
        body["status"] = item.status
        body["plan"] = [{k: v for k, v in e.items() if k != "buyer_id"} for e in body["plan"]]
    return body


def keep_pixel_secrets(settings: dict[str, Any], stored_settings: dict[str, Any] | None) -> None:
    """A pixel sent back with the masked secret keeps the secret stored for its URL."""
    stored_secrets = {p["url"]: p["secret"] for p in (stored_settings or {}).get("pixels", [])}
    for index, pixel in enumerate(settings.get("pixels", [])):
        if pixel["secret"] == MASKED_SECRET:
            if pixel["url"] not in stored_secrets:
                raise ApiError(
                    400,
                    "validation_error",
                    "request has invalid fields",
                    {f"pixels.{index}.secret": "give the secret for a new URL"},
                )
            pixel["secret"] = stored_secrets[pixel["url"]]


def _campaign_settings(account_id: str, body: CampaignBody) -> dict[str, Any]:
    """The stored campaign: the plan gets each target's buyer, so routing loads in one batch."""
    from chalicelib.api.catalog_schemas import stored

    settings = stored(body, exclude={"name", "status"})
    for index, entry in enumerate(settings["plan"]):
        target = catalog.get(TargetItem, account_id, entry["target_id"])
        if target is None:
            raise _unknown(f"plan.{index}.target_id", "target")
        entry["buyer_id"] = target.buyer_id
    return settings


# --- campaigns -------------------------------------------------------------------------------


@bp.route("/campaigns", methods=["GET"])
@user_view(Role.AGENT)
def list_campaigns(principal: Principal) -> Response:
    items = catalog.list_all(CampaignItem, principal.account_id)
    return json_response({"campaigns": [_view(c) for c in items]})


@bp.route("/campaigns", methods=["POST"])
@user_view(Role.ADMIN)
def create_campaign(principal: Principal) -> Response:
    from chalicelib.api.catalog_schemas import CampaignBody

    body = parse_body(current_request(), CampaignBody)
    settings = _campaign_settings(principal.account_id, body)
    keep_pixel_secrets(settings, None)
    item = catalog.create(
        CampaignItem, principal.account_id, body.name, status=body.status, settings=settings
    )
    return json_response({"campaign": _view(item)}, 201)


@bp.route("/campaigns/{campaign_id}", methods=["GET"])
@user_view(Role.AGENT)
def get_campaign(principal: Principal, campaign_id: str) -> Response:
    item = catalog.get(CampaignItem, principal.account_id, campaign_id)
    if item is None:
        raise not_found("campaign")
    return json_response({"campaign": _view(item)})


@bp.route("/campaigns/{campaign_id}", methods=["PUT"])
@user_view(Role.ADMIN)
def replace_campaign(principal: Principal, campaign_id: str) -> Response:
    from chalicelib.api.catalog_schemas import CampaignBody

    body = parse_body(current_request(), CampaignBody)
    item = catalog.get(CampaignItem, principal.account_id, campaign_id)
    if item is None:
        raise not_found("campaign")
    settings = _campaign_settings(principal.account_id, body)
    keep_pixel_secrets(settings, item.settings)
    item = catalog.replace(item, body.name, status=body.status, settings=settings)
    return json_response({"campaign": _view(item)})


# --- buyers ----------------------------------------------------------------------------------


@bp.route("/buyers", methods=["GET"])
@user_view(Role.AGENT)
def list_buyers(principal: Principal) -> Response:
    items = catalog.list_all(BuyerItem, principal.account_id)
    return json_response({"buyers": [_view(b) for b in items]})


@bp.route("/buyers", methods=["POST"])
@user_view(Role.ADMIN)
def create_buyer(principal: Principal) -> Response:
    from chalicelib.api.catalog_schemas import BuyerBody, stored

    body = parse_body(current_request(), BuyerBody)
    settings = stored(body, exclude={"name"})
    keep_pixel_secrets(settings, None)
    item = catalog.create(BuyerItem, principal.account_id, body.name, settings=settings)
    return json_response({"buyer": _view(item)}, 201)


@bp.route("/buyers/{buyer_id}", methods=["GET"])
@user_view(Role.AGENT)
def get_buyer(principal: Principal, buyer_id: str) -> Response:
    item = catalog.get(BuyerItem, principal.account_id, buyer_id)
    if item is None:
        raise not_found("buyer")
    return json_response({"buyer": _view(item)})


@bp.route("/buyers/{buyer_id}", methods=["PUT"])
@user_view(Role.ADMIN)
def replace_buyer(principal: Principal, buyer_id: str) -> Response:
    from chalicelib.api.catalog_schemas import BuyerBody, stored

    body = parse_body(current_request(), BuyerBody)
    item = catalog.get(BuyerItem, principal.account_id, buyer_id)
    if item is None:
        raise not_found("buyer")
    settings = stored(body, exclude={"name"})
    keep_pixel_secrets(settings, item.settings)
    item = catalog.replace(item, body.name, settings=settings)
    return json_response({"buyer": _view(item)})


# --- targets ---------------------------------------------------------------------------------


@bp.route("/targets", methods=["GET"])
@user_view(Role.AGENT)
def list_targets(principal: Principal) -> Response:
    items = catalog.list_all(TargetItem, principal.account_id)
    return json_response({"targets": [_view(t) for t in items]})


def _target_fields(account_id: str, body: TargetBody) -> dict[str, Any]:
    from chalicelib.api.catalog_schemas import stored

    if catalog.get(BuyerItem, account_id, body.buyer_id) is None:
        raise _unknown("buyer_id", "buyer")
    settings = stored(body, exclude={"name", "buyer_id"})
    # Stored in routing's own JSON shape, so numbers stay numbers ("65" vs 65.0).
    settings["tag_rules"] = [tag_rule_to_dict(rule.rule()) for rule in body.tag_rules]
    return {"buyer_id": body.buyer_id, "settings": settings}


@bp.route("/targets", methods=["POST"])
@user_view(Role.ADMIN)
def create_target(principal: Principal) -> Response:
    from chalicelib.api.catalog_schemas import TargetBody

    body = parse_body(current_request(), TargetBody)
    fields = _target_fields(principal.account_id, body)
    item = catalog.create(TargetItem, principal.account_id, body.name, **fields)
    return json_response({"target": _view(item)}, 201)


@bp.route("/targets/{target_id}", methods=["GET"])
@user_view(Role.AGENT)
def get_target(principal: Principal, target_id: str) -> Response:
    item = catalog.get(TargetItem, principal.account_id, target_id)
    if item is None:
        raise not_found("target")
    return json_response({"target": _view(item)})


@bp.route("/targets/{target_id}", methods=["PUT"])
@user_view(Role.ADMIN)
def replace_target(principal: Principal, target_id: str) -> Response:
    from chalicelib.api.catalog_schemas import TargetBody

    body = parse_body(current_request(), TargetBody)
    item = catalog.get(TargetItem, principal.account_id, target_id)
    if item is None:
        raise not_found("target")
    if body.buyer_id != item.buyer_id:
        # Campaign plans carry each target's buyer; moving a target would leave them stale.
        raise ApiError(
            400,
            "validation_error",
            "request has invalid fields",
            {"buyer_id": "a target cannot move to another buyer"},
        )
    item = catalog.replace(item, body.name, **_target_fields(principal.account_id, body))
    return json_response({"target": _view(item)})
