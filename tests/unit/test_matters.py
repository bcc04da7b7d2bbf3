"""Canonical matter keys and period units (docs/rules.md §5: MK-01, MK-02, MK-06)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.errors import ContractError
from schemas.matters import (
    MAX_UNITS_PER_GRANT,
    Entry,
    Unit,
    count_units,
    expand,
    expand_entries,
    matter_key,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("tax_type", "form_number", "key"),
    [
        ("Income", "1040", "1040"),
        ("Income Tax", "Form 1040", "1040"),
        ("income", "1040-SR", "1040"),
        ("U.S. Individual Income Tax Return", "1040 NR", "1040"),
        ("Income", "Form 1040X", "1040"),
        ("Employment", "941", "941"),
        ("Employment Tax", "Form 941-X", "941"),
        ("Excise", "720", "720"),
        ("Income", "1120-S", "1120S"),
        ("Income", "1120", "1120"),
        ("Civil Penalty", "", "CIVPEN"),
        ("civil penalty", "n/a", "CIVPEN"),
        ("Shared Responsibility Payment", "", "SRP"),
        ("Innocent spouse", "Form 8857", "8857"),
        ("Excise", "Form 2290", "EXCISE/2290"),
        ("Heavy  Highway  Vehicle Use", "2290.", "HEAVY HIGHWAY VEHICLE USE/2290"),
    ],
)
def test_mk_01_free_text_maps_to_one_canonical_key(
    tax_type: str, form_number: str, key: str
) -> None:
    """MK-01."""
    assert matter_key(tax_type, form_number) == key


def test_mk_01_synonyms_overlap_and_different_families_do_not() -> None:
    """MK-01: "Income Tax"/"Form 1040" and "Income"/"1040-SR" share units; 1120 and 1120-S
    are separate families."""
    a = expand_entries([Entry("Income Tax", "Form 1040", ("2024",))])
    b = expand_entries([Entry("Income", "1040-SR", ("2024",))])
    assert {m.unit for m in a} == {m.unit for m in b}
    c = expand_entries([Entry("Income", "1120", ("2024",))])
    d = expand_entries([Entry("Income", "1120-S", ("2024",))])
    assert not {m.unit for m in c} & {m.unit for m in d}


def test_mk_02_a_year_of_an_annual_family_is_one_unit_ending_in_december() -> None:
    """MK-02."""
    assert expand("1040", "2024") == (Unit("1040", 2024, 12),)
    assert Unit("1040", 2024, 12).label == "2024"


def test_mk_02_a_range_is_one_unit_per_year_in_either_spelling() -> None:
    """MK-02."""
    expected = tuple(Unit("1040", y, 12) for y in range(2020, 2026))
    assert expand("1040", "2020 thru 2025") == expected
    assert expand("1040", "2020-2025") == expected
    assert expand("1040", "2020 THRU 2025") == expected


def test_mk_02_a_month_of_an_annual_family_is_the_fiscal_year_ending_then() -> None:
    """MK-02."""
    assert expand("1120", "2024-06") == (Unit("1120", 2024, 6),)
    assert expand("1120", "2022-06 thru 2024-06") == tuple(
        Unit("1120", y, 6) for y in (2022, 2023, 2024)
    )
    with pytest.raises(ContractError):
        expand("1120", "2022-06 thru 2024-09")


def test_mk_02_a_quarterly_family_year_is_its_four_quarters() -> None:
    """MK-02: 941 `2024` = 2024-03, -06, -09, -12; a quarter is one unit."""
    assert [u.label for u in expand("941", "2024")] == [
        "2024-03",
        "2024-06",
        "2024-09",
        "2024-12",
    ]
    assert expand("941", "2024-12") == (Unit("941", 2024, 12),)
    assert [u.label for u in expand("941", "2023-09 thru 2024-06")] == [
        "2023-09",
        "2023-12",
        "2024-03",
        "2024-06",
    ]
    assert len(expand("CIVPEN", "2020 thru 2021")) == 8


@pytest.mark.parametrize("period", ["2024-11", "2024-01", "2024-02 thru 2024-12"])
def test_mk_02_a_quarterly_family_period_must_end_a_quarter(period: str) -> None:
    """MK-02: MM must be 03/06/09/12 for 941, 720 and CIVPEN."""
    with pytest.raises(ContractError) as raised:
        expand("941", period)
    assert raised.value.problems[0].code == "period_invalid"


@pytest.mark.parametrize(
    "period",
    [
        "2024-13",
        "2024-00",
        "2025 thru 2024",
        "2025-2023",
        "24",
        "2024-",
        "2024-6",
        "2024 thru",
        "2024 through 2025",
        "FY2024",
        "",
        "0999",
        "1899",
        "2200",
        "All",
        "x" * 65,
        "2024/25",
    ],
)
def test_mk_02_what_is_not_a_period_is_refused(period: str) -> None:
    with pytest.raises(ContractError) as raised:
        expand("1040", period)
    assert raised.value.problems[0].code == "period_invalid"


@pytest.mark.parametrize("period", ["All years", "all  periods", "ALL FUTURE PERIODS"])
def test_a_general_reference_is_its_own_problem(period: str) -> None:
    """IN-13."""
    with pytest.raises(ContractError) as raised:
        expand("1040", period)
    assert raised.value.problems[0].code == "period_general"


def test_mk_02_each_unit_is_named_once_with_the_words_of_its_first_entry() -> None:
    matters = expand_entries(
        [
            Entry("Income Tax", "Form 1040", ("2023 thru 2024",)),
            Entry("Income", "1040-SR", ("2024", "2025")),
        ]
    )
    assert [(m.form_number, m.period) for m in matters] == [
        ("Form 1040", "2023"),
        ("Form 1040", "2024"),
        ("1040-SR", "2025"),
    ]


def test_mk_06_counting_units_stops_just_past_the_bound() -> None:
    """MK-06: a grant names at most 200 units; counting a huge range costs no more."""
    entries = [Entry("Employment", "941", ("1900 thru 2199",))]
    assert count_units(entries) == 1200  # one range is expanded whole, then the count stops
    many = [Entry("Employment", "941", (str(year),)) for year in range(1900, 2200)]
    assert count_units(many) == MAX_UNITS_PER_GRANT + 4
    assert count_units([Entry("Income", "1040", ("2020 thru 2025",))]) == 6


def test_a_unit_ends_on_the_last_day_of_its_month() -> None:
    """PO-07/MK-05 compare this day with 31 Dec of receipt year + 3."""
    assert str(Unit("1120", 2024, 2).ends_on) == "2024-02-29"
    assert str(expand("1040", "2021-2029")[-1].ends_on) == "2029-12-31"


@given(st.sampled_from(["1040", "941", "1120", "CIVPEN", "EXCISE/2290"]), st.data())
def test_a_units_label_expands_to_that_unit_again(key: str, data: st.DataObject) -> None:
    """Events list units by label; a stored label reads back as the same unit."""
    units = expand(key, data.draw(st.sampled_from(["2019", "2020 thru 2022", "2021-12"])))
    for unit in units:
        assert expand(key, unit.label) == (unit,)
