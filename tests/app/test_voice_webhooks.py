"""The CPaaS webhooks: signed, parsed, recorded once, and never answered with an error."""

from __future__ import annotations

import json

import pytest
from chalice.test import Client

from chalicelib.store import calls as call_store
from chalicelib.store import keys
from tests.support import FORM, call_params, signed_form
from tests.support.app import (
    PUBLIC_BASE_URL,
    Platform,
    api,
    is_fallback,
    new_sid,
    post_signed,
    stored,
    twiml,
    verbs,
)

DEMO_NUMBER = "+18005550100"


def test_signed_inbound_call_is_recorded_for_the_number_owner_and_greeted(
    client: Client, platform: Platform
) -> None:
    # Given a signed webhook for a call to the demo account's tracking number
    sid = new_sid()
    params = call_params(sid, "+14155550123", DEMO_NUMBER, FromState="CA", FromZip="94105")
    # When the CPaaS posts it
    root = twiml(post_signed(client, platform, "/voice/inbound", params))
    # Then the caller is greeted and the call is recorded under the owning account
    assert verbs(root) == ["Say", "Hangup"]
    assert "Demo Networks" in (root.find("Say").text or "")  # type: ignore[union-attr]
    item = stored(sid)
    assert item is not None
    assert item.account_id == "acc_demo"
    assert (item.direction, item.from_number, item.to_number) == (
        "inbound",
        "+14155550123",
        DEMO_NUMBER,
    )
    assert item.status == "ringing"
    assert item.gsi1pk == keys.calls_by_day_pk("acc_demo", keys.day_of(item.started_at))
    assert call_store.get_call("acc_demo", sid) is not None


def test_retried_inbound_webhook_does_not_rewrite_the_call(
    client: Client, platform: Platform
) -> None:
    sid = new_sid()
    params = call_params(sid, "+14155550124", DEMO_NUMBER)
    twiml(post_signed(client, platform, "/voice/inbound", params))
    first = stored(sid)
    assert first is not None
    # When the CPaaS retries the same webhook
    twiml(post_signed(client, platform, "/voice/inbound", params))
    # Then the record is unchanged
    again = stored(sid)
    assert again is not None and again.started_at == first.started_at


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(FORM, id="unsigned"),
        pytest.param({**FORM, "X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"}, id="wrong-signature"),
    ],
)
def test_unsigned_or_forged_webhook_is_refused_and_writes_nothing(
    client: Client, headers: dict[str, str]
) -> None:
    sid = new_sid()
    from urllib.parse import urlencode

    reply = client.http.post(
        "/voice/inbound",
        headers=headers,
        body=urlencode(call_params(sid, "+14155550125", DEMO_NUMBER)),
    )
    assert reply.status_code == 403
    assert stored(sid) is None


def test_signature_over_other_parameters_or_url_is_refused(
    client: Client, platform: Platform
) -> None:
    sid = new_sid()
    params = call_params(sid, "+14155550126", DEMO_NUMBER)
    # Signed for another URL (no API stage prefix): refused
    headers, body = signed_form(
        platform.auth_token, "https://hooks.example.test/voice/inbound", params
    )
    assert client.http.post("/voice/inbound", headers=headers, body=body).status_code == 403
    # Signed, then a parameter changed in transit: refused
    headers, _ = signed_form(platform.auth_token, PUBLIC_BASE_URL + "/voice/inbound", params)
    from urllib.parse import urlencode

    tampered = urlencode({**params, "From": "+14155559999"})
    assert client.http.post("/voice/inbound", headers=headers, body=tampered).status_code == 403
    assert stored(sid) is None


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"CallSid": ""}, "missing CallSid"),
        ({"From": ""}, "missing From"),
        ({"To": ""}, "missing To"),
        ({"CallSid": "not-a-sid"}, "malformed CallSid"),
        ({"From": "4155550123"}, "From not E.164"),
        ({"To": "1-800-555-0100"}, "To not E.164"),
        ({"To": "+1"}, "impossible To"),
    ],
)
def test_bad_parameters_get_fallback_twiml_and_write_nothing(
    client: Client, platform: Platform, change: dict[str, str], reason: str
) -> None:
    sid = new_sid()
    params = {**call_params(sid, "+14155550127", DEMO_NUMBER), **change}
    params = {k: v for k, v in params.items() if v != ""}
    root = twiml(post_signed(client, platform, "/voice/inbound", params))
    assert is_fallback(root), reason
    assert stored(sid) is None


@pytest.mark.parametrize(
    ("caller", "recorded"),
    [
        ("Anonymous", "anonymous"),
        ("+266696687", "anonymous"),  # Twilio's placeholder for an anonymous caller
        ("+7378742833", "anonymous"),  # ... for a restricted one
        ("client:agent_7", "client:agent_7"),  # a browser client of ours
        ("sip:1001@edge.example.com", "sip:1001@edge.example.com"),
    ],
)
def test_withheld_and_client_callers_are_accepted(
    client: Client, platform: Platform, caller: str, recorded: str
) -> None:
    sid = new_sid()
    root = twiml(
        post_signed(client, platform, "/voice/inbound", call_params(sid, caller, DEMO_NUMBER))
    )
    assert not is_fallback(root)
    item = stored(sid)
    assert item is not None
    assert item.from_number == recorded


def test_auth_token_unavailable_gets_fallback_and_writes_nothing(
    client: Client, platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses

    from chalicelib.config import get_settings
    from chalicelib.voice import webhook

    # Given the token's SSM parameter cannot be read
    broken = dataclasses.replace(
        get_settings(), twilio_auth_token=None, twilio_auth_token_param="/ppc/missing/token"
    )
    monkeypatch.setattr(webhook, "get_settings", lambda: broken)
    sid = new_sid()
    reply = post_signed(
        client, platform, "/voice/inbound", call_params(sid, "+14155550138", DEMO_NUMBER)
    )
    # Then the caller hears the fallback (not a 5xx) and nothing is recorded
    assert is_fallback(twiml(reply))
    assert stored(sid) is None


def test_webhook_for_another_cpaas_account_is_refused(
    client: Client, platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses

    from chalicelib.config import get_settings
    from chalicelib.voice import webhook

    ours = dataclasses.replace(get_settings(), twilio_account_sid="AC" + "9" * 32)
    monkeypatch.setattr(webhook, "get_settings", lambda: ours)
    sid = new_sid()
    params = call_params(sid, "+14155550139", DEMO_NUMBER)  # AccountSid AC000...
    assert post_signed(client, platform, "/voice/inbound", params).status_code == 403
    assert stored(sid) is None
    mine = {**params, "AccountSid": "AC" + "9" * 32}
    assert not is_fallback(twiml(post_signed(client, platform, "/voice/inbound", mine)))


def test_a_number_added_after_a_miss_rings_at_once(
    client: Client, platform: Platform, admin_token: str
) -> None:
    number = "+18005550177"
    first = twiml(
        post_signed(
            client, platform, "/voice/inbound", call_params(new_sid(), "+14155550140", number)
        )
    )
    assert "not in service" in (first.find("Say").text or "")  # type: ignore[union-attr]
    added = api(
        client, "POST", "/api/v1/numbers", admin_token, {"number": number, "greeting": "Hi there"}
    )
    assert added.status_code == 201
    sid = new_sid()
    second = twiml(
        post_signed(client, platform, "/voice/inbound", call_params(sid, "+14155550140", number))
    )
    assert second.find("Say").text == "Hi there"  # type: ignore[union-attr]
    assert stored(sid) is not None


def test_call_to_a_number_nobody_owns_hears_not_in_service(
    client: Client, platform: Platform
) -> None:
    sid = new_sid()
    root = twiml(
        post_signed(
            client, platform, "/voice/inbound", call_params(sid, "+14155550128", "+18885550000")
        )
    )
    assert "not in service" in (root.find("Say").text or "")  # type: ignore[union-attr]
    assert stored(sid) is None


def test_oversized_body_gets_fallback_and_writes_nothing(
    client: Client, platform: Platform
) -> None:
    sid = new_sid()
    params = call_params(sid, "+14155550129", DEMO_NUMBER, Padding="x" * 20_000)
    root = twiml(post_signed(client, platform, "/voice/inbound", params))
    assert is_fallback(root)
    assert stored(sid) is None


def test_malformed_form_body_gets_fallback(client: Client) -> None:
    reply = client.http.post(
        "/voice/inbound", headers={**FORM, "X-Twilio-Signature": "x"}, body=b"\xff\xfe=%%%&&"
    )
    assert is_fallback(twiml(reply))


def test_wrong_content_type_is_refused(client: Client, platform: Platform) -> None:
    sid = new_sid()
    reply = client.http.post(
        "/voice/inbound",
        headers={"Content-Type": "application/json"},
        body=json.dumps({"CallSid": sid}),
    )
    assert reply.status_code == 415
    assert stored(sid) is None


def test_a_failing_handler_answers_fallback_twiml_not_an_error(
    client: Client, platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the data layer fails mid-call
    def explode(*_: object, **__: object) -> bool:
        raise RuntimeError("DynamoDB is on fire")

    monkeypatch.setattr(call_store, "record_new_call", explode)
    sid = new_sid()
    # When a call arrives
    reply = post_signed(
        client, platform, "/voice/inbound", call_params(sid, "+14155550130", DEMO_NUMBER)
    )
    # Then the caller hears the polite fallback, with a 200
    assert is_fallback(twiml(reply))


def test_final_status_is_recorded_once(client: Client, platform: Platform) -> None:
    sid = new_sid()
    twiml(
        post_signed(
            client, platform, "/voice/inbound", call_params(sid, "+14155550131", DEMO_NUMBER)
        )
    )
    # When the final status arrives, and is then retried with other numbers
    done = {"CallSid": sid, "CallStatus": "completed", "CallDuration": "95"}
    assert verbs(twiml(post_signed(client, platform, "/voice/status", done))) == []
    retry = {**done, "CallDuration": "3", "CallStatus": "failed"}
    twiml(post_signed(client, platform, "/voice/status", retry))
    # Then the first one stands
    item = stored(sid)
    assert item is not None
    assert (item.status, item.duration_seconds) == ("completed", 95)
    assert item.ended_at is not None


def test_progress_status_then_final(client: Client, platform: Platform) -> None:
    sid = new_sid()
    twiml(
        post_signed(
            client, platform, "/voice/inbound", call_params(sid, "+14155550132", DEMO_NUMBER)
        )
    )
    twiml(
        post_signed(
            client, platform, "/voice/status", {"CallSid": sid, "CallStatus": "in-progress"}
        )
    )
    assert stored(sid).status == "in-progress"  # type: ignore[union-attr]
    twiml(
        post_signed(
            client,
            platform,
            "/voice/status",
            {"CallSid": sid, "CallStatus": "busy", "CallDuration": "0"},
        )
    )
    # A late progress callback cannot reopen a finished call
    twiml(post_signed(client, platform, "/voice/status", {"CallSid": sid, "CallStatus": "ringing"}))
    assert stored(sid).status == "busy"  # type: ignore[union-attr]


def test_status_callback_for_an_unknown_call_writes_nothing(
    client: Client, platform: Platform
) -> None:
    sid = new_sid()
    done = {"CallSid": sid, "CallStatus": "completed", "CallDuration": "10"}
    assert twiml(post_signed(client, platform, "/voice/status", done)).tag == "Response"
    assert stored(sid) is None


@pytest.mark.parametrize(
    "change",
    [{"CallStatus": "exploded"}, {"CallDuration": "-4"}, {"CallDuration": "ten"}],
    ids=["unknown-status", "negative-duration", "non-numeric-duration"],
)
def test_invalid_status_callbacks_change_nothing(
    client: Client, platform: Platform, change: dict[str, str]
) -> None:
    sid = new_sid()
    twiml(
        post_signed(
            client, platform, "/voice/inbound", call_params(sid, "+14155550136", DEMO_NUMBER)
        )
    )
    before = stored(sid)
    bad = {"CallSid": sid, "CallStatus": "completed", "CallDuration": "10", **change}
    assert is_fallback(twiml(post_signed(client, platform, "/voice/status", bad)))
    after = stored(sid)
    assert before is not None and after is not None
    assert (after.status, after.ended_at, after.updated_at) == ("ringing", None, before.updated_at)


def test_late_progress_callback_does_not_move_a_call_backwards(
    client: Client, platform: Platform
) -> None:
    sid = new_sid()
    twiml(
        post_signed(
            client, platform, "/voice/inbound", call_params(sid, "+14155550137", DEMO_NUMBER)
        )
    )
    progress = {"CallSid": sid, "CallStatus": "in-progress"}
    twiml(post_signed(client, platform, "/voice/status", progress))
    twiml(post_signed(client, platform, "/voice/status", {"CallSid": sid, "CallStatus": "ringing"}))
    assert stored(sid).status == "in-progress"  # type: ignore[union-attr]


def test_fallback_url_answers_polite_message(client: Client, platform: Platform) -> None:
    root = twiml(
        post_signed(
            client, platform, "/voice/fallback", call_params(new_sid(), "+14155550133", DEMO_NUMBER)
        )
    )
    assert is_fallback(root)


def test_signed_url_with_query_string_is_accepted_only_as_signed(
    client: Client, platform: Platform
) -> None:
    sid = new_sid()
    params = call_params(sid, "+14155550134", DEMO_NUMBER)
    url = PUBLIC_BASE_URL + "/voice/inbound?attempt=2&lane=b"
    headers, body = signed_form(platform.auth_token, url, params)
    ok = client.http.post("/voice/inbound?attempt=2&lane=b", headers=headers, body=body)
    assert not is_fallback(twiml(ok))
    moved = client.http.post("/voice/inbound?attempt=3&lane=b", headers=headers, body=body)
    assert moved.status_code == 403


def test_absolute_urls_keep_the_stage_prefix(platform: Platform) -> None:
    from chalicelib.config import absolute_url

    assert absolute_url("/voice/status") == PUBLIC_BASE_URL + "/voice/status"
    assert absolute_url("voice/status") == PUBLIC_BASE_URL + "/voice/status"


def test_log_lines_carry_the_call_and_account(
    client: Client, platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io
    import logging

    from chalicelib.observability import logger

    # Given the JSON log stream captured, and the data layer failing after attribution
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logger.registered_formatter)
    logger.addHandler(handler)

    def explode(*_: object, **__: object) -> bool:
        raise RuntimeError("write failed")

    monkeypatch.setattr(call_store, "record_new_call", explode)
    sid = new_sid()
    try:
        post_signed(
            client, platform, "/voice/inbound", call_params(sid, "+14155550135", DEMO_NUMBER)
        )
    finally:
        logger.removeHandler(handler)
    # Then the error line names the call and the account, as JSON
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    failure = next(line for line in lines if line["level"] == "ERROR")
    assert failure["call_sid"] == sid
    assert failure["account_id"] == "acc_demo"
    assert failure["route"] == "/voice/inbound"
    assert "write failed" in failure["exception"]
