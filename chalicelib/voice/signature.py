"""`X-Twilio-Signature` verification against the public URL the CPaaS called."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode

from chalice.app import Request
from twilio.request_validator import RequestValidator

from chalicelib.config import Settings, get_settings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.parameters import SSMProvider


class SignatureUnverifiable(Exception):
    """No auth token is configured, or SSM would not give it: nothing can be verified, so
    nothing is accepted."""


@lru_cache(maxsize=1)
def _parameters() -> SSMProvider:
    """Powertools' SSM parameter provider (its own five-minute cache), on first use.

    The utility imports boto3 (≈40 ms), so the first webhook that needs the token loads it,
    not every cold start. Its client is built on PynamoDB's botocore session, which then
    loads the endpoint and partition data once for both clients, not once each (≈35 ms of
    the first webhook).
    """
    import boto3
    from aws_lambda_powertools.utilities.parameters import SSMProvider

    from chalicelib.store.tables import connection

    return SSMProvider(boto3_session=boto3.session.Session(botocore_session=connection().session))


def auth_token(settings: Settings | None = None) -> str:
    """The CPaaS auth token: from the environment, else from SSM (cached five minutes)."""
    settings = settings or get_settings()
    if settings.twilio_auth_token:
        return settings.twilio_auth_token
    if settings.twilio_auth_token_param:
        from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

        try:
            value = _parameters().get(settings.twilio_auth_token_param, decrypt=True, max_age=300)
        except GetParameterError as err:
            raise SignatureUnverifiable(str(err)) from err
        if isinstance(value, str) and value:
            return value
    raise SignatureUnverifiable("no TWILIO_AUTH_TOKEN or TWILIO_AUTH_TOKEN_PARAM configured")


def public_url(request: Request, settings: Settings | None = None) -> str:
    """The URL the CPaaS was given: PUBLIC_BASE_URL + the route path with its parameters.

    Built from the route template rather than the raw path so that an API Gateway
    stage prefix (`/api`) or a custom-domain base path never enters the signed URL twice.
    Our own webhook URLs carry no query string; if one arrives, it is rebuilt in the
    order received, since the CPaaS signs the URL with its query.
    """
    settings = settings or get_settings()
    path = (request.context or {}).get("resourcePath") or "/"
    for name, value in (request.uri_params or {}).items():
        path = path.replace("{" + name + "}", quote(value, safe=""))
    query = request.query_params
    if query:
        path += "?" + urlencode([(key, value) for key in query for value in query.getlist(key)])
    return settings.public_base_url + path


def from_our_account(params: Mapping[str, str], settings: Settings | None = None) -> bool:
    """When TWILIO_ACCOUNT_SID is set, the webhook must be about a call of that account."""
    settings = settings or get_settings()
    expected = settings.twilio_account_sid
    return expected is None or params.get("AccountSid") == expected


def is_signed(url: str, params: Mapping[str, str], signature: str | None, token: str) -> bool:
    if not signature:
        return False
    return bool(RequestValidator(token).validate(url, dict(params), signature))
