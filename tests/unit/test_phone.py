"""E.164 parsing: what the webhooks and the API accept as a phone number."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.phone import parse_caller, parse_e164


@pytest.mark.parametrize(
    "number", ["+14155550123", "+442071838750", "+18005550100", "+61291234567"]
)
def test_e164_numbers_are_kept_as_they_are(number: str) -> None:
    assert parse_e164(number) == number


@pytest.mark.parametrize(
    "text",
    [
        "4155550123",
        "+1 415 555 0123",
        "(415) 555-0123",
        "+1",
        "+",
        "",
        "+1415555012345678",
        "tel:+14155550123",
    ],
)
def test_anything_else_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"E\.164|possible"):
        parse_e164(text)


@pytest.mark.parametrize("text", ["Anonymous", "restricted", " UNKNOWN "])
def test_withheld_callers_read_as_anonymous(text: str) -> None:
    assert parse_caller(text) == "anonymous"


@pytest.mark.parametrize("region", ["US", "GB", "DE", "AU", "BR", "IN", "JP"])
def test_example_numbers_of_many_regions_round_trip(region: str) -> None:
    example = phonenumbers.example_number(region)
    assert example is not None
    e164 = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
    assert parse_e164(e164) == e164


@given(st.text(max_size=20) | st.from_regex(r"\A\+[0-9 ()-]{1,18}\Z"))
def test_parser_never_fails_with_anything_but_valueerror(text: str) -> None:
    try:
        result = parse_e164(text)
    except ValueError:
        return
    assert result.startswith("+") and result[1:].isdigit()


@given(st.from_regex(r"\A\+1[2-9][0-9]{2}[2-9][0-9]{6}\Z"))
def test_every_well_formed_nanp_number_is_accepted_unchanged(number: str) -> None:
    assert parse_e164(number) == number


@pytest.mark.parametrize("text", ["4155550123", "client:", "sip:", "client:a b", "+266696687x"])
def test_callers_that_are_neither_numbers_nor_identities_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"E\.164|possible"):
        parse_caller(text)
