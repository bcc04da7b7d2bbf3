"""AU-04: every state-changing operator action names who acts and why, and leaves a record.

`Operator.resolve` takes the identity from `--operator` or `CAF_OPERATOR` and the reason from
`--why`; either missing refuses the command before anything happens. `Audit.record` appends one
`AuditRecord` (who, when, what, on what, why, before, after, outcome) to the `ops` table
(`AUDIT` / `<time>#<audit id>`, written once: the condition refuses an overwrite) and to the
append-only topic `caf.audit.v1` (keyed by audit id, kept forever). An action that fails is
recorded too, with its error class, and the error is raised again.

Records never hold a taxpayer's TIN, name or address: submissions are summarised by kind and
message id, dead letters by id and error class.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from caf_runtime.audit import AuditRecord, audit_item, audit_value
from caf_runtime.config import ServiceSettings
from caf_runtime.dynamo import DynamoTable
from cafctl.topics import Outgoing, publish
from schemas import topics

MAX_REASON = 500


class OperatorRequired(ValueError):  # noqa: N818 - read as a sentence by the operator
    """A state-changing command was given without an operator identity or a reason."""


@dataclass(frozen=True)
class Operator:
    """Who acts, and why."""

    name: str
    why: str

    @classmethod
    def resolve(cls, name: str | None, why: str | None, action: str) -> Operator:
        who = (name or os.environ.get("CAF_OPERATOR") or "").strip()
        reason = (why or "").strip()
        if not who:
            msg = (
                f"{action} changes state: say who you are with --operator NAME "
                "(or CAF_OPERATOR); every such action is audited"
            )
            raise OperatorRequired(msg)
        if not reason:
            msg = f"{action} changes state: say why with --why TEXT; it is kept in the audit"
            raise OperatorRequired(msg)
        if len(reason) > MAX_REASON:
            msg = f"--why is limited to {MAX_REASON} characters"
            raise OperatorRequired(msg)
        return cls(who, reason)


class Audit:
    """Writes audit records for one cafctl invocation."""

    def __init__(self, settings: ServiceSettings) -> None:
        self._settings = settings

    @asynccontextmanager
    async def action(
        self, operator: Operator, action: str, target: str, before: Any = None
    ) -> AsyncIterator[AuditRecord]:
        """Run an action inside; set `record.after` there. The record is written when the
        action ends, as `done` or `failed: <error class>`."""
        record = AuditRecord(action, target, operator.name, operator.why, before=before)
        try:
            yield record
        except BaseException as error:
            record.outcome = f"failed: {type(error).__name__}"
            await self.record(record)
            raise
        await self.record(record)

    async def record(self, record: AuditRecord) -> None:
        """Append `record` to the audit table and the audit topic."""
        async with DynamoTable(self._settings, "ops") as ops:
            await ops.client.put_item(
                TableName=ops.name,
                Item=audit_item(record),
                ConditionExpression="attribute_not_exists(pk)",
            )
        outgoing = Outgoing(record.audit_id.encode(), audit_value(record))
        await publish(self._settings, topics.AUDIT, [outgoing])


async def audit_trail(settings: ServiceSettings, limit: int = 100) -> list[dict[str, Any]]:
    """The latest audit records, newest first."""
    async with DynamoTable(settings, "ops") as ops:
        response = await ops.client.query(
            TableName=ops.name,
            KeyConditionExpression="pk = :audit",
            ExpressionAttributeValues={":audit": {"S": "AUDIT"}},
            ScanIndexForward=False,
            Limit=limit,
            ConsistentRead=True,
        )
    return [json.loads(item["document"]["S"]) for item in response.get("Items", [])]
