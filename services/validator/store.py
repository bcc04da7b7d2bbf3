"""The validator's own state (table `validator`).

- `PRAC#<caf>` / `REC`: the registry view, one item per CAF number with the record (or a
  tombstone) and the registry offset it came from; an older offset never overwrites a newer one,
  so a replay of the compacted topic cannot bring back a stale record.
- `VEL#<caf>` / `TP#<taxpayer_ref>`: when a grant last named the CAF number for that taxpayer
  (VA-07 velocity window).
- `GRANT#<grant or message id>` / `MARK`: the recorded outputs of each command handled.
- `TIMER#<shard>`: the 24 h and 48 h posting deadlines of each grant sent to the poster (PO-11),
  and `ENDED#<grant_id>`: grants whose terminal event was seen, so their deadlines stay silent.
"""

from __future__ import annotations

from datetime import datetime

from botocore.exceptions import ClientError

from caf_runtime.dynamo import DynamoTable
from caf_runtime.group_writer import GroupWriter
from caf_runtime.ledger import Ledger, transact
from caf_runtime.outputs import Output
from caf_runtime.timers import Timer, Timers
from schemas.codec import decode_practitioner
from schemas.registry import PractitionerRecord
from services.validator.config import ValidatorSettings


class ValidatorStore:
    """The only place that talks to the validator table."""

    def __init__(self, settings: ValidatorSettings) -> None:
        self.table = DynamoTable(settings, "validator")
        self._marks = GroupWriter(self.table)  # published marks and ENDED flags, batched together
        self.ledger = Ledger(self.table, "GRANT#", writer=self._marks)
        self.timers = Timers(self.table)

    async def ping(self) -> bool:
        return await self.table.ping()

    async def practitioner(self, caf_number: str) -> PractitionerRecord | None:
        response = await self.table.client.get_item(
            TableName=self.table.name,
            Key={"pk": {"S": f"PRAC#{caf_number}"}, "sk": {"S": "REC"}},
            ConsistentRead=True,
        )
        item = response.get("Item")
        if not item or "record" not in item:
            return None
        return decode_practitioner(item["record"]["S"].encode())

    async def apply_registry(
        self, caf_number: str, record: bytes | None, partition: int, offset: int
    ) -> bool:
        """Store a registry record (None = tombstone) unless a newer one is already there."""
        item = {
            "pk": {"S": f"PRAC#{caf_number}"},
            "sk": {"S": "REC"},
            "source_partition": {"N": str(partition)},
            "source_offset": {"N": str(offset)},
        }
        if record is not None:
            item["record"] = {"S": record.decode()}
        try:
            await self.table.client.put_item(
                TableName=self.table.name,
                Item=item,
                ConditionExpression="attribute_not_exists(pk) OR source_offset < :offset",
                ExpressionAttributeValues={":offset": {"N": str(offset)}},
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    async def other_taxpayers(self, caf_number: str, taxpayer_ref: str, since: datetime) -> int:
        """How many other taxpayers had a grant naming `caf_number` at or after `since`."""
        count = 0
        paginator = self.table.client.get_paginator("query")
        async for page in paginator.paginate(
            TableName=self.table.name,
            KeyConditionExpression="pk = :pk",
            FilterExpression="seen_at >= :since",
            ExpressionAttributeValues={
                ":pk": {"S": f"VEL#{caf_number}"},
                ":since": {"N": str(since.timestamp())},
            },
            ProjectionExpression="sk",
            ConsistentRead=True,
        ):
            own = f"TP#{taxpayer_ref}"
            count += sum(1 for item in page.get("Items", []) if item["sk"].get("S") != own)
        return count

    async def record(
        self,
        key: str,
        outputs: list[Output],
        velocity: tuple[str, str, datetime] | None = None,
        timers: tuple[Timer, ...] = (),
    ) -> bool:
        """Record the outputs (the velocity mark, the timers) atomically; False if already
        recorded."""
        items = [self.ledger.put(key, outputs), *(self.timers.schedule(t) for t in timers)]
        if velocity is not None:
            caf_number, taxpayer_ref, seen_at = velocity
            items.append(
                {
                    "Put": {
                        "TableName": self.table.name,
                        "Item": {
                            "pk": {"S": f"VEL#{caf_number}"},
                            "sk": {"S": f"TP#{taxpayer_ref}"},
                            "seen_at": {"N": str(seen_at.timestamp())},
                        },
                    }
                }
            )
        return await transact(self.table, items) is None

    async def mark_ended(self, grant_id: str) -> None:
        """A grant reached its terminal outcome: its SLA timers have nothing left to say."""
        await self._marks.put({"pk": {"S": f"ENDED#{grant_id}"}, "sk": {"S": "ENDED"}})

    async def ended(self, grant_id: str) -> bool:
        response = await self.table.client.get_item(
            TableName=self.table.name,
            Key={"pk": {"S": f"ENDED#{grant_id}"}, "sk": {"S": "ENDED"}},
            ConsistentRead=True,
        )
        return "Item" in response
