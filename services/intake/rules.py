"""Intake's pure decisions: form and message rules IN-04 … IN-17 and IN-25 (docs/rules.md §1), with
the matter syntax of MK-01/MK-02, the bounds of MK-06 and the receipt-date bounds of TB-01.

In: a decoded inbound message (and, for dates, the day it counts as received). Out: which rule,
if any, rejects the whole message, and which rejects each grant. No I/O, no clock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from schemas.codes import ReasonCode, Rejection, RuleId
from schemas.errors import ContractError
from schemas.grants import Retention
from schemas.inbound import (
    Representative,
    Revocation,
    Signature,
    Submission,
    TaxMatter,
    Taxpayer,
    TaxpayerIdentity,
    Withdrawal,
)
from schemas.matters import (
    CIVIL_PENALTY,
    MAX_PERIOD_ENTRIES,
    MAX_UNITS_PER_GRANT,
    SHARED_RESPONSIBILITY,
    Entry,
    count_units,
    is_general_reference,
    matter_key,
)
from schemas.values import caf_number_given, normalize_caf_number, normalize_tin

DESIGNATIONS = frozenset("abcdefghkr")
MAX_REPRESENTATIVES = 4
REP_SIGNATURE_WINDOW_DAYS = 45
REP_SIGNATURE_WINDOW_ABROAD_DAYS = 60
STUDENT_PROGRAMS = frozenset({"LITC", "STCP"})
MAX_RECEIPT_AGE_DAYS = 60  # TB-01 default; the intake setting `max_receipt_age_days`


@dataclass(frozen=True)
class Assessment:
    """The verdict on one message: a whole-message rejection, or one verdict per grant.

    `normalized_tin` is set whenever the TIN was well formed (also for rejected messages), so
    the outcome can still be keyed by the taxpayer's pseudonym.
    """

    normalized_tin: str | None
    rejection: Rejection | None
    grant_rejections: tuple[Rejection | None, ...] = ()
    caf_numbers: tuple[str | None, ...] = ()


def _reject(rule: RuleId, code: ReasonCode, reason: str) -> Rejection:
    return Rejection(rule, code, reason)


def check_identity(taxpayer: Taxpayer | TaxpayerIdentity) -> tuple[str | None, Rejection | None]:
    """IN-04: name, TIN and address present (name and address only on forms); TIN well formed."""
    tin, tin_type = taxpayer.tin, taxpayer.tin_type
    incomplete = isinstance(taxpayer, Taxpayer) and (not taxpayer.name or taxpayer.address is None)
    if not tin or tin_type is None or incomplete:
        return None, _reject(
            RuleId.IN_04,
            ReasonCode.REJ_TP_ID_MISSING,
            "The taxpayer's name, identification number or address is missing.",
        )
    try:
        return normalize_tin(tin, tin_type), None
    except ContractError:
        return None, _reject(
            RuleId.IN_04,
            ReasonCode.REJ_TP_ID_INVALID,
            f"The taxpayer identification number is not a valid {taxpayer.tin_type}.",
        )


def _signed(signature: Signature | None) -> bool:
    return signature is not None and signature.date is not None


def _signatures(message: Submission) -> list[Signature]:
    found = [message.taxpayer.signature] + [rep.signature for rep in message.representatives]
    return [signature for signature in found if signature is not None]


def check_matters(matters: Iterable[TaxMatter], *, removal: bool = False) -> Rejection | None:
    """IN-12 complete matters, IN-13 no general references, IN-14/MK-02 periods that expand to
    units of their kind of return, MK-06 bounds: at most 200 units for a grant, 400 period
    entries for a withdrawal or revocation (`removal`). Reasons never repeat the text received
    (a "period" may be anything, a TIN included): they say which entry failed."""
    matters = list(matters)
    for matter in matters:
        key = matter_key(matter.tax_type or "", matter.form_number or "")
        needs_form = key not in {CIVIL_PENALTY, SHARED_RESPONSIBILITY}  # MK-01
        if not matter.tax_type or (needs_form and not matter.form_number) or not matter.periods:
            return _reject(
                RuleId.IN_12,
                ReasonCode.REJ_MATTER_INCOMPLETE,
                "A tax matter lacks its type of tax, tax form number or periods.",
            )
    periods = [period for m in matters for period in m.periods or ()]
    if any(is_general_reference(period) for period in periods):
        return _reject(
            RuleId.IN_13,
            ReasonCode.REJ_MATTER_GENERAL,
            'A period is a general reference such as "All years"; list specific periods.',
        )
    if len(periods) > MAX_PERIOD_ENTRIES:  # counted before any period is parsed
        return _too_many(f"A form lists at most {MAX_PERIOD_ENTRIES}")
    entries = [
        Entry(m.tax_type or "", m.form_number or "", tuple(m.periods or ())) for m in matters
    ]
    for number, entry in enumerate(entries, start=1):
        try:
            count_units([entry])
        except ContractError:
            return _reject(
                RuleId.IN_14,
                ReasonCode.REJ_MATTER_PERIOD_INVALID,
                f"A period of tax matter {number} is not a year, a period ending (YYYY-MM; a "
                "quarter for quarterly returns) or a range of them.",
            )
    if not removal and count_units(entries) > MAX_UNITS_PER_GRANT:
        return _too_many(f"An authorization covers at most {MAX_UNITS_PER_GRANT}")
    return None


def _too_many(prefix: str) -> Rejection:
    return _reject(
        RuleId.MK_06, ReasonCode.REJ_MATTER_TOO_MANY, f"{prefix} tax periods; file several."
    )


def check_receipt_date(
    received_on: dt.date, today: dt.date, max_age_days: int = MAX_RECEIPT_AGE_DAYS
) -> Rejection | None:
    """TB-01: the IRS cannot have received a form after the day it is processed, nor more than
    `max_age_days` before it."""
    if received_on > today or (today - received_on).days > max_age_days:
        return _reject(
            RuleId.TB_01,
            ReasonCode.REJ_RECEIPT_DATE_INVALID,
            f"The receipt date is after the processing day or more than {max_age_days} days "
            "before it.",
        )
    return None


def _future_signature(signatures: Sequence[Signature], received: dt.date) -> Rejection | None:
    """IN-05."""
    if any(s.date is not None and s.date > received for s in signatures):
        return _reject(
            RuleId.IN_05,
            ReasonCode.REJ_SIGN_DATE_FUTURE,
            "A signature is dated after the day the form was received.",
        )
    return None


def _is_entity(taxpayer: Taxpayer) -> bool:
    """CN-08: an EIN taxpayer is an entity whatever `entity_type` says."""
    return taxpayer.entity_type not in (None, "individual") or taxpayer.tin_type == "EIN"


def _form_rejection(message: Submission, today: dt.date, max_age_days: int) -> Rejection | None:
    taxpayer = message.taxpayer
    if rejection := check_receipt_date(message.received_on, today, max_age_days):
        return rejection
    if not _signed(taxpayer.signature) or (_is_entity(taxpayer) and not taxpayer.signer_title):
        return _reject(
            RuleId.IN_10,
            ReasonCode.REJ_TP_SIG_MISSING,
            "The taxpayer's signature (or, for an entity, the signer's title) is missing.",
        )
    if rejection := _future_signature(_signatures(message), message.received_on):
        return rejection
    if message.channel in {"mail", "fax"} and any(
        s.method not in (None, "wet") for s in _signatures(message)
    ):
        return _reject(
            RuleId.IN_06,
            ReasonCode.REJ_ESIG_WRONG_CHANNEL,
            "Forms sent by mail or fax need handwritten (wet) signatures.",
        )
    pages_needed = -(-len(message.representatives) // MAX_REPRESENTATIVES) - 1
    if message.form == "2848" and message.continuation_pages < pages_needed:  # IN-17, CN-07
        return _reject(
            RuleId.IN_17,
            ReasonCode.REJ_TOO_MANY_REPS,
            "A Form 2848 names at most four representatives per page; attach continuation "
            "pages for the others.",
        )
    if rejection := check_matters(message.tax_matters):
        return rejection
    if any(check_caf_number(kept.caf_number)[1] for kept in message.retain or ()):
        return _reject(
            RuleId.IN_16,
            ReasonCode.REJ_CAF_FORMAT,
            "A CAF number the form retains is not 9 digits with an issued prefix.",
        )
    if message.retain_prior and message.prior_copies_attached < 1:
        return _reject(
            RuleId.IN_15,
            ReasonCode.REJ_RETAIN_NO_COPY,
            "Prior authorizations are to be kept, but no copy of one is attached.",
        )
    return None


def check_caf_number(value: str | None) -> tuple[str | None, Rejection | None]:
    """IN-16: a given CAF number must be well formed; none means a first-time representative."""
    if value is None or not caf_number_given(value):
        return None, None
    try:
        return normalize_caf_number(value), None
    except ContractError:
        return None, _reject(
            RuleId.IN_16,
            ReasonCode.REJ_CAF_FORMAT,
            "The CAF number is not 9 digits with an issued prefix.",
        )


def _credentials_rejection(rep: Representative) -> Rejection | None:
    """IN-08 (and the student letter of R-POA-07)."""
    designation = (rep.designation or "").lower()
    incomplete = {
        "a": not (rep.jurisdiction and rep.licence_number),
        "b": not (rep.jurisdiction and rep.licence_number),
        "c": not rep.licence_number,
        "r": not rep.licence_number,
        "g": not rep.licence_number,
        "h": not rep.ptin,
        "k": (rep.jurisdiction or "").upper() not in STUDENT_PROGRAMS,
        "d": not rep.title,
        "e": not rep.title,
        "f": not rep.title,
    }[designation]
    if incomplete:
        return _reject(
            RuleId.IN_08,
            ReasonCode.REJ_REP_CREDENTIAL_INCOMPLETE,
            f"Credential data required for designation {designation} is missing.",
        )
    if designation == "k" and not rep.student_letter_attached:
        return _reject(
            RuleId.IN_08,
            ReasonCode.REJ_STUDENT_NO_LETTER,
            "A student representative needs the LITC/STCP authorization letter attached.",
        )
    return None


def _grant_rejection(message: Submission, rep: Representative) -> Rejection | None:
    if message.form == "8821":
        return None
    designation = (rep.designation or "").lower()
    if designation not in DESIGNATIONS:
        return _reject(
            RuleId.IN_07,
            ReasonCode.REJ_DESIG_INVALID,
            "The representative's designation is not one of a-h, k or r.",
        )
    entity = _is_entity(message.taxpayer)
    if (designation == "d" and not entity) or (designation == "f" and entity):
        return _reject(
            RuleId.CN_06,
            ReasonCode.REJ_DESIG_INVALID,
            "Designation d (officer) is for an entity taxpayer, f (family member) for an "
            "individual.",
        )
    if rejection := _credentials_rejection(rep):
        return rejection
    if not _signed(rep.signature):
        return _reject(
            RuleId.IN_09, ReasonCode.REJ_REP_SIG_MISSING, "The representative did not sign."
        )
    return _signature_window(message, rep)


def _signature_window(message: Submission, rep: Representative) -> Rejection | None:
    """IN-11: the representative signs within 45 days (60 abroad) of the taxpayer."""
    tp_date = message.taxpayer.signature.date if message.taxpayer.signature else None
    rep_date = rep.signature.date if rep.signature else None
    if tp_date is None or rep_date is None or rep_date <= tp_date:
        return None
    address = message.taxpayer.address
    abroad = address is not None and (address.country or "US").upper() != "US"
    window = REP_SIGNATURE_WINDOW_ABROAD_DAYS if abroad else REP_SIGNATURE_WINDOW_DAYS
    if (rep_date - tp_date).days > window:
        return _reject(
            RuleId.IN_11,
            ReasonCode.REJ_REP_SIG_WINDOW,
            f"The representative signed more than {window} days after the taxpayer.",
        )
    return None


def assess_submission(
    message: Submission, today: dt.date, max_age_days: int = MAX_RECEIPT_AGE_DAYS
) -> Assessment:
    """IN-04 … IN-17 and TB-01 for a signed form: one verdict for the form, then one per
    grant."""
    tin, rejection = check_identity(message.taxpayer)
    rejection = rejection or _form_rejection(message, today, max_age_days)
    if rejection is not None:
        return Assessment(tin, rejection)
    verdicts: list[Rejection | None] = []
    caf_numbers: list[str | None] = []
    for rep in message.representatives:
        caf_number, caf_rejection = check_caf_number(rep.caf_number)
        caf_numbers.append(caf_number)
        verdicts.append(caf_rejection or _grant_rejection(message, rep))
    return Assessment(tin, None, tuple(verdicts), tuple(caf_numbers))


def assess_withdrawal(message: Withdrawal, today: dt.date, *, from_api: bool = False) -> Assessment:
    """IN-04, IN-25, IN-05, IN-16 (and matter syntax) for a representative's withdrawal. The
    authorization API's (`from_api`, MN-07) names the taxpayer by `ref`, and only it may."""
    if from_api or message.taxpayer.ref is not None:
        tin, rejection = None, _by_ref(message.taxpayer, from_api=from_api)
    else:
        tin, rejection = check_identity(message.taxpayer)
    caf_number, caf_rejection = check_caf_number(message.caf_number)
    if caf_number is None and caf_rejection is None:
        caf_rejection = _reject(
            RuleId.IN_16, ReasonCode.REJ_CAF_FORMAT, "A withdrawal names the CAF number."
        )
    rejection = (
        rejection
        or _unsigned(message.signature)
        or _future_signature([message.signature] if message.signature else [], today)
        or caf_rejection
        or (
            check_matters(message.tax_matters, removal=True)
            if message.tax_matters is not None
            else None
        )
    )
    return Assessment(tin, rejection, caf_numbers=(caf_number,))


def _by_ref(taxpayer: TaxpayerIdentity, *, from_api: bool) -> Rejection | None:
    """IN-04 for a withdrawal through the authorization API: the taxpayer by `ref` (with the
    last four digits), no TIN; from anyone else a `ref` does not name a taxpayer."""
    if from_api and taxpayer.ref and taxpayer.tin_last4 and not taxpayer.tin:
        return None
    return _reject(
        RuleId.IN_04,
        ReasonCode.REJ_TP_ID_MISSING,
        "The taxpayer's identification number is missing (only the authorization API names a "
        "taxpayer by reference).",
    )


def assess_revocation(message: Revocation, today: dt.date) -> Assessment:
    """IN-04, IN-25, IN-05, IN-16 (and matter syntax) for a taxpayer's revocation."""
    tin, rejection = check_identity(message.taxpayer)
    checked = [check_caf_number(value) for value in message.caf_numbers or ()]
    rejection = (
        rejection
        or _unsigned(message.signature)
        or _future_signature([message.signature] if message.signature else [], today)
        or next((r for _, r in checked if r is not None), None)
        or (
            check_matters(message.tax_matters, removal=True)
            if message.tax_matters is not None
            else None
        )
    )
    return Assessment(tin, rejection, caf_numbers=tuple(number for number, _ in checked))


def _unsigned(signature: Signature | None) -> Rejection | None:
    """IN-25."""
    if _signed(signature):
        return None
    return _reject(
        RuleId.IN_25,
        ReasonCode.REJ_REVOKE_UNSIGNED,
        "A withdrawal or revocation must be signed and dated.",
    )


def form_fingerprint(message: Submission, normalized_tin: str) -> str:
    """IN-03: the content that makes two forms the same, whatever channel or message carried
    them: taxpayer TIN, form, representatives, matters and signature dates (canonical text)."""
    reps = sorted(
        "|".join(
            (
                (check_caf_number(rep.caf_number)[0] or " ".join((rep.name or "").lower().split())),
                (rep.designation or "").lower(),
                str(rep.signature.date if rep.signature else ""),
            )
        )
        for rep in message.representatives
    )
    matters = sorted(
        "|".join(
            (
                (m.tax_type or "").lower(),
                (m.form_number or "").lower(),
                ",".join(sorted(" ".join(p.lower().split()) for p in m.periods or ())),
            )
        )
        for m in message.tax_matters
    )
    taxpayer_date = message.taxpayer.signature.date if message.taxpayer.signature else None
    return "\n".join([normalized_tin, message.form, str(taxpayer_date), *reps, "--", *matters])


def retention(message: Submission) -> Retention | None:
    """RT-01: the prior authorizations a form keeps in effect (None: all of them, the v1
    meaning, or the form keeps none). CAF numbers are normalised (IN-16 checked them)."""
    if not message.retain_prior or message.retain is None:
        return None
    return Retention(
        caf_numbers=[
            number
            for kept in message.retain
            if (number := check_caf_number(kept.caf_number)[0]) is not None
        ],
        authorization_ids=[k.authorization_id for k in message.retain if k.authorization_id],
    )
