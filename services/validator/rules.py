"""Validator's pure decisions: good standing and fraud signals VA-01 … VA-08 (docs/rules.md §2).

In: a grant to post, the registry's record for its CAF number (or None), and the set of other
taxpayers whose grants named that CAF number in the last hour. Out: a rejection or None.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from schemas.codes import ReasonCode, Rejection, RuleId
from schemas.grants import PostGrant, units_of
from schemas.registry import PractitionerRecord

NOT_GOOD_STANDING = frozenset({"D", "S", "E"})
INACTIVE = frozenset({"R", "I"})
DEFAULT_VELOCITY_LIMIT = 25
AFSP_FIRST_TAX_YEAR = 2015  # CN-05: tax years before 2015 need no AFSP


# CN-04: words that are not part of a name control.
SUFFIXES = frozenset({"jr", "sr", "ii", "iii", "iv", "v"})
CREDENTIALS = frozenset({"cpa", "ea", "esq", "atty", "jd", "enrolled agent"})


def _name_words(part: str) -> list[str]:
    words = re.sub(r"[^\w\s]", "", part.lower().replace("-", " ")).split()
    text = " ".join(words).replace("enrolled agent", "enrolledagent")
    return [w for w in text.split() if w not in SUFFIXES | CREDENTIALS | {"enrolledagent"}]


@dataclass(frozen=True)
class NameControl:
    """CN-04: a name as the registry compares it: the first initial and the last-name words
    (middle initials, generational suffixes and credentials left out; hyphen = space)."""

    first_initial: str
    last_names: tuple[str, ...]


def name_control(name: str) -> NameControl | None:
    """The name control of "First [Middle] Last[, Suffix][, Credential]" or "Last, First";
    None for a name with no words."""
    parts = [words for part in name.split(",") if (words := _name_words(part))]
    if not parts:
        return None
    # "Last, First": once suffixes and credentials are gone, a second part is the given name
    ordered = parts[1] + parts[0] if len(parts) >= 2 else parts[0]
    first, rest = ordered[0], [w for w in ordered[1:] if len(w) > 1]
    return NameControl(first[0], tuple(rest or [first]))


def names_match(given: str, registered: str) -> bool:
    """VA-05 as amended by CN-04: the same first initial and the same last-name words, where a
    middle name on one side only is allowed ("Avery Quinn Smith" = "Avery Smith")."""
    a, b = name_control(given), name_control(registered)
    if a is None or b is None or a.first_initial != b.first_initial:
        return False
    return (
        a.last_names == b.last_names
        or a.last_names[1:] == b.last_names
        or (b.last_names[1:] == a.last_names)
    )


def afsp_years_needed(grant: PostGrant) -> set[int]:
    """CN-05: AFSP for the representation year and, for every tax period from 2015 on, the year
    its return was prepared: the year after a period ending in December, else the same year."""
    needed = {grant.received_on.year}
    for unit in units_of(grant.tax_matters):
        if unit.year >= AFSP_FIRST_TAX_YEAR:
            needed.add(unit.year + 1 if unit.month == 12 else unit.year)
    return needed


def urp_eligible(grant: PostGrant, record: PractitionerRecord) -> bool:
    """VA-06 (CN-05): an unenrolled return preparer (h) holds a PTIN valid in the
    representation year and an AFSP record for every year `afsp_years_needed` names."""
    if not record.ptin or record.ptin_valid_through is None:
        return False
    if record.ptin_valid_through.year < grant.received_on.year:
        return False
    return afsp_years_needed(grant) <= set(record.afsp_years)


def assess_standing(grant: PostGrant, record: PractitionerRecord | None) -> Rejection | None:
    """VA-01 … VA-06 (with CN-04, CN-05, CN-06) and VA-08 for one grant. `record` is the
    registry record of its CAF number or, for a first-time representative, the one carrying its
    PTIN (CN-03), or None."""
    if grant.caf_number is None and record is None:
        if grant.form == "2848" and grant.designation == "h":
            return Rejection(  # CN-03: PTIN validity cannot be shown without a registry record
                RuleId.CN_03,
                ReasonCode.REJ_URP_NOT_ELIGIBLE,
                "An unenrolled preparer needs a registry record for the PTIN.",
            )
        return None  # VA-08: a first-time representative passes on credential completeness
    if record is None:
        return Rejection(
            RuleId.VA_04, ReasonCode.REJ_CAF_UNKNOWN, "The CAF number is not on the registry."
        )
    # CN-03: a representative without a CAF number whose PTIN the registry knows is judged on
    # that record like any other
    return _status_refusal(grant, record) or _credentials_refusal(grant, record)


def _status_refusal(grant: PostGrant, record: PractitionerRecord) -> Rejection | None:
    """VA-01, VA-02, VA-03: the registry status of the representative."""
    status = record.status_code
    if status in NOT_GOOD_STANDING:
        return Rejection(
            RuleId.VA_01,
            ReasonCode.REJ_REP_NOT_GOOD_STANDING,
            "The representative is not in good standing (disbarred, suspended or deceased).",
        )
    if status == "P":
        return Rejection(
            RuleId.VA_02,
            ReasonCode.REJ_REP_PENDING_REVIEW,
            "The CAF number is under review; the request cannot be processed now.",
        )
    if status in INACTIVE and grant.form == "2848":
        return Rejection(
            RuleId.VA_03,
            ReasonCode.REJ_REP_INACTIVE,
            "The representative is retired or inactive and cannot represent taxpayers.",
        )
    return None


def _credentials_refusal(grant: PostGrant, record: PractitionerRecord) -> Rejection | None:
    """VA-05, CN-06, VA-06: the name, designation and unenrolled-preparer credentials."""
    if not names_match(grant.representative_name, record.name):
        return Rejection(
            RuleId.VA_05,
            ReasonCode.REJ_REP_NAME_MISMATCH,
            "The representative's name does not match the name on file for the CAF number.",
        )
    if (
        grant.form == "2848"
        and grant.designation
        and record.designations
        and grant.designation not in {d.lower() for d in record.designations}
    ):
        return Rejection(
            RuleId.CN_06,
            ReasonCode.REJ_DESIG_MISMATCH,
            "The designation claimed is not one the registry holds for this CAF number.",
        )
    if grant.designation == "h" and not urp_eligible(grant, record):
        return Rejection(
            RuleId.VA_06,
            ReasonCode.REJ_URP_NOT_ELIGIBLE,
            "An unenrolled preparer needs a current PTIN and an AFSP record for the years.",
        )
    return None


def exceeds_velocity(other_taxpayers: int, limit: int = DEFAULT_VELOCITY_LIMIT) -> Rejection | None:
    """VA-07: more than `limit` new grants for distinct taxpayers within one hour."""
    if other_taxpayers < limit:
        return None
    return Rejection(
        RuleId.VA_07,
        ReasonCode.HOLD_VELOCITY,
        "Unusually many new authorizations name this CAF number; held for review.",
    )


def assess_grant(
    grant: PostGrant, record: PractitionerRecord | None, other_taxpayers: int, limit: int
) -> Rejection | None:
    """The validator's verdict: standing first, then velocity (for CAF numbers only)."""
    rejection = assess_standing(grant, record)
    if rejection is None and (grant.caf_number is not None or record is not None):
        rejection = exceeds_velocity(other_taxpayers, limit)  # CN-03: by PTIN's number too
    return rejection
