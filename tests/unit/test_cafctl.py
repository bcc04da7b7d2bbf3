"""cafctl's pure parts: reconciliation counts, TIN masking, replay routes, operator identity."""

from __future__ import annotations

import json
import secrets
from typing import Any

import pytest
from aiokafka import ConsumerRecord

from caf_runtime.envelope import KeyRing, Sealer
from cafctl.audit import Operator, OperatorRequired
from cafctl.dlq import DeadLetter, masked_value, replay_record, shown
from cafctl.reconcile import reconcile
from schemas import topics
from tests.unit.builders import removal, submission

pytestmark = pytest.mark.unit


def record(value: Any) -> ConsumerRecord[bytes, bytes]:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return ConsumerRecord("t", 0, 0, 0, 0, None, raw, None, 0, len(raw), [])


def event(type_: str, grant_id: str, event_id: str, message_id: str = "m-1", **fields: Any) -> Any:
    return record(
        {
            "type": type_,
            "grant_id": grant_id,
            "event_id": event_id,
            "message_id": message_id,
            **fields,
        }
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


def note(notification_id: str, channel: str = "online_account") -> Any:
    return record(
        {
            "event_id": "e1",
            "recipient": "taxpayer",
            "recipient_ref": "r",
            "channel": channel,
            "notification_id": notification_id,
        }
    )


def test_two_distinct_notifications_for_one_event_recipient_and_channel_are_duplicates() -> None:
    """NO-08."""
    notes = [note(n) for n in ("n1", "n1", "n2")]
    assert reconcile([], [], notes, 0, []).duplicate_notifications == ["e1/taxpayer/online_account"]


def test_one_notice_by_mail_and_one_online_for_the_same_event_are_not_duplicates() -> None:
    """PT-01 asks a protected taxpayer both ways."""
    notes = [note("n1", "mail"), note("n2", "online_account")]
    assert reconcile([], [], notes, 0, []).duplicate_notifications == []


def test_a_grant_held_for_its_taxpayer_is_waiting_for_them_not_lost() -> None:
    """PT-01: like a pending Tax Pro Account request."""
    inbound = [record(submission().model_dump_json().encode())]
    held = [event("AuthorizationHeld", "m-1:0", "e1", reason_code="HOLD-TAXPAYER-CONFIRMATION")]
    report = reconcile(inbound, held, [], 0, [])
    assert report.waiting_for_taxpayer == ["m-1:0"]
    assert report.held_for_review == []


def test_dlq_show_masks_by_field_a_tin_to_its_last_four_and_names_and_unknown_fields_wholly() -> (
    None
):
    value = {
        "kind": "submission",
        "message_id": "m-1",
        "taxpayer": {
            "tin": "123-45-6789",
            "name": "Pat Q. Public",
            "address": {"line1": "1 Main St", "state": "TN"},
        },
        "tax_matters": [{"tax_type": "Income", "form_number": "1040", "periods": ["2024"]}],
        "note": "call 123 45 6789",
        "extra": 123456789,
    }
    shown = masked_value(json.dumps(value).encode())
    assert isinstance(shown, dict)
    assert shown["kind"] == "submission"
    assert shown["message_id"] == "m-1"
    assert shown["taxpayer"]["tin"] == "*****6789"
    assert shown["taxpayer"]["name"].startswith("[masked")
    assert shown["taxpayer"]["address"]["line1"].startswith("[masked")
    assert shown["tax_matters"][0]["periods"] == ["2024"]
    assert shown["note"].startswith("[masked")
    assert shown["extra"].startswith("[masked")
    assert "Public" not in json.dumps(shown)
    assert "12345" not in json.dumps(shown)


def test_dlq_show_of_a_sealed_letter_without_the_key_shows_only_its_error_headers() -> None:
    sealer = Sealer(KeyRing({"k1": secrets.token_bytes(32)}, "k1"))
    letter = DeadLetter(
        topic=topics.INBOUND_DLQ,
        partition=0,
        offset=7,
        key=None,
        headers={"error-class": "ContractError", "content-encryption": "caf-envelope/1"},
        value=sealer.seal("m-1", b'{"taxpayer": {"tin": "123456789"}}', {"a": "b"}),
    )
    closed = shown(letter, None)
    assert closed["sealed"] is True
    assert closed["value"].startswith("[sealed")
    open_ = shown(letter, sealer)
    assert open_["key"] == "m-1"
    assert open_["value"] == {"taxpayer": {"tin": "*****6789"}}
    assert open_["headers"] == {"a": "[masked]", "error-class": "ContractError"}


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


def letter(dead_letter_topic: str, original: str) -> DeadLetter:
    return DeadLetter(
        topic=dead_letter_topic,
        partition=0,
        offset=7,
        key="k",
        headers={
            "caf-signature": "sig",
            "error-class": "Boom",
            "error-message": "it broke",
            "original-topic": original,
            "original-partition": "3",
            "original-offset": "41",
            "original-timestamp": "1",
            "first-failed-at": "2026-12-01T00:00:00+00:00",
            "failed-at": "2026-12-01T00:01:00+00:00",
            "attempt-count": "4",
            "retry-round": "3",
        },
        value=b"{}",
    )


def test_au_04_intakes_dead_letters_go_back_to_the_inbound_topic_without_error_headers() -> None:
    replay = replay_record(letter(topics.INBOUND_DLQ, "p.caf.inbound.v1"), "p.")
    assert replay is not None
    target, headers = replay
    names = dict(headers)
    assert target == "p.caf.inbound.v1"
    assert names["caf-signature"] == b"sig"  # checked again by intake (AU-01)
    assert names["replayed-from"] == b"caf.inbound.dlq.v1/0/7"
    assert not {"error-class", "original-topic", "retry-round"} & set(names)


def test_au_04_an_internal_dead_letter_goes_to_its_services_retry_topic_never_its_source() -> None:
    """A poster dead letter never goes straight to caf.grants.validated.v1 (only the validator
    writes there); the poster's guard runs it again from its retry topic."""
    replay = replay_record(letter(topics.POSTER_DLQ, "p.caf.grants.validated.v1"), "p.")
    assert replay is not None
    target, headers = replay
    names = dict(headers)
    assert target == "p.caf.poster.retry.v1"
    assert names["original-topic"] == b"p.caf.grants.validated.v1"
    assert names["original-offset"] == b"41"
    assert "retry-round" not in names  # a fresh set of rounds


@pytest.mark.parametrize(
    ("dead_letters", "original"),
    [
        (topics.POSTER_DLQ, "p.caf.events.v1"),
        (topics.NOTIFIER_DLQ, "p.caf.grants.validated.v1"),
        (topics.INBOUND_DLQ, "p.caf.grants.accepted.v1"),
        (topics.INBOUND_DLQ, "q.caf.inbound.v1"),  # another environment's topic
    ],
)
def test_au_04_a_dead_letter_naming_a_topic_its_service_does_not_read_is_refused(
    dead_letters: str, original: str
) -> None:
    assert replay_record(letter(dead_letters, original), "p.") is None


def test_au_04_an_operator_must_say_who_and_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CAF_OPERATOR", raising=False)
    with pytest.raises(OperatorRequired, match="--operator"):
        Operator.resolve(None, "because", "submit")
    with pytest.raises(OperatorRequired, match="--why"):
        Operator.resolve("dana", "  ", "submit")
    monkeypatch.setenv("CAF_OPERATOR", "erin")
    assert Operator.resolve(None, "OPS-1", "submit") == Operator("erin", "OPS-1")


@pytest.mark.parametrize(
    "argv",
    [
        ["--json", "dlq", "list"],
        ["dlq", "list", "--json"],
        ["sla", "--json"],
        ["holds", "list", "--json"],
        ["misuse", "show", "030100101", "--json"],
        ["audit", "--limit", "5", "--json"],
    ],
)
def test_json_is_accepted_before_or_after_any_command(argv: list[str]) -> None:
    """As `--help` documents it (issue 21: `dlq list --json` was refused by argparse)."""
    from cafctl.cli import _parser  # noqa: PLC0415 - the parser only

    assert _parser().parse_args(argv).json is True


def test_without_json_the_output_is_for_people() -> None:
    from cafctl.cli import _parser  # noqa: PLC0415 - the parser only

    assert _parser().parse_args(["dlq", "list"]).json is False
