"""cafctl: operate the CAF processor from a terminal.

  cafctl dlq list [--topic T] [--json]
  cafctl dlq show <topic/partition/offset> [--json]
  cafctl dlq replay [--topic T] [--error-class C] [--since T] [--until T] [--dry-run] OPERATOR
  cafctl reconcile [--json]
  cafctl provision [--replication-factor N] [--acls]
  cafctl acls [--json]
  cafctl sla
  cafctl practitioner show <caf_number> | set <file> [--key JWK] OPERATOR
  cafctl submit <file> [--key JWK | --keys DIR] OPERATOR
  cafctl status [--json]
  cafctl trace <message_id | grant_id | request_id | event_id> [--why TEXT] [--json]
  cafctl holds list [--all] [--json]
  cafctl holds release|refuse <grant_id> OPERATOR
  cafctl officials show <entity_id> [--json]
  cafctl officials deactivate <entity_id> <official_id> OPERATOR [--json]
  cafctl misuse list | show <caf_number> [--json]
  cafctl misuse hold <caf_number> [--key JWK] OPERATOR [--json]
  cafctl statements send [--caf CAF_NUMBER ...] OPERATOR [--json]
  cafctl audit [--limit N] [--json]
  cafctl rekey --to-version N OPERATOR   (the new version's key in CAF_REKEY_LAYER_KEY)

OPERATOR is `--operator NAME` (or CAF_OPERATOR) and `--why TEXT`: every command that changes
state needs both and leaves an audit record in the ops table and on caf.audit.v1 (AU-04).
Records published by `submit` and `practitioner set` are signed (AU-01): `--key` a private JWK,
or `--keys` a folder of `<kid>.jwk` files, one per publisher (default CAF_SIGNING_KEYS, else the
local stack's `.devstack/keys`).

Exit status: 0 done, 1 bad input or not found, 3 `officials deactivate` not applied within
its wait, 4 another operator or official decided first (`holds`, `officials deactivate`).

Connection settings come from the environment like the services' (KAFKA_BOOTSTRAP_SERVERS,
DYNAMODB_ENDPOINT, CAF_TOPIC_PREFIX, CAF_TABLE_PREFIX, ...).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

from caf_client.identity import ROLES
from caf_client.signing import Signer
from caf_runtime.acls import acl_table, all_acls, apply_acls, kafka_admin_config
from caf_runtime.broker import client_options, producer_options
from caf_runtime.config import ServiceSettings
from caf_runtime.dynamo import DynamoTable, dynamodb_client
from caf_runtime.provision import ensure_tables, ensure_topics
from caf_runtime.secrets import WeakKeyError, key_bytes
from caf_runtime.topology import TABLES, TOPICS
from cafctl import dlq, holds, misuse, officials, operations
from cafctl.audit import Audit, Operator, audit_trail
from cafctl.devkeys import dev_keys
from cafctl.read_side import ApiRefusedError, ReadSideApi, ReadSideRead
from cafctl.reconcile import reconcile_deployment
from cafctl.rekey import rekey
from cafctl.status import status, trace
from schemas import topics
from services.caf_poster.config import CafPosterSettings


def _operator_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("--operator", help="who acts (default: CAF_OPERATOR); audited")
    command.add_argument("--why", help="why; kept in the audit record")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cafctl", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    commands = parser.add_subparsers(dest="command", required=True)
    letters = commands.add_parser("dlq", help="dead letters").add_subparsers(
        dest="action", required=True
    )
    for action, text in (("list", "list dead letters"), ("replay", "replay dead letters")):
        sub = letters.add_parser(action, help=text)
        sub.add_argument(
            "--topic",
            choices=topics.DEAD_LETTER_TOPICS,
            help="one dead-letter topic (default: all)",
        )
        sub.add_argument("--error-class", help="only letters with this error class")
        sub.add_argument("--since", type=datetime.fromisoformat, help="failed at or after")
        sub.add_argument("--until", type=datetime.fromisoformat, help="failed at or before")
        if action == "replay":
            sub.add_argument("--dry-run", action="store_true", help="show, do not publish")
            _operator_arguments(sub)
    show = letters.add_parser(
        "show", help="one dead letter, opened with CAF_ENVELOPE_KEYS if sealed, masked by field"
    )
    show.add_argument("id", help="topic/partition/offset as listed")
    commands.add_parser("reconcile", help="every input has exactly one outcome?")
    provision = commands.add_parser(
        "provision", help="create the missing topics and tables of this environment"
    )
    provision.add_argument(
        "--replication-factor", type=int, default=1, help="for new topics (production: 3)"
    )
    provision.add_argument(
        "--acls", action="store_true", help="also create every principal's ACLs (super user)"
    )
    commands.add_parser(
        "acls", help="the ACL of every principal, from the topology (for a real cluster)"
    )
    commands.add_parser("status", help="topics, consumer lag, dead letters, service readiness")
    commands.add_parser("sla", help="grants waiting to post, oldest first, with their age")
    practitioner = commands.add_parser(
        "practitioner", help="a practitioner in the registry feed"
    ).add_subparsers(dest="action", required=True)
    show_practitioner = practitioner.add_parser(
        "show", help="the feed's latest record and the validator's applied view"
    )
    show_practitioner.add_argument("caf_number")
    set_practitioner = practitioner.add_parser(
        "set", help="publish a registry record (JSON file or - for stdin)"
    )
    set_practitioner.add_argument("file", type=argparse.FileType("r"))
    set_practitioner.add_argument("--key", type=Path, help="the registry feed's private JWK")
    _operator_arguments(set_practitioner)
    submit = commands.add_parser(
        "submit", help="publish inbound messages from a file (JSON object, array or JSON lines)"
    )
    submit.add_argument("file", type=Path)
    submit.add_argument("--key", type=Path, help="one private JWK that signs every message")
    submit.add_argument("--keys", type=Path, help="a folder of <kid>.jwk, one per publisher")
    _operator_arguments(submit)
    trail = commands.add_parser("audit", help="the latest operator actions, newest first")
    trail.add_argument("--limit", type=int, default=50)
    _hold_arguments(commands)
    _official_arguments(commands)
    _misuse_arguments(commands)
    rekeying = commands.add_parser(
        "rekey",
        help="move the CAF records of taxpayer_ref key version N-1 to version N (the layer key "
        "of version N comes from CAF_REKEY_LAYER_KEY, never from the command line)",
    )
    rekeying.add_argument("--to-version", type=int, required=True)
    _operator_arguments(rekeying)
    _token_arguments(commands)
    _signature_arguments(commands)
    follow = commands.add_parser("trace", help="everything about one message, grant or request")
    follow.add_argument("id", help="a message_id, grant_id, request_id or event_id")
    follow.add_argument("--operator", help="who reads (default: CAF_OPERATOR)")
    follow.add_argument(
        "--why",
        help="with a reason (a case number), also what the authorization API answers now of "
        "the grants traced: an employee read, audited by the API",
    )
    _json_everywhere(parser)
    return parser


def _json_everywhere(parser: argparse.ArgumentParser) -> None:
    """`--json` is accepted after any (sub)command too, as `--help` shows it, not only before
    the command (a subcommand's own default never hides the top-level one)."""
    for action in parser._actions:  # argparse has no public walk of its subparsers
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                if "--json" not in sub._option_string_actions:
                    sub.add_argument(
                        "--json",
                        action="store_true",
                        default=argparse.SUPPRESS,
                        help="machine-readable output",
                    )
                _json_everywhere(sub)


def _hold_arguments(commands: Any) -> None:
    holds = commands.add_parser(
        "holds", help="grants held by VA-07 for review (CN-09)"
    ).add_subparsers(dest="action", required=True)
    held = holds.add_parser("list", help="grants waiting for a decision")
    held.add_argument("--all", action="store_true", help="decided ones too, with who and why")
    for decision, text in (
        ("release", "send a held grant on to the poster"),
        ("refuse", "end a held grant: rejected REJ-FRAUD-REVIEW"),
    ):
        act = holds.add_parser(decision, help=text)
        act.add_argument("grant_id")
        _operator_arguments(act)


def _official_arguments(commands: Any) -> None:
    officials = commands.add_parser(
        "officials", help="a business's Designated Officials (DO-07)"
    ).add_subparsers(dest="action", required=True)
    shown = officials.add_parser(
        "show", help="its officials, PIN requests (never a PIN) and authorized users"
    )
    shown.add_argument("entity_id")
    shown.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    ending = officials.add_parser(
        "deactivate", help="deactivate an active Designated Official of the business"
    )
    ending.add_argument("entity_id")
    ending.add_argument("official_id")
    _operator_arguments(ending)
    ending.add_argument("--json", action="store_true", default=argparse.SUPPRESS)


def _misuse_arguments(commands: Any) -> None:
    misuse = commands.add_parser(
        "misuse", help="suspected misuse of CAF numbers (MN-01 … MN-06)"
    ).add_subparsers(dest="action", required=True)
    listed = misuse.add_parser("list", help="every suspicion raised, newest day first")
    listed.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    shown = misuse.add_parser("show", help="one CAF number's suspicions with their evidence")
    shown.add_argument("caf_number")
    shown.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    held = misuse.add_parser(
        "hold", help="mark the number pending review (status P: VA-02 refuses its grants)"
    )
    held.add_argument("caf_number")
    held.add_argument("--key", type=Path, help="the registry feed's private JWK")
    _operator_arguments(held)
    held.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    statements = commands.add_parser(
        "statements", help="annual review statements of practitioners (MN-07)"
    ).add_subparsers(dest="action", required=True)
    send = statements.add_parser(
        "send", help="send the statements now (every practitioner with active grants, or these)"
    )
    send.add_argument("--caf", action="append", dest="caf_numbers", metavar="CAF_NUMBER")
    _operator_arguments(send)
    send.add_argument("--json", action="store_true", default=argparse.SUPPRESS)


def _signature_arguments(commands: Any) -> None:
    evidence = commands.add_parser(
        "signatures", help="signature evidence (ESSAR): stored objects, hashed again"
    ).add_subparsers(dest="action", required=True)
    shown = evidence.add_parser(
        "show",
        help="each evidence object of a grant with its role, sha256, retain_until and verified "
        "(an employee read through the API, audited)",
    )
    shown.add_argument("grant_id")
    shown.add_argument("--operator", help="who reads (default: CAF_OPERATOR)")
    shown.add_argument("--why", required=True, help="why (a case number); the API audits it")
    shown.add_argument("--json", action="store_true", default=argparse.SUPPRESS)


def _token_arguments(commands: Any) -> None:
    token = commands.add_parser(
        "token",
        help="a development bearer token of the authorization API, from the local stack's "
        "identity provider (secure-access)",
    )
    token.add_argument("--role", choices=ROLES, required=True)
    token.add_argument("--subject", help="who the token names (default: <role>-dev)")
    token.add_argument("--tin", help="a taxpayer's TIN (role taxpayer)")
    token.add_argument("--caf-number", help="a practitioner's CAF number (role practitioner)")


def _token(args: argparse.Namespace) -> int:
    """Mint a development token: the local provider's key signs it, so only the local stack
    (and tests) trust it."""
    if args.role == "taxpayer" and not args.tin:
        print("cafctl: a taxpayer token names the taxpayer: --tin", file=sys.stderr)
        return 2
    if args.role == "practitioner" and not args.caf_number:
        print("cafctl: a practitioner token names the CAF number: --caf-number", file=sys.stderr)
        return 2
    claims = {k: v for k, v in (("tin", args.tin), ("caf_number", args.caf_number)) if v}
    keys = dev_keys().ensure()
    print(keys.access_token(role=args.role, subject=args.subject or f"{args.role}-dev", **claims))
    return 0


async def _run(args: argparse.Namespace) -> int:
    if args.command == "token":
        return _token(args)
    if args.command == "signatures":
        return _signatures(args)
    settings = ServiceSettings()
    options = client_options(settings)
    if args.command == "reconcile":
        return await _reconcile(settings, options, args.json)
    if args.command == "provision":
        return await _provision(settings, options, args.replication_factor, args.json, args.acls)
    if args.command in ("acls", "audit"):
        return await _listing(args, settings)
    if args.command == "status":
        return await _status(settings, options, args.json)
    if args.command == "trace":
        return await _trace(settings, options, args, _api_read(args))
    if args.command == "dlq":
        return await _dlq(args, settings, options)
    if args.command == "holds":
        return await _holds(args, settings)
    if args.command == "officials":
        return await _officials(args, settings)
    if args.command in {"misuse", "statements"}:
        return await _misuse(args, settings, options)
    if args.command == "rekey":
        return await _rekey(args, settings)
    return await _operate(args, settings, options)


async def _listing(args: argparse.Namespace, settings: ServiceSettings) -> int:
    """acls (what the topology grants) and audit (the latest operator actions)."""
    if args.command == "acls":
        rows = acl_table(all_acls(settings.topic_prefix))
        columns = ["principal", "resource", "name", "pattern", "operation"]
    else:
        rows = await audit_trail(settings, args.limit)
        columns = ["at", "operator", "action", "target", "outcome", "why"]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        _table(rows, columns)
    return 0


async def _rekey(args: argparse.Namespace, settings: ServiceSettings) -> int:
    """The rotation drill's re-key step (docs/operations.md), audited."""
    operator = Operator.resolve(args.operator, args.why, "rekey")
    if args.to_version < 2:
        print("cafctl: --to-version is 2 or more (version 1 is the base key)", file=sys.stderr)
        return 2
    try:
        layer_key = key_bytes(os.environ.get("CAF_REKEY_LAYER_KEY", ""), "CAF_REKEY_LAYER_KEY")
    except WeakKeyError as error:
        print(f"cafctl: {error}", file=sys.stderr)
        return 2
    target = f"taxpayer_ref version {args.to_version}"
    async with Audit(settings).action(operator, "rekey", target) as entry:
        report = await rekey(CafPosterSettings(), args.to_version, layer_key)
        entry.after = asdict(report)
    _print(args.json, asdict(report))
    return 0


async def _holds(args: argparse.Namespace, settings: ServiceSettings) -> int:
    """CN-09: list held grants; release or refuse one (audited)."""
    if args.action == "list":
        rows = [holds.row(h) for h in await holds.list_holds(settings, everything=args.all)]
        if args.json:
            print(json.dumps(rows, indent=2))
        elif not rows:
            print("no grants held for review")
        else:
            columns = ["grant_id", "status", "held_at", "caf_number", "representative", "tin_last4"]
            if args.all:
                columns += ["decided_by", "decided_at", "why"]
            _table(rows, columns)
        return 0
    operator = Operator.resolve(args.operator, args.why, f"holds {args.action}")
    async with Audit(settings).action(operator, f"holds {args.action}", args.grant_id) as entry:
        entry.before = {"status": "held"}
        outcome = await holds.decide(
            settings, args.grant_id, args.action, operator=operator.name, why=operator.why
        )
        entry.after = asdict(outcome)
    _print(args.json, asdict(outcome))
    if outcome.status == "held":
        return 3  # not applied within the wait: look again with `holds list --all`
    return 0 if outcome.status == f"{args.action}d" else 4  # another operator decided first


async def _officials(args: argparse.Namespace, settings: ServiceSettings) -> int:
    """DO-07: show a business's Designated Officials; deactivate one (audited)."""
    if args.action == "show":
        found = await officials.entity_file(settings, args.entity_id)
        if found is None:
            print(f"cafctl: no business {args.entity_id!r} is known to intake", file=sys.stderr)
            return 1
        if args.json:
            print(json.dumps(found, indent=2))
        else:
            _entity_file_tables(found)
        return 0
    operator = Operator.resolve(args.operator, args.why, "officials deactivate")
    target = f"{args.entity_id}/{args.official_id}"
    async with Audit(settings).action(operator, "officials deactivate", target) as entry:
        outcome = await officials.deactivate(
            settings, args.entity_id, args.official_id, operator=operator.name, why=operator.why
        )
        entry.before = {"state": "active"}  # `deactivate` refuses any other
        entry.after = asdict(outcome)
    _print(args.json, asdict(outcome))
    if outcome.state != "inactive":
        return 3  # not applied within the wait
    return 0 if outcome.deactivated_by == f"operator:{operator.name}" else 4  # someone was first


async def _misuse(
    args: argparse.Namespace, settings: ServiceSettings, options: dict[str, Any]
) -> int:
    """MN-06, MN-07: list and show suspicions; hold a number; send the statements (audited)."""
    if args.command == "statements":
        operator = Operator.resolve(args.operator, args.why, "statements send")
        target = ",".join(args.caf_numbers or ["all"])
        async with Audit(settings).action(operator, "statements send", target) as entry:
            run = await misuse.statement_run(settings, operator.name, args.caf_numbers)
            entry.after = {"command_id": run.command_id}
        _print(args.json, {"command_id": run.command_id, "caf_numbers": run.caf_numbers})
        return 0
    if args.action in {"list", "show"}:
        found = await misuse.cases(settings, getattr(args, "caf_number", None))
        rows = [case.row() for case in found]
        if args.action == "show":
            rows = [case.row() | {"evidence": case.evidence} for case in found]
        if args.json:
            print(json.dumps(rows, indent=2))
        else:
            columns = [*found[0].row()] if found else ["caf_number"]
            _table([case.row() for case in found], columns, "no suspected misuse")
        return 0 if found or args.action == "list" else 1
    return await _misuse_hold(args, settings, options)


async def _misuse_hold(
    args: argparse.Namespace, settings: ServiceSettings, options: dict[str, Any]
) -> int:
    """MN-06: the number pending review, through the registry feed (signed), audited."""
    operator = Operator.resolve(args.operator, args.why, "misuse hold")
    before = await operations.practitioner_records(settings, options, args.caf_number)
    current = before["registry_feed"] or before["validator_view"]
    if current is None:
        print(f"cafctl: no registry record of CAF number {args.caf_number}", file=sys.stderr)
        return 1
    key, value = operations.practitioner_message(misuse.pending_review(current))
    signer = _signers(args.key, None)("registry")
    async with Audit(settings).action(operator, "misuse hold", args.caf_number) as entry:
        entry.before = {"status_code": current.get("status_code", "")}
        await _publish(settings, topics.PRACTITIONERS, [(key, value, signer)])
        await misuse.mark_cases(
            settings, await misuse.cases(settings, args.caf_number), operator.name
        )
        status = await misuse.applied_status(settings, args.caf_number, wait_s=30.0)
        entry.after = {"status_code": misuse.PENDING_REVIEW, "validator_view": status}
    _print(args.json, {"caf_number": args.caf_number, "status_code": status})
    return 0 if status == misuse.PENDING_REVIEW else 3  # 3: not applied within the wait


def _entity_file_tables(found: dict[str, Any]) -> None:
    print(f"business {found['entity_id']}: {found['entity_type']}, {found['status']}")
    print()
    columns = ["official_id", "active", "activated_at"]
    if any(not row["active"] for row in found["officials"]):
        columns += ["deactivated_at", "deactivated_by"]
    rows = [dict.fromkeys(columns, "") | row for row in found["officials"]]
    _table(rows, columns, "no Designated Officials")
    print()
    _table(found["pins"], list(officials.PIN_COLUMNS), "no PIN requests")
    print()
    _table(found["users"], ["user_id", "added_by", "added_at"], "no authorized users")


async def _operate(
    args: argparse.Namespace, settings: ServiceSettings, options: dict[str, Any]
) -> int:
    """sla, practitioner show|set, submit."""
    if args.command == "sla":
        rows = await operations.waiting_to_post(settings, datetime.now(UTC))
        if args.json:
            print(json.dumps(rows, indent=2))
        else:
            _table(
                rows,
                ["age_s", "grant_id", "form", "caf_number", "ready_at", "deadline"],
                "no grant waiting to post",
            )
        return 0
    if args.command == "practitioner" and args.action == "show":
        found = await operations.practitioner_records(settings, options, args.caf_number)
        _print(args.json, found)
        return 0 if found["registry_feed"] or found["validator_view"] else 1
    if args.command == "practitioner":
        operator = Operator.resolve(args.operator, args.why, "practitioner set")
        key, value = operations.practitioner_message(json.load(args.file))
        signer = _signers(args.key, None)("registry")
        caf_number = key.decode()
        before = await operations.practitioner_records(settings, options, caf_number)
        async with Audit(settings).action(operator, "practitioner set", caf_number) as entry:
            entry.before = before["registry_feed"]
            await _publish(settings, topics.PRACTITIONERS, [(key, value, signer)])
            entry.after = json.loads(value)
        _print(args.json, {"published": caf_number, "topic": topics.PRACTITIONERS})
        return 0
    operator = Operator.resolve(args.operator, args.why, "submit")
    messages = operations.submissions(args.file)
    signer_for = _signers(args.key, args.keys)
    signed = [(m.key, m.value, signer_for(m.kind)) for m in messages]
    async with Audit(settings).action(operator, "submit", str(args.file.name)) as entry:
        await _publish(settings, topics.INBOUND, signed)
        entry.after = [{"kind": m.kind, "message_id": m.message_id} for m in messages]
    _print(args.json, {"published": len(messages), "topic": topics.INBOUND})
    return 0


def _signers(key: Path | None, folder: Path | None) -> Callable[[str], Signer]:
    """Who signs a message of each kind: one key for all, or the publisher of the kind from a
    folder of `<kid>.jwk` (CAF_SIGNING_KEYS, else the local stack's)."""
    if key is not None:
        signer = Signer.from_file(key)
        return lambda _kind: signer
    return dev_keys(folder).signer_for


async def _dlq(args: argparse.Namespace, settings: ServiceSettings, options: dict[str, Any]) -> int:
    chosen = (args.topic,) if getattr(args, "topic", None) else topics.DEAD_LETTER_TOPICS
    letters = await dlq.list_dead_letters(settings, options, chosen)
    if args.action == "show":
        found = [letter for letter in letters if letter.id == args.id]
        if not found:
            print(f"no dead letter {args.id}", file=sys.stderr)
            return 1
        _print(args.json, dlq.shown(found[0], settings.sealer()))
        return 0
    letters = dlq.select(letters, error_class=args.error_class, since=args.since, until=args.until)
    if args.action == "list":
        rows = [letter.summary() for letter in letters]
        if args.json:
            print(json.dumps(rows, indent=2))
        else:
            _table(
                rows,
                ["id", "error_class", "original", "failed_at", "error_message"],
                "no dead letters",
            )
        return 0
    operator = Operator.resolve(args.operator, args.why, "dlq replay")
    action = "dlq replay (dry run)" if args.dry_run else "dlq replay"
    target = args.topic or "all dead-letter topics"
    producer = AIOKafkaProducer(**producer_options(settings))
    await producer.start()
    try:
        async with (
            Audit(settings).action(operator, action, target) as entry,
            DynamoTable(settings, "ops") as ops,
        ):
            entry.before = [letter.summary() for letter in letters]
            report = await dlq.replay(
                letters,
                ops=ops,
                producer=producer,
                prefix=settings.topic_prefix,
                dry_run=args.dry_run,
                sealer=settings.sealer(),
            )
            entry.after = asdict(report)
    finally:
        await producer.stop()
    _print(args.json, {**asdict(report), "dry_run": args.dry_run})
    return 0 if not report.refused else 5


async def _status(settings: ServiceSettings, options: dict[str, Any], as_json: bool) -> int:
    summary = await status(settings, options)
    if as_json:
        print(json.dumps(summary, indent=2))
        return 0
    _table(summary["topics"], ["topic", "partitions", "messages"])
    print()
    _table(summary["groups"], ["group", "topic", "lag"])
    print()
    for name, state in summary["services"].items():
        print(f"{name:<12} {state}")
    return 0


def _signatures(args: argparse.Namespace) -> int:
    """ES-05: `signatures show GRANT_ID`; exit 1 when an object does not verify."""
    read = _api_read(args, "read signature evidence")
    assert read is not None  # --why is required
    try:
        found = read.signatures(args.grant_id)
    except ApiRefusedError as error:
        print(f"cafctl: {error}", file=sys.stderr)
        return 2
    rows = found["signatures"]
    if args.json:
        print(json.dumps(found, indent=2))
    elif not rows:
        print(f"grant {args.grant_id} has no signature evidence (signed on paper)")
    else:
        columns = ["role", "act", "sha256", "retain_until", "lock_mode", "verified", "versions"]
        _table(rows, columns)
    return 0 if all(row["verified"] for row in rows) else 1


def _api_read(
    args: argparse.Namespace, action: str = "trace through the API"
) -> ReadSideRead | None:
    """With `--why`, an audited employee read of the API: `CAFCTL_API_TOKEN`, or on the local
    stack a development employee token naming the operator."""
    if args.why is None:
        return None
    operator = Operator.resolve(args.operator, args.why, action)

    def token() -> str:
        if given := os.environ.get("CAFCTL_API_TOKEN"):
            return given
        keys = dev_keys().ensure()
        return keys.access_token(role="employee", subject=operator.name)

    return ReadSideRead(ReadSideApi.from_environment(), token, operator.why)


async def _trace(
    settings: ServiceSettings,
    options: dict[str, Any],
    args: argparse.Namespace,
    read_side: ReadSideRead | None,
) -> int:
    as_json = args.json
    try:
        entries = await trace(settings, options, args.id, read_side)
    except ApiRefusedError as error:
        print(f"cafctl: {error}", file=sys.stderr)
        return 3
    if as_json:
        print(json.dumps(entries, indent=2))
    else:
        for entry in entries:
            record = entry["record"]
            what = record.get("type") or record.get("template") or record.get("kind")
            print(f"{entry['at_ms']}  {entry['topic']:<24} {what}  {json.dumps(record)[:160]}")
    return 0 if entries else 1


async def _publish(
    settings: ServiceSettings, topic: str, messages: Sequence[tuple[bytes | None, bytes, Signer]]
) -> None:
    producer = AIOKafkaProducer(**producer_options(settings))
    await producer.start()
    try:
        for key, value, signer in messages:
            await producer.send_and_wait(
                settings.topic(topic),
                value,
                key=key,
                headers=[("content-type", b"application/json"), *signer.headers(value)],
            )
    finally:
        await producer.stop()


async def _provision(
    settings: ServiceSettings,
    options: dict[str, Any],
    replication_factor: int,
    as_json: bool,
    acls: bool,
) -> int:
    topic_report = await ensure_topics(
        settings.kafka_bootstrap_servers,
        TOPICS,
        prefix=settings.topic_prefix,
        replication_factor=replication_factor,
        client_options=options,
    )
    async with dynamodb_client(settings) as client:
        table_report = await ensure_tables(
            client, TABLES, prefix=settings.table_prefix, kms_key=settings.table_kms_key
        )
    acl_count = 0
    if acls:
        wanted = all_acls(settings.topic_prefix)
        acl_count = await asyncio.to_thread(apply_acls, kafka_admin_config(settings), wanted)
    summary = {
        "acls": acl_count,
        "topics_created": list(topic_report.created),
        "topics_existing": len(topic_report.existing),
        "topics_mismatched": [str(m) for m in topic_report.mismatched],
        "tables_created": list(table_report.created),
        "tables_existing": len(table_report.existing),
    }
    _print(as_json, summary)
    return 1 if topic_report.mismatched else 0


async def _reconcile(settings: ServiceSettings, options: dict[str, Any], as_json: bool) -> int:
    report = await reconcile_deployment(settings, options)
    summary = report.as_dict()
    if as_json:
        print(json.dumps(summary, indent=2))
    else:
        for key, value in summary.items():
            shown = value if not isinstance(value, list) else f"{len(value)} {value[:5]}"
            print(f"  {key:<24} {shown}")
    return 0 if report.clean else 2


def _print(as_json: bool, document: dict[str, Any]) -> None:
    if as_json:
        print(json.dumps(document, indent=2))
    else:
        for key, value in document.items():
            print(f"{key:>16}: {value}")


def _table(rows: list[dict[str, Any]], columns: list[str], empty: str = "nothing to show") -> None:
    if not rows:
        print(empty)
        return
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in columns}
    print("  ".join(c.upper().ljust(widths[c]) for c in columns))
    for row in rows:
        print("  ".join(str(row[c]).ljust(widths[c]) for c in columns))


def main(argv: list[str] | None = None) -> int:
    try:
        return asyncio.run(_run(_parser().parse_args(argv)))
    except (ValueError, OSError, KeyError) as error:  # bad input, no operator, no connection
        print(f"cafctl: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
