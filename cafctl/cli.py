"""cafctl: operate the CAF processor from a terminal.

  cafctl dlq list [--topic T] [--error-class C] [--since T] [--until T]
  cafctl dlq show <topic/partition/offset>
  cafctl dlq replay [--topic T] [--error-class C] [--since T] [--until T] [--dry-run] OPERATOR
  cafctl reconcile
  cafctl provision [--replication-factor N] [--acls]
  cafctl acls
  cafctl sla
  cafctl practitioner show <caf_number> | set <file> [--key JWK] OPERATOR
  cafctl submit <file> [--key JWK | --keys DIR] OPERATOR
  cafctl status
  cafctl trace <message_id | grant_id | request_id | event_id> [--operator NAME] [--why TEXT]
  cafctl holds list [--all]
  cafctl holds release|refuse <grant_id> OPERATOR
  cafctl officials show <entity_id>
  cafctl officials deactivate <entity_id> <official_id> OPERATOR
  cafctl misuse list | show <caf_number>
  cafctl misuse hold <caf_number> [--key JWK] OPERATOR
  cafctl statements send [--caf CAF_NUMBER ...] OPERATOR
  cafctl audit [--limit N]
  cafctl rekey --to-version N OPERATOR   (the new version's key in CAF_REKEY_LAYER_KEY)
  cafctl token --role ROLE [--subject S] [--tin TIN] [--caf-number CAF]
  cafctl signatures show <grant_id> [--operator NAME] --why TEXT

Every command takes `--json` (machine-readable output), before the command or after any
subcommand; without it, rows are tables that say so when they are empty. `--install-completion`
installs shell completion.

One function per command: each parses nothing itself (typer does, from its signature), calls
the module that holds the logic (`dlq`, `holds`, `officials`, `misuse`, `operations`, `audit`,
`status`, `reconcile`, `rekey`, `read_side`) and prints through `cafctl.render`. A command is
a coroutine returning its exit status; `main` returns it, it never exits the process. What
every command shares is declared once, where `_command` registers it: `--json` (the command
gets the `render.Output` it chooses) and, for a command that changes state, `--operator` and
`--why` (it gets the `Operator` they name, or is refused before it starts).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import os
import sys
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from botocore.exceptions import BotoCoreError

from caf_client.identity import ROLES
from caf_client.signing import Signer
from caf_runtime.acls import acl_table, all_acls, apply_acls, kafka_admin_config
from caf_runtime.broker import client_options, producer_options
from caf_runtime.config import ServiceSettings
from caf_runtime.dynamo import DynamoTable, dynamodb_client
from caf_runtime.provision import ensure_tables, ensure_topics
from caf_runtime.secrets import WeakKeyError, key_bytes
from caf_runtime.topology import TABLES, TOPICS
from cafctl import dlq, holds, misuse, officials, operations, render
from cafctl.audit import Audit, Operator, audit_trail
from cafctl.devkeys import dev_keys
from cafctl.read_side import ApiRefusedError, ReadSideApi, ReadSideRead
from cafctl.reconcile import reconcile_deployment
from cafctl.rekey import rekey as rekey_caf
from cafctl.status import status as status_of
from cafctl.status import trace as trace_of
from cafctl.topics import Outgoing, publish
from schemas import topics
from services.caf_poster.config import CafPosterSettings

EPILOG = "\n\n".join(  # paragraphs: rich help keeps a paragraph's own line breaks
    (
        "OPERATOR is --operator NAME (or CAF_OPERATOR) and --why TEXT: every command that "
        "changes state needs both and leaves an audit record in the ops table and on "
        "caf.audit.v1 (AU-04). Records published by submit and practitioner set are signed "
        "(AU-01): --key a private JWK, or --keys a folder of <kid>.jwk files, one per publisher "
        "(default CAF_SIGNING_KEYS, else the local stack's .devstack/keys).",
        "Exit status: 0 done, 1 bad input or not found, 2 bad usage (reconcile: not clean), "
        "3 not applied within its wait, 4 another operator or official decided first (holds, "
        "officials deactivate), 5 a dead letter refused by replay.",
        "Connection settings come from the environment like the services' "
        "(KAFKA_BOOTSTRAP_SERVERS, DYNAMODB_ENDPOINT, CAF_TOPIC_PREFIX, CAF_TABLE_PREFIX, ...).",
    )
)
JSON_WANTED = "cafctl.json"  # in the context's meta, shared by the command and its groups
LETTER_COLUMNS = ("id", "error_class", "original", "failed_at", "error_message")
SLA_COLUMNS = ("age_s", "grant_id", "form", "caf_number", "ready_at", "deadline")
HOLD_COLUMNS = ("grant_id", "status", "held_at", "caf_number", "representative", "tin_last4")
DECIDED_COLUMNS = ("decided_by", "decided_at", "why")
ACL_COLUMNS = ("principal", "resource", "name", "pattern", "operation")
AUDIT_COLUMNS = ("at", "operator", "action", "target", "outcome", "why")
SIGNATURE_COLUMNS = ("role", "act", "sha256", "retain_until", "lock_mode", "verified", "versions")
TRACE_COLUMNS = ("at", "topic", "what", "record")


Json = Annotated[bool, typer.Option("--json", help="machine-readable output")]


def _json_flag(ctx: typer.Context, as_json: Json = False) -> None:
    """`--json` before a (sub)command holds for the command run."""
    if as_json:
        ctx.meta[JSON_WANTED] = True


def _group(name: str, text: str) -> typer.Typer:
    group = typer.Typer(name=name, help=text, callback=_json_flag, no_args_is_help=True)
    app.add_typer(group, name=name)
    return group


app = typer.Typer(
    name="cafctl",
    help="Operate the CAF processor from a terminal.",
    epilog=EPILOG,
    callback=_json_flag,
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)
dlq_app = _group("dlq", "dead letters")
practitioner_app = _group("practitioner", "a practitioner in the registry feed")
holds_app = _group("holds", "grants held by VA-07 for review (CN-09)")
officials_app = _group("officials", "a business's Designated Officials (DO-07)")
misuse_app = _group("misuse", "suspected misuse of CAF numbers (MN-01 … MN-06)")
statements_app = _group("statements", "annual review statements of practitioners (MN-07)")
signatures_app = _group("signatures", "signature evidence (ESSAR): stored objects, hashed again")


def _choice(name: str, values: Sequence[str]) -> Callable[[str | None], str | None]:
    """A parameter's check against its allowed values (a bad one is bad usage, exit 2)."""

    def check(value: str | None) -> str | None:
        if value is not None and value not in values:
            msg = f"{value!r} is not one of {', '.join(values)}"
            raise typer.BadParameter(msg, param_hint=name)
        return value

    return check


def _completion(values: Sequence[str]) -> Callable[[str], list[str]]:
    return lambda incomplete: [value for value in values if value.startswith(incomplete)]


# What several commands share: who acts and why, which dead letters.
OperatorName = Annotated[
    str | None, typer.Option("--operator", help="who acts (default: CAF_OPERATOR); audited")
]
Why = Annotated[str | None, typer.Option("--why", help="why; kept in the audit record")]
Reader = Annotated[str | None, typer.Option("--operator", help="who reads (default: CAF_OPERATOR)")]
DeadLetterTopic = Annotated[
    str | None,
    typer.Option(
        "--topic",
        metavar="T",
        help=f"one dead-letter topic (default: all): {', '.join(topics.DEAD_LETTER_TOPICS)}",
        callback=_choice("--topic", topics.DEAD_LETTER_TOPICS),
        autocompletion=_completion(topics.DEAD_LETTER_TOPICS),
    ),
]
ErrorClass = Annotated[
    str | None,
    typer.Option("--error-class", metavar="C", help="only letters with this error class"),
]
Since = Annotated[
    datetime | None,
    typer.Option(metavar="T", parser=datetime.fromisoformat, help="failed at or after (ISO 8601)"),
]
Until = Annotated[
    datetime | None,
    typer.Option(metavar="T", parser=datetime.fromisoformat, help="failed at or before (ISO 8601)"),
]
SigningKey = Annotated[
    Path | None, typer.Option("--key", metavar="JWK", help="the registry feed's private JWK")
]

Command = Callable[..., Coroutine[Any, Any, int]]
KEYWORD = inspect.Parameter.KEYWORD_ONLY
CONTEXT = inspect.Parameter("ctx", KEYWORD, annotation=typer.Context)
AUDITED = (
    inspect.Parameter("operator", KEYWORD, default=None, annotation=OperatorName),
    inspect.Parameter("why", KEYWORD, default=None, annotation=Why),
)
AS_JSON = inspect.Parameter("as_json", KEYWORD, default=False, annotation=Json)


def _unreachable(error: KafkaError | BotoCoreError) -> str:
    """What to say when Kafka or DynamoDB does not answer: which, why, and what to check."""
    service = "Kafka" if isinstance(error, KafkaError) else "DynamoDB"
    return (
        f"{service} did not answer ({type(error).__name__}: {error}); check the connection "
        'settings (on the local stack: eval "$(python -m devstack env)")'
    )


def _command(
    group: typer.Typer, name: str, *, audited: bool = False
) -> Callable[[Command], Command]:
    """Register a coroutine as the command `name` of `group`. Typer parses its parameters
    from its signature, then the shared options: `--operator` and `--why` if `audited`, and
    `--json`. It gets, as `out`, the output `--json` chose and, as `who`, the operator resolved
    before it starts. Its result is the exit status; bad input, no operator or no connection
    (ValueError, OSError, KeyError) is status 1."""
    action = name if group is app else f"{group.info.name} {name}"

    def register(command: Command) -> Command:
        given = inspect.signature(command, eval_str=True).parameters.values()
        own = [p.replace(kind=KEYWORD) for p in given if p.name not in ("out", "who")]
        parameters = [CONTEXT, *own, *(AUDITED if audited else ()), AS_JSON]

        @functools.wraps(command)
        def run(ctx: typer.Context, as_json: bool = False, **kwargs: Any) -> None:
            shared: dict[str, Any] = {"out": _output(ctx, as_json)}
            try:
                if audited:  # the shared options; a command that declares its own gets them
                    operator, why = kwargs.pop("operator", None), kwargs.pop("why", None)
                    shared["who"] = Operator.resolve(operator, why, action)
                code = asyncio.run(command(**shared, **kwargs))
            except (ValueError, OSError, KeyError) as error:
                print(f"cafctl: {error}", file=sys.stderr)
                raise typer.Exit(1) from error
            except (KafkaError, BotoCoreError) as error:
                print(f"cafctl: {_unreachable(error)}", file=sys.stderr)
                raise typer.Exit(1) from error
            if code:
                raise typer.Exit(code)

        # what typer reads: the parameters above, not `run`'s own
        run.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
        run.__annotations__ = {parameter.name: parameter.annotation for parameter in parameters}
        group.command(name)(run)
        return command

    return register


def _output(ctx: typer.Context, as_json: bool) -> render.Output:
    """JSON if `--json` came after this command or before it (at any level)."""
    return render.Output(json=as_json or bool(ctx.meta.get(JSON_WANTED)))


def _fail(message: str, code: int = 1) -> int:
    print(f"cafctl: {message}", file=sys.stderr)
    return code


@dataclass(frozen=True)
class Connection:
    """Where the topics and tables are (from the environment, like the services')."""

    settings: ServiceSettings
    options: dict[str, Any]

    @classmethod
    def from_environment(cls) -> Connection:
        settings = ServiceSettings()
        return cls(settings, client_options(settings))


# -- dead letters ------------------------------------------------------------------------------


async def _letters(
    connection: Connection,
    topic: str | None,
    error_class: str | None,
    since: datetime | None,
    until: datetime | None,
) -> list[dlq.DeadLetter]:
    chosen = (topic,) if topic else topics.DEAD_LETTER_TOPICS
    found = await dlq.list_dead_letters(connection.settings, connection.options, chosen)
    return dlq.select(found, error_class=error_class, since=since, until=until)


@_command(dlq_app, "list")
async def dlq_list(
    out: render.Output,
    *,
    topic: DeadLetterTopic = None,
    error_class: ErrorClass = None,
    since: Since = None,
    until: Until = None,
) -> int:
    """list dead letters"""
    letters = await _letters(Connection.from_environment(), topic, error_class, since, until)
    out.rows([letter.summary() for letter in letters], LETTER_COLUMNS, "no dead letters")
    return 0


@_command(dlq_app, "show")
async def dlq_show(
    out: render.Output,
    *,
    letter_id: Annotated[
        str, typer.Argument(metavar="id", help="topic/partition/offset as listed")
    ],
) -> int:
    """one dead letter, opened with CAF_ENVELOPE_KEYS if sealed, masked by field"""
    connection = Connection.from_environment()
    letters = await _letters(connection, None, None, None, None)
    found = [letter for letter in letters if letter.id == letter_id]
    if not found:
        print(f"no dead letter {letter_id}", file=sys.stderr)
        return 1
    out.document(dlq.shown(found[0], connection.settings.sealer()))
    return 0


@_command(dlq_app, "replay", audited=True)
async def dlq_replay(
    out: render.Output,
    who: Operator,
    *,
    topic: DeadLetterTopic = None,
    error_class: ErrorClass = None,
    since: Since = None,
    until: Until = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="show, do not publish")] = False,
) -> int:
    """replay dead letters (each at most once); exit 5 if one was refused"""
    connection = Connection.from_environment()
    settings = connection.settings
    letters = await _letters(connection, topic, error_class, since, until)
    action = "dlq replay (dry run)" if dry_run else "dlq replay"
    producer = AIOKafkaProducer(**producer_options(settings))
    await producer.start()
    try:
        async with (
            Audit(settings).action(who, action, topic or "all dead-letter topics") as entry,
            DynamoTable(settings, "ops") as ops,
        ):
            entry.before = [letter.summary() for letter in letters]
            with out.progress("replaying dead letters", len(letters)) as advance:
                report = await dlq.replay(
                    letters,
                    ops=ops,
                    producer=producer,
                    prefix=settings.topic_prefix,
                    dry_run=dry_run,
                    sealer=settings.sealer(),
                    advance=advance,
                )
            entry.after = asdict(report)
    finally:
        await producer.stop()
    out.document({**asdict(report), "dry_run": dry_run})
    return 0 if not report.refused else 5


# -- the deployment --------------------------------------------------------------------------


@_command(app, "reconcile")
async def reconcile(out: render.Output) -> int:
    """every input has exactly one outcome? (exit 2 when not)"""
    connection = Connection.from_environment()
    with out.waiting("reading the topics and the CAF table"):
        report = await reconcile_deployment(connection.settings, connection.options)
    summary = report.as_dict()
    if out.json:
        render.print_json(summary)
    else:
        render.fields(
            {
                key: f"{len(value)} {value[:5]}" if isinstance(value, list) else value
                for key, value in summary.items()
            }
        )
    return 0 if report.clean else 2


@_command(app, "provision")
async def provision(
    out: render.Output,
    *,
    replication_factor: Annotated[
        int, typer.Option(help="for new topics (production: 3)", metavar="N")
    ] = 1,
    acls: Annotated[
        bool, typer.Option("--acls", help="also create every principal's ACLs (super user)")
    ] = False,
) -> int:
    """create the missing topics and tables of this environment"""
    connection = Connection.from_environment()
    settings = connection.settings
    topic_report = await ensure_topics(
        settings.kafka_bootstrap_servers,
        TOPICS,
        prefix=settings.topic_prefix,
        replication_factor=replication_factor,
        client_options=connection.options,
    )
    async with dynamodb_client(settings) as client:
        table_report = await ensure_tables(
            client, TABLES, prefix=settings.table_prefix, kms_key=settings.table_kms_key
        )
    acl_count = 0
    if acls:
        wanted = all_acls(settings.topic_prefix)
        acl_count = await asyncio.to_thread(apply_acls, kafka_admin_config(settings), wanted)
    out.document(
        {
            "acls": acl_count,
            "topics_created": list(topic_report.created),
            "topics_existing": len(topic_report.existing),
            "topics_mismatched": [str(m) for m in topic_report.mismatched],
            "tables_created": list(table_report.created),
            "tables_existing": len(table_report.existing),
        }
    )
    return 1 if topic_report.mismatched else 0


@_command(app, "acls")
async def acls(out: render.Output) -> int:
    """the ACL of every principal, from the topology (for a real cluster)"""
    rows = acl_table(all_acls(ServiceSettings().topic_prefix))
    out.rows(rows, ACL_COLUMNS, "no ACLs: the topology grants nothing")
    return 0


@_command(app, "status")
async def status(out: render.Output) -> int:
    """topics, consumer lag, dead letters, service readiness"""
    connection = Connection.from_environment()
    summary = await status_of(connection.settings, connection.options)
    if out.json:
        render.print_json(summary)
        return 0
    render.table(summary["topics"], ("topic", "partitions", "messages"), "no topics", "topics")
    render.table(summary["groups"], ("group", "topic", "lag"), "no consumer groups", "lag")
    waiting = [
        {"topic": topic, "waiting": count}
        for topic, count in summary["dead_letters"].items()
        if count
    ]
    render.table(waiting, ("topic", "waiting"), "no dead letters waiting", "dead letters")
    services = [{"service": name, "state": state} for name, state in summary["services"].items()]
    render.table(services, ("service", "state"), "no services", "services")
    return 0


@_command(app, "sla")
async def sla(out: render.Output) -> int:
    """grants waiting to post, oldest first, with their age"""
    rows = await operations.waiting_to_post(ServiceSettings(), datetime.now(UTC))
    out.rows(rows, SLA_COLUMNS, "no grants waiting to post")
    return 0


@_command(app, "audit")
async def audit(
    out: render.Output,
    *,
    limit: Annotated[int, typer.Option(metavar="N", help="how many, newest first")] = 50,
) -> int:
    """the latest operator actions, newest first"""
    rows = await audit_trail(ServiceSettings(), limit)
    out.rows(rows, AUDIT_COLUMNS, "no operator actions recorded")
    return 0


# -- publishing --------------------------------------------------------------------------------


def _signers(key: Path | None, folder: Path | None) -> Callable[[str], Signer]:
    """Who signs a message of each kind: one key for all, or the publisher of the kind from a
    folder of `<kid>.jwk` (CAF_SIGNING_KEYS, else the local stack's)."""
    if key is not None:
        signer = Signer.from_file(key)
        return lambda _kind: signer
    return dev_keys(folder).signer_for


@_command(practitioner_app, "show")
async def practitioner_show(out: render.Output, caf_number: str) -> int:
    """the feed's latest record and the validator's applied view"""
    connection = Connection.from_environment()
    found = await operations.practitioner_records(
        connection.settings, connection.options, caf_number
    )
    out.document(found)
    return 0 if found["registry_feed"] or found["validator_view"] else 1


@_command(practitioner_app, "set", audited=True)
async def practitioner_set(
    out: render.Output,
    who: Operator,
    *,
    file: Annotated[typer.FileText, typer.Argument(help="a JSON file, or - for standard input")],
    key: SigningKey = None,
) -> int:
    """publish a registry record (JSON file or - for stdin)"""
    connection = Connection.from_environment()
    record_key, value = operations.practitioner_message(json.load(file))
    signer = _signers(key, None)("registry")
    caf_number = record_key.decode()
    before = await operations.practitioner_records(
        connection.settings, connection.options, caf_number
    )
    async with Audit(connection.settings).action(who, "practitioner set", caf_number) as entry:
        entry.before = before["registry_feed"]
        outgoing = Outgoing(record_key, value, signer.headers(value))
        await publish(connection.settings, topics.PRACTITIONERS, [outgoing])
        entry.after = json.loads(value)
    out.document({"published": caf_number, "topic": topics.PRACTITIONERS})
    return 0


@_command(app, "submit", audited=True)
async def submit(
    out: render.Output,
    who: Operator,
    *,
    file: Annotated[Path, typer.Argument(help="a JSON object, array or JSON lines")],
    key: Annotated[
        Path | None, typer.Option(metavar="JWK", help="one private JWK that signs every message")
    ] = None,
    keys: Annotated[
        Path | None, typer.Option(metavar="DIR", help="a folder of <kid>.jwk, one per publisher")
    ] = None,
) -> int:
    """publish inbound messages from a file (JSON object, array or JSON lines)"""
    settings = ServiceSettings()
    messages = operations.submissions(file)
    signer_for = _signers(key, keys)
    signed = [Outgoing(m.key, m.value, signer_for(m.kind).headers(m.value)) for m in messages]
    async with Audit(settings).action(who, "submit", str(file.name)) as entry:
        with out.progress("publishing", len(signed)) as advance:
            await publish(settings, topics.INBOUND, signed, advance)
        entry.after = [{"kind": m.kind, "message_id": m.message_id} for m in messages]
    out.document({"published": len(messages), "topic": topics.INBOUND})
    return 0


# -- holds, officials, misuse, statements ------------------------------------------------------


@_command(holds_app, "list")
async def holds_list(
    out: render.Output,
    *,
    everything: Annotated[
        bool, typer.Option("--all", help="decided ones too, with who and why")
    ] = False,
) -> int:
    """grants waiting for a decision"""
    found = await holds.list_holds(ServiceSettings(), everything=everything)
    columns = (*HOLD_COLUMNS, *DECIDED_COLUMNS) if everything else HOLD_COLUMNS
    empty = "no grant was ever held for review" if everything else "no grants held for review"
    out.rows([holds.row(hold) for hold in found], columns, empty)
    return 0


def _decision(decision: holds.Decision, text: str) -> Command:
    """The command `holds <decision>` (CN-09): release or refuse one held grant, audited; 3 if
    not applied within the wait, 4 if another operator decided first."""

    async def decide(out: render.Output, who: Operator, *, grant_id: str) -> int:
        settings = ServiceSettings()
        async with Audit(settings).action(who, f"holds {decision}", grant_id) as entry:
            entry.before = {"status": "held"}
            with out.waiting(f"waiting for the validator to {decision} {grant_id}"):
                outcome = await holds.decide(
                    settings, grant_id, decision, operator=who.name, why=who.why
                )
            entry.after = asdict(outcome)
        out.document(asdict(outcome))
        if outcome.status == "held":
            return 3  # not applied within the wait: look again with `holds list --all`
        return 0 if outcome.status == f"{decision}d" else 4

    decide.__doc__ = text
    return _command(holds_app, decision, audited=True)(decide)


holds_release = _decision("release", "send a held grant on to the poster")
holds_refuse = _decision("refuse", "end a held grant: rejected REJ-FRAUD-REVIEW")


@_command(officials_app, "show")
async def officials_show(out: render.Output, entity_id: str) -> int:
    """its officials, PIN requests (never a PIN) and authorized users"""
    found = await officials.entity_file(ServiceSettings(), entity_id)
    if found is None:
        return _fail(f"no business {entity_id!r} is known to intake")
    if out.json:
        render.print_json(found)
        return 0
    render.line(f"business {found['entity_id']}: {found['entity_type']}, {found['status']}")
    columns = ["official_id", "active", "activated_at"]
    if any(not row["active"] for row in found["officials"]):
        columns += ["deactivated_at", "deactivated_by"]
    render.table(found["officials"], columns, "no Designated Officials", "officials")
    render.table(found["pins"], officials.PIN_COLUMNS, "no PIN requests", "PIN requests")
    users = ("user_id", "added_by", "added_at")
    render.table(found["users"], users, "no authorized users", "authorized users")
    return 0


@_command(officials_app, "deactivate", audited=True)
async def officials_deactivate(
    out: render.Output,
    who: Operator,
    *,
    entity_id: str,
    official_id: str,
) -> int:
    """deactivate an active Designated Official of the business"""
    settings = ServiceSettings()
    target = f"{entity_id}/{official_id}"
    async with Audit(settings).action(who, "officials deactivate", target) as entry:
        entry.before = {"state": "active"}  # `deactivate` refuses any other
        with out.waiting(f"waiting for intake to deactivate {official_id}"):
            outcome = await officials.deactivate(
                settings, entity_id, official_id, operator=who.name, why=who.why
            )
        entry.after = asdict(outcome)
    out.document(asdict(outcome))
    if outcome.state != "inactive":
        return 3  # not applied within the wait
    return 0 if outcome.deactivated_by == f"operator:{who.name}" else 4  # someone was first


@_command(misuse_app, "list")
async def misuse_list(out: render.Output) -> int:
    """every suspicion raised, newest day first"""
    found = await misuse.cases(ServiceSettings())
    rows = [case.row() for case in found]
    out.rows(rows, [*rows[0]] if rows else ["caf_number"], "no suspected misuse")
    return 0


@_command(misuse_app, "show")
async def misuse_show(out: render.Output, caf_number: str) -> int:
    """one CAF number's suspicions with their evidence"""
    found = await misuse.cases(ServiceSettings(), caf_number)
    rows = [case.row() | {"evidence": case.evidence} for case in found]
    out.rows(rows, [*rows[0]] if rows else ["caf_number"], f"no suspected misuse of {caf_number}")
    return 0 if found else 1


@_command(misuse_app, "hold", audited=True)
async def misuse_hold(
    out: render.Output,
    who: Operator,
    *,
    caf_number: str,
    key: SigningKey = None,
) -> int:
    """mark the number pending review (status P: VA-02 refuses its grants)"""
    connection = Connection.from_environment()
    settings = connection.settings
    before = await operations.practitioner_records(settings, connection.options, caf_number)
    current = before["registry_feed"] or before["validator_view"]
    if current is None:
        return _fail(f"no registry record of CAF number {caf_number}")
    record_key, value = operations.practitioner_message(misuse.pending_review(current))
    signer = _signers(key, None)("registry")
    async with Audit(settings).action(who, "misuse hold", caf_number) as entry:
        entry.before = {"status_code": current.get("status_code", "")}
        outgoing = Outgoing(record_key, value, signer.headers(value))
        await publish(settings, topics.PRACTITIONERS, [outgoing])
        await misuse.mark_cases(settings, await misuse.cases(settings, caf_number), who.name)
        with out.waiting(f"waiting for the validator to hold {caf_number}"):
            applied = await misuse.applied_status(settings, caf_number, wait_s=30.0)
        entry.after = {"status_code": misuse.PENDING_REVIEW, "validator_view": applied}
    out.document({"caf_number": caf_number, "status_code": applied})
    return 0 if applied == misuse.PENDING_REVIEW else 3  # 3: not applied within the wait


@_command(statements_app, "send", audited=True)
async def statements_send(
    out: render.Output,
    who: Operator,
    *,
    caf_numbers: Annotated[
        list[str] | None,
        typer.Option("--caf", metavar="CAF_NUMBER", help="only this practitioner (repeatable)"),
    ] = None,
) -> int:
    """send the statements now (every practitioner with active grants, or these)"""
    settings = ServiceSettings()
    target = ",".join(caf_numbers or ["all"])
    async with Audit(settings).action(who, "statements send", target) as entry:
        run = await misuse.statement_run(settings, who.name, caf_numbers or None)
        entry.after = {"command_id": run.command_id}
    out.document({"command_id": run.command_id, "caf_numbers": run.caf_numbers})
    return 0


# -- keys and tokens ---------------------------------------------------------------------------


@_command(app, "rekey", audited=True)
async def rekey(
    out: render.Output,
    who: Operator,
    *,
    to_version: Annotated[int, typer.Option("--to-version", metavar="N", help="2 or more")],
) -> int:
    """move the CAF of taxpayer_ref key version N-1 to N (its key from CAF_REKEY_LAYER_KEY)"""
    if to_version < 2:
        return _fail("--to-version is 2 or more (version 1 is the base key)", 2)
    try:
        layer_key = key_bytes(os.environ.get("CAF_REKEY_LAYER_KEY", ""), "CAF_REKEY_LAYER_KEY")
    except WeakKeyError as error:
        return _fail(str(error), 2)
    target = f"taxpayer_ref version {to_version}"
    async with Audit(ServiceSettings()).action(who, "rekey", target) as entry:
        with out.waiting(f"moving the CAF records to key version {to_version}"):
            report = await rekey_caf(CafPosterSettings(), to_version, layer_key)
        entry.after = asdict(report)
    out.document(asdict(report))
    return 0


@_command(app, "token")
async def token(
    out: render.Output,
    *,
    role: Annotated[
        str,
        typer.Option(
            metavar="ROLE",
            help=f"one of {', '.join(ROLES)}",
            callback=_choice("--role", ROLES),
            autocompletion=_completion(ROLES),
        ),
    ],
    subject: Annotated[
        str | None, typer.Option(help="who the token names (default: <role>-dev)")
    ] = None,
    tin: Annotated[str | None, typer.Option(help="a taxpayer's TIN (role taxpayer)")] = None,
    caf_number: Annotated[
        str | None, typer.Option(help="a practitioner's CAF number (role practitioner)")
    ] = None,
) -> int:
    """a development bearer token of the API, from the local stack's identity provider"""
    del out  # a token is printed as it is, `--json` or not
    if role == "taxpayer" and not tin:
        return _fail("a taxpayer token names the taxpayer: --tin", 2)
    if role == "practitioner" and not caf_number:
        return _fail("a practitioner token names the CAF number: --caf-number", 2)
    claims = {k: v for k, v in (("tin", tin), ("caf_number", caf_number)) if v}
    keys = dev_keys().ensure()
    print(keys.access_token(role=role, subject=subject or f"{role}-dev", **claims))
    return 0


# -- reads through the API ---------------------------------------------------------------------


def _api_read(operator: str | None, why: str | None, action: str) -> ReadSideRead | None:
    """With `--why`, an audited employee read of the API: `CAFCTL_API_TOKEN`, or on the local
    stack a development employee token naming the operator."""
    if why is None:
        return None
    who = Operator.resolve(operator, why, action)

    def employee_token() -> str:
        if given := os.environ.get("CAFCTL_API_TOKEN"):
            return given
        keys = dev_keys().ensure()
        return keys.access_token(role="employee", subject=who.name)

    return ReadSideRead(ReadSideApi.from_environment(), employee_token, who.why)


@_command(signatures_app, "show")
async def signatures_show(
    out: render.Output,
    *,
    grant_id: str,
    why: Annotated[str, typer.Option(help="why (a case number); the API audits it")],
    operator: Reader = None,
) -> int:
    """a grant's evidence objects, hashed again (an audited API read); exit 1 if one fails"""
    read = _api_read(operator, why, "read signature evidence")
    assert read is not None  # --why is required
    try:
        found = read.signatures(grant_id)
    except ApiRefusedError as error:
        return _fail(str(error), 2)
    rows = found["signatures"]
    if out.json:
        render.print_json(found)
    else:
        empty = f"grant {grant_id} has no signature evidence (signed on paper)"
        render.table(rows, SIGNATURE_COLUMNS, empty)
    return 0 if all(row["verified"] for row in rows) else 1


def _trace_row(entry: dict[str, Any]) -> dict[str, Any]:
    record = entry["record"]
    at = datetime.fromtimestamp(entry["at_ms"] / 1000, UTC)
    return {
        "at": at.isoformat(timespec="milliseconds"),
        "topic": entry["topic"],
        "what": record.get("type") or record.get("template") or record.get("kind") or "",
        "record": json.dumps(record)[:160],
    }


@_command(app, "trace")
async def trace(
    out: render.Output,
    *,
    wanted: Annotated[
        str, typer.Argument(metavar="id", help="a message_id, grant_id, request_id or event_id")
    ],
    operator: Reader = None,
    why: Annotated[
        str | None,
        typer.Option(
            help="with a reason (a case number), also what the authorization API answers now "
            "of the grants traced: an employee read, audited by the API"
        ),
    ] = None,
) -> int:
    """everything about one message, grant or request (exit 1 if nothing)"""
    connection = Connection.from_environment()
    read_side = _api_read(operator, why, "trace through the API")
    try:
        entries = await trace_of(connection.settings, connection.options, wanted, read_side)
    except ApiRefusedError as error:
        return _fail(str(error), 3)
    if out.json:
        render.print_json(entries)
    else:
        rows = [_trace_row(entry) for entry in entries]
        render.table(rows, TRACE_COLUMNS, f"nothing about {wanted} in the topics or the CAF")
    return 0 if entries else 1


def _exit_status(ended: SystemExit) -> int:
    if ended.code is None or isinstance(ended.code, int):
        return ended.code or 0
    print(ended.code, file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    """Run cafctl on `argv` (default: the process's arguments) and return its exit status;
    bad usage is 2, `--help` 0."""
    command = typer.main.get_command(app)
    try:
        command.main(args=argv, prog_name="cafctl", standalone_mode=True)
    except SystemExit as ended:
        return _exit_status(ended)
    except (ValueError, OSError, KeyError) as error:  # bad input, no operator, no connection
        print(f"cafctl: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
