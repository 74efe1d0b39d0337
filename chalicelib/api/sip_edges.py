"""SIP edges and operators' SIP phones: credentials (the password is returned once, at
creation or rotation, and stored only as HA1) and each phone's online/offline status."""

from __future__ import annotations

from chalice.app import Blueprint, Response

from chalicelib.api import serializers
from chalicelib.api.http import ApiError, json_response, not_found, parse_body, user_view
from chalicelib.api.schemas import CreateSipDeviceRequest, CreateSipEdgeRequest
from chalicelib.auth.roles import Principal, Role
from chalicelib.clock import utcnow
from chalicelib.edge import phones
from chalicelib.requests import current_request
from chalicelib.store import sip_edges, tenants
from chalicelib.store.models import SipDeviceItem, SipEdgeItem
from chalicelib.store.tenants import AlreadyExists

bp = Blueprint(__name__)
NO_STORE = {"Cache-Control": "no-store"}


def _edge(principal: Principal, edge_id: str) -> SipEdgeItem:
    edge = sip_edges.get_edge(principal.account_id, edge_id)
    if edge is None:
        raise not_found("SIP edge")
    return edge


def _edge_view(edge: SipEdgeItem) -> dict[str, object]:
    devices = sip_edges.list_devices(edge.account_id, edge.edge_id)
    return serializers.sip_edge(edge, devices, utcnow())


def _with_password(device: SipDeviceItem, password: str, edge: SipEdgeItem) -> dict[str, object]:
    view = serializers.sip_device(device, utcnow(), edge.stale_after)
    # The only time the password leaves the platform: the operator types it into the phone.
    view["password"] = password
    view["username"] = device.extension
    view["realm"] = device.domain
    return view


@bp.route("/sip-edges", methods=["GET"])
@user_view(Role.AGENT)
def list_edges(principal: Principal) -> Response:
    devices = sip_edges.list_devices(principal.account_id)
    now = utcnow()
    views = [
        serializers.sip_edge(edge, [d for d in devices if d.edge_id == edge.edge_id], now)
        for edge in sip_edges.list_edges(principal.account_id)
    ]
    return json_response({"edges": views})


@bp.route("/sip-edges", methods=["POST"])
@user_view(Role.ADMIN)
def create_edge(principal: Principal) -> Response:
    body = parse_body(current_request(), CreateSipEdgeRequest)
    try:
        edge, secret = phones.create_edge(principal.account_id, body.name, body.domain)
    except AlreadyExists as err:
        raise ApiError(
            409, "conflict", "an edge for this domain exists", {"domain": "taken"}
        ) from err
    view = serializers.sip_edge(edge, [], utcnow())
    view["secret"] = secret  # EDGE_SHARED_SECRET of the edge; shown once
    return json_response({"edge": view}, 201, headers=NO_STORE)


@bp.route("/sip-edges/{edge_id}", methods=["GET"])
@user_view(Role.AGENT)
def get_edge(principal: Principal, edge_id: str) -> Response:
    edge = _edge(principal, edge_id)
    devices = sip_edges.list_devices(edge.account_id, edge.edge_id)
    now = utcnow()
    return json_response(
        {
            "edge": serializers.sip_edge(edge, devices, now),
            "devices": [serializers.sip_device(d, now, edge.stale_after) for d in devices],
        }
    )


@bp.route("/sip-edges/{edge_id}", methods=["DELETE"])
@user_view(Role.ADMIN)
def delete_edge(principal: Principal, edge_id: str) -> Response:
    """Removes an edge without phones: its secret stops working and its domain is free."""
    edge = _edge(principal, edge_id)
    if sip_edges.list_devices(edge.account_id, edge.edge_id):
        raise ApiError(409, "conflict", "revoke the edge's phones first", {"devices": "not empty"})
    sip_edges.delete_edge(edge)
    return Response(body="", status_code=204)


@bp.route("/sip-edges/{edge_id}/secret", methods=["POST"])
@user_view(Role.ADMIN)
def rotate_edge_secret(principal: Principal, edge_id: str) -> Response:
    edge = _edge(principal, edge_id)
    secret = phones.rotate_edge_secret(edge)
    view = _edge_view(edge)
    view["secret"] = secret
    return json_response({"edge": view}, headers=NO_STORE)


@bp.route("/sip-edges/{edge_id}/devices", methods=["POST"])
@user_view(Role.ADMIN)
def create_device(principal: Principal, edge_id: str) -> Response:
    body = parse_body(current_request(), CreateSipDeviceRequest)
    edge = _edge(principal, edge_id)
    if body.user_id is not None and body.user_id not in {
        user.user_id for user in tenants.list_users(principal.account_id)
    }:
        raise ApiError(
            400, "validation_error", "request has invalid fields", {"user_id": "unknown"}
        )
    try:
        device, password = phones.add_device(edge, body.extension, body.label, body.user_id)
    except AlreadyExists as err:
        raise ApiError(
            409, "conflict", "this extension has a credential", {"extension": "taken"}
        ) from err
    return json_response({"device": _with_password(device, password, edge)}, 201, headers=NO_STORE)


@bp.route("/sip-edges/{edge_id}/devices/{extension}/password", methods=["POST"])
@user_view(Role.ADMIN)
def rotate_password(principal: Principal, edge_id: str, extension: str) -> Response:
    edge = _edge(principal, edge_id)
    device = sip_edges.get_device(principal.account_id, edge.edge_id, extension)
    if device is None:
        raise not_found("SIP device")
    password = phones.rotate_password(device)
    return json_response({"device": _with_password(device, password, edge)}, headers=NO_STORE)


@bp.route("/sip-edges/{edge_id}/devices/{extension}", methods=["DELETE"])
@user_view(Role.ADMIN)
def revoke_device(principal: Principal, edge_id: str, extension: str) -> Response:
    if not sip_edges.revoke_device(principal.account_id, edge_id, extension):
        raise not_found("SIP device")
    return Response(body="", status_code=204)


@bp.route("/sip-devices", methods=["GET"])
@user_view(Role.AGENT)
def list_devices(principal: Principal) -> Response:
    """Every phone of the account with its status; `?status=online|offline`, `?user_id=`."""
    query = dict(current_request().query_params or {})
    status, user_id = query.get("status"), query.get("user_id")
    if status not in (None, "online", "offline"):
        raise ApiError(
            400, "validation_error", "request has invalid fields", {"status": "online or offline"}
        )
    now = utcnow()
    stale_after = {e.edge_id: e.stale_after for e in sip_edges.list_edges(principal.account_id)}
    views = [
        serializers.sip_device(d, now, stale_after.get(d.edge_id))
        for d in sip_edges.list_devices(principal.account_id)
    ]
    if status is not None:
        views = [v for v in views if v["status"] == status]
    if user_id is not None:
        views = [v for v in views if v["user_id"] == user_id]
    return json_response({"devices": views, "online": sum(v["status"] == "online" for v in views)})
