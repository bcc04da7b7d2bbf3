"""Protected taxpayers (IP PIN program, PT-01 … PT-04, docs/rules.md §12): pure decisions.

A taxpayer in the program is protected for the calendar year of their IP PIN. For them an
authorization needs their own say:

- PT-01: one that did not come with the taxpayer's identity-bound approval (a paper, fax or
  upload form; anything but a Tax Pro Account approval carrying a verified identity assertion)
  is held for the taxpayer's confirmation in Online Account.
- PT-02: an 8821 naming a designee who is not a registered practitioner (no record in the
  registry view, by CAF number or PTIN) is held the same way, however it came (transcript
  fishing).
- PT-03: the taxpayer's confirmation releases it to the poster; their refusal ends it.
- PT-04: unanswered at the end of the 30th New York day after the hold, it ends.
"""

from __future__ import annotations

import datetime as dt

from caf_runtime.clock import BUSINESS_ZONE
from schemas.codes import ReasonCode, Rejection, RuleId
from schemas.grants import PostGrant
from schemas.protected import ProtectionRecord
from schemas.registry import PractitionerRecord

CONFIRM_DAYS = 30

HELD_NOT_IDENTITY_BOUND = Rejection(
    RuleId.PT_01,
    ReasonCode.HOLD_TAXPAYER_CONFIRMATION,
    "The authorization waits for the taxpayer's own confirmation.",
)
HELD_UNREGISTERED_DESIGNEE = Rejection(
    RuleId.PT_02,
    ReasonCode.HOLD_TAXPAYER_CONFIRMATION,
    "The authorization waits for the taxpayer's own confirmation.",
)
REFUSED_BY_TAXPAYER = Rejection(
    RuleId.PT_03,
    ReasonCode.REJ_PT_REFUSED,
    "The taxpayer refused this authorization.",
)
NOT_HELD = Rejection(
    RuleId.PT_03,
    ReasonCode.REJ_PT_NOT_HELD,
    "Nothing of this taxpayer waits for their confirmation under that id (any more).",
)
NOT_CONFIRMED = Rejection(
    RuleId.PT_04,
    ReasonCode.REJ_PT_NOT_CONFIRMED,
    "The taxpayer did not confirm this authorization within 30 days.",
)


def identity_bound(grant: PostGrant) -> bool:
    """Approved by the taxpayer themselves online: a Tax Pro Account grant whose approval carried
    a verified identity assertion (intake refuses an approval without one, AU-02)."""
    return grant.channel == "tpa" and grant.approved_by_assertion


def taxpayer_hold(
    grant: PostGrant,
    protection: ProtectionRecord | None,
    registered: PractitionerRecord | None,
    today: dt.date,
) -> Rejection | None:
    """PT-01, PT-02: the hold for the taxpayer's confirmation, or None. `registered`: the
    designee's record as the registry feed published it (not a number the validator gave a
    first-time representative: that is not a registration)."""
    if protection is None or not protection.protects_on(today):
        return None
    if grant.form == "8821" and registered is None:
        return HELD_UNREGISTERED_DESIGNEE
    if not identity_bound(grant):
        return HELD_NOT_IDENTITY_BOUND
    return None


def confirm_by(held_on: dt.date) -> dt.date:
    """PT-04: the last New York day to answer."""
    return held_on + dt.timedelta(days=CONFIRM_DAYS)


def confirmation_due(last_day: dt.date) -> dt.datetime:
    """PT-04: the hold ends at the end of its last New York day."""
    return dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time(), tzinfo=BUSINESS_ZONE)
