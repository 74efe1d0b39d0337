"""Publisher-facing `/rtb/v1` routes, authenticated by publisher API keys."""

from __future__ import annotations

from chalice.app import Blueprint, Response

from chalicelib.api.http import json_response, publisher_view
from chalicelib.store.api_keys import KeyPrincipal

bp = Blueprint(__name__)


@bp.route("/me", methods=["GET"])
@publisher_view
def whoami(principal: KeyPrincipal) -> Response:
    """Lets a publisher check that its key works and which account it speaks for."""
    return json_response(
        {
            "account_id": principal.account_id,
            "publisher_id": principal.publisher_id,
            "key_id": principal.key_id,
        }
    )
