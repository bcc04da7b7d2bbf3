"""`cafctl status` and `cafctl trace`: what the topics hold, how far each consumer group is
behind, the dead letters waiting, the services' readiness, and one message's whole story."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient

from caf_runtime.config import ServiceSettings
from caf_runtime.dynamo import DynamoTable
from caf_runtime.offsets import topic_partitions
from caf_runtime.topology import CONSUMER_GROUPS, TOPICS
from cafctl.read_side import ReadSideApi, ReadSideRead
from cafctl.topics import read_topic
from schemas import topics

LOCAL_HEALTH = {
    "intake": "http://127.0.0.1:8081/readyz",
    "validator": "http://127.0.0.1:8082/readyz",
    "caf_poster": "http://127.0.0.1:8083/readyz",
    "notifier": "http://127.0.0.1:8084/readyz",
    "monitor": "http://127.0.0.1:8087/readyz",
}


@dataclass(frozen=True)
class TopicRow:
    topic: str
    partitions: int
    messages: int


@dataclass(frozen=True)
class GroupRow:
    group: str
    topic: str
    lag: int


async def status(
    settings: ServiceSettings, options: dict[str, Any], api: ReadSideApi | None = None
) -> dict[str, Any]:
    """Topics, lag, dead letters, and each service's readiness (the read side's from its API,
    `api`, where it is served)."""
    admin = AIOKafkaAdminClient(**options)
    consumer = AIOKafkaConsumer(**options)
    try:  # both closed, whichever failed to start
        await admin.start()
        await consumer.start()
        ends: dict[str, dict[Any, int]] = {}
        rows = []
        for spec in TOPICS:
            name = settings.topic(spec.name)
            partitions = await topic_partitions(admin, name)
            ends[spec.name] = await consumer.end_offsets(partitions) if partitions else {}
            rows.append(TopicRow(spec.name, len(partitions), sum(ends[spec.name].values())))
        groups = []
        for group in CONSUMER_GROUPS:  # the services' groups, by their default names
            for topic in group.topics:
                committed = await admin.list_consumer_group_offsets(
                    group.name, partitions=list(ends[topic])
                )
                lag = sum(
                    end
                    - (committed[tp].offset if tp in committed and committed[tp].offset >= 0 else 0)
                    for tp, end in ends[topic].items()
                )
                groups.append(GroupRow(group.name, topic, lag))
    finally:
        await consumer.stop()
        await admin.close()
    dead = {row.topic: row.messages for row in rows if row.topic in topics.DEAD_LETTER_TOPICS}
    return {
        "topics": [asdict(r) for r in rows],
        "groups": [asdict(g) for g in groups],
        "dead_letters": dead,
        "services": {
            **{name: _ready(url) for name, url in LOCAL_HEALTH.items()},
            "caf_query": _ready(f"{(api or ReadSideApi.from_environment()).base_url}/readyz"),
        },
    }


def _ready(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - operator URL
            return "ready" if response.status == 200 else f"HTTP {response.status}"
    except urllib.error.HTTPError as error:
        return f"not ready (HTTP {error.code})"
    except (urllib.error.URLError, OSError):
        return "unreachable"


TRACE_FIELDS = ("message_id", "grant_id", "request_id", "event_id", "authorization_id")


async def trace(
    settings: ServiceSettings,
    options: dict[str, Any],
    wanted: str,
    read_side: ReadSideRead | None = None,
) -> list[dict[str, Any]]:
    """Every record that names `wanted` in a tracing field, in time order. Inbound bodies are
    summarised (kind, ids), never printed: they carry TINs. Then the CAF table's record of
    each grant named, and, given `read_side` (an audited employee read, with its reason), what
    the authorization API answers of it now."""
    found: list[dict[str, Any]] = []
    message_of_grant = wanted.rpartition(":")[0] if ":" in wanted else None
    events_found: set[str] = set()  # notifications name their event, not the grant
    for name in (topics.INBOUND, topics.EVENTS, topics.NOTIFICATIONS, *topics.DEAD_LETTER_TOPICS):
        for record in await read_topic(options, settings.topic(name)):
            try:
                document = json.loads(record.value or b"null")
            except ValueError:
                document = None
            if not isinstance(document, dict):
                continue
            names_it = any(document.get(f) == wanted for f in TRACE_FIELDS)
            is_its_grant = str(document.get("grant_id", "")).startswith(f"{wanted}:")
            is_its_message = message_of_grant is not None and (
                document.get("message_id") == message_of_grant
            )
            about_its_event = (
                name == topics.NOTIFICATIONS and document.get("event_id") in events_found
            )
            if not (names_it or is_its_grant or is_its_message or about_its_event):
                continue
            if name == topics.EVENTS:
                events_found.add(str(document.get("event_id")))
            if name == topics.INBOUND or name in topics.DEAD_LETTER_TOPICS:
                shown = {k: document.get(k) for k in ("kind", "message_id", "request_id")}
            else:
                shown = {k: v for k, v in document.items() if k not in {"body"}}
            found.append(
                {
                    "at_ms": record.timestamp,
                    "topic": name,
                    "record": shown,
                }
            )
    found.sort(key=lambda entry: entry["at_ms"])
    now = await caf_records(settings, found)
    if read_side is not None:
        now += await asyncio.to_thread(read_side.views, found)
    return found + now


async def _grant_item(caf: DynamoTable, ref: str, grant_id: str) -> dict[str, Any] | None:
    """A grant's CAF item, under the ref it was posted with or, after a taxpayer_ref key
    rotation moved the taxpayer's partition, under the ref it was moved to."""
    for _ in range(4):
        response = await caf.client.get_item(
            TableName=caf.name,
            Key={"pk": {"S": f"TP#{ref}"}, "sk": {"S": f"GRANT#{grant_id}"}},
            ConsistentRead=True,
        )
        if "Item" in response:
            return dict(response["Item"])
        version = await caf.client.get_item(
            TableName=caf.name,
            Key={"pk": {"S": f"TP#{ref}"}, "sk": {"S": "VERSION"}},
            ConsistentRead=True,
        )
        moved_to = version.get("Item", {}).get("moved_to", {}).get("S")
        if not moved_to:
            return None
        ref = moved_to
    return None


async def caf_records(
    settings: ServiceSettings, entries: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The CAF table's current record of every grant the traced events name (last, as the
    state after them)."""
    grants = {
        (str(e["record"]["taxpayer_ref"]), str(e["record"]["grant_id"]))
        for e in entries
        if e["topic"] == topics.EVENTS and e["record"].get("grant_id")
    }
    if not grants:
        return []
    records = []
    now_ms = int(time.time() * 1000)
    async with DynamoTable(settings, "caf") as caf:
        for ref, grant_id in sorted(grants):
            item = await _grant_item(caf, ref, grant_id)
            if not item:
                continue
            grant = json.loads(item["grant"]["S"])
            records.append(
                {
                    "at_ms": now_ms,
                    "topic": "caf (table, now)",
                    "record": {
                        "grant_id": grant_id,
                        "status": item["status"]["S"],
                        "form": grant.get("form"),
                        "caf_number": grant.get("caf_number"),
                        "posted_at": grant.get("posted_at"),
                        "matters": grant.get("matters"),
                    },
                }
            )
    return records
