"""Value formats: TINs, CAF numbers and periods (used by IN-04, IN-13, IN-14, IN-16)."""

from __future__ import annotations

import pytest

from schemas.errors import ContractError
from schemas.values import (
    caf_number_given,
    normalize_caf_number,
    normalize_tin,
    tin_last4,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("tin", "tin_type", "normal"),
    [
        ("123-45-6789", "SSN", "123456789"),
        ("123456789", "SSN", "123456789"),
        ("665-01-0001", "SSN", "665010001"),
        ("912-70-1234", "ITIN", "912701234"),
        ("900-50-0000", "ITIN", "900500000"),
        ("999-99-9999", "ITIN", "999999999"),
        ("12-3456789", "EIN", "123456789"),
        ("981234567", "EIN", "981234567"),
    ],
)
def test_a_well_formed_tin_normalizes_to_nine_digits(tin: str, tin_type: str, normal: str) -> None:
    """IN-04: format rules per TIN type."""
    assert normalize_tin(tin, tin_type) == normal  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("tin", "tin_type"),
    [
        ("000-12-3456", "SSN"),  # area 000
        ("666-12-3456", "SSN"),  # area 666
        ("912-70-1234", "SSN"),  # area 9xx is an ITIN
        ("123-00-4567", "SSN"),  # group 00
        ("123-45-0000", "SSN"),  # serial 0000
        ("123-45-678", "SSN"),  # eight digits
        ("123-45-67890", "SSN"),
        ("12-345-6789", "SSN"),  # misplaced dashes
        ("abc-de-fghi", "SSN"),
        ("", "SSN"),
        ("812-70-1234", "ITIN"),  # ITINs start with 9
        ("912-49-1234", "ITIN"),  # middle digits outside the ITIN ranges
        ("912-66-1234", "ITIN"),
        ("912-89-1234", "ITIN"),
        ("912-93-1234", "ITIN"),
        ("07-1234567", "EIN"),  # prefix 07 is not assigned
        ("00-1234567", "EIN"),
        ("123-45-6789", "EIN"),  # SSN shape
        ("\uff11\uff12-3456789", "EIN"),  # full-width digits
    ],
)
def test_a_malformed_tin_is_a_contract_error(tin: str, tin_type: str) -> None:
    """IN-04: REJ-TP-ID-INVALID is decided from this error."""
    with pytest.raises(ContractError) as error:
        normalize_tin(tin, tin_type)  # type: ignore[arg-type]
    assert error.value.codes == ("tin_invalid",)


def test_only_the_last_four_digits_of_a_tin_are_kept() -> None:
    assert tin_last4("123-45-6789") == "6789"


@pytest.mark.parametrize(
    ("given", "normal"),
    [
        ("0301-12345R", "030112345"),
        ("030112345", "030112345"),
        ("0301-12345r", "030112345"),
        ("9012-34567", "901234567"),
        (" 2601-00001R ", "260100001"),
    ],
)
def test_a_caf_number_normalizes_to_nine_digits(given: str, normal: str) -> None:
    """IN-16: strip '-' and a trailing R."""
    assert normalize_caf_number(given) == normal


@pytest.mark.parametrize(
    "given",
    [
        "0401-12345R",
        "0301-1234R",
        "0301-123456",
        "03011234RR",
        "R030112345",
        "",
        "0301 12345",
        "x" * 100,
    ],
)
def test_a_malformed_caf_number_is_a_contract_error(given: str) -> None:
    """IN-16: REJ-CAF-FORMAT is decided from this error."""
    with pytest.raises(ContractError) as error:
        normalize_caf_number(given)
    assert error.value.codes == ("caf_number_invalid",)


@pytest.mark.parametrize("given", [None, "None", "none", "", "  "])
def test_no_caf_number_means_a_first_time_representative(given: str | None) -> None:
    """VA-08 / PO-08: null or "None" is a first-time representative."""
    assert not caf_number_given(given)
