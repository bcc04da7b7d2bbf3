"""What `cafctl sla`, `practitioner` and `submit` do, apart from printing.

- `waiting_to_post`: grants the validator passed to the poster whose posting deadline (PO-11)
  is still open and whose terminal event has not been seen: the validator's 48-hour SLA timers
  without an `ENDED#` mark, oldest first.
- `practitioner_records`: a CAF number as the registry feed has it (latest record on the
  compacted topic) and as the validator's view has applied it.
- `publish_practitioner`, `submissions`: validated messages for the registry topic and for
  `caf.inbound.v1`, keyed as the contract says.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

from caf_runtime.config import ServiceSettings
from caf_runtime.dynamo import DynamoTable
from caf_runtime.timers import SHARDS
from cafctl.topics import read_topic
from schemas import topics
from schemas.codec import decode_inbound, decode_practitioner
from schemas.errors import ContractError
from schemas.inbound import TpaDecision, TpaRequest
from services.validator.store import PostingDeadline

POSTING_DEADLINE = timedelta(hours=48)  # PO-11


async def waiting_to_post(settings: ServiceSettings, now: datetime) -> list[dict[str, Any]]:
    async with DynamoTable(settings, "validator") as table:
        return await waiting_in(table, now)


async def waiting_in(table: DynamoTable, now: datetime) -> list[dict[str, Any]]:
    """`waiting_to_post`, from the validator's table `table`, already open."""
    deadlines: list[PostingDeadline] = []
    for shard in range(SHARDS):
        paginator = table.client.get_paginator("query")
        async for page in paginator.paginate(
            TableName=table.name,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"TIMER#{shard}"}},
            ConsistentRead=True,
        ):
            for item in page.get("Items", []):
                timer = json.loads(item["timer"]["S"])
                if timer.get("kind") == PostingDeadline.kind:
                    deadlines.append(PostingDeadline.model_validate(timer["payload"]))
    # one timer per grant is scheduled at a time (24 h, then 48 h: PO-11); either says the
    # grant still waits, and the posting deadline is 48 h after it became ready
    deadlines = list({d.grant_id: d for d in deadlines}.values())
    ended = await _ended(table, [d.grant_id for d in deadlines])
    rows = [
        {
            "grant_id": deadline.grant_id,
            "form": deadline.form,
            "caf_number": deadline.caf_number,
            "taxpayer_ref": deadline.taxpayer_ref,
            "ready_at": deadline.ready_at.isoformat(),
            "deadline": (deadline.ready_at + POSTING_DEADLINE).isoformat(),
            "age_s": round((now - deadline.ready_at).total_seconds()),
        }
        for deadline in deadlines
        if deadline.grant_id not in ended
    ]
    return sorted(rows, key=lambda row: str(row["ready_at"]))


async def _ended(table: DynamoTable, grant_ids: list[str]) -> set[str]:
    ended: set[str] = set()
    for start in range(0, len(grant_ids), 100):
        keys = [
            {"pk": {"S": f"ENDED#{grant_id}"}, "sk": {"S": "ENDED"}}
            for grant_id in dict.fromkeys(grant_ids[start : start + 100])
        ]
        request: dict[str, Any] = {table.name: {"Keys": keys, "ConsistentRead": True}}
        while request:
            response = await table.client.batch_get_item(RequestItems=request)
            for item in response.get("Responses", {}).get(table.name, []):
                ended.add(str(item["pk"]["S"]).removeprefix("ENDED#"))
            request = dict(response.get("UnprocessedKeys") or {})
    return ended


async def practitioner_records(
    settings: ServiceSettings, options: dict[str, Any], caf_number: str
) -> dict[str, Any]:
    feed: dict[str, Any] | None = None
    for record in await read_topic(options, settings.topic(topics.PRACTITIONERS)):
        if record.key is not None and record.key.decode() == caf_number:
            feed = json.loads(record.value) if record.value else None  # a tombstone deletes
    async with DynamoTable(settings, "validator") as table:
        response = await table.client.get_item(
            TableName=table.name,
            Key={"pk": {"S": f"PRAC#{caf_number}"}, "sk": {"S": "REC"}},
            ConsistentRead=True,
        )
    item = response.get("Item") or {}
    applied = json.loads(item["record"]["S"]) if "record" in item else None
    return {"caf_number": caf_number, "registry_feed": feed, "validator_view": applied}


def practitioner_message(document: dict[str, Any]) -> tuple[bytes, bytes]:
    """(key, value) of a registry record, validated against the contract."""
    value = json.dumps(document).encode()
    record = decode_practitioner(value)
    return record.caf_number.encode(), value


class Submitted(NamedTuple):
    """One inbound message read from a file: its key, bytes, kind and message id."""

    key: bytes
    value: bytes
    kind: str
    message_id: str


def submissions(path: Path) -> list[Submitted]:
    """Each inbound message in `path` (a JSON object, a JSON array, or JSON lines), validated;
    TPA messages are keyed by request id, the others by message id."""
    text = path.read_text()
    try:
        loaded = json.loads(text)
        documents = loaded if isinstance(loaded, list) else [loaded]
    except ValueError:
        documents = [json.loads(line) for line in text.splitlines() if line.strip()]
    messages: list[Submitted] = []
    for number, document in enumerate(documents, 1):
        value = json.dumps(document).encode()
        try:
            message = decode_inbound(value)
        except ContractError as error:
            msg = f"message {number} of {path} breaks the contract: {error}"
            raise ValueError(msg) from error
        key = (
            message.request_id
            if isinstance(message, TpaRequest | TpaDecision)
            else message.message_id
        )
        messages.append(Submitted(key.encode(), value, message.kind, message.message_id))
    return messages
