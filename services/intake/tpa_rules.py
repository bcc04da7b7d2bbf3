"""Intake's pure decisions for Tax Pro Account messages: IN-18 … IN-22, IN-24 and IN-26
(docs/rules.md §1), on top of the form rules they share (IN-04, IN-05, IN-12 … IN-14, IN-16).

Not wired into the handlers yet: the pending-request store, the decision retry window (IN-21)
and expiry (IN-23) arrive with the rest of the Tax Pro Account flow.
"""

from __future__ import annotations

import datetime as dt
from enum import Enum

from caf_runtime.clock import BUSINESS_ZONE, business_day
from schemas.codes import ReasonCode, Rejection, RuleId
from schemas.errors import ContractError
from schemas.inbound import Signature, TpaDecision, TpaRequest
from schemas.matters import CIVIL_PENALTY, SHARED_RESPONSIBILITY, expand, matter_key
from services.intake.rules import (
    MAX_RECEIPT_AGE_DAYS,
    Assessment,
    check_caf_number,
    check_identity,
    check_matters,
    check_receipt_date,
)

TPA_DESIGNATIONS = frozenset("abcgr")
MIN_ASSURANCE = 2
MATTER_YEARS_BACK = 20
TPA_OTHER_MATTERS = frozenset({CIVIL_PENALTY, "8857", SHARED_RESPONSIBILITY})  # CN-08
# DO-08: a business's online request covers its own returns: income (corporation, S
# corporation, partnership, trust and estate), employment, and civil penalties
TPA_BUSINESS_MATTERS = frozenset(
    {"1120", "1120S", "1065", "1041", "941", "940", "944", CIVIL_PENALTY}
)
SRP_FIRST_YEAR = 2014
CLOCK_SKEW = dt.timedelta(minutes=5)  # TB-02


def request_expires_at(received_on: dt.date, expiry_days: int) -> dt.datetime:
    """TB-03 (amends IN-23): a request expires at the end of the New York day
    `received_on + expiry_days`, not that many days after it was handled."""
    last_day = received_on + dt.timedelta(days=expiry_days)
    return dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time(), tzinfo=BUSINESS_ZONE)


# The 50 states and DC (docs/rules.md IN-19).
_STATE_CODES = (
    "AL AK AZ AR CA CO CT DE FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV "
    "NH NJ NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY DC"
)
STATES = frozenset(_STATE_CODES.split())


def _reject(rule: RuleId, code: ReasonCode, reason: str) -> Rejection:
    return Rejection(rule, code, reason)


def assured(signature: Signature | None) -> bool:
    """IN-26: the signer logged in with at least IAL2 and AAL2."""
    return (
        signature is not None
        and (signature.ial or 0) >= MIN_ASSURANCE
        and (signature.aal or 0) >= MIN_ASSURANCE
    )


def _taxpayer_eligible(message: TpaRequest, *, business_with_official: bool) -> bool:
    """IN-19 as amended by DO-08: an individual (SSN or ITIN) living in the 50 states or DC,
    or a business (EIN) known to the entity records with an active Designated Official."""
    taxpayer = message.taxpayer
    if taxpayer.tin_type == "EIN":
        return business_with_official
    address = taxpayer.address
    return (
        taxpayer.tin_type in {"SSN", "ITIN"}
        and taxpayer.entity_type in (None, "individual")
        and address is not None
        and (address.country or "US").upper() == "US"
        and (address.state or "").upper() in STATES
    )


def _matters_eligible(message: TpaRequest) -> bool:
    """IN-20 as amended by CN-08: Form 1040 income tax for calendar years, civil penalties by
    quarter or year, Form 8857, or the Shared Responsibility Payment from 2014; for a business
    (DO-08) its income, employment and civil penalty returns; no period older than 20 years."""
    oldest = message.received_on.year - MATTER_YEARS_BACK
    business = message.taxpayer.tin_type == "EIN"
    for matter in message.tax_matters:
        kind = " ".join((matter.tax_type or "").lower().split())
        key = matter_key(matter.tax_type or "", matter.form_number or "")
        income = key == "1040" and kind in {"income", "income tax"} and not business
        allowed = TPA_BUSINESS_MATTERS if business else TPA_OTHER_MATTERS
        if not income and key not in allowed:
            return False
        for text in matter.periods or ():
            try:
                units = expand(key, text)
            except ContractError:
                return False
            if any(
                u.year < oldest
                or (income and u.month != 12)  # a fiscal-year income period
                or (key == SHARED_RESPONSIBILITY and u.year < SRP_FIRST_YEAR)
                for u in units
            ):
                return False
    return True


def _request_refusal(
    message: TpaRequest,
    caf_number: str | None,
    caf_rejection: Rejection | None,
    *,
    business_with_official: bool,
) -> Rejection | None:
    """IN-26, IN-05, IN-19, IN-18 in that order: who asks, when, for whom."""
    rep = message.representative
    if not assured(rep.signature):
        return _reject(
            RuleId.IN_26,
            ReasonCode.REJ_IDENTITY_ASSURANCE,
            "The tax professional's login did not meet identity assurance IAL2/AAL2.",
        )
    signed_on = rep.signature.date if rep.signature else None
    if signed_on is not None and signed_on > message.received_on:
        return _reject(
            RuleId.IN_05,
            ReasonCode.REJ_SIGN_DATE_FUTURE,
            "The request is signed after the day it was received.",
        )
    if not _taxpayer_eligible(message, business_with_official=business_with_official):
        return _reject(
            RuleId.IN_19,
            ReasonCode.REJ_TPA_TP_INELIGIBLE,
            "Online requests are for individual taxpayers in the 50 states and DC, and for "
            "businesses with an active Designated Official.",
        )
    if caf_rejection is None and caf_number is None:
        return _reject(
            RuleId.IN_18,
            ReasonCode.REJ_TPA_REP_INELIGIBLE,
            "Online requests need the tax professional's CAF number.",
        )
    if message.form == "2848" and (rep.designation or "").lower() not in TPA_DESIGNATIONS:
        return _reject(
            RuleId.IN_18,
            ReasonCode.REJ_TPA_REP_INELIGIBLE,
            "Online power of attorney requests are for designations a, b, c, g and r.",
        )
    return None


def assess_tpa_request(
    message: TpaRequest,
    today: dt.date,
    max_age_days: int = MAX_RECEIPT_AGE_DAYS,
    *,
    business_with_official: bool = False,
) -> Assessment:
    """The verdict on a Tax Pro Account request (one grant: its request id).
    `business_with_official`: the taxpayer is a business with an active Designated Official."""
    tin, rejection = check_identity(message.taxpayer)
    rejection = rejection or check_receipt_date(message.received_on, today, max_age_days)
    if rejection is not None:
        return Assessment(tin, rejection)
    caf_number, caf_rejection = check_caf_number(message.representative.caf_number)
    refused = _request_refusal(
        message, caf_number, caf_rejection, business_with_official=business_with_official
    )
    if refused is not None:
        return Assessment(tin, refused, caf_numbers=(caf_number,))
    rejection = caf_rejection or check_matters(message.tax_matters)
    if rejection is None and not _matters_eligible(message):
        rejection = _reject(
            RuleId.IN_20,
            ReasonCode.REJ_TPA_MATTER,
            "Online requests cover Form 1040 income tax or civil penalties for calendar years "
            "of the last 20 years.",
        )
    return Assessment(tin, rejection, caf_numbers=(caf_number,))


class RequestState(Enum):
    PENDING = "pending"
    DECIDED = "decided"
    EXPIRED = "expired"


class DecisionOutcome(Enum):
    APPROVE = "approve"
    DECLINE = "decline"  # IN-22
    DROP = "drop"  # IN-24: already decided or expired
    WAIT = "wait"  # the request is not known yet: retry within the window (IN-21)
    UNKNOWN = "unknown"  # IN-21: still unknown after the window


def assess_tpa_decision(decision: TpaDecision, now: dt.datetime) -> Rejection | None:
    """IN-05 and TB-02 on the taxpayer's signature of a decision. Its identity (IN-26 as
    amended) is AU-02's: the assertion, not the self-declared `ial`/`aal`."""
    today = business_day(now)
    signature = decision.taxpayer_signature
    if signature is not None and signature.at is not None and signature.at > now + CLOCK_SKEW:
        return _reject(
            RuleId.TB_02,
            ReasonCode.REJ_SIGN_DATE_FUTURE,
            "The approval is timed more than five minutes after it was processed.",
        )
    if signature is not None and signature.date is not None and signature.date > today:
        return _reject(
            RuleId.IN_05,
            ReasonCode.REJ_SIGN_DATE_FUTURE,
            "The approval is signed after the day it was processed.",
        )
    return None


def route_decision(
    decision: TpaDecision,
    state: RequestState | None,
    *,
    first_seen: dt.datetime,
    now: dt.datetime,
    retry_window: dt.timedelta,
) -> DecisionOutcome:
    """IN-21, IN-22, IN-24: what a decision does given what is known of its request."""
    if state is None:
        return DecisionOutcome.WAIT if now - first_seen < retry_window else DecisionOutcome.UNKNOWN
    if state is not RequestState.PENDING:
        return DecisionOutcome.DROP
    return DecisionOutcome.APPROVE if decision.decision == "approve" else DecisionOutcome.DECLINE
