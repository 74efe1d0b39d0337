"""The outbound CPaaS REST client interface (Twilio implementation and a fake for tests)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import lru_cache

from chalicelib.telephony.base import (
    AvailableNumber,
    NumberUnavailable,
    OwnedNumber,
    PlacedCall,
    Telephony,
    TelephonyConfigError,
    TelephonyError,
)
from chalicelib.telephony.fake import CallRequest, FakeTelephony

__all__ = [
    "AvailableNumber",
    "CallRequest",
    "FakeTelephony",
    "NumberUnavailable",
    "OwnedNumber",
    "PlacedCall",
    "Telephony",
    "TelephonyConfigError",
    "TelephonyError",
    "build_telephony",
    "get_telephony",
    "reset_telephony",
]

BACKENDS = ("twilio", "fake")


@lru_cache(maxsize=1)
def get_telephony() -> Telephony:
    """The process-wide backend, chosen once from the environment (see `build_telephony`).

    Cached so the fake keeps its state for the life of the process and the Twilio client
    reuses its connection pool across warm Lambda invocations.
    """
    return build_telephony(os.environ)


def reset_telephony() -> None:
    """Forget the cached backend (tests, or after changing the environment)."""
    get_telephony.cache_clear()


def build_telephony(env: Mapping[str, str]) -> Telephony:
    """A new backend from `TELEPHONY_BACKEND`, `TWILIO_ACCOUNT_SID` and the auth token.

    `TELEPHONY_BACKEND` is `twilio` or `fake`. Unset, it is `twilio` when an account SID and
    an auth token (`TWILIO_AUTH_TOKEN`, or the SSM parameter `TWILIO_AUTH_TOKEN_PARAM`) are
    configured, else `fake` - except inside AWS Lambda, where a fake must be asked for.
    """
    backend = _env(env, "TELEPHONY_BACKEND")
    backend = backend.lower() if backend else None
    if backend is not None and backend not in BACKENDS:
        raise TelephonyConfigError(f"TELEPHONY_BACKEND must be one of {BACKENDS}, not {backend!r}")
    if backend == "fake":
        return FakeTelephony()
    account_sid = _env(env, "TWILIO_ACCOUNT_SID")
    token = _env(env, "TWILIO_AUTH_TOKEN")
    token_param = _env(env, "TWILIO_AUTH_TOKEN_PARAM")
    if backend is None and not (account_sid and (token or token_param)):
        if _env(env, "AWS_LAMBDA_FUNCTION_NAME"):
            # A deployed function that silently "bought" fake numbers would lose money quietly.
            raise TelephonyConfigError(
                "no Twilio credentials in AWS Lambda: set TWILIO_ACCOUNT_SID and "
                "TWILIO_AUTH_TOKEN(_PARAM), or TELEPHONY_BACKEND=fake"
            )
        return FakeTelephony()
    if not account_sid:
        raise TelephonyConfigError("the twilio telephony backend needs TWILIO_ACCOUNT_SID")
    if not token and token_param:
        token = _token_from_parameter(token_param)
    if not token:
        raise TelephonyConfigError(
            "the twilio telephony backend needs TWILIO_AUTH_TOKEN or TWILIO_AUTH_TOKEN_PARAM"
        )
    # Imported here so the fake path never loads the Twilio SDK (cold starts, local stack).
    from chalicelib.telephony.twilio_rest import TwilioTelephony

    return TwilioTelephony(account_sid, token)


def _env(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None


def _token_from_parameter(name: str) -> str | None:
    """The auth token from SSM, where deployed stages keep it (as the webhook verifier does)."""
    from aws_lambda_powertools.utilities import parameters

    value = parameters.get_parameter(name, decrypt=True, max_age=300)
    return value if isinstance(value, str) and value else None
