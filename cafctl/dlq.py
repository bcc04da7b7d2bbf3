"""Dead letters: list them, show one, and replay them to the topic they came from.

Replay republishes the original bytes, key and headers (minus the error headers) to
`original-topic`, adding `replayed-from`. Each dead letter replayed is marked in the `ops` table
(`REPLAY#<topic>#<partition>#<offset>`) after its republish is acknowledged, so running replay
twice republishes nothing the second time. (A crash between the two replays that one letter
again, which every consumer absorbs: they are idempotent by message id.)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaProducer, ConsumerRecord
from botocore.exceptions import ClientError

from caf_runtime.config import ServiceSettings
from caf_runtime.dynamo import DynamoTable
from caf_runtime.guard import CONTROL_HEADERS
from caf_runtime.topology import replay_route
from cafctl.topics import read_topic
from schemas import topics

ERROR_HEADERS = CONTROL_HEADERS | {"replayed-from"}
_TIN_LIKE = re.compile(r"\b(\d{3}-?\d{2}-?|\d{2}-?\d{3})(\d{4})\b")


def mask_tins(text: str) -> str:
    """Operator output shows at most the last four digits of anything shaped like a TIN."""
    return _TIN_LIKE.sub(lambda m: re.sub(r"\d", "*", m.group(1)) + m.group(2), text)


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
            "error_message": mask_tins(self.headers.get("error-message", ""))[:120],
            "original": f"{self.headers.get('original-topic')}/"
            f"{self.headers.get('original-partition')}/"
            f"{self.headers.get('original-offset')}",
            "failed_at": self.headers.get("failed-at", ""),
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
) -> ReplayReport:
    """Replay each letter once, by the route its dead-letter topic allows; letters whose
    original topic is not on that route are refused, not sent."""
    replayed, skipped, refused = [], [], []
    for letter in letters:
        marker = {"pk": {"S": f"REPLAY#{letter.id}"}, "sk": {"S": "REPLAY"}}
        found = await ops.client.get_item(TableName=ops.name, Key=marker, ConsistentRead=True)
        if "Item" in found:
            skipped.append(letter.id)
            continue
        route = replay_record(letter, prefix)
        if route is None:
            refused.append(letter.id)
            continue
        target, headers = route
        if not dry_run:
            await producer.send_and_wait(
                target,
                letter.value,
                key=letter.key.encode() if letter.key is not None else None,
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
        replayed.append(letter.id)
    return ReplayReport(tuple(replayed), tuple(skipped), tuple(refused))
