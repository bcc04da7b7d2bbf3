"""The CAF's own algebra of tax matters: canonical matter keys and period units (docs/rules.md §5).

The CAF keys a tax module by TIN + kind of return + tax period. Free text on a form ("Income Tax",
"Form 1040-SR", "2020 thru 2025") is turned into that before anything is compared:

- `matter_key` (MK-01) maps a (tax type, form number) to its canonical key: the return family
  where one is known (`1040`, `941`, `CIVPEN`, ...), else the normalised text;
- `expand` (MK-02) turns one period of a matter into its **units**: `Unit(key, year, month)`, the
  tax period of that kind of return ending that month. Two matters overlap exactly when they share
  a unit, so every decision is a set operation on units, indexed by unit (MK-03, MK-06).

Intake, the validator and the poster all use this module; nothing else parses periods. Every
function is pure and raises `ContractError` (problem codes `period_invalid`, `period_general`)
for what cannot be a period.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Literal, NamedTuple

from schemas.errors import ContractError

__all__ = [
    "CIVIL_PENALTY",
    "FAMILIES",
    "MAX_PERIOD_ENTRIES",
    "MAX_UNITS_PER_GRANT",
    "QUARTERLY",
    "QUARTER_ENDS",
    "SHARED_RESPONSIBILITY",
    "Cadence",
    "Entry",
    "Matter",
    "Span",
    "Unit",
    "cadence",
    "count_units",
    "expand",
    "expand_entries",
    "is_general_reference",
    "matter_key",
    "span",
]

Cadence = Literal["annual", "quarterly"]

# MK-01: form numbers (normalised: upper case, no punctuation or spaces) of known return families.
FAMILIES: dict[str, str] = {
    "1040": "1040",
    "1040SR": "1040",
    "1040NR": "1040",
    "1040X": "1040",
    "941": "941",
    "941X": "941",
    "940": "940",
    "943": "943",
    "944": "944",
    "945": "945",
    "720": "720",
    "1120": "1120",
    "1120S": "1120S",
    "1065": "1065",
    "1041": "1041",
    "706": "706",
    "709": "709",
    "990": "990",
    "8857": "8857",
}
CIVIL_PENALTY = "CIVPEN"
SHARED_RESPONSIBILITY = "SRP"
# MK-02: families filed by quarter; every other family is annual (calendar or fiscal year).
QUARTERLY = frozenset({"941", "720", CIVIL_PENALTY})
QUARTER_ENDS = (3, 6, 9, 12)
# MK-06: bounds on what one form or command may name: units per grant, period entries of any
# form (counted before a period is parsed, so a huge list costs nothing to refuse).
MAX_UNITS_PER_GRANT = 200
MAX_PERIOD_ENTRIES = 400

_NOISE = frozenset({"tax", "taxes", "form", "forms", "return", "returns", "us"})
_YEAR = r"(\d{4})"
_PERIOD_YEAR = re.compile(rf"^{_YEAR}$", re.ASCII)
_PERIOD_MONTH = re.compile(rf"^{_YEAR}-(\d{{2}})$", re.ASCII)
_PERIOD_RANGE = re.compile(rf"^{_YEAR}\s*(?:-|\s+thru\s+){_YEAR}$", re.IGNORECASE | re.ASCII)
_PERIOD_MONTH_RANGE = re.compile(
    rf"^{_YEAR}-(\d{{2}})\s+thru\s+{_YEAR}-(\d{{2}})$", re.IGNORECASE | re.ASCII
)
_GENERAL_REFERENCES = frozenset({"all years", "all periods", "all future periods", "all taxes"})
MIN_YEAR, MAX_YEAR = 1900, 2199
_MAX_TEXT = 64


def _words(text: str) -> list[str]:
    lowered = text.lower().replace("u.s.", " ")
    return [w for w in re.sub(r"[^a-z0-9]+", " ", lowered).split() if w not in _NOISE]


def matter_key(tax_type: str, form_number: str) -> str:
    """MK-01: the canonical key of a (tax type, form number).

    Case, spaces, punctuation and the words "tax", "form", "return" and "U.S." do not count;
    a known form number maps to its return family (1040-SR → `1040`, 941-X → `941`); Civil
    Penalty is `CIVPEN` and the Shared Responsibility Payment `SRP` whatever the form number;
    anything else keeps its normalised text (`EXCISE/2290`).
    """
    kind = " ".join(_words(tax_type))
    form = "".join(_words(form_number)).upper()
    if "civil penalty" in kind or form in {"CIVILPENALTY", CIVIL_PENALTY}:
        return CIVIL_PENALTY
    if "shared responsibility" in kind or form == SHARED_RESPONSIBILITY:
        return SHARED_RESPONSIBILITY
    if form in FAMILIES:
        return FAMILIES[form]
    return f"{kind.upper()}/{form}"


def cadence(key: str) -> Cadence:
    return "quarterly" if key in QUARTERLY else "annual"


class Unit(NamedTuple):
    """One tax period of one kind of return: the CAF's atom of access (MK-02). A named tuple:
    decisions hash units tens of thousands of times, and a tuple hashes in C."""

    key: str
    year: int
    month: int

    @property
    def label(self) -> str:
        """`YYYY` for an annual calendar year, `YYYY-MM` for any other period ending that month
        (how events list periods); `expand` of the label gives this unit back."""
        if self.month == 12 and cadence(self.key) == "annual":
            return f"{self.year:04d}"
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def ends_on(self) -> date:
        return date(self.year, self.month, calendar.monthrange(self.year, self.month)[1])


def is_general_reference(value: str) -> bool:
    """True for a general reference such as "All years" (any case, any spacing)."""
    return " ".join(value.split()).lower() in _GENERAL_REFERENCES


def expand(key: str, period: str) -> tuple[Unit, ...]:
    """MK-02: the units of one period of the matter with canonical key `key`, in order.

    `YYYY`: the tax year ending YYYY-12 (a quarterly family: its four quarters). `YYYY-MM`: the
    period ending that month (a quarterly family: that quarter, MM one of 03/06/09/12; an annual
    family: the fiscal year ending then). `YYYY-YYYY` / `YYYY thru YYYY`: every year between, as
    `YYYY` would. `YYYY-MM thru YYYY-MM`: every unit between (an annual family: the same month
    each year).
    """
    return span(key, period).units()


@dataclass(frozen=True)
class Span:
    """A checked period of one kind of return, not yet expanded: from `first` to `last`
    (year, month), every `months` of the year."""

    key: str
    first: tuple[int, int]
    last: tuple[int, int]
    months: tuple[int, ...]

    def units(self) -> tuple[Unit, ...]:
        return tuple(
            Unit(self.key, y, m)
            for y in range(self.first[0], self.last[0] + 1)
            for m in self.months
            if self.first <= (y, m) <= self.last
        )


def span(key: str, period: str) -> Span:
    """Check one period (MK-02) without expanding it: cheap whatever range it names. Errors
    never repeat the text received (it may be anything, a TIN included)."""
    if len(period) > _MAX_TEXT:
        raise _invalid("period text too long")
    text = " ".join(period.split())
    if is_general_reference(text):
        raise ContractError.single("period", "period_general", "a general reference, not a period")
    quarterly = cadence(key) == "quarterly"
    yearly = QUARTER_ENDS if quarterly else (12,)
    if match := _PERIOD_YEAR.fullmatch(text):
        year = _year(match.group(1))
        return Span(key, (year, yearly[0]), (year, 12), yearly)
    if match := _PERIOD_RANGE.fullmatch(text):
        first, last = _year(match.group(1)), _year(match.group(2))
        if first > last:
            raise _invalid("runs backwards")
        return Span(key, (first, yearly[0]), (last, 12), yearly)
    if match := _PERIOD_MONTH.fullmatch(text):
        year, month = _year(match.group(1)), _month(match.group(2), quarterly)
        return Span(key, (year, month), (year, month), (month,))
    if match := _PERIOD_MONTH_RANGE.fullmatch(text):
        start = (_year(match.group(1)), _month(match.group(2), quarterly))
        end = (_year(match.group(3)), _month(match.group(4), quarterly))
        if start > end:
            raise _invalid("runs backwards")
        if quarterly:
            return Span(key, start, end, QUARTER_ENDS)
        if start[1] != end[1]:
            raise _invalid("a range of fiscal years ends in the same month each year")
        return Span(key, start, end, (start[1],))
    raise _invalid("not YYYY, YYYY-MM, YYYY-YYYY, YYYY thru YYYY or YYYY-MM thru YYYY-MM")


def _year(text: str) -> int:
    year = int(text)
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise _invalid("year out of range")
    return year


def _month(text: str, quarterly: bool) -> int:
    month = int(text)
    if not 1 <= month <= 12:
        raise _invalid("no such month")
    if quarterly and month not in QUARTER_ENDS:
        raise _invalid("a quarter ends in March, June, September or December")
    return month


def _invalid(why: str) -> ContractError:
    return ContractError.single("period", "period_invalid", why)


@dataclass(frozen=True, order=True, slots=True)
class Matter:
    """One unit of a grant, with the words the form used for its kind of return (shown in
    events and notices; `unit` alone decides every comparison)."""

    unit: Unit
    tax_type: str
    form_number: str

    @property
    def period(self) -> str:
        return self.unit.label


@dataclass(frozen=True)
class Entry:
    """One matter as written on a form or request: free text, periods as received."""

    tax_type: str
    form_number: str
    periods: tuple[str, ...]


def expand_entries(entries: Iterable[Entry]) -> tuple[Matter, ...]:
    """Every unit the entries name, once each (the first entry naming a unit gives its words),
    in the order named. Raises `ContractError` for a period that is not one (MK-02)."""
    seen: dict[Unit, Matter] = {}
    for entry in entries:
        key = matter_key(entry.tax_type, entry.form_number)
        for period in entry.periods:
            for unit in expand(key, period):
                if unit not in seen:
                    seen[unit] = Matter(unit, entry.tax_type, entry.form_number)
    return tuple(seen.values())


def count_units(entries: Iterable[Entry], limit: int = MAX_UNITS_PER_GRANT) -> int:
    """How many distinct units the entries name, counting no further than just past `limit` (so
    a huge range costs no more than the bound). Every period is checked first, whatever the
    count: raises `ContractError` like `expand`."""
    spans = [
        span(key, period)
        for entry in entries
        for key in (matter_key(entry.tax_type, entry.form_number),)
        for period in entry.periods
    ]
    seen: set[Unit] = set()
    for checked in spans:
        seen.update(checked.units())
        if len(seen) > limit:
            break
    return len(seen)
