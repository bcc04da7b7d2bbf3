"""The taxpayer_ref key rotation drill's second step: re-key the stored CAF.

A rotation adds a key version (docs/operations.md, "Rotating the taxpayer_ref key"): intake gets
the new layer key and from then on gives every taxpayer the new version's ref, telling the
poster the previous one, so the poster moves a taxpayer's partition the first time it sees them.
`rekey` moves every other partition still under the previous version: a stored ref of version
N-1 becomes `schemas.ids.rekeyed(ref, N, layer key)`, exactly what intake computes from the TIN,
so no TIN is needed and no lookup is lost. The old partition keeps a forwarding mark for commands
still in flight with the old ref; scheduled timers that name an old ref are rewritten.

It is idempotent and safe under traffic: a partition moved meanwhile by the poster is skipped,
and a write racing a move fails its version condition and is decided again on the new partition.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from caf_runtime.dynamo import DynamoTable
from schemas.ids import ref_version, rekeyed
from services.caf_poster.config import CafPosterSettings
from services.caf_poster.store import DynamoCafStore


@dataclass(frozen=True)
class RekeyReport:
    """What a run moved (counts only: refs are pseudonyms, but a list of them is a map)."""

    version: int
    moved: int
    already_current: int
    timers_rewritten: int


async def rekey(settings: CafPosterSettings, version: int, layer_key: bytes) -> RekeyReport:
    """Move every partition of key version `version - 1` to version `version`."""
    store = DynamoCafStore(settings)
    moved = current = 0
    renamed: dict[str, str] = {}
    async with store.table:
        for ref, moved_to in await _partitions(store.table):
            if moved_to is not None:
                renamed[ref] = moved_to  # moved by the poster: its timers may still name it
                continue
            if ref_version(ref) == version:
                current += 1
            if ref_version(ref) != version - 1:
                continue
            new_ref = rekeyed(ref, version, layer_key)
            if await store.move(ref, new_ref):
                moved += 1
                renamed[ref] = new_ref
        timers = await _rewrite_timers(store.table, renamed)
    return RekeyReport(version, moved, current, timers)


async def _partitions(table: DynamoTable) -> list[tuple[str, str | None]]:
    """(ref, moved_to) of every taxpayer partition (one VERSION item each)."""
    found = []
    paginator = table.client.get_paginator("scan")
    async for page in paginator.paginate(
        TableName=table.name,
        FilterExpression="sk = :version AND begins_with(pk, :tp)",
        ExpressionAttributeValues={":version": {"S": "VERSION"}, ":tp": {"S": "TP#"}},
        ConsistentRead=True,
    ):
        for item in page.get("Items", []):
            moved_to = item.get("moved_to", {}).get("S")
            found.append((str(item["pk"]["S"]).removeprefix("TP#"), moved_to))
    return found


async def _rewrite_timers(table: DynamoTable, renamed: dict[str, str]) -> int:
    """Scheduled timers that name a moved ref (a student grant's purge day, a held approval)
    name its new ref instead."""
    if not renamed:
        return 0
    rewritten = 0
    paginator = table.client.get_paginator("scan")
    async for page in paginator.paginate(
        TableName=table.name,
        FilterExpression="begins_with(pk, :timer) AND #state = :scheduled",
        ExpressionAttributeNames={"#state": "state"},
        ExpressionAttributeValues={":timer": {"S": "TIMER#"}, ":scheduled": {"S": "scheduled"}},
        ConsistentRead=True,
    ):
        for item in page.get("Items", []):
            timer = json.loads(item["timer"]["S"])
            if not _rename(timer.get("payload", {}), renamed):
                continue
            try:
                await table.client.update_item(
                    TableName=table.name,
                    Key={"pk": item["pk"], "sk": item["sk"]},
                    UpdateExpression="SET #timer = :timer",
                    ConditionExpression="#state = :scheduled",
                    ExpressionAttributeNames={"#timer": "timer", "#state": "state"},
                    ExpressionAttributeValues={
                        ":timer": {"S": json.dumps(timer)},
                        ":scheduled": {"S": "scheduled"},
                    },
                )
            except table.client.exceptions.ConditionalCheckFailedException:
                continue  # it fired meanwhile, following the forwarding mark
            rewritten += 1
    return rewritten


def _rename(payload: dict[str, Any], renamed: dict[str, str]) -> bool:
    """Replace a moved ref in a timer's payload (and in a held command it carries)."""
    changed = False
    if payload.get("taxpayer_ref") in renamed:
        payload["taxpayer_ref"] = renamed[payload["taxpayer_ref"]]
        changed = True
    command = payload.get("command")
    if isinstance(command, str):
        document = json.loads(command)
        if document.get("taxpayer_ref") in renamed:
            document["taxpayer_ref"] = renamed[document["taxpayer_ref"]]
            payload["command"] = json.dumps(document)
            changed = True
    return changed
