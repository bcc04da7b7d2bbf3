"""Pure format checks of the contract's values: TINs, CAF numbers and tax periods.

These say whether a value is well formed and give its normal form; what a malformed value means
for a grant (which reason code) is decided by the services' rules. Every parser raises
`ContractError` (and nothing else) with a problem code naming the format that failed.

Period convention [choice, documented here because RULES.md is silent]: a period is a closed
interval of calendar months. `YYYY` is January to December of that year; `YYYY-MM` is the tax
period ending in that month, taken as that month (so it overlaps the calendar year containing
it); `YYYY-YYYY` and `YYYY thru YYYY` run from January of the first year to December of the last.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date
from typing import Literal

from schemas.errors import ContractError

TinType = Literal["SSN", "ITIN", "EIN"]

# IRS campus/Internet EIN prefixes (first two digits) in use.
EIN_PREFIXES = frozenset(
    [
        *range(1, 7),
        *range(10, 17),
        *range(20, 28),
        *range(30, 49),
        *range(50, 69),
        *range(71, 78),
        *range(80, 89),
        *range(90, 96),
        98,
        99,
    ]
)
# ITIN fourth and fifth digits.
ITIN_GROUPS = frozenset([*range(50, 66), *range(70, 89), *range(90, 93), *range(94, 100)])
# RULES.md IN-16: valid first two digits of a CAF number.
CAF_PREFIXES = frozenset(
    {"01", "02", "03", "12", "20", "26", "32", "43", "50", "65", "78", "80", "90"}
)

_SSN_SHAPE = re.compile(r"^(\d{3})-?(\d{2})-?(\d{4})$", re.ASCII)
_EIN_SHAPE = re.compile(r"^(\d{2})-?(\d{7})$", re.ASCII)
_CAF_SHAPE = re.compile(r"^\d{9}$", re.ASCII)
_YEAR = r"(\d{4})"
_PERIOD_YEAR = re.compile(rf"^{_YEAR}$", re.ASCII)
_PERIOD_MONTH = re.compile(rf"^{_YEAR}-(\d{{2}})$", re.ASCII)
_PERIOD_RANGE = re.compile(rf"^{_YEAR}\s*(?:-|\s+thru\s+){_YEAR}$", re.IGNORECASE | re.ASCII)
_GENERAL_REFERENCES = frozenset({"all years", "all periods", "all future periods", "all taxes"})
MIN_YEAR, MAX_YEAR = 1900, 2199
_MAX_VALUE_LENGTH = 64


def normalize_tin(tin: str, tin_type: TinType) -> str:
    """The nine digits of a well-formed TIN of the given type, or `ContractError`.

    SSN: `ddd-dd-dddd` or nine digits; area not 000, 666 or 9xx; group not 00; serial not 0000.
    ITIN: same shape, area 9xx, fourth and fifth digits in 50-65, 70-88, 90-92, 94-99.
    EIN: `dd-ddddddd` or nine digits, with a prefix the IRS assigns.
    """
    value = tin.strip()
    if tin_type == "EIN":
        match = _EIN_SHAPE.fullmatch(value)
        if match is None or int(match.group(1)) not in EIN_PREFIXES:
            raise ContractError.single("tin", "tin_invalid", "not a valid EIN")
        return match.group(1) + match.group(2)
    match = _SSN_SHAPE.fullmatch(value)
    if match is None:
        raise ContractError.single("tin", "tin_invalid", f"not a valid {tin_type}")
    area, group, serial = match.groups()
    if tin_type == "SSN":
        if area in {"000", "666"} or area.startswith("9") or group == "00" or serial == "0000":
            raise ContractError.single("tin", "tin_invalid", "not a valid SSN")
    elif not area.startswith("9") or int(group) not in ITIN_GROUPS:
        raise ContractError.single("tin", "tin_invalid", "not a valid ITIN")
    return area + group + serial


def tin_last4(tin: str) -> str:
    """The last four digits of a TIN, the most of it that may be shown anywhere."""
    digits = "".join(ch for ch in tin if ch in "0123456789")
    if len(digits) < 4:
        raise ContractError.single("tin", "tin_invalid", "a TIN has at least four digits")
    return digits[-4:]


def caf_number_given(value: str | None) -> bool:
    """False for a first-time representative: no CAF number, null, empty or `"None"`."""
    return value is not None and value.strip().lower() not in {"", "none"}


def normalize_caf_number(value: str) -> str:
    """The 9-digit form of a CAF number (strip `-` and a trailing `R`), or `ContractError`."""
    if len(value) > _MAX_VALUE_LENGTH:
        raise ContractError.single("caf_number", "caf_number_invalid", "CAF number too long")
    digits = value.strip().replace("-", "")
    if digits[-1:] in {"R", "r"}:
        digits = digits[:-1]
    if _CAF_SHAPE.fullmatch(digits) is None:
        raise ContractError.single(
            "caf_number", "caf_number_invalid", "a CAF number has 9 digits (plus '-' and 'R')"
        )
    if digits[:2] not in CAF_PREFIXES:
        raise ContractError.single(
            "caf_number", "caf_number_invalid", f"CAF number prefix {digits[:2]} is not issued"
        )
    return digits


@dataclass(frozen=True, order=True)
class Period:
    """A tax period as a closed interval of months, `first` and `last` as (year, month)."""

    first: tuple[int, int]
    last: tuple[int, int]
    text: str

    @property
    def ends_on(self) -> date:
        year, month = self.last
        return date(year, month, calendar.monthrange(year, month)[1])

    @property
    def starts_on(self) -> date:
        return date(self.first[0], self.first[1], 1)

    def overlaps(self, other: Period) -> bool:
        return self.first <= other.last and other.first <= self.last


def is_general_reference(value: str) -> bool:
    """True for a general reference such as "All years" (any case, any spacing)."""
    return " ".join(value.split()).lower() in _GENERAL_REFERENCES


def parse_period(value: str) -> Period:
    """Parse `YYYY`, `YYYY-MM`, `YYYY-YYYY` or `YYYY thru YYYY`; anything else is `ContractError`.

    A general reference ("All years", ...) fails with the problem code `period_general`, every
    other malformed period with `period_invalid`.
    """
    if len(value) > _MAX_VALUE_LENGTH:
        raise ContractError.single("period", "period_invalid", "period text too long")
    text = " ".join(value.split())
    if is_general_reference(text):
        raise ContractError.single(
            "period", "period_general", f"{value!r} is a general reference, not a period"
        )
    if match := _PERIOD_YEAR.fullmatch(text):
        year = _year(match.group(1), value)
        return Period((year, 1), (year, 12), text)
    if match := _PERIOD_MONTH.fullmatch(text):
        year, month = _year(match.group(1), value), int(match.group(2))
        if not 1 <= month <= 12:
            raise ContractError.single("period", "period_invalid", f"{value!r}: no such month")
        return Period((year, month), (year, month), text)
    if match := _PERIOD_RANGE.fullmatch(text):
        start, end = _year(match.group(1), value), _year(match.group(2), value)
        if start > end:
            raise ContractError.single("period", "period_invalid", f"{value!r} runs backwards")
        return Period((start, 1), (end, 12), text)
    raise ContractError.single(
        "period", "period_invalid", f"{value!r} is not YYYY, YYYY-MM, YYYY-YYYY or YYYY thru YYYY"
    )


def _year(text: str, value: str) -> int:
    year = int(text)
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise ContractError.single("period", "period_invalid", f"{value!r}: year out of range")
    return year
