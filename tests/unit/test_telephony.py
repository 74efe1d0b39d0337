"""Telephony: Twilio request building through the real SDK, the fake, and the factory."""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from twilio.http import HttpClient
from twilio.http.response import Response
from twilio.rest import Client

import chalicelib.telephony as telephony_pkg
from chalicelib.telephony import (
    AvailableNumber,
    FakeTelephony,
    NumberUnavailable,
    OwnedNumber,
    PlacedCall,
    Telephony,
    TelephonyConfigError,
    TelephonyError,
    get_telephony,
    reset_telephony,
)
from chalicelib.telephony.twilio_rest import TwilioTelephony

SID = "AC" + "0123456789abcdef0123456789abcdef"
TOKEN = "s3cr3t-auth-token-fedcba9876543210"
ACCOUNT = f"/2010-04-01/Accounts/{SID}"
VOICE = "https://hooks.example.test/api/voice/inbound"
STATUS = "https://hooks.example.test/api/voice/status"
FALLBACK = "https://hooks.example.test/api/voice/fallback"
NUMBER_SID = "PN" + "aaaabbbbccccddddeeeeffff00001111"
CALL_SID = "CA" + "22223333444455556666777788889999"
SID_PATTERN = re.compile(r"\A(PN|CA)[0-9a-f]{32}\Z")


# --- a stand-in for the SDK's HTTP transport: the SDK builds real requests, we answer them


@dataclass
class Sent:
    method: str
    url: str
    params: dict[str, object]
    data: dict[str, object]
    auth: tuple[str, str] | None

    @property
    def path(self) -> str:
        return urlsplit(self.url).path


@dataclass
class Canned:
    status: int
    body: Any = None  # JSON-serialisable; None for an empty body
    raises: Exception | None = None


class FakeHttpClient(HttpClient):  # type: ignore[misc]
    def __init__(self, *answers: Canned) -> None:
        super().__init__(logger=logging.getLogger("test.twilio"), is_async=False)
        self.sent: list[Sent] = []
        self._answers = list(answers)

    def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        self.sent.append(Sent(method, url, dict(params or {}), dict(data or {}), auth))
        answer = self._answers.pop(0)
        if answer.raises is not None:
            raise answer.raises
        text = "" if answer.body is None else json.dumps(answer.body)
        return Response(answer.status, text)


def twilio_with(*answers: Canned) -> tuple[TwilioTelephony, FakeHttpClient]:
    http = FakeHttpClient(*answers)
    client = Client(SID, TOKEN, http_client=http)
    return TwilioTelephony(SID, TOKEN, client=client), http


def available_json(
    number: str,
    friendly: str,
    locality: str | None,
    region: str | None,
    postal_code: str | None,
    capabilities: dict[str, bool],
) -> dict[str, Any]:
    return {
        "friendly_name": friendly,
        "phone_number": number,
        "lata": "722" if locality else None,
        "locality": locality,
        "rate_center": "SNFC CA01" if locality else None,
        "latitude": "37.788100" if locality else None,
        "longitude": "-122.404000" if locality else None,
        "region": region,
        "postal_code": postal_code,
        "iso_country": "US",
        "address_requirements": "none",
        "beta": False,
        "capabilities": capabilities,
    }


def incoming_json(
    *, voice_url: str = VOICE, friendly_name: str = "(415) 555-0100"
) -> dict[str, Any]:
    return {
        "account_sid": SID,
        "address_requirements": "none",
        "api_version": "2010-04-01",
        "beta": False,
        "capabilities": {"voice": True, "sms": True, "mms": True, "fax": False},
        "date_created": "Thu, 30 Jul 2015 23:19:04 +0000",
        "date_updated": "Thu, 30 Jul 2015 23:19:04 +0000",
        "friendly_name": friendly_name,
        "identity_sid": None,
        "phone_number": "+14155550100",
        "origin": "twilio",
        "sid": NUMBER_SID,
        "sms_application_sid": "",
        "sms_url": "",
        "status_callback": STATUS,
        "status_callback_method": "POST",
        "trunk_sid": None,
        "uri": f"{ACCOUNT}/IncomingPhoneNumbers/{NUMBER_SID}.json",
        "voice_application_sid": "",
        "voice_caller_id_lookup": False,
        "voice_fallback_method": "POST",
        "voice_fallback_url": FALLBACK,
        "voice_method": "POST",
        "voice_url": voice_url,
        "status": "in-use",
    }


def error_json(code: int, message: str, status: int = 400) -> dict[str, Any]:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


WEBHOOK_FIELDS = {
    "VoiceUrl": VOICE,
    "VoiceMethod": "POST",
    "StatusCallback": STATUS,
    "StatusCallbackMethod": "POST",
    "VoiceFallbackUrl": FALLBACK,
    "VoiceFallbackMethod": "POST",
}


# --- TwilioTelephony


def test_local_search_by_area_code_asks_for_voice_numbers_in_that_area() -> None:
    # Given Twilio offers two San Francisco numbers
    body = {
        "available_phone_numbers": [
            available_json(
                "+14155550100",
                "(415) 555-0100",
                "San Francisco",
                "CA",
                "94105",
                {"voice": True, "SMS": True, "MMS": False},
            ),
            available_json(
                "+14155550101",
                "(415) 555-0101",
                "San Francisco",
                "CA",
                "94105",
                {"voice": True, "SMS": False, "MMS": False, "fax": False},
            ),
        ],
        "uri": f"{ACCOUNT}/AvailablePhoneNumbers/US/Local.json?AreaCode=415&PageSize=5",
    }
    telephony, http = twilio_with(Canned(200, body))

    # When we search the 415 area code
    found = telephony.search_numbers(area_code="415", limit=5)

    # Then the SDK sent one authenticated GET for local, voice-enabled numbers in 415
    (sent,) = http.sent
    assert sent.method == "GET"
    assert sent.path == f"{ACCOUNT}/AvailablePhoneNumbers/US/Local.json"
    assert sent.params["AreaCode"] == "415"
    assert sent.params["VoiceEnabled"] == "true"
    assert sent.params["PageSize"] == 5
    assert "Contains" not in sent.params
    assert sent.auth == (SID, TOKEN)
    # And the offers come back as plain values with lower-case capabilities
    assert found == [
        AvailableNumber(
            e164="+14155550100",
            friendly_name="(415) 555-0100",
            locality="San Francisco",
            region="CA",
            postal_code="94105",
            iso_country="US",
            capabilities=frozenset({"voice", "sms"}),
        ),
        AvailableNumber(
            e164="+14155550101",
            friendly_name="(415) 555-0101",
            locality="San Francisco",
            region="CA",
            postal_code="94105",
            iso_country="US",
            capabilities=frozenset({"voice"}),
        ),
    ]


def test_toll_free_search_uses_the_toll_free_list_and_passes_the_pattern() -> None:
    # Given Twilio offers one toll-free number, which has no locality
    body = {
        "available_phone_numbers": [
            available_json(
                "+18885550142", "(888) 555-0142", None, None, None, {"voice": True, "SMS": True}
            )
        ],
        "uri": f"{ACCOUNT}/AvailablePhoneNumbers/US/TollFree.json",
    }
    telephony, http = twilio_with(Canned(200, body))

    # When we search toll-free numbers containing 0142, in lower-case country spelling
    found = telephony.search_numbers(country="us", toll_free=True, contains="0142")

    # Then the TollFree list was asked, voice-enabled, with the pattern and the default limit
    (sent,) = http.sent
    assert sent.method == "GET"
    assert sent.path == f"{ACCOUNT}/AvailablePhoneNumbers/US/TollFree.json"
    assert sent.params["Contains"] == "0142"
    assert sent.params["VoiceEnabled"] == "true"
    assert sent.params["PageSize"] == 20
    assert "AreaCode" not in sent.params
    assert found == [
        AvailableNumber(
            e164="+18885550142",
            friendly_name="(888) 555-0142",
            locality=None,
            region=None,
            postal_code=None,
            iso_country="US",
            capabilities=frozenset({"voice", "sms"}),
        )
    ]


def test_purchase_points_voice_status_and_fallback_urls_at_us_with_post() -> None:
    # Given Twilio will create the number
    telephony, http = twilio_with(Canned(201, incoming_json(friendly_name="Campaign 7")))

    # When we buy it
    owned = telephony.purchase_number(
        "+14155550100",
        voice_url=VOICE,
        status_callback=STATUS,
        fallback_url=FALLBACK,
        friendly_name="Campaign 7",
    )

    # Then one POST to IncomingPhoneNumbers carried every webhook with method POST
    (sent,) = http.sent
    assert sent.method == "POST"
    assert sent.path == f"{ACCOUNT}/IncomingPhoneNumbers.json"
    assert sent.data == {
        "PhoneNumber": "+14155550100",
        "FriendlyName": "Campaign 7",
        **WEBHOOK_FIELDS,
    }
    # And the owned number reflects what Twilio stored
    assert owned == OwnedNumber(
        sid=NUMBER_SID,
        e164="+14155550100",
        friendly_name="Campaign 7",
        voice_url=VOICE,
        status_callback=STATUS,
        voice_fallback_url=FALLBACK,
    )


def test_purchase_without_a_friendly_name_leaves_twilios_default() -> None:
    telephony, http = twilio_with(Canned(201, incoming_json()))

    owned = telephony.purchase_number(
        "+14155550100", voice_url=VOICE, status_callback=STATUS, fallback_url=FALLBACK
    )

    assert "FriendlyName" not in http.sent[0].data
    assert owned.friendly_name == "(415) 555-0100"


def test_configure_updates_the_webhooks_and_unbinds_any_twiml_app() -> None:
    # Given an owned number Twilio will update
    new_voice = VOICE + "?v=2"
    telephony, http = twilio_with(Canned(200, incoming_json(voice_url=new_voice)))

    # When we re-point it
    owned = telephony.configure_number(
        NUMBER_SID, voice_url=new_voice, status_callback=STATUS, fallback_url=FALLBACK
    )

    # Then the number's own resource was POSTed with all webhooks and no TwiML App
    (sent,) = http.sent
    assert sent.method == "POST"
    assert sent.path == f"{ACCOUNT}/IncomingPhoneNumbers/{NUMBER_SID}.json"
    assert sent.data == {**WEBHOOK_FIELDS, "VoiceUrl": new_voice, "VoiceApplicationSid": ""}
    assert owned.voice_url == new_voice


def test_release_deletes_the_number_and_tolerates_one_already_gone() -> None:
    # Given the first delete succeeds and the retry finds nothing
    gone = error_json(20404, f"The requested resource {ACCOUNT}/... was not found", 404)
    telephony, http = twilio_with(Canned(204), Canned(404, gone))

    # When we release twice
    telephony.release_number(NUMBER_SID)
    telephony.release_number(NUMBER_SID)

    # Then both were DELETEs of the number, and neither raised
    assert [(s.method, s.path) for s in http.sent] == [
        ("DELETE", f"{ACCOUNT}/IncomingPhoneNumbers/{NUMBER_SID}.json")
    ] * 2


def test_release_failing_otherwise_raises() -> None:
    telephony, _ = twilio_with(Canned(500, error_json(20500, "Internal Server Error", 500)))

    with pytest.raises(TelephonyError) as caught:
        telephony.release_number(NUMBER_SID)

    assert (caught.value.status, caught.value.code) == (500, 20500)


@pytest.mark.parametrize("machine_detection", [False, True])
def test_place_call_posts_the_call_with_post_webhooks(machine_detection: bool) -> None:
    # Given Twilio queues the call
    call = {"sid": CALL_SID, "account_sid": SID, "status": "queued", "direction": "outbound-api"}
    telephony, http = twilio_with(Canned(201, call))

    # When we place it
    placed = telephony.place_call(
        to="+14155550123",
        from_="+14155550100",
        url=VOICE,
        status_callback=STATUS,
        timeout=20,
        machine_detection=machine_detection,
    )

    # Then one POST to Calls carried the parties and POST webhooks, final status only
    (sent,) = http.sent
    assert sent.method == "POST"
    assert sent.path == f"{ACCOUNT}/Calls.json"
    expected: dict[str, object] = {
        "To": "+14155550123",
        "From": "+14155550100",
        "Url": VOICE,
        "Method": "POST",
        "StatusCallback": STATUS,
        "StatusCallbackMethod": "POST",
        "Timeout": 20,
    }
    if machine_detection:
        expected["MachineDetection"] = "Enable"
    assert sent.data == expected
    assert placed == PlacedCall(sid=CALL_SID, status="queued")


def test_a_number_taken_before_purchase_raises_number_unavailable() -> None:
    # Given someone else bought the number after our search
    taken = error_json(21422, "Phone number +14155550100 is not available")
    telephony, _ = twilio_with(Canned(400, taken))

    # When we try to buy it
    with pytest.raises(NumberUnavailable) as caught:
        telephony.purchase_number(
            "+14155550100", voice_url=VOICE, status_callback=STATUS, fallback_url=FALLBACK
        )

    # Then the error says so, with Twilio's status and code
    assert isinstance(caught.value, TelephonyError)
    assert (caught.value.status, caught.value.code) == (400, 21422)
    assert "not available" in str(caught.value)


def test_other_rest_errors_are_telephony_errors_but_not_number_unavailable() -> None:
    telephony, _ = twilio_with(Canned(400, error_json(21421, "PhoneNumber is invalid")))

    with pytest.raises(TelephonyError) as caught:
        telephony.purchase_number(
            "+1415", voice_url=VOICE, status_callback=STATUS, fallback_url=FALLBACK
        )

    assert not isinstance(caught.value, NumberUnavailable)
    assert (caught.value.status, caught.value.code) == (400, 21421)
    assert "PhoneNumber is invalid" in str(caught.value)


def test_failed_search_is_a_telephony_error_with_status_and_code() -> None:
    # Given the list endpoint refuses the area code (the SDK's page path raises differently)
    telephony, _ = twilio_with(Canned(400, error_json(21452, "No numbers found in area code")))

    with pytest.raises(TelephonyError) as caught:
        telephony.search_numbers(area_code="999")

    assert (caught.value.status, caught.value.code) == (400, 21452)
    assert "No numbers found" in str(caught.value)


def test_rfc9457_errors_are_telephony_errors() -> None:
    problem = {
        "type": "https://www.twilio.com/docs/errors/20429",
        "title": "Too Many Requests",
        "status": 429,
        "code": 20429,
        "detail": "slow down",
    }
    telephony, _ = twilio_with(Canned(429, problem))

    with pytest.raises(TelephonyError) as caught:
        telephony.place_call(
            to="+14155550123", from_="+14155550100", url=VOICE, status_callback=STATUS
        )

    assert (caught.value.status, caught.value.code) == (429, 20429)
    assert "slow down" in str(caught.value)


def test_network_failures_are_telephony_errors_without_status() -> None:
    down = requests.ConnectionError(f"https://{SID}:{TOKEN}@api.twilio.com/ refused")
    telephony, _ = twilio_with(Canned(0, raises=down))

    with pytest.raises(TelephonyError) as caught:
        telephony.release_number(NUMBER_SID)

    assert (caught.value.status, caught.value.code) == (None, None)
    assert TOKEN not in str(caught.value)


@pytest.mark.parametrize(
    "answer",
    [
        # An error body echoing our credentials back (a misbehaving proxy, say)
        Canned(401, error_json(20003, f"Authenticate: {SID}:{TOKEN} rejected", 401)),
        Canned(400, error_json(21422, f"number not available for {TOKEN}")),
        Canned(503, {"unexpected": f"gateway {TOKEN}"}),
    ],
)
def test_credentials_never_appear_in_error_text(answer: Canned) -> None:
    telephony, _ = twilio_with(answer)

    with pytest.raises(TelephonyError) as caught:
        telephony.purchase_number(
            "+14155550100", voice_url=VOICE, status_callback=STATUS, fallback_url=FALLBACK
        )

    for text in (str(caught.value), repr(caught.value), repr(telephony)):
        assert TOKEN not in text
        assert SID not in text


def test_twilio_backend_needs_both_credentials() -> None:
    with pytest.raises(TelephonyConfigError):
        TwilioTelephony(SID, "")


# --- FakeTelephony


def buy(fake: FakeTelephony, e164: str) -> OwnedNumber:
    return fake.purchase_number(
        e164, voice_url=VOICE, status_callback=STATUS, fallback_url=FALLBACK
    )


def test_both_backends_satisfy_the_protocol() -> None:
    twilio, _ = twilio_with()
    backends: list[Telephony] = [FakeTelephony(), twilio]
    assert all(isinstance(backend, Telephony) for backend in backends)


def test_fake_offers_a_deterministic_inventory_per_area_code() -> None:
    # Given two independent fakes
    first, second = FakeTelephony(), FakeTelephony()

    # When both are searched in 415
    found = first.search_numbers(area_code="415", limit=3)

    # Then they offer the same numbers, in order, with the place filled in
    assert found == second.search_numbers(area_code="415", limit=3)
    assert [n.e164 for n in found] == ["+14155550100", "+14155550101", "+14155550102"]
    assert found[0] == AvailableNumber(
        e164="+14155550100",
        friendly_name="(415) 555-0100",
        locality="San Francisco",
        region="CA",
        postal_code="94105",
        iso_country="US",
        capabilities=frozenset({"voice", "sms", "mms"}),
    )
    # And each area code holds 100 numbers
    assert len(first.search_numbers(area_code="907", limit=500)) == 100


def test_fake_toll_free_search_offers_800_and_888() -> None:
    fake = FakeTelephony()

    all_toll_free = fake.search_numbers(toll_free=True, limit=500)
    only_888 = fake.search_numbers(toll_free=True, area_code="888", limit=2)

    assert {n.e164[:5] for n in all_toll_free} == {"+1800", "+1888"}
    assert len(all_toll_free) == 200
    assert [n.e164 for n in only_888] == ["+18885550100", "+18885550101"]
    assert only_888[0].locality is None
    assert only_888[0].capabilities == frozenset({"voice", "sms"})


def test_fake_search_filters_by_pattern_and_refuses_what_it_cannot_sell() -> None:
    fake = FakeTelephony()

    assert [n.e164 for n in fake.search_numbers(area_code="212", contains="01*7")] == [
        "+12125550107",
        "+12125550117",
        "+12125550127",
        "+12125550137",
        "+12125550147",
        "+12125550157",
        "+12125550167",
        "+12125550177",
        "+12125550187",
        "+12125550197",
    ]
    assert fake.search_numbers(area_code="415", contains="199") == [
        fake.search_numbers(area_code="415", limit=100)[-1]
    ]
    assert fake.search_numbers(country="GB") == []
    assert fake.search_numbers(area_code="800") == []  # not a local area code
    assert fake.search_numbers(area_code="12") == []


def test_fake_purchase_takes_the_number_out_of_inventory() -> None:
    # Given a fake with the 415 inventory
    fake = FakeTelephony()

    # When the first number is bought
    owned = buy(fake, "+14155550100")

    # Then it is owned, with our webhooks and a deterministic PN sid
    assert owned == OwnedNumber(
        sid=owned.sid,
        e164="+14155550100",
        friendly_name="(415) 555-0100",
        voice_url=VOICE,
        status_callback=STATUS,
        voice_fallback_url=FALLBACK,
    )
    assert SID_PATTERN.match(owned.sid)
    assert owned.sid == buy(FakeTelephony(), "+14155550100").sid
    assert fake.owned() == [owned]
    # And it is no longer offered
    assert fake.search_numbers(area_code="415", limit=1)[0].e164 == "+14155550101"


def test_fake_refuses_a_double_purchase_and_numbers_it_never_offered() -> None:
    fake = FakeTelephony()
    buy(fake, "+18005550150")

    with pytest.raises(NumberUnavailable) as caught:
        buy(fake, "+18005550150")
    assert (caught.value.status, caught.value.code) == (400, 21422)
    for never_offered in ("+14155550200", "+14155559999", "+442071838750", "4155550100"):
        with pytest.raises(NumberUnavailable):
            buy(fake, never_offered)
    assert [n.e164 for n in fake.owned()] == ["+18005550150"]


def test_fake_purchase_is_won_by_exactly_one_concurrent_buyer() -> None:
    fake = FakeTelephony()
    results: list[str] = []
    start = threading.Barrier(16)

    def attempt() -> None:
        start.wait()
        try:
            buy(fake, "+13125550100")
            results.append("won")
        except NumberUnavailable:
            results.append("lost")

    threads = [threading.Thread(target=attempt) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results) == ["lost"] * 15 + ["won"]
    assert len(fake.owned()) == 1


def test_fake_configure_and_release() -> None:
    fake = FakeTelephony()
    owned = buy(fake, "+14155550100")

    updated = fake.configure_number(
        owned.sid, voice_url=VOICE + "/2", status_callback=STATUS, fallback_url=FALLBACK
    )
    assert updated.voice_url == VOICE + "/2"
    assert fake.owned() == [updated]

    fake.release_number(owned.sid)
    fake.release_number(owned.sid)  # already gone: still fine, like the Twilio backend
    assert fake.owned() == []
    assert "+14155550100" not in {n.e164 for n in fake.search_numbers(area_code="415")}
    with pytest.raises(TelephonyError) as caught:
        fake.configure_number(
            owned.sid, voice_url=VOICE, status_callback=STATUS, fallback_url=FALLBACK
        )
    assert caught.value.status == 404


def test_fake_records_placed_calls() -> None:
    fake = FakeTelephony()

    first = fake.place_call(
        to="+14155550123", from_="+14155550100", url=VOICE, status_callback=STATUS
    )
    second = fake.place_call(
        to="+14155550123",
        from_="+14155550100",
        url=VOICE,
        status_callback=STATUS,
        timeout=15,
        machine_detection=True,
    )

    assert first.status == second.status == "queued"
    assert SID_PATTERN.match(first.sid) and first.sid.startswith("CA")
    assert first.sid != second.sid
    calls = fake.placed_calls()
    assert [(c.sid, c.timeout, c.machine_detection) for c in calls] == [
        (first.sid, 30, False),
        (second.sid, 15, True),
    ]
    assert (calls[0].to, calls[0].from_, calls[0].url, calls[0].status_callback) == (
        "+14155550123",
        "+14155550100",
        VOICE,
        STATUS,
    )


def test_fake_can_be_told_to_fail_the_next_operation() -> None:
    fake = FakeTelephony()
    fake.fail_next(TelephonyError("CPaaS down", status=503, code=20503))

    with pytest.raises(TelephonyError, match="CPaaS down"):
        fake.search_numbers()
    assert len(fake.search_numbers()) == 20


# --- the factory

TELEPHONY_ENV = (
    "TELEPHONY_BACKEND",
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "TWILIO_AUTH_TOKEN_PARAM",
    "AWS_LAMBDA_FUNCTION_NAME",
)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    for name in TELEPHONY_ENV:
        monkeypatch.delenv(name, raising=False)
    reset_telephony()
    yield monkeypatch
    reset_telephony()


def test_factory_defaults_to_the_fake_without_credentials(clean_env: pytest.MonkeyPatch) -> None:
    assert isinstance(get_telephony(), FakeTelephony)


def test_factory_defaults_to_twilio_with_credentials(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("TWILIO_ACCOUNT_SID", SID)
    clean_env.setenv("TWILIO_AUTH_TOKEN", TOKEN)

    assert isinstance(get_telephony(), TwilioTelephony)


def test_factory_reads_the_token_from_ssm_when_only_the_parameter_is_set(
    clean_env: pytest.MonkeyPatch,
) -> None:
    asked: list[str] = []

    def from_ssm(name: str) -> str:
        asked.append(name)
        return TOKEN

    clean_env.setattr(telephony_pkg, "_token_from_parameter", from_ssm)
    clean_env.setenv("TWILIO_ACCOUNT_SID", SID)
    clean_env.setenv("TWILIO_AUTH_TOKEN_PARAM", "/ppc/twilio/auth-token")

    assert isinstance(get_telephony(), TwilioTelephony)
    assert asked == ["/ppc/twilio/auth-token"]


def test_factory_uses_the_fake_when_asked_even_with_credentials(
    clean_env: pytest.MonkeyPatch,
) -> None:
    clean_env.setenv("TELEPHONY_BACKEND", "Fake")
    clean_env.setenv("TWILIO_ACCOUNT_SID", SID)
    clean_env.setenv("TWILIO_AUTH_TOKEN", TOKEN)

    assert isinstance(get_telephony(), FakeTelephony)


@pytest.mark.parametrize(
    "env",
    [
        {"TELEPHONY_BACKEND": "twilio"},
        {"TELEPHONY_BACKEND": "twilio", "TWILIO_ACCOUNT_SID": SID},
        {"TELEPHONY_BACKEND": "twilio", "TWILIO_AUTH_TOKEN": TOKEN},
        {"TELEPHONY_BACKEND": "vonage", "TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": TOKEN},
        # Deployed without credentials: refuse rather than sell imaginary numbers
        {"AWS_LAMBDA_FUNCTION_NAME": "ppc-platform-prod"},
    ],
)
def test_factory_refuses_a_misconfiguration(
    clean_env: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    for name, value in env.items():
        clean_env.setenv(name, value)

    with pytest.raises(TelephonyConfigError) as caught:
        get_telephony()
    assert TOKEN not in str(caught.value)


def test_factory_keeps_one_instance_per_process_until_reset(clean_env: pytest.MonkeyPatch) -> None:
    # Given the process-wide fake has sold a number
    first = get_telephony()
    assert isinstance(first, FakeTelephony)
    buy(first, "+14155550100")

    # Then later callers see the same fake, with its state
    assert get_telephony() is first
    assert [n.e164 for n in first.owned()] == ["+14155550100"]

    # And a reset starts afresh
    reset_telephony()
    fresh = get_telephony()
    assert fresh is not first
    assert isinstance(fresh, FakeTelephony) and fresh.owned() == []


def test_errors_do_not_chain_the_sdks_unscrubbed_exception() -> None:
    echoed = error_json(20003, f"Authenticate {TOKEN}", 401)
    telephony, _ = twilio_with(Canned(401, echoed))

    with pytest.raises(TelephonyError) as caught:
        telephony.release_number(NUMBER_SID)

    # A logged traceback prints __cause__, and __context__ unless suppressed
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__
