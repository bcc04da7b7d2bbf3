"""Pure format checks of the contract's values: TINs and CAF numbers (tax periods are parsed by
`schemas/matters.py`, per kind of return).

These say whether a value is well formed and give its normal form; what a malformed value means
for a grant (which reason code) is decided by the services' rules. Every parser raises
`ContractError` (and nothing else) with a problem code naming the format that failed.
"""

from __future__ import annotations

import re
from typing import Literal

from schemas.errors import ContractError

__all__ = [
    "CAF_PREFIXES",
    "EIN_PREFIXES",
    "ITIN_GROUPS",
    "TinType",
    "caf_number_given",
    "has_tin_like_number",
    "normalize_caf_number",
    "normalize_tin",
    "redact_numbers",
    "tin_last4",
]

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
# IN-16 (docs/rules.md): valid first two digits of a CAF number.
CAF_PREFIXES = frozenset(
    {"01", "02", "03", "12", "20", "26", "32", "43", "50", "65", "78", "80", "90"}
)

_SSN_SHAPE = re.compile(r"^(\d{3})-?(\d{2})-?(\d{4})$", re.ASCII)
_EIN_SHAPE = re.compile(r"^(\d{2})-?(\d{7})$", re.ASCII)
_CAF_SHAPE = re.compile(r"^\d{9}$", re.ASCII)
_MAX_VALUE_LENGTH = 64
# Nine digits or more, however grouped (spaces, dashes, dots): perhaps a TIN. Text we did not
# write (an error's message, a name in a notice) goes out with such runs replaced.
_DIGIT_RUN = re.compile(r"\d(?:[ .:_/-]?\d){8,}")


def has_tin_like_number(text: str) -> bool:
    """True if `text` has a run of nine or more digits (see `redact_numbers`)."""
    return _DIGIT_RUN.search(text) is not None


def redact_numbers(text: str, mark: str = "[number removed]") -> str:
    """`text` with every run of nine or more digits (a TIN, however written) replaced."""
    return _DIGIT_RUN.sub(mark, text)


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
