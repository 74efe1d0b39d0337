"""Verification of Cognito-issued ID tokens against the pool's JWKS."""

from __future__ import annotations

import time
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from chalicelib.auth.roles import Principal, Role
from chalicelib.config import Settings, get_settings

# PyJWT pulls in `cryptography` (≈0.1 s of a cold start), which only a request carrying a
# token needs: the verifier imports it, not this module.
if TYPE_CHECKING:
    import jwt


class InvalidToken(Exception):
    """The token is missing, malformed, forged, expired, or from another pool or client."""


class AuthUnavailable(Exception):
    """The key set could not be fetched: the token can be neither accepted nor refused."""


class TokenVerifier:
    """Verifies RS256 ID tokens: signature by the pool's JWKS, issuer, audience, expiry, claims."""

    # However many tokens with unknown key ids arrive, the key set is refetched at most
    # this often, so nobody can make us hammer the key endpoint.
    REFETCH_INTERVAL_SECONDS = 60.0

    def __init__(self, jwks_url: str, issuer: str, client_id: str | None) -> None:
        self.issuer = issuer
        self.client_id = client_id
        import jwt

        self._jwks: jwt.PyJWKClient = jwt.PyJWKClient(
            jwks_url, cache_jwk_set=True, lifespan=3600, timeout=3
        )
        self._refetched_at = float("-inf")

    def _signing_key(self, token: str) -> Any:
        import jwt

        try:
            kid = jwt.get_unverified_header(token).get("kid")
            keys = {k.key_id: k for k in self._jwks.get_signing_keys()}
            if (
                kid not in keys
                and time.monotonic() - self._refetched_at > self.REFETCH_INTERVAL_SECONDS
            ):
                self._refetched_at = time.monotonic()
                keys = {k.key_id: k for k in self._jwks.get_signing_keys(refresh=True)}
        except jwt.PyJWKClientConnectionError as err:
            raise AuthUnavailable(str(err)) from err
        except jwt.PyJWTError as err:
            raise InvalidToken(f"token not accepted: {err}") from err
        if kid not in keys:
            raise InvalidToken("token signed by an unknown key")
        return keys[kid].key

    def verify(self, token: str) -> Principal:
        import jwt

        signing_key = self._signing_key(token)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                signing_key,
                algorithms=["RS256"],
                issuer=self.issuer,
                audience=self.client_id,
                options={"require": ["exp", "iat", "iss", "sub", "aud"]},
                leeway=30,
            )
        except jwt.PyJWTError as err:
            raise InvalidToken(f"token not accepted: {err}") from err
        if claims.get("token_use") != "id":
            raise InvalidToken("an ID token is required")
        account_id = claims.get("custom:account_id")
        role_name = claims.get("custom:role")
        if not isinstance(account_id, str) or not account_id or not isinstance(role_name, str):
            raise InvalidToken("token carries no account or role")
        try:
            role = Role.parse(role_name)
        except ValueError as err:
            raise InvalidToken(str(err)) from err
        email = claims.get("email")
        return Principal(
            user_id=str(claims["sub"]),
            account_id=account_id,
            role=role,
            email=email if isinstance(email, str) else None,
        )


@lru_cache(maxsize=4)
def _verifier_for(jwks_url: str, issuer: str, client_id: str | None) -> TokenVerifier:
    return TokenVerifier(jwks_url, issuer, client_id)


def get_verifier(settings: Settings | None = None) -> TokenVerifier:
    settings = settings or get_settings()
    return _verifier_for(
        settings.cognito_jwks_url, settings.cognito_issuer, settings.cognito_client_id
    )
