"""The read side's model (issue 17): a grant's story from the outcome stream, and the check."""

from __future__ import annotations

from typing import Any, get_args

import pytest

from schemas.errors import ContractError
from services.caf_query.pages import STATUS_WORDS, STEP_WORDS
from services.caf_query.views import STORY, GrantView, Position, Status, apply, check

CAF = "781234567"


def _event(kind: str, **fields: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "event_id": f"{kind}-1",
        "occurred_at": "2026-11-20T14:05:12+00:00",
        "taxpayer_ref": "ref-1",
        "tin_last4": "6789",
        "form": "2848",
        "message_id": "m-1",
        "grant_id": "m-1:0",
        "caf_number": CAF,
        "stage": "caf_poster",
        **fields,
    }


def _matter(*periods: str, form_number: str = "1040") -> dict[str, Any]:
    return {"tax_type": "Income", "form_number": form_number, "periods": list(periods)}


POSTED = _event(
    "AuthorizationPosted",
    authorization_id="m-1",
    tax_matters=[_matter("2023", "2024", "2025")],
    receive_notices=True,
)


def _fold(*events: dict[str, Any]) -> GrantView:
    view: GrantView | None = None
    for offset, event in enumerate(events):
        view = apply(view, event, Position(3, offset))
    assert view is not None
    return view


def test_a_posted_grant_is_in_effect_for_its_units_and_says_so_to_the_check() -> None:
    view = _fold(POSTED)
    assert view.status == "active"
    answer = check([view], CAF, "Income", "1040", "2024")
    assert (answer.authorized, answer.receives_notices, answer.grant_id) == ("POA", True, "m-1:0")
    assert answer.as_of == (Position(3, 0),)


def test_a_posting_published_again_after_its_revocation_leaves_the_grant_revoked() -> None:
    """A service that handles its input again publishes its recorded events again, with their
    ids, later in the stream: the read side applies an event once, whatever its offset."""
    revoked = _event(
        "AuthorizationRevoked",
        authorization_id="m-1",
        tax_matters=[_matter("2023", "2024", "2025")],
        remaining_matters=[],
        revoked_by="REV-SUPERSEDED",
    )
    view = _fold(POSTED, revoked, POSTED, revoked)
    assert view.status == "revoked"
    assert [step.type for step in view.story] == ["AuthorizationPosted", "AuthorizationRevoked"]
    assert view.position == Position(3, 1)
    assert check([view], CAF, "Income", "1040", "2024").authorized == "none"
    assert GrantView.from_document(view.to_document()) == view


def test_a_partly_revoked_grant_answers_for_what_it_keeps_only() -> None:
    """MK-03: a later form took 2023 and 2024; the grant keeps 2025."""
    revoked = _event(
        "AuthorizationRevoked",
        authorization_id="m-1",
        tax_matters=[_matter("2023", "2024")],
        remaining_matters=[_matter("2025")],
        revoked_by="REV-SUPERSEDED",
    )
    view = _fold(POSTED, revoked)
    assert view.status == "partly_revoked"
    assert check([view], CAF, "Income", "1040", "2024").authorized == "none"
    assert check([view], CAF, "Income", "1040", "2025").authorized == "POA"
    assert [step.type for step in view.story] == ["AuthorizationPosted", "AuthorizationRevoked"]


def test_a_withdrawn_grant_answers_none_and_receives_no_notices() -> None:
    withdrawn = _event(
        "AuthorizationWithdrawn",
        authorization_id="m-1",
        tax_matters=[_matter("2023", "2024", "2025")],
    )
    view = _fold(POSTED, withdrawn)
    assert (view.status, view.receive_notices) == ("withdrawn", False)
    assert check([view], CAF, "Income", "1040", "2023").authorized == "none"


def test_another_representative_or_another_return_is_not_authorized() -> None:
    view = _fold(POSTED)
    assert check([view], "780000001", "Income", "1040", "2024").authorized == "none"
    assert check([view], CAF, "Employment", "941", "2024-03").authorized == "none"


def test_a_period_dropped_as_future_was_never_recorded_so_it_is_not_authorized() -> None:
    """PO-07: the posted event lists only the units recorded."""
    posted = {
        **POSTED,
        "dropped_periods": [
            {
                "tax_type": "Income",
                "form_number": "1040",
                "period": "2031",
                "reason_code": "PART-FUTURE-PERIOD-DROPPED",
            }
        ],
    }
    assert check([_fold(posted)], CAF, "Income", "1040", "2031").authorized == "none"


def test_an_information_authorization_answers_tia() -> None:
    view = _fold({**POSTED, "form": "8821", "receive_notices": False})
    answer = check([view], CAF, "Income", "1040", "2024")
    assert (answer.authorized, answer.receives_notices) == ("TIA", False)


def test_a_pending_request_is_not_in_effect_until_posted_and_an_expired_one_never() -> None:
    pending = _event("AuthorizationPendingApproval", request_id="tpa-1", expires_on="2026-12-20")
    expired = _event("AuthorizationExpired", request_id="tpa-1", reason_code="EXP-NO-DECISION")
    view = _fold(pending)
    assert (view.status, view.expires_on) == ("pending", "2026-12-20")
    assert check([view], CAF, "Income", "1040", "2024").authorized == "none"
    assert _fold(pending, expired).status == "expired"


def test_an_event_applied_again_changes_nothing() -> None:
    view = _fold(POSTED)
    assert apply(view, POSTED, Position(3, 0)) is view  # redelivered
    assert GrantView.from_document(view.to_document()) == view  # stored and read back


def test_a_period_that_is_not_one_is_a_contract_error() -> None:
    with pytest.raises(ContractError):
        check([_fold(POSTED)], CAF, "Income", "1040", "sometime")


def test_the_pages_have_words_for_every_status_and_every_step_of_a_story() -> None:
    assert set(STATUS_WORDS) == set(get_args(Status))
    assert set(STEP_WORDS) == STORY


def _ref(key: str, act: str = "submission", role: str = "taxpayer") -> dict[str, Any]:
    digest = key * 64
    return {
        "role": role,
        "act": act,
        "key": f"evidence/sha256/{digest}",
        "sha256": digest,
        "retain_until": "2033-11-20T14:05:12+00:00",
    }


def test_a_grant_keeps_the_signature_refs_of_its_posting_and_its_revocation_once_each_es_05() -> (
    None
):
    posted = POSTED | {"signature_refs": [_ref("a"), _ref("b", role="representative")]}
    revoked = _event(
        "AuthorizationRevoked",
        tax_matters=[_matter("2023")],
        remaining_matters=[_matter("2024", "2025")],
        revoked_by="REV-BY-TAXPAYER",
        signature_refs=[_ref("c", act="revocation"), _ref("a")],
    )
    view = _fold(posted, revoked)
    assert [(s.act, s.role, s.sha256[0]) for s in view.signatures] == [
        ("submission", "taxpayer", "a"),
        ("submission", "representative", "b"),
        ("revocation", "taxpayer", "c"),
    ]
    assert GrantView.from_document(view.to_document()) == view


def test_a_view_stored_before_signature_evidence_reads_with_none_es_05() -> None:
    document = _fold(POSTED).to_document()
    del document["signatures"]
    assert GrantView.from_document(document).signatures == ()
