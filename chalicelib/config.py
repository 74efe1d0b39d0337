"""Settings from environment variables, in one typed object."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or default


def _env_int(name: str, default: int) -> int:
    raw = _env(name)
    return int(raw) if raw is not None else default


@dataclass(frozen=True)
class Settings:
    """Everything the app reads from its environment.

    The same code runs in AWS and locally: only endpoints and names differ, and
    they all come from here.
    """

    stage: str
    region: str
    app_table: str
    idempotency_table: str
    public_base_url: str
    twilio_account_sid: str | None
    twilio_auth_token: str | None
    twilio_auth_token_param: str | None
    cognito_user_pool_id: str | None
    cognito_client_id: str | None
    cognito_jwks_url: str
    dynamodb_endpoint: str | None
    cognito_endpoint: str | None
    metrics_namespace: str
    service_name: str
    config_cache_seconds: int
    max_webhook_body_bytes: int
    max_api_body_bytes: int
    # Where callbacks whose facts could not be written wait to be applied (SQS).
    deferred_queue_url: str | None = None
    sqs_endpoint: str | None = None

    @property
    def cognito_issuer(self) -> str:
        # Cognito (and moto's Cognito) issue tokens with the regional issuer even
        # when the API endpoint is overridden.
        return f"https://cognito-idp.{self.region}.amazonaws.com/{self.cognito_user_pool_id}"


def load_settings() -> Settings:
    region = _env("AWS_REGION") or _env("AWS_DEFAULT_REGION") or "us-east-1"
    pool = _env("COGNITO_USER_POOL_ID")
    cognito_endpoint = _env("AWS_ENDPOINT_URL_COGNITO_IDP") or _env("AWS_ENDPOINT_URL")
    jwks_base = (cognito_endpoint or f"https://cognito-idp.{region}.amazonaws.com").rstrip("/")
    return Settings(
        stage=_env("STAGE", "dev") or "dev",
        region=region,
        app_table=_env("APP_TABLE_NAME", "ppc-app") or "ppc-app",
        idempotency_table=_env("IDEMPOTENCY_TABLE_NAME", "ppc-idempotency") or "ppc-idempotency",
        public_base_url=(_env("PUBLIC_BASE_URL", "http://127.0.0.1:8000") or "").rstrip("/"),
        twilio_account_sid=_env("TWILIO_ACCOUNT_SID"),
        twilio_auth_token=_env("TWILIO_AUTH_TOKEN"),
        twilio_auth_token_param=_env("TWILIO_AUTH_TOKEN_PARAM"),
        cognito_user_pool_id=pool,
        cognito_client_id=_env("COGNITO_CLIENT_ID"),
        cognito_jwks_url=_env("COGNITO_JWKS_URL") or f"{jwks_base}/{pool}/.well-known/jwks.json",
        dynamodb_endpoint=_env("AWS_ENDPOINT_URL_DYNAMODB") or _env("AWS_ENDPOINT_URL"),
        cognito_endpoint=cognito_endpoint,
        metrics_namespace=_env("POWERTOOLS_METRICS_NAMESPACE", "PayPerCall") or "PayPerCall",
        service_name=_env("POWERTOOLS_SERVICE_NAME", "ppc-platform") or "ppc-platform",
        config_cache_seconds=_env_int("CONFIG_CACHE_SECONDS", 60),
        max_webhook_body_bytes=_env_int("MAX_WEBHOOK_BODY_BYTES", 16 * 1024),
        max_api_body_bytes=_env_int("MAX_API_BODY_BYTES", 256 * 1024),
        deferred_queue_url=_env("DEFERRED_QUEUE_URL"),
        sqs_endpoint=_env("AWS_ENDPOINT_URL_SQS") or _env("AWS_ENDPOINT_URL"),
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once (tests call `get_settings.cache_clear()`)."""
    return load_settings()


def absolute_url(path: str, settings: Settings | None = None) -> str:
    """The public URL of one of our routes, for TwiML `action`/`url` attributes.

    Always absolute: a root-relative `/voice/...` would lose an API Gateway stage prefix.
    """
    settings = settings or get_settings()
    return settings.public_base_url + "/" + path.lstrip("/")
