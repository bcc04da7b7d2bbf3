"""Validator rules VA-01 … VA-08 (docs/rules.md §2)."""

from __future__ import annotations

from typing import Any

import pytest

from schemas.codes import SUSPICIOUS, ReasonCode, RuleId
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
        # CN-04: suffixes, credentials, hyphens and middle names do not count
        ("Avery Smith Jr.", "Avery Smith", True),
        ("Avery Smith CPA", "Avery Smith", True),
        ("Avery Smith, CPA", "Avery Smith", True),
        ("Avery Smith III, Enrolled Agent", "Avery Smith", True),
        ("Smith, Avery, Esq.", "Avery Smith", True),
        ("Avery Smith-Jones", "Avery Smith Jones", True),
        ("Avery Quinn Smith", "Avery Smith", True),
        ("Avery Jones", "Avery Smith-Jones", True),
        ("Avery Smith-Jones", "Avery Jones-Smith", False),
        ("Blake Smith Jr", "Avery Smith", False),
        ("Jr.", "Avery Smith", False),
    ],
)
def test_va_05_names_match_on_last_name_and_first_initial(
    given: str, registered: str, match: bool
) -> None:
    """VA-05 as amended by CN-04."""
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
        ({"afsp_years": [2025, 2026]}, True),  # the 2024 return was prepared in 2025
        ({"afsp_years": [2024, 2026]}, False),  # CN-05: the preparation year 2025 has none
        ({"afsp_years": [2024, 2025]}, False),  # representation year 2026 has none
    ],
)
def test_va_06_an_unenrolled_preparer_needs_ptin_and_afsp(
    record: dict[str, Any], eligible: bool
) -> None:
    """VA-06 as amended by CN-05: AFSP for the representation year and the year each return
    was prepared (tax year + 1 for a calendar year)."""
    result = verdict({"designation": "h"}, **{"designations": ["h"], **record})
    assert result == (None if eligible else (RuleId.VA_06, ReasonCode.REJ_URP_NOT_ELIGIBLE))


def test_cn_06_a_designation_the_registry_does_not_hold_is_refused_as_suspicious() -> None:
    """CN-06: an attorney number (a) claiming CPA (b) is refused and alerts the practitioner."""
    assert verdict({"designation": "b"}, designations=["a"]) == (
        RuleId.CN_06,
        ReasonCode.REJ_DESIG_MISMATCH,
    )
    assert ReasonCode.REJ_DESIG_MISMATCH in SUSPICIOUS
    assert verdict({"designation": "b"}, designations=["a", "B"]) is None
    assert verdict({"designation": "b"}, designations=[]) is None  # the registry lists none
    assert verdict({"designation": None, "form": "8821"}, designations=["a"]) is None


def test_cn_05_tax_years_before_2015_need_no_afsp_record() -> None:
    """CN-05: 2013-2014 need none; 2015 needs the preparation year 2016; a quarter ending in
    June is prepared the same year."""

    def urp(periods: str, tax_type: str, form: str, afsp: list[int]) -> object:
        matters = [MatterSpec(tax_type=tax_type, form_number=form, periods=[periods])]
        grant = {"designation": "h", "tax_matters": matters}
        return verdict(grant, afsp_years=afsp, designations=["h"])

    assert urp("2013 thru 2014", "Income", "1040", [2026]) is None
    refused = (RuleId.VA_06, ReasonCode.REJ_URP_NOT_ELIGIBLE)
    assert urp("2015", "Income", "1040", [2026]) == refused
    assert urp("2015", "Income", "1040", [2016, 2026]) is None
    assert urp("2025-06", "Employment", "941", [2025, 2026]) is None


def test_va_07_grants_beyond_the_hourly_limit_are_held() -> None:
    """VA-07."""
    assert verdict(others=24) is None
    assert verdict(others=25) == (RuleId.VA_07, ReasonCode.HOLD_VELOCITY)


def test_va_08_a_first_time_representative_passes_without_a_registry_record() -> None:
    """VA-08."""
    assert assess_grant(post_grant(caf_number=None), None, 1000, 25) is None
