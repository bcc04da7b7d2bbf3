"""What `cafctl misuse` and `cafctl statements` do, apart from printing (docs/rules.md §13).

- `cases`: the suspicions the monitor raised (`CASES` items of its table), newest day first, each
  with its number, rule, signal, figure and threshold, and whether an operator acted on it.
- `hold`: MN-06: an operator marks a CAF number pending review: the registry record is published
  again with `status_code: "P"` (signed by the registry feed's key, like `practitioner set`),
  which VA-02 then enforces (`REJ-REP-PENDING-REVIEW`); its open cases are marked with who and
  when. cafctl waits until the validator's view has it; the command line audits it (AU-04).
- `statement_run`: MN-07 on demand: a `StatementRun` on `caf.statements.v1` (only the operator's
  and the monitor's principals write it); the monitor sends each statement once per run.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from caf_runtime.config import ServiceSettings
from caf_runtime.dynamo import DynamoTable
from cafctl.topics import Outgoing, publish
from schemas import topics
from schemas.codec import encode
from schemas.monitoring import StatementRun

PENDING_REVIEW = "P"
POLL_S = 0.25


@dataclass(frozen=True)
class Case:
    """One suspicion as cafctl shows it."""

    caf_number: str
    day: str
    rule: str
    signal: str
    observed: float
    threshold: float
    status: str
    event_id: str
    evidence: dict[str, Any]
    held_by: str = ""

    def row(self) -> dict[str, Any]:
        return {
            "caf_number": self.caf_number,
            "day": self.day,
            "rule": self.rule,
            "signal": self.signal,
            "observed": self.observed,
            "threshold": self.threshold,
            "status": self.status,
            "held_by": self.held_by,
        }


def _case(item: dict[str, Any]) -> Case:
    caf_number, day, rule = str(item["sk"]["S"]).split("#", 2)
    event = json.loads(item["event"]["S"])
    held_by = item.get("held_by", {}).get("S", "")
    return Case(
        caf_number,
        day,
        rule,
        event["signal"],
        event["observed"],
        event["threshold"],
        item["status"]["S"],
        event["event_id"],
        event["evidence"],
        held_by,
    )


async def cases(settings: ServiceSettings, caf_number: str | None = None) -> list[Case]:
    """Every suspicion raised (or one number's), newest day first."""
    condition = "pk = :pk"
    values: dict[str, Any] = {":pk": {"S": "CASES"}}
    if caf_number is not None:
        condition += " AND begins_with(sk, :caf)"
        values[":caf"] = {"S": f"{caf_number}#"}
    found: list[Case] = []
    async with DynamoTable(settings, "monitor") as table:
        paginator = table.client.get_paginator("query")
        async for page in paginator.paginate(
            TableName=table.name,
            KeyConditionExpression=condition,
            ExpressionAttributeValues=values,
            ConsistentRead=True,
        ):
            found.extend(_case(item) for item in page.get("Items", []))
    return sorted(found, key=lambda c: (c.day, c.caf_number, c.rule), reverse=True)


def pending_review(record: dict[str, Any]) -> dict[str, Any]:
    """The registry record with the number pending review (MN-06)."""
    return {**record, "status_code": PENDING_REVIEW, "updated_at": datetime.now(UTC).isoformat()}


async def mark_cases(settings: ServiceSettings, found: list[Case], operator: str) -> None:
    """The number's open cases say who put it on hold, and when."""
    async with DynamoTable(settings, "monitor") as table:
        for case in found:
            if case.status != "open":
                continue
            await table.client.update_item(
                TableName=table.name,
                Key={
                    "pk": {"S": "CASES"},
                    "sk": {"S": f"{case.caf_number}#{case.day}#{case.rule}"},
                },
                UpdateExpression="SET #status = :held, held_by = :by, held_at = :at",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":held": {"S": "pending_review"},
                    ":by": {"S": operator},
                    ":at": {"S": datetime.now(UTC).isoformat()},
                },
            )


async def applied_status(settings: ServiceSettings, caf_number: str, wait_s: float) -> str:
    """The validator's view of the number's status, once it is `P` or the wait is over."""
    status = ""
    deadline = asyncio.get_running_loop().time() + wait_s
    async with DynamoTable(settings, "validator") as table:
        while True:
            item = await table.get(f"PRAC#{caf_number}", "REC")
            record = json.loads(item["record"]["S"]) if item and "record" in item else {}
            status = str(record.get("status_code", ""))
            if status == PENDING_REVIEW or asyncio.get_running_loop().time() > deadline:
                return status
            await asyncio.sleep(POLL_S)


async def statement_run(
    settings: ServiceSettings, operator: str, caf_numbers: list[str] | None
) -> StatementRun:
    """MN-07 on demand: the run the monitor carries out."""
    run = StatementRun(
        command_id=f"ops-{uuid.uuid4()}",
        requested_at=datetime.now(UTC),
        requested_by=operator,
        caf_numbers=caf_numbers or None,
    )
    await publish(settings, topics.STATEMENTS, [Outgoing(run.command_id.encode(), encode(run))])
    return run
