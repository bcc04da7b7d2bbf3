"""cafctl's pure parts: reconciliation counts, TIN masking, replay routes, operator identity;
and its command line through typer's runner, offline: what people read (tables that say what is
empty) and what scripts parse (`--json` anywhere, byte for byte), exit statuses, AU-04 refusals."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import secrets
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any, cast

import pytest
import typer
from aiokafka import ConsumerRecord
from typer.testing import CliRunner

from caf_runtime.audit import AuditRecord
from caf_runtime.envelope import KeyRing, Sealer
from cafctl import cli, dlq, holds, misuse, operations, render
from cafctl.audit import Operator, OperatorRequired
from cafctl.dlq import DeadLetter, masked_value, replay, replay_record, shown
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


# -- the command line, through typer's runner: its human output and its JSON ---------------------

runner = CliRunner(env={"FORCE_COLOR": None, "TTY_COMPATIBLE": None, "COLUMNS": None})

# Every command and subcommand cafctl had as argparse; scripts and runbooks name them.
COMMANDS = {
    "acls", "audit", "provision", "reconcile", "rekey", "sla", "status", "submit", "token",
    "trace", "dlq list", "dlq show", "dlq replay", "practitioner show", "practitioner set",
    "holds list", "holds release", "holds refuse", "officials show", "officials deactivate",
    "misuse list", "misuse show", "misuse hold", "statements send", "signatures show",
}  # fmt: skip


def command_paths(command: Any, prefix: str = "") -> set[str]:
    """`group sub` of every runnable command under a click group."""
    found: set[str] = set()
    for name, sub in getattr(command, "commands", {}).items():
        path = f"{prefix} {name}".strip()
        found |= command_paths(sub, path) if hasattr(sub, "commands") else {path}
    return found


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> list[AuditRecord]:
    """No broker and no table: connection options are empty, and the audit records what it
    would have written (the list returned) instead of writing it."""
    records: list[AuditRecord] = []

    class FakeAudit:
        def __init__(self, settings: Any) -> None:
            del settings

        @asynccontextmanager
        async def action(
            self, operator: Operator, action: str, target: str, before: Any = None
        ) -> AsyncIterator[AuditRecord]:
            record = AuditRecord(action, target, operator.name, operator.why, before=before)
            yield record
            records.append(record)

    monkeypatch.setattr(cli, "client_options", lambda settings: {})
    monkeypatch.setattr(cli, "Audit", FakeAudit)
    monkeypatch.delenv("CAF_OPERATOR", raising=False)
    return records


def returning(value: Any) -> Callable[..., Awaitable[Any]]:
    async def fake(*args: Any, **kwargs: Any) -> Any:
        del args, kwargs
        return value

    return fake


def untouched(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("reached the broker or a table")


@pytest.fixture
def nothing_anywhere(monkeypatch: pytest.MonkeyPatch, offline: list[AuditRecord]) -> None:
    """Every listing finds nothing."""
    del offline
    monkeypatch.setattr(dlq, "list_dead_letters", returning([]))
    monkeypatch.setattr(operations, "waiting_to_post", returning([]))
    monkeypatch.setattr(holds, "list_holds", returning([]))
    monkeypatch.setattr(misuse, "cases", returning([]))
    monkeypatch.setattr(cli, "audit_trail", returning([]))


def test_help_lists_every_command_and_each_is_still_there() -> None:
    assert command_paths(typer.main.get_command(cli.app)) == COMMANDS
    result = runner.invoke(cli.app, ["--help"])
    assert result.exit_code == 0
    for group in {path.split()[0] for path in COMMANDS}:
        assert f" {group} " in result.stdout, group
    assert "--install-completion" in result.stdout  # shell completion


@pytest.mark.usefixtures("nothing_anywhere")
@pytest.mark.parametrize(
    "argv",
    [
        ["--json", "dlq", "list"],
        ["dlq", "list", "--json"],
        ["dlq", "--json", "list"],
        ["sla", "--json"],
        ["holds", "list", "--json"],
        ["holds", "list", "--all", "--json"],
        ["misuse", "list", "--json"],
        ["audit", "--limit", "5", "--json"],
        ["--json", "audit", "--limit", "5"],
    ],
)
def test_json_is_accepted_before_or_after_any_command(argv: list[str]) -> None:
    """As `--help` documents it (issue 21: `dlq list --json` was refused by argparse)."""
    result = runner.invoke(cli.app, argv)
    assert result.exit_code == 0, result.output
    assert result.stdout == "[]\n"


@pytest.mark.usefixtures("nothing_anywhere")
@pytest.mark.parametrize(
    ("argv", "sentence"),
    [
        (["dlq", "list"], "no dead letters"),
        (["sla"], "no grants waiting to post"),
        (["holds", "list"], "no grants held for review"),
        (["holds", "list", "--all"], "no grant was ever held for review"),
        (["misuse", "list"], "no suspected misuse"),
        (["audit"], "no operator actions recorded"),
    ],
)
def test_an_empty_table_says_what_it_has_none_of(argv: list[str], sentence: str) -> None:
    result = runner.invoke(cli.app, argv)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{sentence}\n"


@pytest.mark.usefixtures("nothing_anywhere")
def test_sla_with_nothing_at_risk_says_no_grant_waits_not_that_there_are_no_dead_letters() -> None:
    """The issue's report: `cafctl sla` printed 'no dead letters' when nothing was at risk."""
    result = runner.invoke(cli.app, ["sla"])
    assert "dead letter" not in result.stdout
    assert "waiting to post" in result.stdout


def sla_row(grant_id: str) -> dict[str, Any]:
    return {
        "grant_id": grant_id,
        "form": "2848",
        "caf_number": "030100101",
        "taxpayer_ref": "ref",
        "ready_at": "2026-12-01T00:00:00+00:00",
        "deadline": "2026-12-03T00:00:00+00:00",
        "age_s": 3600,
    }


def test_sla_shows_each_waiting_grant_under_its_columns_and_json_prints_exactly_the_rows(
    monkeypatch: pytest.MonkeyPatch, offline: list[AuditRecord]
) -> None:
    rows = [sla_row("m-1:0"), sla_row("m-2:1")]
    monkeypatch.setattr(operations, "waiting_to_post", returning(rows))
    people = runner.invoke(cli.app, ["sla"]).stdout
    header = next(line for line in people.splitlines() if "grant_id" in line)
    assert header.split() == ["age_s", "grant_id", "form", "caf_number", "ready_at", "deadline"]
    assert "m-1:0" in people
    assert "m-2:1" in people
    assert "taxpayer_ref" not in people
    scripts = runner.invoke(cli.app, ["sla", "--json"]).stdout
    assert scripts == json.dumps(rows, indent=2) + "\n"  # byte for byte what argparse printed
    assert offline == []


def test_a_value_that_looks_like_markup_is_printed_as_it_is(
    monkeypatch: pytest.MonkeyPatch, offline: list[AuditRecord]
) -> None:
    """A masked value reads `[masked: N chars]`; rich must not take it for a style."""
    del offline
    strange = letter(topics.INBOUND_DLQ, "p.caf.inbound.v1")
    headers = {**strange.headers, "error-message": "[masked: 5 chars] [bold]x[/bold]"}
    monkeypatch.setattr(
        dlq, "list_dead_letters", returning([DeadLetter(**{**asdict(strange), "headers": headers})])
    )
    result = runner.invoke(cli.app, ["dlq", "list"])
    assert result.exit_code == 0, result.output
    assert "[masked: 5 chars] [bold]x[/bold]" in result.stdout


@pytest.mark.usefixtures("nothing_anywhere")
def test_dlq_show_of_a_letter_nobody_listed_is_not_found() -> None:
    result = runner.invoke(cli.app, ["dlq", "show", "caf.inbound.dlq.v1/0/9", "--json"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "no dead letter caf.inbound.dlq.v1/0/9" in result.stderr


@pytest.mark.parametrize(
    "command",
    [
        ["submit", "forms.json"],
        ["practitioner", "set", "record.json"],
        ["dlq", "replay"],
        ["holds", "release", "m-1:0"],
        ["holds", "refuse", "m-1:0"],
        ["officials", "deactivate", "ent-1", "do-1"],
        ["misuse", "hold", "030100101"],
        ["statements", "send", "--caf", "030100101"],
        ["rekey", "--to-version", "2"],
    ],
)
@pytest.mark.parametrize("missing", ["--operator", "--why"])
def test_au_04_a_state_changing_command_without_who_or_why_is_refused_before_anything_happens(
    monkeypatch: pytest.MonkeyPatch,
    offline: list[AuditRecord],
    tmp_path: Path,
    command: list[str],
    missing: str,
) -> None:
    given = ["--why", "because"] if missing == "--operator" else ["--operator", "dana"]
    for name in ("forms.json", "record.json"):
        (tmp_path / name).write_text('{"caf_number": "030100999", "name": "X"}')
    monkeypatch.setattr(cli, "ServiceSettings", untouched)
    argv = [str(tmp_path / a) if a.endswith(".json") else a for a in command]
    result = runner.invoke(cli.app, [*argv, *given])
    assert result.exit_code == 1
    assert missing in result.stderr
    assert "changes state" in result.stderr
    assert offline == []  # nothing audited: nothing happened


def outcome(status: str, operator: str = "dana") -> holds.Outcome:
    return holds.Outcome("m-1:0", "release", operator, "review:m-1:0:x", status)


@pytest.mark.parametrize(
    ("status", "code"),
    [("released", 0), ("held", 3), ("refused", 4)],  # refused: another operator was first
)
def test_holds_release_exits_by_what_became_of_the_hold_and_is_audited(
    monkeypatch: pytest.MonkeyPatch, offline: list[AuditRecord], status: str, code: int
) -> None:
    monkeypatch.setattr(holds, "decide", returning(outcome(status)))
    argv = ["holds", "release", "m-1:0", "--operator", "dana", "--why", "OPS-1", "--json"]
    result = runner.invoke(cli.app, argv)
    assert result.exit_code == code, result.output
    assert json.loads(result.stdout)["status"] == status
    [record] = offline
    assert (record.action, record.target, record.operator, record.why) == (
        "holds release",
        "m-1:0",
        "dana",
        "OPS-1",
    )
    assert record.before == {"status": "held"}
    assert record.after["status"] == status


def test_holds_refuse_sends_a_refusal_and_is_audited_as_one(
    monkeypatch: pytest.MonkeyPatch, offline: list[AuditRecord]
) -> None:
    decided: list[str] = []

    async def decide(
        settings: Any, grant_id: str, decision: holds.Decision, *, operator: str, why: str
    ) -> holds.Outcome:
        del settings, why
        decided.append(decision)
        return holds.Outcome(grant_id, decision, operator, "review:m-1:0:x", "refused")

    monkeypatch.setattr(holds, "decide", decide)
    argv = ["holds", "refuse", "m-1:0", "--operator", "dana", "--why", "OPS-3"]
    result = runner.invoke(cli.app, argv)
    assert result.exit_code == 0, result.output
    assert decided == ["refuse"]
    [record] = offline
    assert (record.action, record.target, record.why) == ("holds refuse", "m-1:0", "OPS-3")


def test_every_command_takes_json_as_its_last_option_and_only_audited_ones_ask_who_acts() -> None:
    """The options `_command` adds come after the command's own, as they always stood."""
    root = typer.main.get_command(cli.app)
    audited = {
        "submit", "practitioner set", "dlq replay", "holds release", "holds refuse",
        "officials deactivate", "misuse hold", "statements send", "rekey",
    }  # fmt: skip
    readers = {"trace", "signatures show"}  # --operator and --why of an API read, their own
    for path in COMMANDS:
        command = root
        for name in path.split():
            command = cast("Any", command).commands[name]
        options = [param.opts[0] for param in command.params]
        assert options[-1] == "--json", path
        asks_who = {"--operator", "--why"} <= set(options)
        assert asks_who == (path in audited | readers), path
        if path in audited:
            assert options[-3:] == ["--operator", "--why", "--json"], path


def test_an_operator_named_by_caf_operator_needs_no_flag(
    monkeypatch: pytest.MonkeyPatch, offline: list[AuditRecord]
) -> None:
    monkeypatch.setattr(holds, "decide", returning(outcome("released", "erin")))
    monkeypatch.setenv("CAF_OPERATOR", "erin")
    result = runner.invoke(cli.app, ["holds", "release", "m-1:0", "--why", "OPS-2"])
    assert result.exit_code == 0, result.output
    assert "released" in result.stdout  # people read the outcome's fields
    assert [r.operator for r in offline] == ["erin"]


def test_a_document_is_printed_for_people_field_by_field(
    monkeypatch: pytest.MonkeyPatch, offline: list[AuditRecord]
) -> None:
    del offline
    found = {"caf_number": "030100101", "registry_feed": {"name": "Avery"}, "validator_view": None}
    monkeypatch.setattr(operations, "practitioner_records", returning(found))
    result = runner.invoke(cli.app, ["practitioner", "show", "030100101"])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["caf_number", "030100101"]
    assert '"name": "Avery"' in result.stdout
    assert runner.invoke(cli.app, ["--json", "practitioner", "show", "x"]).stdout == (
        json.dumps(found, indent=2) + "\n"
    )


@pytest.mark.usefixtures("offline")
def test_misuse_show_of_a_number_without_suspicions_says_so_and_exits_1(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(misuse, "cases", returning([]))
    result = runner.invoke(cli.app, ["misuse", "show", "030100101"])
    assert result.exit_code == 1
    assert result.stdout == "no suspected misuse of 030100101\n"


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["dlq", "list", "--bogus"], 2),
        (["dlq", "list", "--topic", "caf.events.v1"], 2),  # not a dead-letter topic
        (["dlq", "list", "--since", "yesterday"], 2),
        (["token", "--role", "auditor"], 2),
        (["token", "--role", "taxpayer"], 2),  # a taxpayer token names the TIN
        (["signatures", "show", "m-1:0"], 2),  # --why is required
        (["rekey"], 2),  # --to-version is required
        (["--help"], 0),
        (["dlq", "replay", "--help"], 0),
    ],
)
def test_main_returns_the_exit_status_and_never_exits_the_process(
    argv: list[str], code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    """`cafctl.cli.main(argv)` is what the e2e tests and `python -m cafctl` call."""
    assert cli.main(argv) == code
    printed = capsys.readouterr()
    assert (printed.out if code == 0 else printed.err).strip()


def test_main_reports_an_operator_command_without_a_reason_as_bad_input(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CAF_OPERATOR", "dana")
    assert cli.main(["statements", "send"]) == 1
    assert capsys.readouterr().err.startswith("cafctl: statements send changes state")


def test_main_prints_json_where_stdout_is_at_the_time_of_the_call(
    monkeypatch: pytest.MonkeyPatch, offline: list[AuditRecord]
) -> None:
    """The e2e tests redirect stdout around `main` (`contextlib.redirect_stdout`)."""
    del offline
    monkeypatch.setattr(operations, "waiting_to_post", returning([sla_row("m-3:0")]))
    captured = io.StringIO()
    with contextlib.redirect_stdout(captured):
        assert cli.main(["--json", "sla"]) == 0
    assert json.loads(captured.getvalue())[0]["grant_id"] == "m-3:0"


def test_replay_advances_its_progress_once_per_letter_decided() -> None:
    """What `dlq replay` draws its progress bar with: every letter counts, replayed or not."""

    class Ops:
        name = "ops"

        class client:  # noqa: N801 - stands in for the DynamoDB client attribute
            @staticmethod
            async def get_item(**kwargs: Any) -> dict[str, Any]:
                return {"Item": {}} if kwargs["Key"]["pk"]["S"].endswith("/7") else {}

    steps: list[int] = []
    letters = [letter(topics.POSTER_DLQ, "p.caf.events.v1"), letter(topics.INBOUND_DLQ, "x")]
    letters[1] = DeadLetter(**{**asdict(letters[1]), "offset": 8})
    report = asyncio.run(
        replay(
            letters,
            ops=cast("Any", Ops()),
            producer=cast("Any", None),
            prefix="p.",
            advance=lambda: steps.append(1),
        )
    )
    assert (report.already_replayed, report.refused) == (
        (f"{topics.POSTER_DLQ}/0/7",),
        (f"{topics.INBOUND_DLQ}/0/8",),
    )
    assert len(steps) == 2


def test_progress_is_drawn_only_for_people_at_a_terminal() -> None:
    for output in (render.Output(json=True), render.Output(json=False)):
        assert not output.live  # pytest captures stdout: not a terminal
        with output.progress("replaying", 3) as advance:
            advance()  # nothing drawn, nothing fails


def test_a_broker_that_does_not_answer_is_one_clear_line_and_status_1_not_a_traceback() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {"KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{port}", "KAFKA_SECURITY_PROTOCOL": "PLAINTEXT"}
    result = runner.invoke(cli.app, ["status"], env=env)
    assert result.exit_code == 1
    assert "Kafka did not answer" in result.stderr
    assert "devstack env" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_a_reader_gets_its_own_operator_and_why_as_the_api_read_it_makes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`signatures show` and `trace` declare --operator and --why themselves (an employee read
    the API audits), not through the audited commands' shared options."""
    asked: list[tuple[str | None, str | None, str]] = []

    def api_read(operator: str | None, why: str | None, action: str) -> Any:
        asked.append((operator, why, action))
        return None

    monkeypatch.setattr(cli, "_api_read", api_read)
    runner.invoke(cli.app, ["signatures", "show", "g-1", "--operator", "jdoe", "--why", "case 7"])
    assert asked == [("jdoe", "case 7", "read signature evidence")]
