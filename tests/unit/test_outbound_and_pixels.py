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
    target = outbound.check_url("http://localhost:9/hook?x=1")
    assert target.host == "localhost"
    assert target.connect_url in {"http://127.0.0.1:9/hook?x=1", "http://[::1]:9/hook?x=1"}


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2001:4860:4860::8888", True),
        ("10.0.0.1", False),
        ("::ffff:169.254.169.254", False),  # IPv4-mapped
        ("64:ff9b::a9fe:a9fe", False),  # NAT64 of 169.254.169.254
        ("2002:a9fe:a9fe::", False),  # 6to4 of 169.254.169.254
        ("::127.0.0.1", False),  # IPv4-compatible loopback
        ("64:ff9b::808:808", True),  # NAT64 of 8.8.8.8
    ],
)
def test_addresses_hidden_in_ipv6_are_judged_by_their_ipv4(address: str, public: bool) -> None:
    import ipaddress

    assert outbound.is_public(ipaddress.ip_address(address)) is public


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
