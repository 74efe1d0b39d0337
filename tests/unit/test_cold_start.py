"""A cold Lambda loads what it needs: caller enrichment reads only the +1 place names and
gets the same answers as `phonenumbers`' own geocoder; heavy libraries stay out of
`import app`; X-Ray tracing is still set up where Powertools traces."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import phonenumbers
import pytest
from phonenumbers import carrier, geocoder, timezone
from phonenumbers.geodata import GEOCODE_DATA

from chalicelib.routing.callers import US_STATES, describe_number, nanp_place, nanp_places

ROOT = Path(__file__).resolve().parents[2]


def test_the_place_names_read_hold_every_plus_one_prefix_of_the_geocoder() -> None:
    places, longest = nanp_places()

    expected = {k: v for k, v in GEOCODE_DATA.items() if k.startswith("1")}
    assert {k: v for k, v in places.items() if k.startswith("1")} == expected
    assert longest >= max(len(k) for k in expected)


def _numbers(count: int) -> list[phonenumbers.PhoneNumber]:
    """+1 numbers under known place prefixes (padded with random digits), and random ones."""
    rng = random.Random(14)
    prefixes = sorted(k for k in nanp_places()[0] if k.startswith("1"))
    numbers = []
    for _ in range(count):
        prefix = rng.choice(prefixes)
        digits = prefix + "".join(rng.choice("0123456789") for _ in range(11 - len(prefix)))
        numbers.append(phonenumbers.parse("+" + digits, None))
        random_digits = "".join(rng.choice("0123456789") for _ in range(10))
        numbers.append(phonenumbers.parse("+1" + random_digits, None))
    return numbers


def _geographical(number: phonenumbers.PhoneNumber) -> bool:
    kind = phonenumbers.number_type(number)
    return kind != phonenumbers.PhoneNumberType.UNKNOWN and (
        phonenumbers.is_number_type_geographical(kind, number.country_code)
    )


def test_a_callers_area_is_what_the_full_geocoder_says() -> None:
    places_found = 0
    for number in _numbers(1500):
        full = geocoder.description_for_number(number, "en")
        ours = nanp_place(number, _geographical(number))
        if ours:
            places_found += 1
            assert ours == full
        else:
            # Where nothing is found, the geocoder names at most the country.
            assert full in ("", geocoder.country_name_for_number(number, "en"))
    assert places_found > 1000


LINE_TYPES = {
    phonenumbers.PhoneNumberType.MOBILE: "mobile",
    phonenumbers.PhoneNumberType.FIXED_LINE: "landline",
    phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE: "landline_or_mobile",
    phonenumbers.PhoneNumberType.TOLL_FREE: "toll_free",
    phonenumbers.PhoneNumberType.VOIP: "voip",
}


def _described_by_the_library(e164: str) -> dict[str, str]:
    """describe_number as written with phonenumbers' own entry points (the slow way)."""
    number = phonenumbers.parse(e164, None)
    found = {
        "country": phonenumbers.region_code_for_number(number) or "",
        "line_type": LINE_TYPES.get(phonenumbers.number_type(number), "unknown"),
        "carrier": carrier.name_for_number(number, "en"),
        "timezone": next(iter(timezone.time_zones_for_number(number)), ""),
    }
    if number.country_code == 1:
        found["area_code"] = str(number.national_number)[:3]
        place = geocoder.description_for_number(number, "en")
        state = place.rsplit(", ", 1)[-1] if ", " in place else US_STATES.get(place, "")
        if len(state) == 2:
            found["state"] = state
        if place and ", " in place:
            found["city"] = place.rsplit(", ", 1)[0]
    return {k: v for k, v in found.items() if v and v != "Unknown"}


def test_describe_number_says_what_the_library_says() -> None:
    rng = random.Random(5)
    numbers = [phonenumbers.format_number(n, 0) for n in _numbers(600)]
    numbers += [
        f"+{cc}{rng.randint(10**8, 10**10)}"
        for cc in (44, 49, 33, 61, 52, 91, 86, 7, 55, 234)
        for _ in range(40)
    ]
    numbers += ["+18005550100", "+447400123456", "+12423570000", "+16135550100"]
    for e164 in numbers:
        assert describe_number(e164) == _described_by_the_library(e164), e164


def test_describe_number_finds_state_city_and_carrier() -> None:
    found = describe_number("+14155550123")
    assert found["state"] == "CA"
    assert found["city"] == "San Francisco"
    assert found["area_code"] == "415"
    assert found["country"] == "US"
    assert describe_number("+447400123456")["carrier"]  # a UK mobile: carrier data loaded


def _fresh_process(code: str, env: dict[str, str]) -> dict[str, object]:
    """What `code` prints (JSON, last line) in a new interpreter with this environment."""
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**env, "AWS_DEFAULT_REGION": "us-east-1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


HEAVY = [
    "phonenumbers",  # and its place names (≈0.4 s) and carrier data
    "aws_xray_sdk",  # builds a botocore client on import
    "jwt",  # and cryptography
    "httpx",
    "boto3",
    "chalicelib.api.catalog_schemas",  # the campaign, buyer, target and pool bodies
]


def test_importing_the_app_leaves_the_heavy_libraries_for_the_requests_that_use_them() -> None:
    code = (
        "import json, sys; import app; "
        f"print(json.dumps({{m: m in sys.modules for m in {HEAVY!r}}}))"
    )
    loaded = _fresh_process(code, dict(os.environ))
    assert loaded == dict.fromkeys(HEAVY, False)


@pytest.mark.parametrize(("lambda_env", "traced"), [(True, True), (False, False)])
def test_requests_are_traced_in_lambda_only(lambda_env: bool, traced: bool) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("LAMBDA_TASK_ROOT", "POWERTOOLS_TRACE_DISABLED", "AWS_CHALICE_CLI_MODE")
    }
    if lambda_env:
        env["LAMBDA_TASK_ROOT"] = str(ROOT)
    code = (
        "import json; from chalicelib import observability as o; "
        "print(json.dumps({'tracer': o.tracer is not None}))"
    )
    assert _fresh_process(code, env) == {"tracer": traced}
