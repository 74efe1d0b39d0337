"""Signed Twilio-style webhook requests: URL mapping, signing, sending, recording."""

from __future__ import annotations

import random
from collections.abc import Mapping
from urllib.parse import quote, urlencode, urljoin

import httpx
from twilio.request_validator import (  # type: ignore[import-untyped, unused-ignore]
    RequestValidator,
)

from tools.callsim.transcript import RequestRecord

USER_AGENT = "TwilioProxy/1.1"
# Twilio's documented webhook limits: 5 s to connect, 15 s for the whole response.
TIMEOUT = httpx.Timeout(15.0, connect=5.0)
_URL_SAFE = "%/:=&?~#+!$,;'@()*[]"  # reserved characters and existing escapes stay as written
_BODY_LIMIT = 64_000  # keep transcripts readable even if an app answers with a huge page


def new_sid(prefix: str, rng: random.Random) -> str:
    """A Twilio-shaped SID: two-letter prefix and 32 lowercase hex digits."""
    return f"{prefix}{rng.getrandbits(128):032x}"


class Webhooks:
    """Sends requests the way Twilio does and keeps a RequestRecord of each."""

    def __init__(
        self,
        client: httpx.Client,
        auth_token: str,
        base_url: str,
        public_base_url: str,
        rng: random.Random,
    ) -> None:
        self._client = client
        self._validator = RequestValidator(auth_token)
        self.base_url = base_url.rstrip("/")
        self.public_base_url = public_base_url.rstrip("/")
        self._rng = rng

    def public_url(self, path: str) -> str:
        return urljoin(self.public_base_url + "/", path.lstrip("/"))

    def resolve(self, reference: str, document_url: str) -> str:
        """Resolve a TwiML URL against the current document's URL, as Twilio does.

        Characters not allowed in URLs (spaces...) are percent-encoded so that the URL that
        is signed is exactly the one on the request line the app sees.
        """
        return quote(urljoin(document_url, reference.strip()), safe=_URL_SAFE)

    def send_url(self, public_url: str) -> str:
        """Where a public URL is actually reached (public_base_url mapped onto base_url)."""
        for prefix in (self.public_base_url, self.base_url):
            if public_url == prefix or public_url.startswith(
                (prefix + "/", prefix + "?", prefix + "#")
            ):
                return self.base_url + public_url[len(prefix) :]
        return public_url

    def is_external(self, public_url: str) -> bool:
        """True for URLs that are neither under public_base_url nor base_url."""
        return self.send_url(public_url) == public_url and not public_url.startswith(self.base_url)

    def signature(self, url: str, params: Mapping[str, str]) -> str:
        return str(self._validator.compute_signature(url, dict(params)))

    def request(
        self, method: str, public_url: str, params: Mapping[str, str], *, at: float, purpose: str
    ) -> RequestRecord:
        """Send one signed request; never raises for HTTP or network failures."""
        params = dict(params)
        headers = {
            "User-Agent": USER_AGENT,
            "I-Twilio-Idempotency-Token": new_sid("", self._rng),
            "Accept": "*/*",
            "Cache-Control": "max-age=259200",
        }
        if method == "GET":
            # GET puts the params in the query string and signs the full URL, no body params.
            sep = "&" if "?" in public_url else "?"
            signed_url = public_url + (sep + urlencode(params) if params else "")
            headers["X-Twilio-Signature"] = self.signature(signed_url, {})
            content: bytes | None = None
        else:
            signed_url = public_url
            headers["X-Twilio-Signature"] = self.signature(signed_url, params)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            content = urlencode(params).encode("utf-8")
        url = self.send_url(signed_url)
        try:
            response = self._client.request(
                method, url, content=content, headers=headers, timeout=TIMEOUT
            )
        except httpx.TimeoutException as exc:
            return self._record(at, purpose, method, url, signed_url, params, headers, exc)
        except httpx.HTTPError as exc:
            return self._record(at, purpose, method, url, signed_url, params, headers, exc)
        return RequestRecord(
            at=at,
            purpose=purpose,
            method=method,
            url=url,
            signed_url=signed_url,
            params=params,
            headers=headers,
            status_code=response.status_code,
            body=response.text[:_BODY_LIMIT],
            content_type=response.headers.get("content-type", ""),
        )

    @staticmethod
    def _record(
        at: float,
        purpose: str,
        method: str,
        url: str,
        signed_url: str,
        params: dict[str, str],
        headers: dict[str, str],
        exc: Exception,
    ) -> RequestRecord:
        kind = "timeout" if isinstance(exc, httpx.TimeoutException) else "connection error"
        return RequestRecord(
            at=at,
            purpose=purpose,
            method=method,
            url=url,
            signed_url=signed_url,
            params=params,
            headers=headers,
            status_code=None,
            body="",
            content_type="",
            error=f"{kind}: {exc!r}",
        )
