"""Dead letters: list them, show one, and replay them to the topic they came from.

Replay republishes the original bytes, key and headers (minus the error headers) to
`original-topic`, adding `replayed-from`. Each dead letter replayed is marked in the `ops` table
(`REPLAY#<topic>#<partition>#<offset>`) after its republish is acknowledged, so running replay
twice republishes nothing the second time. (A crash between the two replays that one letter
again, which every consumer absorbs: they are idempotent by message id.)

A sealed letter (intake's, `caf_runtime.envelope`) opens only with the operator's
key-encryption key (`CAF_ENVELOPE_KEYS`): without it `show` prints its error headers and
`replay` refuses it. Opened, its value is shown masked by field: the fields of the contract that
say what a message is (kind, ids, form, dates, matters) as they are, a TIN as its last four
digits, and every other value (names, addresses, free text, fields nobody expected) as
`[masked: N chars]`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from aiokafka import AIOKafkaProducer, ConsumerRecord
from botocore.exceptions import ClientError

from caf_runtime.config import ServiceSettings
from caf_runtime.dynamo import DynamoTable
from caf_runtime.envelope import HEADER, KID_HEADER, EnvelopeError, Sealer, is_sealed
from caf_runtime.guard import CONTROL_HEADERS
from caf_runtime.topology import replay_route
from cafctl.topics import read_topic
from schemas import topics
from schemas.inbound import identifier
from schemas.values import redact_numbers

ERROR_HEADERS = CONTROL_HEADERS | {"replayed-from"}
# Fields shown as they are: what a message is, never who it is about.
SHOWN_FIELDS = frozenset(
    {
        "kind", "message_id", "request_id", "group_id", "authorization_id", "sent_at",
        "received_on", "form", "channel", "tin_type", "entity_type", "tax_type", "form_number",
        "periods", "caf_number", "method", "date", "signature_date", "decision", "decided_at",
        "approved_at", "retain_prior", "retain", "specific_use", "designation", "ial", "aal",
        "is_student", "expires_on", "caf_numbers", "matters", "representatives", "signatures",
        "taxpayer", "tax_matters", "address", "signature", "taxpayer_signature",
    }
)  # fmt: skip
TIN_FIELDS = frozenset({"tin"})
ID_FIELDS = frozenset({"message_id", "request_id", "group_id", "authorization_id", "caf_number"})


def masked(value: object, field: str = "") -> object:
    """A decoded message with every value outside `SHOWN_FIELDS` masked (a TIN to its last
    four digits); containers of shown fields are walked, their unknown fields masked too."""
    if field in TIN_FIELDS:
        digits = "".join(ch for ch in str(value) if ch.isdigit())
        return f"*****{digits[-4:]}" if len(digits) >= 4 else "[masked]"
    if field and field not in SHOWN_FIELDS:
        return f"[masked: {len(json.dumps(value))} chars]"
    if isinstance(value, dict):
        return {str(k)[:40]: masked(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [masked(item, field) for item in value]
    if isinstance(value, str):  # ids are never TIN-shaped (DP-02); other words may hide one
        return value[:200] if field in ID_FIELDS else redact_numbers(value[:200])
    return value


def masked_value(value: bytes) -> object:
    """What `dlq show` prints of a letter's value."""
    try:
        document = json.loads(value)
    except ValueError:
        return f"[{len(value)} bytes, not JSON]"
    return masked(document) if isinstance(document, dict) else f"[{len(value)} bytes of JSON]"


@dataclass(frozen=True)
class DeadLetter:
    topic: str
    partition: int
    offset: int
    key: str | None
    headers: dict[str, str]
    value: bytes

    @property
    def id(self) -> str:
        return f"{self.topic}/{self.partition}/{self.offset}"

    @property
    def sealed(self) -> bool:
        return is_sealed(self.headers)

    @property
    def error_class(self) -> str:
        return self.headers.get("error-class", "")

    @property
    def failed_at(self) -> datetime | None:
        try:
            return datetime.fromisoformat(self.headers["failed-at"])
        except (KeyError, ValueError):
            return None

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "error_class": self.error_class,
            "error_message": redact_numbers(self.headers.get("error-message", ""))[:120],
            "original": f"{self.headers.get('original-topic')}/"
            f"{self.headers.get('original-partition')}/"
            f"{self.headers.get('original-offset')}",
            "failed_at": self.headers.get("failed-at", ""),
            "sealed": self.sealed,
        }


def opened(letter: DeadLetter, sealer: Sealer) -> DeadLetter:
    """A sealed letter as it was first written: original key, value and headers, with the
    letter's error headers. `EnvelopeError` when it does not open with this key."""
    original = sealer.open(letter.value)
    if original.value is None:
        msg = (
            f"only the size ({original.value_bytes} bytes) and SHA-256 of this letter's value "
            "were kept: replay it from its original offset"
        )
        raise EnvelopeError(msg)
    control = {k: v for k, v in letter.headers.items() if k not in (HEADER, KID_HEADER)}
    return dataclasses.replace(
        letter, key=original.key, value=original.value, headers={**original.headers, **control}
    )


def shown(letter: DeadLetter, sealer: Sealer | None) -> dict[str, Any]:
    """What `dlq show` prints: the summary, then the original key, headers and value (masked
    by field); a sealed letter is opened first, or shown as sealed without the key."""
    if letter.sealed:
        if sealer is None:
            return {**letter.summary(), "value": "[sealed: CAF_ENVELOPE_KEYS opens it]"}
        try:
            letter = opened(letter, sealer)
        except EnvelopeError as error:
            return {**letter.summary(), "value": f"[sealed: {error}]"}
    headers = {
        k: (v if k in CONTROL_HEADERS or k == "caf-signature" else "[masked]")
        for k, v in letter.headers.items()
    }
    return {
        **letter.summary(),
        "key": _shown_key(letter.key),
        "headers": headers,
        "value": masked_value(letter.value),
    }


def _letter(record: ConsumerRecord[bytes, bytes], topic: str) -> DeadLetter:
    return DeadLetter(
        topic=topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key.decode(errors="replace") if record.key is not None else None,
        headers={k: v.decode(errors="replace") for k, v in record.headers or ()},
        value=record.value or b"",
    )


async def list_dead_letters(
    settings: ServiceSettings, client_options: dict[str, Any], dead_letter_topics: tuple[str, ...]
) -> list[DeadLetter]:
    letters: list[DeadLetter] = []
    for topic in dead_letter_topics:
        records = await read_topic(client_options, settings.topic(topic))
        letters.extend(_letter(record, topic) for record in records)
    return letters


def select(
    letters: list[DeadLetter],
    *,
    error_class: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[DeadLetter]:
    chosen = []
    for letter in letters:
        if error_class is not None and letter.error_class != error_class:
            continue
        failed_at = letter.failed_at
        if since is not None and (failed_at is None or failed_at < since):
            continue
        if until is not None and (failed_at is None or failed_at > until):
            continue
        chosen.append(letter)
    return chosen


ReplayOutcome = Literal["replayed", "already", "refused"]


@dataclass(frozen=True)
class ReplayReport:
    replayed: tuple[str, ...]
    already_replayed: tuple[str, ...]
    refused: tuple[str, ...] = ()


# What an internal replay keeps for the guard of the service: where the letter first failed.
_KEPT_FOR_RETRY = frozenset(
    {"original-topic", "original-partition", "original-offset", "original-timestamp"}
    | {"first-failed-at", "attempt-count"}
)


def replay_record(letter: DeadLetter, prefix: str) -> tuple[str, list[tuple[str, bytes]]] | None:
    """(deployed target topic, headers) of a letter's replay, or None when its dead-letter
    topic may not feed the topic the letter names (AU-04, `topology.replay_route`)."""
    route = replay_route(letter.topic)
    original = letter.headers.get("original-topic", "")
    if route is None or not original.startswith(prefix):
        return None
    if original.removeprefix(prefix) not in route.originals:
        return None
    payload = [(k, v.encode()) for k, v in letter.headers.items() if k not in ERROR_HEADERS]
    kept = []
    if route.target != topics.INBOUND:  # the service's retry topic: its guard needs these
        kept = [(k, v.encode()) for k, v in letter.headers.items() if k in _KEPT_FOR_RETRY]
    return prefix + route.target, [*payload, *kept, ("replayed-from", letter.id.encode())]


async def replay(
    letters: list[DeadLetter],
    *,
    ops: DynamoTable,
    producer: AIOKafkaProducer,
    prefix: str = "",
    dry_run: bool = False,
    sealer: Sealer | None = None,
    advance: Callable[[], None] | None = None,
) -> ReplayReport:
    """Replay each letter once, by the route its dead-letter topic allows; letters whose
    original topic is not on that route, and sealed letters that do not open with `sealer`,
    are refused, not sent. `advance()` is called after each letter (cafctl's progress bar)."""
    decided: dict[ReplayOutcome, list[str]] = {"replayed": [], "already": [], "refused": []}
    for letter in letters:
        outcome = await _replay_one(
            letter, ops=ops, producer=producer, prefix=prefix, dry_run=dry_run, sealer=sealer
        )
        decided[outcome].append(letter.id)
        if advance is not None:
            advance()
    return ReplayReport(
        tuple(decided["replayed"]), tuple(decided["already"]), tuple(decided["refused"])
    )


async def _replay_one(
    letter: DeadLetter,
    *,
    ops: DynamoTable,
    producer: AIOKafkaProducer,
    prefix: str,
    dry_run: bool,
    sealer: Sealer | None,
) -> ReplayOutcome:
    marker = {"pk": {"S": f"REPLAY#{letter.id}"}, "sk": {"S": "REPLAY"}}
    found = await ops.client.get_item(TableName=ops.name, Key=marker, ConsistentRead=True)
    if "Item" in found:
        return "already"
    route = replay_record(letter, prefix)
    original = _opened_or_none(letter, sealer)
    if route is None or original is None:
        return "refused"
    target, headers = replay_record(original, prefix) or route
    if dry_run:
        return "replayed"
    await producer.send_and_wait(
        target,
        original.value,
        key=original.key.encode() if original.key is not None else None,
        headers=headers,
    )
    try:
        await ops.client.put_item(
            TableName=ops.name,
            Item={**marker, "original": {"S": target}},
            ConditionExpression="attribute_not_exists(pk)",
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
            raise
    return "replayed"


def _shown_key(key: str | None) -> str | None:
    """A record key as it is when it is an id of the contract (never TIN-shaped), else masked:
    a malformed record's key is whatever its publisher put there."""
    if key is None:
        return None
    try:
        return identifier(key)
    except ValueError:
        return f"[masked: {len(key)} chars]"


def _opened_or_none(letter: DeadLetter, sealer: Sealer | None) -> DeadLetter | None:
    if not letter.sealed:
        return letter
    if sealer is None:
        return None
    try:
        return opened(letter, sealer)
    except EnvelopeError:
        return None
