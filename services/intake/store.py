"""Intake's own state (table `intake`): dedup marks by message id and by form fingerprint.

- `MSG#<message_id>` / `MARK`: the recorded outputs of the message and whether they were
  published (IN-02, and the idempotent re-publish after a crash).
- `FP#<keyed fingerprint>` / `FORM`: the message that first carried a form's content (IN-03).
- `REQ#<request_id>` / `REQUEST`: a Tax Pro Account request, its state (pending, decided) and the
  grant its approval will post.
- `JTI#<digest of issuer and jti>` / `ASSERTION`: the message that presented an identity
  assertion (AU-02 single use), kept a day past the assertion's expiry.
All of these expire after the dedup retention (default 35 days) through DynamoDB TTL.

Designated Officials (DO-01 … DO-08) are kept for good (no `expires_at`):
- `ENT#<keyed digest of the EIN>` / `ENTITY`: the entity record's id, type and status (no EIN,
  name or address), and `EID#<entity_id>` / `ENTITY`: that digest, for the feed's tombstones;
- `DOE#<entity_id>` / `PIN#<official_id>`: the latest PIN of one requester for the business: its
  argon2id hash (never the PIN), dates, attempts, state, and the earlier requests without hash;
- `DOE#<entity_id>` / `DO#<official_id>`: a Designated Official, active or not;
- `DOE#<entity_id>` / `USER#<user_id>`: an authorized user the Designated Official added.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import Enum
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, cast

from caf_runtime.clock import Clock
from caf_runtime.dynamo import DynamoTable
from caf_runtime.ledger import Ledger, OutputLedger, transact
from caf_runtime.outputs import Output
from caf_runtime.timers import Timer, TimerPayload, Timers
from schemas.codec import decode_command
from schemas.entities import BusinessType
from schemas.grants import PostGrant
from services.intake.config import IntakeSettings
from services.intake.identity import CLOCK_SKEW, Asserted
from services.intake.officials import EntityView, Official, PinRecord, PinState, pin_summary
from services.intake.tpa_rules import RequestState

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb.type_defs import TransactWriteItemTypeDef


@dataclass(frozen=True)
class FeedPosition:
    """Where a feed record stands in its topic: a later one of the same key replaces it."""

    partition: int
    offset: int


class ExpireRequest(TimerPayload):
    """IN-23: the timer that ends a Tax Pro Account request still pending on its expiry day."""

    kind: ClassVar[str] = "expire_request"
    request_id: str


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
    entity_id: str | None = None  # a business's request (DO-08)


@dataclass(frozen=True)
class KnownRequest:
    """A Tax Pro Account request as intake keeps it: its state, the grant its approval posts,
    and for a business the entity whose Designated Official decides it (DO-08)."""

    state: RequestState
    grant: PostGrant | None
    entity_id: str | None = None


@dataclass(frozen=True)
class EntityFile:
    """Everything intake keeps of one business's Designated Officials (no PIN, no hash)."""

    officials: list[Official]
    pins: list[dict[str, Any]]
    users: list[dict[str, Any]]


class IntakeStore(Protocol):
    """What intake's handlers need of its state: `DynamoIntakeStore`, and the tests' fakes
    (checked against this by mypy, so a fake cannot drift from the real store)."""

    @property
    def ledger(self) -> OutputLedger: ...

    async def ping(self) -> bool: ...

    async def fingerprint_owner(self, fingerprint: str) -> str | None: ...

    async def claim_assertion(self, asserted: Asserted, message_id: str, now: datetime) -> bool: ...

    async def request(self, request_id: str) -> KnownRequest | None: ...

    async def record(
        self,
        message_id: str,
        outputs: list[Output],
        now: datetime,
        *,
        fingerprint: str | None = None,
        request: RequestChange | None = None,
        timer: Timer | None = None,
        writes: tuple[TransactWriteItemTypeDef, ...] = (),
    ) -> RecordResult: ...

    def request_put(self, change: RequestChange, now: datetime) -> TransactWriteItemTypeDef: ...

    async def apply_entity(
        self, entity_id: str, known: EntityView | None, digest: str | None, at: FeedPosition
    ) -> bool: ...

    async def entity(self, digest: str) -> EntityView | None: ...

    async def entity_by_id(self, entity_id: str) -> EntityView | None: ...

    async def pin(self, entity_id: str, official: str) -> PinRecord | None: ...

    def pin_put(self, entity_id: str, pin: PinRecord) -> TransactWriteItemTypeDef: ...

    async def official(self, entity_id: str, official: str) -> Official | None: ...

    async def has_active_official(self, entity_id: str) -> bool: ...

    def official_put(
        self, entity_id: str, official: Official, *, by: str | None = None, at: datetime
    ) -> TransactWriteItemTypeDef: ...

    def user_write(
        self, entity_id: str, user_id: str, *, add: bool, by: str, at: datetime
    ) -> TransactWriteItemTypeDef: ...


class DynamoIntakeStore:
    """The only place that talks to the intake table."""

    def __init__(self, settings: IntakeSettings, clock: Clock) -> None:
        self.table = DynamoTable(settings, "intake")
        self._retention = timedelta(days=settings.dedup_retention_days)
        # IN-02: a message id seen before is dropped, with no second record of its outcome,
        # so this ledger marks what it published (caf_runtime.ledger)
        self.ledger = Ledger(
            self.table,
            "MSG#",
            retention=self._retention,
            clock=clock,
            sealer=settings.sealer(),
            marks_published=True,
        )
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

    async def request(self, request_id: str) -> KnownRequest | None:
        """A Tax Pro Account request's state and the grant its approval posts, if known."""
        item = await self.table.get(f"REQ#{request_id}", "REQUEST")
        if not item:
            return None
        grant = item.get("grant", {}).get("S")
        command = decode_command(grant.encode()) if grant else None
        return KnownRequest(
            RequestState(item["state"].get("S")),
            command if isinstance(command, PostGrant) else None,
            item.get("entity_id", {}).get("S"),
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
        writes: tuple[TransactWriteItemTypeDef, ...] = (),
    ) -> RecordResult:
        """Record the outputs (and claim the fingerprint, or change the request, or write the
        Designated Official items `writes`) at once."""
        expires_at = now + self._retention
        items = [self.ledger.put(message_id, outputs), *writes]
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
        if change.entity_id is not None:
            item["entity_id"] = {"S": change.entity_id}
        put: dict[str, Any] = {"TableName": self.table.name, "Item": item}
        if change.from_pending:
            put["ConditionExpression"] = "#state = :pending"
            put["ExpressionAttributeNames"] = {"#state": "state"}
            put["ExpressionAttributeValues"] = {":pending": {"S": RequestState.PENDING.value}}
        else:
            put["ConditionExpression"] = "attribute_not_exists(pk)"
        return {"Put": put}  # type: ignore[typeddict-item]

    # Designated Officials (DO-01 … DO-08)

    async def apply_entity(
        self, entity_id: str, known: EntityView | None, digest: str | None, at: FeedPosition
    ) -> bool:
        """DO-01: an entity record as intake keeps it (None = the feed's tombstone: the entity
        is closed) unless a later one of the same key is stored already. `digest` is the
        EIN's keyed digest (None for a tombstone: it is found by the entity id)."""
        partition, offset = at.partition, at.offset
        view = known
        if view is None:
            closing = await self.entity_by_id(entity_id)
            if closing is None:
                return False  # a tombstone of an entity never applied
            view = dataclasses.replace(closing, active=False)
            digest = await self._digest_of(entity_id)
        fields = {
            "entity_id": {"S": entity_id},
            "entity_type": {"S": view.entity_type},
            "status": {"S": "active" if view.active else "closed"},
            "taxpayer_ref": {"S": view.taxpayer_ref},
            "tin_last4": {"S": view.tin_last4},
            "digest": {"S": digest or ""},
            "source_partition": {"N": str(partition)},
            "source_offset": {"N": str(offset)},
        }
        newer = {
            "ConditionExpression": "attribute_not_exists(pk) OR source_offset < :offset",
            "ExpressionAttributeValues": {":offset": {"N": str(offset)}},
        }
        items: list[Any] = [
            {
                "Put": {
                    "TableName": self.table.name,
                    "Item": {"pk": {"S": pk}, "sk": {"S": "ENTITY"}, **fields},
                    **newer,
                }
            }
            for pk in (f"ENT#{digest}", f"EID#{entity_id}")
        ]
        return await transact(self.table, items) is None

    async def _digest_of(self, entity_id: str) -> str:
        item = await self.table.get(f"EID#{entity_id}", "ENTITY")
        return str(item["digest"]["S"]) if item else ""

    async def entity(self, digest: str) -> EntityView | None:
        """The entity whose EIN has this keyed digest, if the feed named it."""
        item = await self.table.get(f"ENT#{digest}", "ENTITY")
        return entity_from_item(item) if item else None

    async def entity_by_id(self, entity_id: str) -> EntityView | None:
        """The entity with this record id (an operator's or the feed's tombstone's way in)."""
        item = await self.table.get(f"EID#{entity_id}", "ENTITY")
        return entity_from_item(item) if item else None

    async def pin(self, entity_id: str, official: str) -> PinRecord | None:
        """The latest PIN this requester asked for this business."""
        item = await self.table.get(f"DOE#{entity_id}", f"PIN#{official}")
        return pin_from_item(item) if item else None

    def pin_put(self, entity_id: str, pin: PinRecord) -> Any:
        """The transaction item of a new PIN or of a PIN's new state, with the requester's
        earlier requests (without hash); conditional on the version read, so two entries of one
        PIN cannot both count (DO-05)."""
        item = {
            "pk": {"S": f"DOE#{entity_id}"},
            "sk": {"S": f"PIN#{pin.official_id}"},
            "pin_hash": {"S": pin.pin_hash},
            "requested_at": {"S": pin.requested_at.isoformat()},
            "notice_on": {"S": pin.notice_on.isoformat()},
            "expires_on": {"S": pin.expires_on.isoformat()},
            "attempts": {"N": str(pin.attempts)},
            "state": {"S": pin.state.value},
            "version": {"N": str(pin.version)},
            "message_id": {"S": pin.message_id},
            "history": {"S": json.dumps([dict(h) for h in pin.history])},
        }
        return {
            "Put": {
                "TableName": self.table.name,
                "Item": item,
                "ConditionExpression": "attribute_not_exists(pk) OR version = :seen",
                "ExpressionAttributeValues": {":seen": {"N": str(pin.version - 1)}},
            }
        }

    async def official(self, entity_id: str, official: str) -> Official | None:
        item = await self.table.get(f"DOE#{entity_id}", f"DO#{official}")
        return official_from_item(item) if item else None

    async def has_active_official(self, entity_id: str) -> bool:
        return any(o.active for o in (await self.entity_file(entity_id)).officials)

    def official_put(
        self, entity_id: str, official: Official, *, by: str | None = None, at: datetime
    ) -> Any:
        """The transaction item of a Designated Official activated or deactivated (`by` whom:
        an official id, or `operator:<name>`)."""
        item: dict[str, Any] = {
            "pk": {"S": f"DOE#{entity_id}"},
            "sk": {"S": f"DO#{official.official_id}"},
            "state": {"S": "active" if official.active else "inactive"},
            "activated_at": {"S": official.activated_at.isoformat()},
        }
        if not official.active:
            item |= {"deactivated_at": {"S": at.isoformat()}, "deactivated_by": {"S": by or ""}}
        return {"Put": {"TableName": self.table.name, "Item": item}}

    def user_write(self, entity_id: str, user_id: str, *, add: bool, by: str, at: datetime) -> Any:
        """The transaction item that adds (or removes) an authorized user of the business."""
        key = {"pk": {"S": f"DOE#{entity_id}"}, "sk": {"S": f"USER#{user_id}"}}
        if not add:
            return {"Delete": {"TableName": self.table.name, "Key": key}}
        item = key | {"added_by": {"S": by}, "added_at": {"S": at.isoformat()}}
        return {"Put": {"TableName": self.table.name, "Item": item}}

    async def entity_file(self, entity_id: str) -> EntityFile:
        """The business's Designated Officials, PIN requests (without hashes) and users."""
        return await read_entity_file(self.table, entity_id)


async def read_entity_file(table: DynamoTable, entity_id: str) -> EntityFile:
    """The business's Designated Officials, PIN requests (without hashes: `pin_summary`) and
    users, from the intake table (also cafctl's way in, which holds no intake secrets)."""
    items: list[dict[str, Any]] = []
    query: dict[str, Any] = {
        "TableName": table.name,
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": f"DOE#{entity_id}"}},
        "ConsistentRead": True,
    }
    while True:
        page = await table.client.query(**query)
        items.extend(page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            break
        query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    officials: list[Official] = []
    pins: list[dict[str, Any]] = []
    users: list[dict[str, Any]] = []
    for item in items:
        kind, _, ident = item["sk"]["S"].partition("#")
        if kind == "DO":
            officials.append(official_from_item(item))
        elif kind == "PIN":
            pin = pin_from_item(item)
            pins.extend({"official_id": ident, **h} for h in pin.history)
            pins.append({"official_id": ident, **pin_summary(pin)})
        elif kind == "USER":
            users.append(
                {
                    "user_id": ident,
                    "added_by": item["added_by"]["S"],
                    "added_at": item["added_at"]["S"],
                }
            )
    return EntityFile(officials, pins, users)


def entity_from_item(item: dict[str, Any]) -> EntityView:
    """An `ENT#` or `EID#` item as the entity view (no EIN, name or address are kept)."""
    return EntityView(
        entity_id=item["entity_id"]["S"],
        entity_type=cast("BusinessType", item["entity_type"]["S"]),
        active=item["status"]["S"] == "active",
        taxpayer_ref=item["taxpayer_ref"]["S"],
        tin_last4=item["tin_last4"]["S"],
    )


def pin_from_item(item: dict[str, Any]) -> PinRecord:
    """A `PIN#` item (its hash included: show it only through `pin_summary`)."""
    return PinRecord(
        official_id=item["sk"]["S"].removeprefix("PIN#"),
        pin_hash=item["pin_hash"]["S"],
        requested_at=datetime.fromisoformat(item["requested_at"]["S"]),
        notice_on=date.fromisoformat(item["notice_on"]["S"]),
        expires_on=date.fromisoformat(item["expires_on"]["S"]),
        attempts=int(item["attempts"]["N"]),
        state=PinState(item["state"]["S"]),
        version=int(item["version"]["N"]),
        message_id=item["message_id"]["S"],
        history=tuple(json.loads(item["history"]["S"])) if "history" in item else (),
    )


def official_from_item(item: dict[str, Any]) -> Official:
    """A `DO#` item: the Designated Official, and once inactive when and by whom."""
    deactivated_at = item.get("deactivated_at", {}).get("S")
    return Official(
        official_id=item["sk"]["S"].removeprefix("DO#"),
        active=item["state"]["S"] == "active",
        activated_at=datetime.fromisoformat(item["activated_at"]["S"]),
        deactivated_at=datetime.fromisoformat(deactivated_at) if deactivated_at else None,
        deactivated_by=item.get("deactivated_by", {}).get("S"),
    )
