"""The SSRF guard on outbound calls, and pixel URL templates and signatures."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from chalicelib import outbound
from chalicelib.voice.pixels import render_url, signature


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/hook",  # not https
        "https://127.0.0.1/hook",
        "https://10.1.2.3/hook",
        "https://169.254.169.254/latest/meta-data/",  # cloud metadata
        "https://[::1]/hook",
        "https://localhost/hook",
        "https://user:pass@example.com/hook",
        "ftp://example.com/x",
    ],
)
def test_private_or_unsafe_urls_are_refused(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OUTBOUND_ALLOW_PRIVATE", raising=False)
    with pytest.raises(outbound.Refused):
        outbound.check_url(url)


def test_loopback_is_allowed_only_when_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OUTBOUND_ALLOW_PRIVATE", "true")
    assert outbound.check_url("http://127.0.0.1:9/hook") == "127.0.0.1"


def test_url_tokens_are_filled_and_encoded() -> None:
    data = {
        "call_sid": "CA1",
        "payout_cents": 2500,
        "converted": True,
        "tags": {"zip": "90210"},
        "source": "Google Ads",
    }
    url = render_url(
        "https://t.example.com/p?c={call_sid}&p={payout_cents}&ok={converted}&z={tag.zip}"
        "&s={source}&x={unknown}",
        data,
    )
    assert url == "https://t.example.com/p?c=CA1&p=2500&ok=true&z=90210&s=Google%20Ads&x="


def test_signature_is_hmac_sha256_over_timestamp_and_body() -> None:
    expected = hmac.new(b"s3cret-s3cret-16", b"1700000000.{}", hashlib.sha256).hexdigest()
    assert signature("s3cret-s3cret-16", 1700000000, b"{}") == f"t=1700000000,v1={expected}"
