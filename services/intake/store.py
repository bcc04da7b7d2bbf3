"""Intake's own state (table `intake`): dedup marks by message id and by form fingerprint.

- `MSG#<message_id>` / `MARK`: the recorded outputs of the message and whether they were
  published (IN-02, and the idempotent re-publish after a crash).
- `FP#<keyed fingerprint>` / `FORM`: the message that first carried a form's content (IN-03).
Both expire after the dedup retention (default 35 days) through DynamoDB TTL.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import Enum

from caf_runtime.dynamo import DynamoTable
from caf_runtime.ledger import Ledger, transact
from caf_runtime.outputs import Output
from services.intake.config import IntakeSettings


class RecordResult(Enum):
    RECORDED = "recorded"
    ALREADY_RECORDED = "already_recorded"
    FINGERPRINT_TAKEN = "fingerprint_taken"


class IntakeStore:
    """The only place that talks to the intake table."""

    def __init__(self, settings: IntakeSettings) -> None:
        self.table = DynamoTable(settings, "intake")
        self.ledger = Ledger(self.table, "MSG#")
        self._retention = timedelta(days=settings.dedup_retention_days)

    async def ping(self) -> bool:
        return await self.table.ping()

    async def fingerprint_owner(self, fingerprint: str) -> str | None:
        """The message id that first carried this form content, if any."""
        response = await self.table.client.get_item(
            TableName=self.table.name,
            Key={"pk": {"S": f"FP#{fingerprint}"}, "sk": {"S": "FORM"}},
            ConsistentRead=True,
        )
        item = response.get("Item")
        return item["message_id"]["S"] if item else None

    async def record(
        self, message_id: str, outputs: list[Output], now: datetime, fingerprint: str | None
    ) -> RecordResult:
        """Record the outputs (and claim the fingerprint) in one transaction."""
        expires_at = now + self._retention
        items = [self.ledger.put(message_id, outputs, expires_at=expires_at)]
        if fingerprint is not None:
            items.append(
                {
                    "Put": {
                        "TableName": self.table.name,
                        "Item": {
                            "pk": {"S": f"FP#{fingerprint}"},
                            "sk": {"S": "FORM"},
                            "message_id": {"S": message_id},
                            "expires_at": {"N": str(int(expires_at.timestamp()))},
                        },
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                }
            )
        failed = await transact(self.table, items)
        if failed is None:
            return RecordResult.RECORDED
        if failed[0] == "ConditionalCheckFailed":
            return RecordResult.ALREADY_RECORDED
        return RecordResult.FINGERPRINT_TAKEN
