"""cafctl's pure parts: reconciliation counts and TIN masking."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiokafka import ConsumerRecord

from cafctl.dlq import mask_tins
from cafctl.reconcile import reconcile
from tests.unit.builders import removal, submission

pytestmark = pytest.mark.unit


def record(value: Any) -> ConsumerRecord[bytes, bytes]:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return ConsumerRecord("t", 0, 0, 0, 0, None, raw, None, 0, len(raw), [])


def event(type_: str, grant_id: str, event_id: str, message_id: str = "m-1") -> Any:
    return record(
        {"type": type_, "grant_id": grant_id, "event_id": event_id, "message_id": message_id}
    )


def form_with_two_reps() -> bytes:
    message = submission()
    second = message.model_copy(update={"representatives": message.representatives * 2})
    return second.model_dump_json().encode()


def test_a_clean_run_has_one_terminal_event_per_grant_and_each_posted_grant_stored() -> None:
    inbound = [record(form_with_two_reps()), record(form_with_two_reps()), record(b"{bad")]
    events = [
        event("AuthorizationPosted", "m-1:0", "e0"),
        event("AuthorizationPosted", "m-1:0", "e0"),  # re-published after a crash: same id
        event("AuthorizationRejected", "m-1:1", "e1"),
    ]
    report = reconcile(inbound, events, [], dead_letters=1, stored_grants=["m-1:0"])
    assert (report.grants_expected, report.grants_ok, report.dead_letters) == (2, 2, 1)
    assert report.clean


def test_lost_and_duplicated_grants_and_caf_mismatches_are_reported() -> None:
    inbound = [record(form_with_two_reps())]
    events = [
        event("AuthorizationPosted", "m-1:0", "e0"),
        event("AuthorizationNotProcessed", "m-1:0", "e9"),
    ]
    report = reconcile(inbound, events, [], 0, stored_grants=["m-9:0", "m-9:0"])
    assert report.lost == ["m-1:1"]
    assert report.duplicated == ["m-1:0"]
    assert report.caf_missing == ["m-1:0"]
    assert report.caf_unexpected == ["m-9:0"]
    assert not report.clean


def test_a_withdrawal_needs_an_outcome_naming_its_message() -> None:
    inbound = [record(removal("withdrawal").model_dump_json().encode())]
    assert reconcile(inbound, [], [], 0, []).removals_lost == ["m-2"]
    done = [event("AuthorizationWithdrawn", "m-1:0", "e5", message_id="m-2")]
    assert reconcile(inbound, done, [], 0, []).clean


def test_two_distinct_notifications_for_one_event_and_recipient_are_duplicates() -> None:
    """NO-08."""
    notes = [
        record(
            {"event_id": "e1", "recipient": "taxpayer", "recipient_ref": "r", "notification_id": n}
        )
        for n in ("n1", "n1", "n2")
    ]
    assert reconcile([], [], notes, 0, []).duplicate_notifications == ["e1/taxpayer"]


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ('{"tin": "123-45-6789"}', '{"tin": "***-**-6789"}'),
        ("ein 12-3456789 here", "ein **-***6789 here"),
        ("123456789", "*****6789"),
        ("2026-11-20", "2026-11-20"),
    ],
)
def test_operator_output_masks_everything_shaped_like_a_tin(text: str, masked: str) -> None:
    assert mask_tins(text) == masked


def test_a_request_announced_pending_is_waiting_not_lost() -> None:
    request = {
        "kind": "tpa_request",
        "schema_version": 1,
        "message_id": "t-1",
        "sent_at": "2026-11-20T14:00:00-05:00",
        "request_id": "tpa-1",
        "received_on": "2026-11-20",
        "form": "2848",
        "taxpayer": {},
        "representative": {},
        "tax_matters": [],
    }
    pending = event("AuthorizationPendingApproval", "tpa-1", "p1", message_id="t-1")
    report = reconcile([record(request)], [pending], [], 0, [])
    assert report.waiting_for_taxpayer == ["tpa-1"]
    assert report.clean
    assert reconcile([record(request)], [], [], 0, []).lost == ["tpa-1"]


def test_a_grant_held_for_review_is_waiting_for_an_operator_not_lost() -> None:
    """CN-09: held is not terminal; a refusal afterwards is its one outcome."""
    form = submission()
    grant_id = f"{form.message_id}:0"
    held = event("AuthorizationHeld", grant_id, "h1", message_id=form.message_id)
    report = reconcile([record(form.model_dump_json().encode())], [held], [], 0, [])
    assert (report.held_for_review, report.lost, report.clean) == ([grant_id], [], True)
    refused = event("AuthorizationRejected", grant_id, "r1", message_id=form.message_id)
    after = reconcile([record(form.model_dump_json().encode())], [held, refused], [], 0, [])
    assert (after.held_for_review, after.grants_ok) == ([], 1)
