"""Intake rules IN-03 … IN-17 and IN-25 (docs/rules.md §1)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from schemas.codes import ReasonCode, RuleId
from schemas.errors import ContractError
from schemas.inbound import Revocation
from services.intake.rules import (
    assess_revocation,
    assess_submission,
    assess_withdrawal,
    form_fingerprint,
)
from tests.unit.builders import RECEIVED, removal, submission

pytestmark = pytest.mark.unit

WET = {"date": "2026-11-18", "method": "wet"}


def form_code(**changes: Any) -> tuple[RuleId, ReasonCode] | None:
    verdict = assess_submission(submission(**changes), RECEIVED).rejection
    return (verdict.rule, verdict.code) if verdict else None


def grant_code(**changes: Any) -> tuple[RuleId, ReasonCode] | None:
    assessment = assess_submission(submission(**changes), RECEIVED)
    assert assessment.rejection is None
    verdict = assessment.grant_rejections[0]
    return (verdict.rule, verdict.code) if verdict else None


def test_a_clean_form_passes_every_intake_rule() -> None:
    assessment = assess_submission(submission(), RECEIVED)
    assert assessment.rejection is None
    assert assessment.grant_rejections == (None,)
    assert assessment.normalized_tin == "123456789"
    assert assessment.caf_numbers == ("030112345",)


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"taxpayer__tin": None}, ReasonCode.REJ_TP_ID_MISSING),
        ({"taxpayer__name": ""}, ReasonCode.REJ_TP_ID_MISSING),
        ({"taxpayer__address": None}, ReasonCode.REJ_TP_ID_MISSING),
        ({"taxpayer__tin_type": None}, ReasonCode.REJ_TP_ID_MISSING),
        ({"taxpayer__tin": "666-45-6789"}, ReasonCode.REJ_TP_ID_INVALID),
        ({"taxpayer__tin": "12-3456789"}, ReasonCode.REJ_TP_ID_INVALID),
    ],
)
def test_in_04_taxpayer_identity_missing_or_malformed_is_rejected(
    changes: dict[str, Any], code: ReasonCode
) -> None:
    """IN-04."""
    assert form_code(**changes) == (RuleId.IN_04, code)


def test_in_05_a_signature_dated_after_receipt_is_rejected() -> None:
    """IN-05."""
    later = str(RECEIVED + dt.timedelta(days=1))
    assert form_code(taxpayer__signature={"date": later, "method": "electronic"}) == (
        RuleId.IN_05,
        ReasonCode.REJ_SIGN_DATE_FUTURE,
    )
    assert form_code(rep__signature={"date": later, "method": "electronic"}) == (
        RuleId.IN_05,
        ReasonCode.REJ_SIGN_DATE_FUTURE,
    )


def test_in_05_a_signature_on_the_day_of_receipt_is_accepted() -> None:
    """IN-05."""
    today = {"date": str(RECEIVED), "method": "electronic"}
    assert form_code(taxpayer__signature=today, rep__signature=today) is None


@pytest.mark.parametrize("channel", ["mail", "fax"])
def test_in_06_mail_or_fax_needs_wet_signatures(channel: str) -> None:
    """IN-06."""
    assert form_code(channel=channel) == (RuleId.IN_06, ReasonCode.REJ_ESIG_WRONG_CHANNEL)
    assert form_code(channel=channel, taxpayer__signature=WET, rep__signature=WET) is None


def test_in_06_uploads_may_be_signed_electronically() -> None:
    """IN-06."""
    assert form_code(channel="upload") is None


@pytest.mark.parametrize("designation", ["z", "i", "", None])
def test_in_07_an_unknown_designation_is_rejected(designation: str | None) -> None:
    """IN-07."""
    assert grant_code(rep__designation=designation) == (RuleId.IN_07, ReasonCode.REJ_DESIG_INVALID)


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        (
            {"rep__designation": "a", "rep__jurisdiction": None},
            ReasonCode.REJ_REP_CREDENTIAL_INCOMPLETE,
        ),
        (
            {"rep__designation": "b", "rep__licence_number": ""},
            ReasonCode.REJ_REP_CREDENTIAL_INCOMPLETE,
        ),
        (
            {"rep__designation": "c", "rep__licence_number": None},
            ReasonCode.REJ_REP_CREDENTIAL_INCOMPLETE,
        ),
        (
            {"rep__designation": "r", "rep__licence_number": None},
            ReasonCode.REJ_REP_CREDENTIAL_INCOMPLETE,
        ),
        (
            {"rep__designation": "g", "rep__licence_number": None},
            ReasonCode.REJ_REP_CREDENTIAL_INCOMPLETE,
        ),
        ({"rep__designation": "h", "rep__ptin": None}, ReasonCode.REJ_REP_CREDENTIAL_INCOMPLETE),
        ({"rep__designation": "f"}, ReasonCode.REJ_REP_CREDENTIAL_INCOMPLETE),
        (
            {"rep__designation": "k", "rep__jurisdiction": "TN"},
            ReasonCode.REJ_REP_CREDENTIAL_INCOMPLETE,
        ),
        ({"rep__designation": "k", "rep__jurisdiction": "LITC"}, ReasonCode.REJ_STUDENT_NO_LETTER),
    ],
)
def test_in_08_missing_credentials_reject_the_grant(
    changes: dict[str, Any], code: ReasonCode
) -> None:
    """IN-08."""
    assert grant_code(**changes) == (RuleId.IN_08, code)


@pytest.mark.parametrize(
    "changes",
    [
        {"rep__designation": "f", "rep__title": "Spouse"},
        {
            "rep__designation": "k",
            "rep__jurisdiction": "stcp",
            "rep__student_letter_attached": True,
        },
        {"rep__designation": "h"},
        {"rep__designation": "c"},
    ],
)
def test_in_08_complete_credentials_pass(changes: dict[str, Any]) -> None:
    """IN-08."""
    assert grant_code(**changes) is None


def test_in_09_an_unsigned_representative_rejects_only_that_grant() -> None:
    """IN-09."""
    message = submission(rep__signature=None)
    second = message.representatives[0].model_copy(update={"signature": message.taxpayer.signature})
    assessment = assess_submission(
        message.model_copy(update={"representatives": [message.representatives[0], second]}),
        RECEIVED,
    )
    assert assessment.rejection is None
    first, other = assessment.grant_rejections
    assert first is not None
    assert (first.rule, first.code) == (RuleId.IN_09, ReasonCode.REJ_REP_SIG_MISSING)
    assert other is None


def test_in_10_a_missing_taxpayer_signature_or_signer_title_is_rejected() -> None:
    """IN-10."""
    assert form_code(taxpayer__signature=None) == (RuleId.IN_10, ReasonCode.REJ_TP_SIG_MISSING)
    entity = {
        "taxpayer__entity_type": "corporation",
        "taxpayer__tin": "12-3456789",
        "taxpayer__tin_type": "EIN",
    }
    assert form_code(**entity) == (RuleId.IN_10, ReasonCode.REJ_TP_SIG_MISSING)
    assert form_code(**entity, taxpayer__signer_title="President") is None


@pytest.mark.parametrize(
    ("country", "days", "rejected"),
    [("US", 45, False), ("US", 46, True), ("CA", 60, False), ("CA", 61, True)],
)
def test_in_11_the_representative_signs_within_45_days_or_60_abroad(
    country: str, days: int, rejected: bool
) -> None:
    """IN-11."""
    signed = dt.date(2026, 9, 1)
    address = {
        "line1": "1 Main St",
        "city": "Toronto",
        "state": "ON",
        "postal_code": "M5V",
        "country": country,
    }
    verdict = grant_code(
        taxpayer__address=address,
        taxpayer__signature={"date": str(signed), "method": "electronic"},
        rep__signature={"date": str(signed + dt.timedelta(days=days)), "method": "electronic"},
    )
    assert verdict == ((RuleId.IN_11, ReasonCode.REJ_REP_SIG_WINDOW) if rejected else None)


@pytest.mark.parametrize(
    ("matter", "rule", "code"),
    [
        (
            {"tax_type": None, "form_number": "1040", "periods": ["2024"]},
            RuleId.IN_12,
            ReasonCode.REJ_MATTER_INCOMPLETE,
        ),
        (
            {"tax_type": "Income", "form_number": "1040", "periods": []},
            RuleId.IN_12,
            ReasonCode.REJ_MATTER_INCOMPLETE,
        ),
        (
            {"tax_type": "Income", "form_number": "1040", "periods": ["All years"]},
            RuleId.IN_13,
            ReasonCode.REJ_MATTER_GENERAL,
        ),
        (
            {"tax_type": "Income", "form_number": "1040", "periods": ["all FUTURE periods"]},
            RuleId.IN_13,
            ReasonCode.REJ_MATTER_GENERAL,
        ),
        (
            {"tax_type": "Income", "form_number": "1040", "periods": ["FY24"]},
            RuleId.IN_14,
            ReasonCode.REJ_MATTER_PERIOD_INVALID,
        ),
    ],
)
def test_in_12_to_14_matters_must_be_complete_specific_and_well_formed(
    matter: dict[str, Any], rule: RuleId, code: ReasonCode
) -> None:
    """IN-12, IN-13, IN-14."""
    assert form_code(tax_matters=[matter]) == (rule, code)


def test_in_15_retaining_prior_authorizations_needs_a_copy() -> None:
    """IN-15."""
    assert form_code(retain_prior=True) == (RuleId.IN_15, ReasonCode.REJ_RETAIN_NO_COPY)
    assert form_code(retain_prior=True, prior_copies_attached=1) is None


@pytest.mark.parametrize("caf", ["0401-12345R", "0301-1234R", "CAF-NUMBER"])
def test_in_16_a_malformed_caf_number_rejects_the_grant(caf: str) -> None:
    """IN-16."""
    assert grant_code(rep__caf_number=caf) == (RuleId.IN_16, ReasonCode.REJ_CAF_FORMAT)


@pytest.mark.parametrize("caf", [None, "None"])
def test_in_16_no_caf_number_is_a_first_time_representative_not_an_error(
    caf: str | None,
) -> None:
    """IN-16."""
    assessment = assess_submission(submission(rep__caf_number=caf), RECEIVED)
    assert assessment.grant_rejections == (None,)
    assert assessment.caf_numbers == (None,)


def test_in_17_a_2848_names_at_most_four_representatives() -> None:
    """IN-17."""
    message = submission()
    five = [message.representatives[0]] * 5
    verdict = assess_submission(
        message.model_copy(update={"representatives": five}), RECEIVED
    ).rejection
    assert verdict is not None
    assert (verdict.rule, verdict.code) == (RuleId.IN_17, ReasonCode.REJ_TOO_MANY_REPS)
    four = assess_submission(message.model_copy(update={"representatives": five[:4]}), RECEIVED)
    assert four.rejection is None


def test_cn_07_more_than_four_representatives_need_declared_continuation_pages() -> None:
    """CN-07 (amends IN-17): n representatives need ceil(n/4) - 1 continuation Forms 2848."""
    message = submission()
    nine = [message.representatives[0]] * 9
    for pages, accepted in ((1, False), (2, True), (3, True)):
        verdict = assess_submission(
            message.model_copy(update={"representatives": nine, "continuation_pages": pages}),
            RECEIVED,
        ).rejection
        assert (verdict is None) is accepted, pages


def test_an_8821_designee_needs_no_designation_credentials_or_signature() -> None:
    assessment = assess_submission(
        submission(
            form="8821",
            rep__designation=None,
            rep__signature=None,
            rep__jurisdiction=None,
            rep__licence_number=None,
        ),
        RECEIVED,
    )
    assert assessment.rejection is None
    assert assessment.grant_rejections == (None,)


def test_in_03_the_fingerprint_ignores_channel_and_message_but_not_content() -> None:
    """IN-03."""
    base = submission()
    faxed = submission(message_id="m-other", channel="fax")
    other_period = submission(
        tax_matters=[{"tax_type": "Income", "form_number": "1040", "periods": ["2022"]}]
    )
    assert form_fingerprint(base, "123456789") == form_fingerprint(faxed, "123456789")
    assert form_fingerprint(base, "123456789") != form_fingerprint(other_period, "123456789")
    assert form_fingerprint(base, "123456789") != form_fingerprint(base, "123456780")


@pytest.mark.parametrize("kind", ["withdrawal", "revocation"])
def test_in_25_an_unsigned_withdrawal_or_revocation_is_rejected(kind: str) -> None:
    """IN-25."""
    message = removal(kind, signature=None)
    assess = assess_withdrawal if kind == "withdrawal" else assess_revocation
    verdict = assess(message, RECEIVED).rejection  # type: ignore[arg-type]
    assert verdict is not None
    assert (verdict.rule, verdict.code) == (RuleId.IN_25, ReasonCode.REJ_REVOKE_UNSIGNED)


def test_in_05_a_withdrawal_signed_after_the_processing_day_is_rejected() -> None:
    """IN-05."""
    message = removal("withdrawal", signature={"date": "2026-11-21", "method": "checkbox"})
    verdict = assess_withdrawal(message, RECEIVED).rejection  # type: ignore[arg-type]
    assert verdict is not None
    assert verdict.code == ReasonCode.REJ_SIGN_DATE_FUTURE


def test_in_16_a_withdrawal_names_a_well_formed_caf_number() -> None:
    """IN-16."""
    for caf in ("None", "12"):
        verdict = assess_withdrawal(removal("withdrawal", caf_number=caf), RECEIVED).rejection  # type: ignore[arg-type]
        assert verdict is not None
        assert verdict.code == ReasonCode.REJ_CAF_FORMAT


def test_a_revocation_normalizes_its_listed_caf_numbers() -> None:
    message = removal("revocation", caf_numbers=["0301-12345R", "None"])
    assessment = assess_revocation(message, RECEIVED)  # type: ignore[arg-type]
    assert assessment.rejection is None
    assert assessment.caf_numbers == ("030112345", None)


@pytest.mark.parametrize(
    ("changes", "valid"),
    [
        ({"rep__designation": "d", "rep__title": "Officer"}, False),
        ({"rep__designation": "f", "rep__title": "Spouse"}, True),
        (
            {
                "rep__designation": "d",
                "rep__title": "Officer",
                "taxpayer__tin": "12-3456789",
                "taxpayer__tin_type": "EIN",
                "taxpayer__signer_title": "President",
            },
            True,
        ),
        (
            {
                "rep__designation": "f",
                "rep__title": "Spouse",
                "taxpayer__tin": "12-3456789",
                "taxpayer__tin_type": "EIN",
                "taxpayer__signer_title": "President",
            },
            False,
        ),
    ],
)
def test_cn_06_designation_d_is_for_entities_and_f_for_individuals(
    changes: dict[str, Any], valid: bool
) -> None:
    """CN-06 (an EIN is an entity whatever entity_type says: CN-08)."""
    assert grant_code(**changes) == (
        None if valid else (RuleId.CN_06, ReasonCode.REJ_DESIG_INVALID)
    )


def test_cn_08_an_ein_taxpayer_needs_a_signer_title_whatever_its_entity_type() -> None:
    """CN-08 (amends IN-10)."""
    ein = {"taxpayer__tin": "12-3456789", "taxpayer__tin_type": "EIN"}
    assert form_code(**ein, taxpayer__entity_type="individual") == (
        RuleId.IN_10,
        ReasonCode.REJ_TP_SIG_MISSING,
    )
    assert (
        form_code(**ein, taxpayer__entity_type="individual", taxpayer__signer_title="CEO") is None
    )


def test_in_14_every_period_of_a_removal_is_checked_even_past_the_unit_bound() -> None:
    """IN-14 / MK-06: a bad period after a large range is still refused at intake (the poster
    would otherwise dead-letter the revocation), and the reason does not repeat it."""
    matters = [
        {
            "tax_type": "Employment",
            "form_number": "941",
            "periods": ["1990 thru 2049", "2024-Q7 of 98765"],
        }
    ]
    message = removal("revocation", tax_matters=matters)
    assert isinstance(message, Revocation)
    verdict = assess_revocation(message, RECEIVED).rejection
    assert verdict is not None
    assert (verdict.rule, verdict.code) == (RuleId.IN_14, ReasonCode.REJ_MATTER_PERIOD_INVALID)
    assert "98765" not in verdict.reason


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("periods", ["2024", "123-45-6789"]),
        ("tax_type", "Income 123 45 6789"),
        ("form_number", "123456789"),
    ],
)
def test_a_tin_written_into_a_matter_is_refused_when_the_message_is_read(
    field: str, value: object
) -> None:
    """Free text that leaves intake never carries a TIN-shaped run of digits: such a message
    is a schema failure (REJ-SCHEMA, its copy sealed), not a rule's verdict."""
    matters = [{"tax_type": "Income", "form_number": "1040", "periods": ["2024"], field: value}]
    with pytest.raises(ContractError, match="taxpayer identification number"):
        removal("revocation", tax_matters=matters)
