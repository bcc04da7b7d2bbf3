"""Protected taxpayers (IP PIN program): the validator's holds PT-01 … PT-04 and intake's
refusal of any message carrying an IP PIN (PT-05), as pure functions."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.codec import encode
from schemas.codes import ReasonCode, RuleId
from schemas.ip_pin import IP_PIN_TEXT, carries_ip_pin
from schemas.protected import ProtectionRecord
from schemas.registry import PractitionerRecord
from services.validator.protection import (
    confirm_by,
    confirmation_due,
    identity_bound,
    taxpayer_hold,
)
from tests.unit.builders import post_grant

pytestmark = pytest.mark.unit

TODAY = dt.date(2026, 11, 20)
REGISTERED = PractitionerRecord.model_validate(
    {"caf_number": "030112345", "name": "Avery Smith", "status_code": ""}, strict=False
)


def member(year: int = 2026) -> ProtectionRecord:
    return ProtectionRecord(taxpayer_ref="a" * 32, year=year, basis="opt_in")


def hold_of(grant: Any, protection: Any = None, practitioner: Any = REGISTERED) -> Any:
    held = taxpayer_hold(grant, protection or member(), practitioner, TODAY)
    return (held.rule, held.code) if held else None


@pytest.mark.parametrize("channel", ["mail", "fax", "upload"])
def test_pt_01_a_form_by_mail_fax_or_upload_is_held_for_a_protected_taxpayer(
    channel: str,
) -> None:
    assert hold_of(post_grant(channel=channel)) == (
        RuleId.PT_01,
        ReasonCode.HOLD_TAXPAYER_CONFIRMATION,
    )


def test_pt_01_a_tpa_grant_approved_with_an_assertion_is_identity_bound_and_not_held() -> None:
    approved = post_grant(channel="tpa", request_id="tpa-1", approved_by_assertion=True)
    assert identity_bound(approved)
    assert hold_of(approved) is None


def test_pt_01_an_approval_without_a_signature_instant_is_still_identity_bound() -> None:
    """The flag, not `approved_at` (optional in a decision), says the assertion verified."""
    approved = post_grant(channel="tpa", request_id="tpa-1", approved_by_assertion=True)
    assert approved.approved_at is None
    assert identity_bound(approved)


def test_pt_01_a_tpa_grant_without_an_approval_is_not_identity_bound() -> None:
    assert not identity_bound(post_grant(channel="tpa", request_id="tpa-1"))
    assert hold_of(post_grant(channel="tpa", request_id="tpa-1")) == (
        RuleId.PT_01,
        ReasonCode.HOLD_TAXPAYER_CONFIRMATION,
    )


def test_pt_01_nobody_is_held_who_is_not_in_the_program_or_whose_year_lapsed() -> None:
    grant = post_grant(channel="mail")
    assert taxpayer_hold(grant, None, REGISTERED, TODAY) is None
    assert taxpayer_hold(grant, member(2025), REGISTERED, TODAY) is None
    assert taxpayer_hold(grant, member(2025), REGISTERED, dt.date(2025, 12, 31)) is not None


def test_pt_02_an_8821_for_an_unregistered_designee_is_held_however_it_came() -> None:
    approved = post_grant(
        form="8821", channel="tpa", request_id="tpa-1", approved_by_assertion=True, designation=None
    )
    assert hold_of(approved, practitioner=None) == (
        RuleId.PT_02,
        ReasonCode.HOLD_TAXPAYER_CONFIRMATION,
    )
    assert hold_of(approved, practitioner=REGISTERED) is None


def test_pt_02_a_2848_is_not_judged_by_registration_here() -> None:
    """VA-04 refuses a 2848 whose representative is unknown; PT-02 is about 8821 designees."""
    approved = post_grant(channel="tpa", request_id="tpa-1", approved_by_assertion=True)
    assert hold_of(approved, practitioner=None) is None


@pytest.mark.parametrize(
    ("held_on", "last_day", "ends_utc"),
    [
        # the 30th New York day after the hold; it ends at New York midnight after it
        (dt.date(2026, 11, 20), dt.date(2026, 12, 20), dt.datetime(2026, 12, 21, 5, 0)),
        (dt.date(2026, 1, 10), dt.date(2026, 2, 9), dt.datetime(2026, 2, 10, 5, 0)),
        # daylight saving time began on 8 March 2026: midnight is 04:00 UTC
        (dt.date(2026, 2, 10), dt.date(2026, 3, 12), dt.datetime(2026, 3, 13, 4, 0)),
    ],
)
def test_pt_04_a_hold_ends_at_the_end_of_the_thirtieth_new_york_day(
    held_on: dt.date, last_day: dt.date, ends_utc: dt.datetime
) -> None:
    assert confirm_by(held_on) == last_day
    assert confirmation_due(last_day) == ends_utc.replace(tzinfo=dt.UTC)


def test_pt_05_a_program_record_has_no_field_for_a_pin_and_keeps_none() -> None:
    """The validator keeps the record as the model encodes it: a field the feed added (an IP
    PIN) is not kept."""
    record = ProtectionRecord.model_validate_json(
        json.dumps({"taxpayer_ref": "a" * 32, "year": 2026, "basis": "opt_in", "ip_pin": "123456"})
    )
    assert "123456" not in encode(record).decode()
    assert "ip_pin" not in ProtectionRecord.model_fields


# PT-05: intake refuses any message carrying an IP PIN -----------------------------------------


@pytest.mark.parametrize(
    "document",
    [
        {"kind": "submission", "ip_pin": "123456"},
        {"taxpayer": {"ipPin": "654321"}},
        {"taxpayer": {"IP-PIN": ""}},
        {"identity_protection_pin": 1},
        {"IPPIN": 1},
        {"IP PIN 123456": 1},  # a field name that is itself the PIN
        {"notes": "my IP PIN is 123456"},
        {"notes": "123456 is my IP PIN"},
        {"notes": "IP_PIN_123456"},
        {"notes": "IP PINs: 123456"},
        {"notes": "Identity Protection PIN: 123456"},
        {"reps": [{"name": "IP-PIN: 123456 Avery"}]},
    ],
)
def test_pt_05_a_field_named_ip_pin_or_a_text_holding_one_is_found(
    document: dict[str, Any],
) -> None:
    assert carries_ip_pin(json.dumps(document).encode())


@pytest.mark.parametrize(
    "document",
    [
        {"shipping_pin": "123456", "tipPin": 1},
        {"notes": "ip pin 1234567"},  # seven digits: not an IP PIN
        {"notes": "PIN 123456"},
        {"zip": "123456", "phone": "5551234567"},
        {"notes": "The IRS will never ask you for your IP PIN."},
    ],
)
def test_pt_05_other_pins_and_numbers_are_not_taken_for_an_ip_pin(
    document: dict[str, Any],
) -> None:
    assert not carries_ip_pin(json.dumps(document).encode())


def test_pt_05_a_message_that_is_not_json_is_scanned_as_text() -> None:
    assert carries_ip_pin(b"{broken IP PIN 123456")
    assert not carries_ip_pin(b"{broken")


def test_pt_05_json_nested_deeper_than_python_reads_does_not_crash_the_scan() -> None:
    assert carries_ip_pin(b"[" * 100_000) in {True, False}


@given(st.from_regex(r"[0-9]{6}", fullmatch=True), st.sampled_from(["IP PIN", "ip-pin", "IP_PIN"]))
def test_pt_05_any_six_digits_next_to_the_words_ip_pin_are_found(digits: str, words: str) -> None:
    assert IP_PIN_TEXT.search(f"{words}: {digits}")
    assert IP_PIN_TEXT.search(f"{digits} is the {words}")
    assert carries_ip_pin(json.dumps({"x": f"{words} {digits}"}).encode())
