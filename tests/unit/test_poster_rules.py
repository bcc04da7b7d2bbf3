"""caf_poster rules PO-01, PO-03 … PO-10 (docs/rules.md §3), and properties of the decision
function."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from schemas.codes import ReasonCode, RuleId
from schemas.grants import MatterSpec, PostGrant, RevokeGrants, WithdrawGrants
from services.caf_poster.domain import TaxpayerCaf
from services.caf_poster.rules import (
    Posting,
    Removal,
    apply,
    decide_posting,
    decide_purge,
    decide_revocation,
    decide_withdrawal,
)
from tests.unit.builders import NOW, post_grant

pytestmark = pytest.mark.unit

DAY = dt.date(2026, 11, 18)


def matters(*periods: str, tax_type: str = "Income") -> list[MatterSpec]:
    return [MatterSpec(tax_type=tax_type, form_number="1040", periods=list(periods))]


def grant(n: int, **changes: Any) -> PostGrant:
    values: dict[str, Any] = {
        "grant_id": f"m-{n}:0",
        "message_id": f"m-{n}",
        "authorization_id": f"m-{n}",
        "caf_number": f"0301{n:05d}",
    }
    values.update(changes)
    return post_grant(**values)


def post(caf: TaxpayerCaf, command: PostGrant) -> tuple[TaxpayerCaf, Posting]:
    decision = decide_posting(caf, command, command.caf_number)
    return apply(caf, decision), decision


def code(decision: Posting | Removal) -> tuple[RuleId, ReasonCode] | None:
    return (decision.rejection.rule, decision.rejection.code) if decision.rejection else None


def test_a_grant_posts_on_an_empty_caf() -> None:
    caf, decision = post(TaxpayerCaf(), grant(1))
    assert decision.grant is not None
    assert caf.active("2848") == (decision.grant,)


def test_po_01_a_specific_use_authorization_is_not_processed_and_revokes_nothing() -> None:
    """PO-01."""
    caf, _ = post(TaxpayerCaf(), grant(1))
    after, decision = post(
        caf, grant(2, specific_use=True, taxpayer_signature_date=DAY + dt.timedelta(days=1))
    )
    assert code(decision) == (RuleId.PO_01, ReasonCode.NP_SPECIFIC_USE)
    assert after.active("2848") == caf.active("2848")


def test_po_03_a_third_notice_elector_of_one_group_is_not_processed() -> None:
    """PO-03."""
    caf = TaxpayerCaf()
    outcomes = []
    for index in range(3):
        command = grant(
            1,
            grant_id=f"m-1:{index}",
            receive_notices=True,
            caf_number=f"03011234{index}",
            group_position=index,
        )
        caf, decision = post(caf, command)
        outcomes.append(code(decision))
    assert outcomes == [None, None, (RuleId.PO_03, ReasonCode.NP_NOTICE_LIMIT_EXCEEDED)]


def test_po_02_a_grant_signed_on_another_day_than_its_group_is_rejected() -> None:
    """PO-02: the first posted grant of a group fixes the taxpayer signature day."""
    caf, _ = post(TaxpayerCaf(), grant(7, grant_id="g:0", authorization_id="g", channel="tpa"))
    _, same_day = post(
        caf, grant(7, grant_id="g:1", authorization_id="g", channel="tpa", caf_number="030100777")
    )
    assert code(same_day) is None
    _, next_day = post(
        caf,
        grant(
            7,
            grant_id="g:2",
            authorization_id="g",
            channel="tpa",
            caf_number="030100778",
            taxpayer_signature_date=DAY + dt.timedelta(days=1),
        ),
    )
    assert code(next_day) == (RuleId.PO_02, ReasonCode.REJ_SIGNATURE_DAY_MISMATCH)


def test_po_04_more_than_two_notice_recipients_on_a_matter_is_not_processed() -> None:
    """PO-04."""
    caf, _ = post(TaxpayerCaf(), grant(1, receive_notices=True, retain_prior=True))
    caf, _ = post(caf, grant(2, receive_notices=True, retain_prior=True))
    _, third = post(caf, grant(3, receive_notices=True, retain_prior=True))
    assert code(third) == (RuleId.PO_04, ReasonCode.NP_NOTICE_LIMIT_EXCEEDED)
    _, elsewhere = post(caf, grant(4, receive_notices=True, tax_matters=matters("2020")))
    assert code(elsewhere) is None


def test_po_04_counts_after_the_revocations_of_po_05() -> None:
    """PO-04."""
    caf, _ = post(TaxpayerCaf(), grant(1, receive_notices=True, retain_prior=True))
    caf, _ = post(caf, grant(2, receive_notices=True, retain_prior=True))
    later = grant(3, receive_notices=True, taxpayer_signature_date=DAY + dt.timedelta(days=1))
    _, decision = post(caf, later)
    assert code(decision) is None
    assert len(decision.losses) == 2


def test_po_05_a_later_signature_revokes_overlapping_matters_only() -> None:
    """PO-05."""
    caf, _ = post(TaxpayerCaf(), grant(1, tax_matters=matters("2022", "2023", "2024")))
    later = grant(
        2, tax_matters=matters("2023 thru 2024"), taxpayer_signature_date=DAY + dt.timedelta(days=1)
    )
    caf, decision = post(caf, later)
    [loss] = decision.losses
    assert loss.grant.grant_id == "m-1:0"
    assert [m.period for m in loss.matters] == ["2023", "2024"]
    old = next(g for g in caf.grants if g.grant_id == "m-1:0")
    assert [m.period for m in old.matters] == ["2022"]


def test_po_05_retain_prior_keeps_earlier_grants_but_tpa_never_retains() -> None:
    """PO-05."""
    caf, _ = post(TaxpayerCaf(), grant(1))
    later = {"taxpayer_signature_date": DAY + dt.timedelta(days=1), "retain_prior": True}
    _, kept = post(caf, grant(2, **later))
    assert kept.losses == ()
    _, tpa = post(caf, grant(3, channel="tpa", **later))
    assert len(tpa.losses) == 1


def test_po_05_a_2848_never_revokes_an_8821_and_a_group_never_revokes_itself() -> None:
    """PO-05."""
    caf, _ = post(TaxpayerCaf(), grant(1, form="8821"))
    _, decision = post(caf, grant(2, taxpayer_signature_date=DAY + dt.timedelta(days=1)))
    assert decision.losses == ()
    caf, _ = post(TaxpayerCaf(), grant(5, grant_id="m-5:0"))
    _, sibling = post(
        caf,
        grant(
            5,
            grant_id="m-5:1",
            caf_number="030100099",
            taxpayer_signature_date=DAY + dt.timedelta(days=1),
        ),
    )
    assert sibling.losses == ()


def test_po_06_an_earlier_signature_than_an_active_grant_is_superseded() -> None:
    """PO-06."""
    caf, _ = post(TaxpayerCaf(), grant(1))
    _, decision = post(caf, grant(2, taxpayer_signature_date=DAY - dt.timedelta(days=1)))
    assert code(decision) == (RuleId.PO_06, ReasonCode.NP_SUPERSEDED)


def test_po_06_the_same_signature_day_neither_revokes_nor_supersedes() -> None:
    """PO-06."""
    caf, _ = post(TaxpayerCaf(), grant(1))
    _, decision = post(caf, grant(2))
    assert code(decision) is None
    assert decision.losses == ()


def test_po_07_periods_ending_after_receipt_year_plus_three_are_dropped() -> None:
    """PO-07."""
    _, decision = post(
        TaxpayerCaf(), grant(1, tax_matters=matters("2029", "2030", "2029-06", "2030-06"))
    )
    assert decision.grant is not None
    assert [m.period for m in decision.grant.matters] == ["2029", "2029-06"]
    assert [(d.matter.period, d.code) for d in decision.dropped] == [
        ("2030", ReasonCode.PART_FUTURE_PERIOD_DROPPED),
        ("2030-06", ReasonCode.PART_FUTURE_PERIOD_DROPPED),
    ]
    _, only_future = post(TaxpayerCaf(), grant(1, tax_matters=matters("2030 thru 2031")))
    assert code(only_future) == (RuleId.PO_07, ReasonCode.REJ_MATTER_FUTURE_ONLY)


def withdraw(caf_number: str, periods: list[str] | None = None) -> WithdrawGrants:
    return WithdrawGrants(
        action="withdraw",
        message_id="w-1",
        taxpayer_ref="a" * 32,
        tin_last4="6789",
        form="2848",
        received_at=NOW,
        caf_number=caf_number,
        tax_matters=matters(*periods) if periods else None,
    )


def revoke(caf_numbers: list[str] | None = None, form: str = "2848") -> RevokeGrants:
    return RevokeGrants.model_validate(
        {
            "action": "revoke",
            "message_id": "r-1",
            "taxpayer_ref": "a" * 32,
            "tin_last4": "6789",
            "form": form,
            "received_at": NOW,
            "caf_numbers": caf_numbers,
            "tax_matters": None,
        },
        strict=False,
    )


def test_po_09_a_withdrawal_ends_the_representatives_matching_grants() -> None:
    """PO-09."""
    caf, _ = post(TaxpayerCaf(), grant(1, tax_matters=matters("2023", "2024")))
    decision = decide_withdrawal(caf, withdraw("030100001", ["2024"]))
    [loss] = decision.losses
    assert [m.period for m in loss.matters] == ["2024"]
    assert code(decide_withdrawal(caf, withdraw("030199999"))) == (
        RuleId.PO_09,
        ReasonCode.REJ_NOTHING_TO_WITHDRAW,
    )


def test_po_10_a_revocation_ends_listed_or_all_representatives() -> None:
    """PO-10."""
    caf, _ = post(TaxpayerCaf(), grant(1))
    caf, _ = post(caf, grant(2))
    assert len(decide_revocation(caf, revoke()).losses) == 2
    assert [
        loss.grant.grant_id for loss in decide_revocation(caf, revoke(["030100002"])).losses
    ] == ["m-2:0"]
    assert code(decide_revocation(caf, revoke(form="8821"))) == (
        RuleId.PO_10,
        ReasonCode.REJ_NOTHING_TO_REVOKE,
    )


def test_deciding_is_deterministic() -> None:
    """Same state and command, same decision: a redelivery re-emits identical events."""
    caf, _ = post(TaxpayerCaf(), grant(1))
    command = grant(2, taxpayer_signature_date=DAY + dt.timedelta(days=1))
    assert decide_posting(caf, command, None) == decide_posting(caf, command, None)


def test_po_12_a_student_grant_carries_its_purge_day_and_is_removed_whole_then() -> None:
    """PO-12: purge_on = taxpayer signature date + 130 days."""
    caf, decision = post(
        TaxpayerCaf(), grant(1, designation="k", tax_matters=matters("2023", "2024"))
    )
    assert decision.grant is not None
    assert decision.grant.purge_on == DAY + dt.timedelta(days=130)
    purge = decide_purge(caf, "m-1:0")
    [loss] = purge.losses
    assert [m.period for m in loss.matters] == ["2023", "2024"]
    after = apply(caf, purge)
    assert after.active("2848") == ()
    assert decide_purge(after, "m-1:0").losses == ()


def test_po_12_only_student_grants_are_purged() -> None:
    """PO-12."""
    _, decision = post(TaxpayerCaf(), grant(1))
    assert decision.grant is not None
    assert decision.grant.purge_on is None
