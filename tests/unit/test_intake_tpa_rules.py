"""Intake rules for Tax Pro Account messages: IN-18 … IN-22, IN-24, IN-26 (docs/rules.md §1)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

import pytest

from devstack import messages
from schemas.codes import ReasonCode, RuleId
from schemas.inbound import TpaDecision, TpaRequest
from services.intake.tpa_rules import (
    DecisionOutcome,
    RequestState,
    assess_tpa_decision,
    assess_tpa_request,
    request_expires_at,
    route_decision,
)
from tests.unit.builders import NOW, RECEIVED, decode

pytestmark = pytest.mark.unit

ASSURED = {"date": str(RECEIVED), "method": "checkbox", "ial": 2, "aal": 2}
SENT_AT = dt.datetime.fromisoformat("2026-11-20T14:00:00-05:00")


def request(**changes: Any) -> TpaRequest:
    """A clean Tax Pro Account request (`messages.tpa_request`, `tpa-1` of 2026-11-20);
    `changes` replace top-level fields, `taxpayer__x` / `rep__x` a field of the taxpayer / the
    professional."""
    built = messages.tpa_request(request_id="tpa-1", message_id="t-1", sent_at=SENT_AT)
    message = decode(messages.document(built, **changes))
    assert isinstance(message, TpaRequest)
    return message


def verdict(**changes: Any) -> tuple[RuleId, ReasonCode] | None:
    rejection = assess_tpa_request(request(**changes), RECEIVED).rejection
    return (rejection.rule, rejection.code) if rejection else None


def test_a_clean_tpa_request_passes() -> None:
    assessment = assess_tpa_request(request(), RECEIVED)
    assert assessment.rejection is None
    assert assessment.caf_numbers == ("030112345",)


@pytest.mark.parametrize("designation", ["a", "b", "c", "g", "r"])
def test_in_18_eligible_designations_pass(designation: str) -> None:
    """IN-18."""
    assert verdict(rep__designation=designation) is None


@pytest.mark.parametrize(
    "changes",
    [
        {"rep__designation": "h"},
        {"rep__designation": "k"},
        {"rep__caf_number": None},
        {"rep__caf_number": "None"},
    ],
)
def test_in_18_other_designations_or_no_caf_number_are_ineligible(changes: dict[str, Any]) -> None:
    """IN-18."""
    assert verdict(**changes) == (RuleId.IN_18, ReasonCode.REJ_TPA_REP_INELIGIBLE)


@pytest.mark.parametrize(
    "changes",
    [
        {"taxpayer__tin": "12-3456789", "taxpayer__tin_type": "EIN"},
        {"taxpayer__entity_type": "trust"},
        {"taxpayer__address": {"line1": "1 Rue", "city": "Paris", "state": "", "country": "FR"}},
        {
            "taxpayer__address": {
                "line1": "1 Calle",
                "city": "San Juan",
                "state": "PR",
                "country": "US",
            }
        },
    ],
)
def test_in_19_only_individuals_in_the_50_states_and_dc(changes: dict[str, Any]) -> None:
    """IN-19."""
    assert verdict(**changes) == (RuleId.IN_19, ReasonCode.REJ_TPA_TP_INELIGIBLE)


def test_in_19_an_itin_holder_in_dc_is_eligible() -> None:
    """IN-19."""
    dc = {"line1": "1 K St", "city": "Washington", "state": "DC", "country": "US"}
    assert (
        verdict(taxpayer__tin="912-70-1234", taxpayer__tin_type="ITIN", taxpayer__address=dc)
        is None
    )


@pytest.mark.parametrize(
    ("matter", "eligible"),
    [
        ({"tax_type": "Income", "form_number": "1040", "periods": ["2006", "2025"]}, True),
        ({"tax_type": "Civil Penalty", "form_number": "", "periods": ["2024"]}, True),
        ({"tax_type": "civil penalty", "form_number": "N/A", "periods": ["2024"]}, True),
        ({"tax_type": "Civil Penalty", "form_number": "", "periods": ["2024-09"]}, True),
        ({"tax_type": "Civil Penalty", "form_number": "", "periods": ["2024-08"]}, False),
        ({"tax_type": "Innocent spouse", "form_number": "8857", "periods": ["2023"]}, True),
        (
            {"tax_type": "Shared Responsibility Payment", "form_number": "", "periods": ["2014"]},
            True,
        ),
        (
            {"tax_type": "Shared Responsibility Payment", "form_number": "", "periods": ["2013"]},
            False,
        ),
        ({"tax_type": "Income Tax", "form_number": "Form 1040-SR", "periods": ["2024"]}, True),
        ({"tax_type": "Income", "form_number": "1120", "periods": ["2024"]}, False),
        ({"tax_type": "Employment", "form_number": "941", "periods": ["2024"]}, False),
        ({"tax_type": "Income", "form_number": "1040", "periods": ["2024-06"]}, False),
        ({"tax_type": "Income", "form_number": "1040", "periods": ["2005"]}, False),
    ],
)
def test_in_20_form_1040_or_civil_penalty_calendar_years_of_the_last_20(
    matter: dict[str, Any], eligible: bool
) -> None:
    """IN-20 as amended by CN-08 (civil penalty quarters, 8857, SRP from 2014) and MK-01 (no
    form number for civil penalty or SRP; synonyms of Form 1040)."""
    result = verdict(tax_matters=[matter])
    if eligible:
        assert result is None
    else:
        assert result in {
            (RuleId.IN_20, ReasonCode.REJ_TPA_MATTER),
            (RuleId.IN_12, ReasonCode.REJ_MATTER_INCOMPLETE),
            (RuleId.IN_14, ReasonCode.REJ_MATTER_PERIOD_INVALID),
        }


@pytest.mark.parametrize(
    "signature",
    [
        None,
        {"date": str(RECEIVED), "method": "checkbox"},
        {"date": str(RECEIVED), "method": "checkbox", "ial": 1, "aal": 2},
        {"date": str(RECEIVED), "method": "checkbox", "ial": 2, "aal": 1},
    ],
)
def test_in_26_a_request_below_ial2_or_aal2_is_rejected(signature: Any) -> None:
    """IN-26."""
    assert verdict(rep__signature=signature) == (RuleId.IN_26, ReasonCode.REJ_IDENTITY_ASSURANCE)


def test_in_05_a_request_signed_after_receipt_is_rejected() -> None:
    later = ASSURED | {"date": str(RECEIVED + dt.timedelta(days=1))}
    assert verdict(rep__signature=later) == (RuleId.IN_05, ReasonCode.REJ_SIGN_DATE_FUTURE)


def decision(kind: Literal["approve", "decline"] = "approve", /, **signature: Any) -> TpaDecision:
    """The taxpayer's decision on `tpa-1`; `signature` replaces fields of their signature."""
    built = messages.tpa_decision(
        "tpa-1",
        kind,
        signed=messages.online_signature(
            RECEIVED, at=dt.datetime.fromisoformat("2026-11-20T09:12:44-05:00")
        ),
        message_id="d-1",
        sent_at=dt.datetime.fromisoformat("2026-11-21T09:12:44-05:00"),
    )
    changes = {f"taxpayer_signature__{field}": value for field, value in signature.items()}
    message = decode(messages.document(built, **changes))
    assert isinstance(message, TpaDecision)
    return message


def test_in_26_an_approvals_self_declared_assurance_is_only_informational_now() -> None:
    """IN-26 as amended by AU-02: the identity assertion's `acr` decides, not `ial`/`aal`."""
    assert assess_tpa_decision(decision(aal=1), NOW) is None
    assert assess_tpa_decision(decision(), NOW) is None


def test_in_05_an_approval_signed_after_the_processing_day_is_rejected() -> None:
    rejection = assess_tpa_decision(decision(date="2026-11-21"), NOW)
    assert rejection is not None
    assert rejection.code == ReasonCode.REJ_SIGN_DATE_FUTURE


def test_tb_02_an_approval_timed_more_than_five_minutes_ahead_is_rejected() -> None:
    """TB-02."""
    ahead = {"date": str(NOW.date()), "at": (NOW + dt.timedelta(minutes=6)).isoformat()}
    rejection = assess_tpa_decision(decision(**ahead), NOW)
    assert rejection is not None
    assert (rejection.rule, rejection.code) == (RuleId.TB_02, ReasonCode.REJ_SIGN_DATE_FUTURE)
    skewed = {"date": str(NOW.date()), "at": (NOW + dt.timedelta(minutes=4)).isoformat()}
    assert assess_tpa_decision(decision(**skewed), NOW) is None


def test_tb_03_a_request_expires_at_the_end_of_the_new_york_day_thirty_days_on() -> None:
    """TB-03: received 2026-11-20 → expires at 2026-12-21 00:00 New York (05:00 UTC)."""
    expires = request_expires_at(dt.date(2026, 11, 20), 30)
    assert expires == dt.datetime(2026, 12, 21, 5, 0, tzinfo=dt.UTC)


WINDOW = dt.timedelta(minutes=10)


def route(
    state: RequestState | None, kind: Literal["approve", "decline"] = "approve", waited_min: int = 0
) -> DecisionOutcome:
    return route_decision(
        decision(kind),
        state,
        first_seen=NOW,
        now=NOW + dt.timedelta(minutes=waited_min),
        retry_window=WINDOW,
    )


def test_in_21_a_decision_for_an_unknown_request_waits_then_is_rejected() -> None:
    """IN-21."""
    assert route(None, waited_min=9) is DecisionOutcome.WAIT
    assert route(None, waited_min=10) is DecisionOutcome.UNKNOWN


def test_in_22_a_decline_ends_the_request_and_an_approval_goes_on() -> None:
    """IN-22."""
    assert route(RequestState.PENDING, "decline") is DecisionOutcome.DECLINE
    assert route(RequestState.PENDING) is DecisionOutcome.APPROVE


@pytest.mark.parametrize("state", [RequestState.DECIDED, RequestState.EXPIRED])
def test_in_24_a_decision_on_a_decided_or_expired_request_is_dropped(state: RequestState) -> None:
    """IN-24."""
    assert route(state) is DecisionOutcome.DROP
    assert route(state, "decline") is DecisionOutcome.DROP
