"""SIP addresses: phone extensions and edge domains, and the address that rings a phone."""

from __future__ import annotations

import re

# What the edge's renderer and its hand-built JSON reports accept (edge_sip/render.py).
EXTENSION = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
DOMAIN = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*$")

# The header the CPaaS adds to an INVITE for a phone on an edge (Twilio: the <Sip> URI's
# `?X-...=` part); the edge relays only INVITEs carrying its own call token. The CPaaS's
# addresses alone do not tell one customer of the CPaaS (or one account) from another.
CALL_TOKEN_HEADER = "X-PPC-Edge-Token"  # noqa: S105 - a header name


def sip_uri(extension: str, domain: str) -> str:
    """The destination routing dials (`<Dial><Sip>`) to ring this phone through the edge."""
    return f"sip:{extension}@{domain}"


def dial_uri(extension: str, domain: str, call_token: str) -> str:
    """What routing puts in <Dial><Sip>: the phone's address and the edge's call token."""
    return f"{sip_uri(extension, domain)}?{CALL_TOKEN_HEADER}={call_token}"


def phone_address(destination: str) -> tuple[str, str] | None:
    """(extension, domain) of a `sip:EXT@domain` destination whose user part is an extension,
    the domain lower-case and without port or parameters; None for any other destination."""
    scheme, _, address = destination.partition(":")
    extension, _, host = address.partition("@")
    if scheme.lower() != "sip" or not EXTENSION.match(extension):
        return None
    return extension, host.split(";", 1)[0].split(":", 1)[0].lower()
