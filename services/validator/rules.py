"""Validator's pure decisions: good standing and fraud signals VA-01 … VA-08 (RULES.md §2).

In: a grant to post, the registry's record for its CAF number (or None), and the set of other
taxpayers whose grants named that CAF number in the last hour. Out: a rejection or None.
"""

from __future__ import annotations

import re

from schemas.codes import ReasonCode, Rejection, RuleId
from schemas.grants import PostGrant
from schemas.registry import PractitionerRecord
from schemas.values import parse_period

NOT_GOOD_STANDING = frozenset({"D", "S", "E"})
INACTIVE = frozenset({"R", "I"})
DEFAULT_VELOCITY_LIMIT = 25
AFSP_FIRST_RETURN_YEAR = 2016  # "returns after 2015"
# Reason codes that also raise a `suspicious_activity` alert to the practitioner (NO-06).
SUSPICIOUS = frozenset(
    {ReasonCode.REJ_REP_PENDING_REVIEW, ReasonCode.REJ_REP_NAME_MISMATCH, ReasonCode.HOLD_VELOCITY}
)


def name_key(name: str) -> tuple[str, str]:
    """(last name, first initial), ignoring case, spaces and punctuation; "Last, First" too."""
    if "," in name:
        last, _, first = name.partition(",")
        name = f"{first} {last}"
    tokens = [t for t in re.sub(r"[^\w\s]", "", name.lower()).split() if t]
    if not tokens:
        return "", ""
    return tokens[-1], tokens[0][0]


def names_match(given: str, registered: str) -> bool:
    """VA-05: same last name and first initial."""
    return name_key(given) == name_key(registered) != ("", "")


def _return_years(grant: PostGrant) -> set[int]:
    years: set[int] = set()
    for matter in grant.tax_matters:
        for text in matter.periods:
            period = parse_period(text)
            years.update(range(period.first[0], period.last[0] + 1))
    return years


def urp_eligible(grant: PostGrant, record: PractitionerRecord) -> bool:
    """VA-06: an unenrolled return preparer (h) holds a PTIN valid in the representation year
    and an AFSP record for that year and for every return year after 2015."""
    year = grant.received_on.year
    if not record.ptin or record.ptin_valid_through is None:
        return False
    if record.ptin_valid_through.year < year:
        return False
    needed = {year} | {y for y in _return_years(grant) if y >= AFSP_FIRST_RETURN_YEAR}
    return needed <= set(record.afsp_years)


def assess_standing(grant: PostGrant, record: PractitionerRecord | None) -> Rejection | None:
    """VA-01 … VA-06 and VA-08 for one grant."""
    if grant.caf_number is None:
        return None  # VA-08: a first-time representative passes on credential completeness
    if record is None:
        return Rejection(
            RuleId.VA_04, ReasonCode.REJ_CAF_UNKNOWN, "The CAF number is not on the registry."
        )
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
    if not names_match(grant.representative_name, record.name):
        return Rejection(
            RuleId.VA_05,
            ReasonCode.REJ_REP_NAME_MISMATCH,
            "The representative's name does not match the name on file for the CAF number.",
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
    if rejection is None and grant.caf_number is not None:
        rejection = exceeds_velocity(other_taxpayers, limit)
    return rejection
