"""Intake's own state (table `intake`): dedup marks by message id and by form fingerprint.

- `MSG#<message_id>` / `MARK`: the recorded outputs of the message and whether they were
  published (IN-02, and the idempotent re-publish after a crash).
- `FP#<keyed fingerprint>` / `FORM`: the message that first carried a form's content (IN-03).
- `REQ#<request_id>` / `REQUEST`: a Tax Pro Account request, its state (pending, decided) and the
  grant its approval will post.
- `JTI#<digest of issuer and jti>` / `ASSERTION`: the message that presented an identity
  assertion (AU-02 single use), kept a day past the assertion's expiry.
All expire after the dedup retention (default 35 days) through DynamoDB TTL.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import TYPE_CHECKING, Any

from caf_runtime.clock import Clock
from caf_runtime.dynamo import DynamoTable
from caf_runtime.ledger import Ledger, transact
from caf_runtime.outputs import Output
from caf_runtime.timers import Timer, Timers
from schemas.codec import decode_command
from schemas.grants import PostGrant
from services.intake.config import IntakeSettings
from services.intake.identity import CLOCK_SKEW, Asserted
from services.intake.tpa_rules import RequestState

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb.type_defs import TransactWriteItemTypeDef


class RecordResult(Enum):
    RECORDED = "recorded"
    ALREADY_RECORDED = "already_recorded"
    FINGERPRINT_TAKEN = "fingerprint_taken"


@dataclass(frozen=True)
class RequestChange:
    """A request's new state, written with the message's record; `from_pending` makes the write
    conditional on the request still being pending (a decision)."""

    request_id: str
    state: RequestState
    grant: PostGrant | None = None
    from_pending: bool = False


class IntakeStore:
    """The only place that talks to the intake table."""

    def __init__(self, settings: IntakeSettings, clock: Clock) -> None:
        self.table = DynamoTable(settings, "intake")
        self._retention = timedelta(days=settings.dedup_retention_days)
        self.ledger = Ledger(self.table, "MSG#", retention=self._retention, clock=clock)
        self.timers = Timers(self.table)

    async def ping(self) -> bool:
        return await self.table.ping()

    async def fingerprint_owner(self, fingerprint: str) -> str | None:
        """The message id that first carried this form content, if any."""
        item = await self.table.get(f"FP#{fingerprint}", "FORM")
        return item["message_id"]["S"] if item else None

    async def claim_assertion(self, asserted: Asserted, message_id: str, now: datetime) -> bool:
        """AU-02 single use: the first message to present an assertion (issuer and jti) owns it
        until it expires; that message may present it again (a redelivery), no other may."""
        digest = hashlib.sha256(f"{asserted.issuer}\n{asserted.jti}".encode()).hexdigest()
        kept_until = max(asserted.expires_at, now) + CLOCK_SKEW + timedelta(days=1)
        try:
            await self.table.client.put_item(
                TableName=self.table.name,
                Item={
                    "pk": {"S": f"JTI#{digest}"},
                    "sk": {"S": "ASSERTION"},
                    "message_id": {"S": message_id},
                    "expires_at": {"N": str(int(kept_until.timestamp()))},
                },
                ConditionExpression="attribute_not_exists(pk) OR message_id = :message",
                ExpressionAttributeValues={":message": {"S": message_id}},
            )
        except self.table.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    async def request(self, request_id: str) -> tuple[RequestState, PostGrant | None] | None:
        """A Tax Pro Account request's state and the grant its approval posts, if known."""
        item = await self.table.get(f"REQ#{request_id}", "REQUEST")
        if not item:
            return None
        grant = item.get("grant", {}).get("S")
        command = decode_command(grant.encode()) if grant else None
        return RequestState(item["state"].get("S")), (
            command if isinstance(command, PostGrant) else None
        )

    async def record(
        self,
        message_id: str,
        outputs: list[Output],
        now: datetime,
        *,
        fingerprint: str | None = None,
        request: RequestChange | None = None,
        timer: Timer | None = None,
    ) -> RecordResult:
        """Record the outputs (and claim the fingerprint, or change the request) at once."""
        expires_at = now + self._retention
        items = [self.ledger.put(message_id, outputs)]
        if request is not None:
            items.append(self._request_put(request, expires_at))
        if timer is not None:
            items.append(self.timers.schedule(timer))
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

    def request_put(self, change: RequestChange, now: datetime) -> TransactWriteItemTypeDef:
        """The transaction item of a request's new state (for a timer firing)."""
        return self._request_put(change, now + self._retention)

    def _request_put(self, change: RequestChange, expires_at: datetime) -> TransactWriteItemTypeDef:
        item: dict[str, Any] = {
            "pk": {"S": f"REQ#{change.request_id}"},
            "sk": {"S": "REQUEST"},
            "state": {"S": change.state.value},
            "expires_at": {"N": str(int(expires_at.timestamp()))},
        }
        if change.grant is not None:
            item["grant"] = {"S": change.grant.model_dump_json()}
        put: dict[str, Any] = {"TableName": self.table.name, "Item": item}
        if change.from_pending:
            put["ConditionExpression"] = "#state = :pending"
            put["ExpressionAttributeNames"] = {"#state": "state"}
            put["ExpressionAttributeValues"] = {":pending": {"S": RequestState.PENDING.value}}
        else:
            put["ConditionExpression"] = "attribute_not_exists(pk)"
        return {"Put": put}  # type: ignore[typeddict-item]
