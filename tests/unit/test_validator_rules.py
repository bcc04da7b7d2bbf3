"""Validator rules VA-01 … VA-08 (RULES.md §2)."""

from __future__ import annotations

from typing import Any

import pytest

from schemas.codes import ReasonCode, RuleId
from schemas.grants import MatterSpec
from schemas.registry import PractitionerRecord
from services.validator.rules import assess_grant, names_match
from tests.unit.builders import post_grant

pytestmark = pytest.mark.unit


def practitioner(**changes: Any) -> PractitionerRecord:
    values: dict[str, Any] = {
        "caf_number": "030112345",
        "name": "Avery Smith",
        "status_code": "",
        "designations": ["b"],
        "ptin": "P01234567",
        "ptin_valid_through": "2026-12-31",
        "afsp_years": [2024, 2025, 2026],
    }
    values.update(changes)
    return PractitionerRecord.model_validate(values, strict=False)


def verdict(
    grant_changes: dict[str, Any] | None = None, others: int = 0, **record: Any
) -> tuple[RuleId, ReasonCode] | None:
    rejection = assess_grant(
        post_grant(**(grant_changes or {})), practitioner(**record), others, 25
    )
    return (rejection.rule, rejection.code) if rejection else None


def test_a_representative_in_good_standing_passes() -> None:
    assert verdict() is None


@pytest.mark.parametrize("status", ["D", "S", "E"])
def test_va_01_disbarred_suspended_or_deceased_is_rejected(status: str) -> None:
    """VA-01."""
    assert verdict(status_code=status) == (RuleId.VA_01, ReasonCode.REJ_REP_NOT_GOOD_STANDING)


def test_va_02_pending_review_is_rejected() -> None:
    """VA-02."""
    assert verdict(status_code="P") == (RuleId.VA_02, ReasonCode.REJ_REP_PENDING_REVIEW)


@pytest.mark.parametrize("status", ["R", "I"])
def test_va_03_retired_or_inactive_blocks_a_2848_but_not_an_8821(status: str) -> None:
    """VA-03."""
    assert verdict(status_code=status) == (RuleId.VA_03, ReasonCode.REJ_REP_INACTIVE)
    assert verdict({"form": "8821"}, status_code=status) is None


def test_va_04_an_unknown_caf_number_is_rejected() -> None:
    """VA-04."""
    rejection = assess_grant(post_grant(), None, 0, 25)
    assert rejection is not None
    assert (rejection.rule, rejection.code) == (RuleId.VA_04, ReasonCode.REJ_CAF_UNKNOWN)


@pytest.mark.parametrize(
    ("given", "registered", "match"),
    [
        ("Avery Smith", "Avery Smith", True),
        ("avery  SMITH", "Avery Smith", True),
        ("A. Smith", "Avery Smith", True),
        ("Smith, Avery", "Avery J. Smith", True),
        ("Avery O'Neil", "Avery ONeil", True),
        ("Blake Smith", "Avery Smith", False),
        ("Avery Smyth", "Avery Smith", False),
        ("", "Avery Smith", False),
    ],
)
def test_va_05_names_match_on_last_name_and_first_initial(
    given: str, registered: str, match: bool
) -> None:
    """VA-05."""
    assert names_match(given, registered) is match


def test_va_05_a_name_mismatch_is_rejected() -> None:
    """VA-05."""
    assert verdict({"representative_name": "Blake Doe"}) == (
        RuleId.VA_05,
        ReasonCode.REJ_REP_NAME_MISMATCH,
    )


@pytest.mark.parametrize(
    ("record", "eligible"),
    [
        ({}, True),
        ({"ptin": None}, False),
        ({"ptin_valid_through": "2025-12-31"}, False),
        ({"afsp_years": [2025, 2026]}, False),  # return year 2024 has no AFSP record
        ({"afsp_years": [2024, 2025]}, False),  # representation year 2026 has none
    ],
)
def test_va_06_an_unenrolled_preparer_needs_ptin_and_afsp(
    record: dict[str, Any], eligible: bool
) -> None:
    """VA-06."""
    result = verdict({"designation": "h"}, **record)
    assert result == (None if eligible else (RuleId.VA_06, ReasonCode.REJ_URP_NOT_ELIGIBLE))


def test_va_06_returns_before_2016_need_no_afsp_record() -> None:
    """VA-06."""
    old = [MatterSpec(tax_type="Income", form_number="1040", periods=["2014 thru 2015"])]
    assert verdict({"designation": "h", "tax_matters": old}, afsp_years=[2026]) is None


def test_va_07_grants_beyond_the_hourly_limit_are_held() -> None:
    """VA-07."""
    assert verdict(others=24) is None
    assert verdict(others=25) == (RuleId.VA_07, ReasonCode.HOLD_VELOCITY)


def test_va_08_a_first_time_representative_passes_without_a_registry_record() -> None:
    """VA-08."""
    assert assess_grant(post_grant(caf_number=None), None, 1000, 25) is None
