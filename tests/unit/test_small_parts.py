"""Small pure parts: roles, keys, the TTL cache, settings, form parsing, the key hash, the clock."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone

import pytest

from chalicelib.auth.roles import Principal, Role
from chalicelib.config import load_settings
from chalicelib.store import keys
from chalicelib.store.api_keys import hash_key
from chalicelib.store.cache import TTLCache
from chalicelib.voice.params import BadWebhook, parse_form
from tests.support import Clock


def test_roles_are_ordered_and_parsed() -> None:
    admin = Principal("u", "acc", Role.ADMIN, None)
    assert admin.may(Role.AGENT) and admin.may(Role.ADMIN) and not admin.may(Role.SUPER_ADMIN)
    assert Role.parse("super_admin") is Role.SUPER_ADMIN
    with pytest.raises(ValueError, match="unknown role"):
        Role.parse("owner")


def test_tenant_keys_start_with_the_account() -> None:
    assert keys.account_pk("acc_1") == "ACCT#acc_1"
    assert keys.calls_by_day_pk("acc_1", "20261121") == "ACCT#acc_1#DAY#20261121"
    assert keys.api_key_sk("pub_1", "key_2") == "APIKEY#pub_1#key_2"
    assert keys.api_key_sk("pub_1").startswith("APIKEY#pub_1#")
    assert keys.new_id("acc") != keys.new_id("acc")


def test_ttl_cache_expires_and_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr("chalicelib.store.cache.time.monotonic", lambda: now[0])
    cache: TTLCache[str, int | None] = TTLCache(ttl_seconds=10, max_entries=2)
    cache.put("a", 1)
    cache.put("miss", None)
    assert cache.get("a") == (True, 1)
    assert cache.get("miss") == (True, None)  # negative answers are cached too
    now[0] += 11
    assert cache.get("a") == (False, None)
    cache.put("b", 2)
    cache.put("c", 3)
    cache.put("d", 4)  # over the bound: starts afresh rather than growing
    assert cache.get("b") == (False, None) and cache.get("d") == (True, 4)


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://abc.execute-api.us-east-1.amazonaws.com/api/")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("COGNITO_USER_POOL_ID", "eu-west-1_pool")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_COGNITO_IDP", raising=False)
    monkeypatch.delenv("COGNITO_JWKS_URL", raising=False)
    settings = load_settings()
    assert settings.public_base_url == "https://abc.execute-api.us-east-1.amazonaws.com/api"
    assert settings.cognito_jwks_url == (
        "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_pool/.well-known/jwks.json"
    )
    assert settings.cognito_issuer == "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_pool"
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")
    local = load_settings()
    assert local.cognito_jwks_url == "http://127.0.0.1:5000/eu-west-1_pool/.well-known/jwks.json"
    assert local.dynamodb_endpoint == "http://127.0.0.1:5000"
    assert local.cognito_issuer == settings.cognito_issuer


def test_form_parsing_keeps_blanks_and_refuses_junk() -> None:
    assert parse_form(b"A=1&B=&C=%2B1", 100) == {"A": "1", "B": "", "C": "+1"}
    assert parse_form(b"", 100) == {}
    with pytest.raises(BadWebhook, match="over"):
        parse_form(b"A=" + b"x" * 200, 100)
    with pytest.raises(BadWebhook):
        parse_form(b"\xff\xfe", 100)
    with pytest.raises(BadWebhook):
        parse_form(b"novalue", 100)


def test_api_keys_are_stored_as_sha256() -> None:
    assert hash_key("ppk_secret") == hashlib.sha256(b"ppk_secret").hexdigest()
    assert hash_key("ppk_secret") != hash_key("ppk_secreT")


def test_the_clock_is_set_once_for_every_module_that_reads_it(clock: Clock) -> None:
    from chalicelib.bidding import auction  # imported utcnow by name before the clock was set
    from chalicelib.clock import timestamp, utcnow

    moment = datetime(2026, 11, 21, 9, 30, tzinfo=timezone(timedelta(hours=-5)))
    clock.set(moment)
    assert utcnow() == auction.utcnow() == moment and utcnow().tzinfo is UTC
    assert timestamp() == moment.timestamp()
    assert clock.advance(timedelta(minutes=1)) == auction.utcnow() == moment + timedelta(minutes=1)
    with pytest.raises(ValueError, match="aware"):
        clock.set(datetime(2026, 11, 21, 9, 30))  # a naive time would not compare with stored ones
    clock.run()
    assert abs(utcnow() - datetime.now(UTC)) < timedelta(seconds=5)
