"""Typed request bodies of the management API (validated at the edge)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, AliasChoices, BaseModel, ConfigDict, Field

from chalicelib.phone import parse_e164
from chalicelib.sip import DOMAIN, EXTENSION

E164 = Annotated[str, AfterValidator(parse_e164)]
# Cognito checks deliverability; here we only refuse what is plainly not an address.
Email = Annotated[
    str,
    Field(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"),
    AfterValidator(str.lower),
]
Name = Annotated[str, Field(min_length=1, max_length=120)]


class Strict(BaseModel):
    # Validators are built on first use, not at import: a cold start serving a webhook or
    # one endpoint does not pay for every request model of the API (≈0.15 s).
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, defer_build=True)


class LoginRequest(Strict):
    email: Annotated[str, Field(min_length=3, max_length=254)]
    password: Annotated[str, Field(min_length=1, max_length=256)]


class RefreshRequest(Strict):
    refresh_token: Annotated[str, Field(min_length=1, max_length=4096)]


Password = Annotated[str, Field(min_length=12, max_length=256)]


class CreateUserRequest(Strict):
    email: Email
    password: Password
    role: Annotated[str, Field(pattern="^(agent|admin|super_admin)$")]


class CreateAccountRequest(Strict):
    name: Name
    admin_email: Email
    admin_password: Password


class PixelBody(Strict):
    """A post-call webhook: URL template with {tokens}, signed with the shared secret."""

    url: Annotated[str, Field(min_length=10, max_length=2000, pattern=r"^https?://")]
    method: Literal["GET", "POST"] = "POST"
    events: list[Literal["completed", "converted"]] = Field(default=["completed"], min_length=1)
    # "****" (as shown back by the API) keeps the secret already stored for this URL.
    secret: Annotated[str, Field(max_length=128, pattern=r"^(\*\*\*\*|.{16,})$")]


MASKED_SECRET = "****"  # noqa: S105 - the mask shown instead of a secret


class CreatePublisherRequest(Strict):
    name: Name
    contact_email: Email | None = None
    # Per-campaign payout in cents that replaces the campaign's own for this publisher.
    pixels: list[PixelBody] = Field(default_factory=list, max_length=10)
    payout_overrides: dict[
        Annotated[str, Field(min_length=1, max_length=64)],
        Annotated[int, Field(ge=0, le=100_000_000)],
    ] = Field(default_factory=dict)


class CreateApiKeyRequest(Strict):
    label: Annotated[str, Field(max_length=120)] | None = None


Ref = Annotated[str, Field(min_length=1, max_length=64)]


class NumberAttributionRequest(Strict):
    campaign_id: Ref | None = None
    publisher_id: Ref | None = None
    source: Annotated[str, Field(max_length=80)] | None = None


class CreateTrackingNumberRequest(NumberAttributionRequest):
    number: E164
    friendly_name: Annotated[str, Field(max_length=120)] | None = None
    greeting: Annotated[str, Field(max_length=500)] | None = None


class PurchaseNumberRequest(NumberAttributionRequest):
    number: E164
    friendly_name: Annotated[str, Field(max_length=120)] | None = None


TagName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


class BidRequest(Strict):
    """A publisher's ping: who is calling, and what the publisher knows about the caller."""

    caller_id: E164 = Field(validation_alias=AliasChoices("caller_id", "CID"))
    zip_code: Annotated[str, Field(pattern=r"^\d{5}$")] | None = None
    state: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] | None = None
    tags: dict[TagName, Annotated[str, Field(max_length=200)]] = Field(
        default_factory=dict, max_length=50
    )


def _sip_domain(value: str) -> str:
    if not DOMAIN.match(value):
        raise ValueError("must be a host name like sip.office.example.com")
    return value.lower()


class CreateSipEdgeRequest(Strict):
    name: Name
    # The SIP domain phones register to (also the digest realm), e.g. sip.office.example.com.
    domain: Annotated[str, Field(min_length=1, max_length=253), AfterValidator(_sip_domain)]


class CreateSipDeviceRequest(Strict):
    extension: Annotated[str, Field(pattern=EXTENSION.pattern)]
    label: Annotated[str, Field(max_length=120)] | None = None
    user_id: Annotated[str, Field(min_length=1, max_length=128)] | None = None
