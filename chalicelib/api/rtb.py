"""Publisher-facing `/rtb/v1` routes, authenticated by publisher API keys."""

from __future__ import annotations

from typing import Any

from chalice.app import Blueprint, Response

from chalicelib.api.http import ApiError, json_response, not_found, parse_body, publisher_view
from chalicelib.api.schemas import BidRequest
from chalicelib.clock import utcnow
from chalicelib.observability import bind_call
from chalicelib.requests import current_request
from chalicelib.rtb.publisher import PingRequest, RateLimited, Unroutable, ping_campaign
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


@bp.route("/bid/{campaign_key}", methods=["POST"])
@publisher_view
def bid(principal: KeyPrincipal, campaign_key: str) -> Response:
    """Ping before post: the campaign's buyers bid for this caller; the best bid is held for
    the caller on the publisher's tracking number until it expires."""
    body = parse_body(current_request(), BidRequest)
    bind_call(account_id=principal.account_id)
    request = PingRequest(
        account_id=principal.account_id,
        publisher_id=principal.publisher_id,
        campaign_id=campaign_key,
        caller_id=body.caller_id,
        tags=_ping_tags(body),
    )
    try:
        answer = ping_campaign(request, utcnow())
    except LookupError as err:
        raise not_found("campaign") from err
    except Unroutable as err:
        raise ApiError(409, err.code, str(err), {"campaign_key": str(err)}) from err
    except RateLimited as err:
        raise ApiError(
            429,
            "rate_limited",
            f"at most {err.limit} pings per minute for this campaign",
            headers={"Retry-After": str(err.retry_after)},
        ) from err
    return json_response(answer)


def _ping_tags(body: BidRequest) -> dict[str, Any]:
    tags = dict(body.tags)
    # Where the publisher says the caller is wins over what the number implies.
    if body.zip_code:
        tags["from_zip"] = body.zip_code
    if body.state:
        tags["from_state"] = body.state
    return tags
