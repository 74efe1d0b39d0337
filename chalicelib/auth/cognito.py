"""Cognito user-pool operations: password login, token refresh, and creating users."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.auth.roles import Role
from chalicelib.config import get_settings


class LoginFailed(Exception):
    """Wrong email or password, or a disabled user: never says which."""


class UserExists(Exception):
    """A user with this email already exists in the pool."""


class UserRejected(Exception):
    """The pool refused the user's attributes or password (its policy); `field` says which."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Tokens:
    id_token: str
    access_token: str
    refresh_token: str | None
    expires_in: int


@lru_cache(maxsize=1)
def _client() -> Any:
    # boto3 (≈30 ms) loads with the first login, not with every cold start; the handlers
    # reach DynamoDB through PynamoDB's own botocore client.
    import boto3

    settings = get_settings()
    return boto3.client(
        "cognito-idp", region_name=settings.region, endpoint_url=settings.cognito_endpoint
    )


def _tokens(result: dict[str, Any], refresh_token: str | None) -> Tokens:
    auth = result.get("AuthenticationResult")
    if not auth:
        # A challenge (new password required, MFA) is not something this API completes.
        raise LoginFailed("login needs a challenge this API does not complete")
    return Tokens(
        id_token=auth["IdToken"],
        access_token=auth["AccessToken"],
        refresh_token=auth.get("RefreshToken", refresh_token),
        expires_in=int(auth.get("ExpiresIn", 3600)),
    )


def login(email: str, password: str) -> Tokens:
    settings = get_settings()
    try:
        result = _client().initiate_auth(
            ClientId=settings.cognito_client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": email, "PASSWORD": password},
        )
    except ClientError as err:
        code = err.response["Error"]["Code"]
        if code in {"NotAuthorizedException", "UserNotFoundException", "UserNotConfirmedException"}:
            raise LoginFailed(code) from err
        raise
    return _tokens(result, None)


def refresh(refresh_token: str) -> Tokens:
    settings = get_settings()
    try:
        result = _client().initiate_auth(
            ClientId=settings.cognito_client_id,
            AuthFlow="REFRESH_TOKEN_AUTH",
            AuthParameters={"REFRESH_TOKEN": refresh_token},
        )
    except ClientError as err:
        if err.response["Error"]["Code"] == "NotAuthorizedException":
            raise LoginFailed("refresh token not accepted") from err
        raise
    return _tokens(result, refresh_token)


def create_user(email: str, password: str, account_id: str, role: Role) -> str:
    """Create a confirmed user whose tokens carry the account and role; returns its `sub`."""
    settings = get_settings()
    client = _client()
    try:
        created = client.admin_create_user(
            UserPoolId=settings.cognito_user_pool_id,
            Username=email,
            MessageAction="SUPPRESS",
            TemporaryPassword=secrets.token_urlsafe(16) + "aA1!",
            UserAttributes=[
                {"Name": "email", "Value": email},
                {"Name": "email_verified", "Value": "true"},
                {"Name": "custom:account_id", "Value": account_id},
                {"Name": "custom:role", "Value": role.wire},
            ],
        )
    except ClientError as err:
        code = err.response["Error"]["Code"]
        if code == "UsernameExistsException":
            raise UserExists(email) from err
        if code == "InvalidParameterException":
            raise UserRejected(
                "email", err.response["Error"].get("Message", "not accepted")
            ) from err
        raise
    try:
        client.admin_set_user_password(
            UserPoolId=settings.cognito_user_pool_id,
            Username=email,
            Password=password,
            Permanent=True,
        )
    except ClientError as err:
        # Leave no half-made login behind: a retry must be able to start over.
        delete_user(email)
        if err.response["Error"]["Code"] == "InvalidPasswordException":
            message = err.response["Error"].get("Message", "does not meet the password policy")
            raise UserRejected("password", message) from err
        raise
    attributes = {a["Name"]: a["Value"] for a in created["User"].get("Attributes", [])}
    return str(attributes.get("sub") or created["User"]["Username"])


def delete_user(email: str) -> None:
    """Remove a login (used to undo a user whose records could not be written)."""
    try:
        _client().admin_delete_user(UserPoolId=get_settings().cognito_user_pool_id, Username=email)
    except ClientError as err:
        if err.response["Error"]["Code"] != "UserNotFoundException":
            raise
