"""Unauthenticated service routes: liveness and the OpenAPI document."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from chalice.app import Blueprint, Response

from chalicelib.api.http import json_response, public_view

bp = Blueprint(__name__)


@lru_cache(maxsize=1)
def _document() -> dict[str, Any]:
    # Imported here: the document's models (every request body of the API) are loaded by
    # the first request for it, not by every cold start.
    from chalicelib.api import openapi

    return openapi.document()


@bp.route("/health", methods=["GET"])
@public_view
def health() -> Response:
    return json_response({"status": "ok"})


@bp.route("/openapi.json", methods=["GET"], cors=True)
@public_view
def openapi_json() -> Response:
    return json_response(_document())
