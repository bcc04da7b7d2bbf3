"""The validator's own state (table `validator`).

- `PRAC#<caf>` / `REC`: the registry's copy in the table, one item per CAF number with the
  record (or a tombstone) and the registry offset it came from; an older offset never overwrites
  a newer one, so a replay of the compacted topic cannot bring back a stale record. Grants read
  the feed's records from the in-memory view (`registry.py`); the table copy serves the numbers
  given here and the operator's tools.
- `PTIN#<ptin>` / `CAF#<caf>`: which registry records carry a PTIN (CN-02, CN-03); an entry is
  checked against the record it points to, so a record that changed its PTIN is not found by the
  old one.
- `REP#<ptin or licence key>` / `NUMBER`: the CAF number given to a first-time representative
  (CN-02), with the grant that got it; `SEQ` / `CAF`: the sequence those numbers come from, taken
  20 at a time by each process (so given numbers are unique, but not in order across replicas,
  and a restart skips the rest of its block). A number given here is written into the table's
  registry copy at once (CN-01) with registry offset -1, so the representative's next form
  passes VA-04 (the in-memory view asks the table for a number the feed never named) and any
  record from the feed replaces it.
- `HOLDS` / `<grant_id>`: grants parked by VA-07 for an operator (CN-09), with the command to
  release, the status (`held`, `released`, `refused`) and who decided when and why.
- `PROT#<taxpayer_ref>` / `REC`: the IP PIN program view (PT-01): the membership record (year
  and basis, never a PIN) or a tombstone, with the offset it came from (newer wins).
- `CONFIRM` / `<grant_id>`: grants held for a protected taxpayer's confirmation (PT-01 … PT-04),
  with the command to release, the last day to answer and the status (`held`, `confirmed`,
  `refused`, `expired`); each has a `confirm#<grant_id>` timer for the end of its last day.
- `VEL#<caf>` / `H#<UTC hour, YYYY-MM-DDTHH>`: the taxpayers a grant named the CAF number for
  in that hour (VA-07 velocity window), an attribute `seen#<taxpayer_ref>` each with the instant;
  a window (an hour) is two such items, read with the poll's other reads. At most 2,000
  taxpayers per item (far past any limit; far below 400 KB); each expires (`expires_at`, TTL) a
  day after its hour leaves the window. Items of earlier layouts (`<instant>#TP#<ref>`, one per
  sighting, and `TP#<ref>`) are no longer read; their TTL removes the first kind.
- `GRANT#<grant or message id>` / `MARK`: the recorded outputs of each command handled.
- `TIMER#<shard>`: the 24 h and 48 h posting deadlines of each grant sent to the poster (PO-11),
  and `ENDED#<grant_id>`: grants whose terminal event was seen, so their deadlines stay silent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

from caf_runtime.config import ServiceSettings
from caf_runtime.dynamo import DynamoTable
from caf_runtime.group_writer import GroupWriter
from caf_runtime.ledger import Ledger, OutputLedger, transact
from caf_runtime.outputs import Output
from caf_runtime.timers import Timer, TimerPayload, Timers, TimerSchedule
from schemas import topics
from schemas.codec import decode_event, decode_practitioner, decode_protection
from schemas.grants import PostGrant
from schemas.inbound import FormType
from schemas.protected import ProtectionRecord
from schemas.registry import PractitionerRecord
from services.validator.registry import RegistryView

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb.type_defs import TransactWriteItemTypeDef


# How long a velocity sighting is kept: the window (an hour) and a day's margin.
VELOCITY_KEPT = timedelta(days=1, hours=1)


# VA-07: a number's sightings of one UTC hour are one item, an attribute per taxpayer.
VELOCITY_BUCKET = timedelta(hours=1)
_BUCKET_FORMAT = "H#%Y-%m-%dT%H"
SEEN = "seen#"  # attribute name prefix: seen#<taxpayer_ref> = the instant of the sighting
# Taxpayers recorded per number and hour: far above any VA-07 limit, and an item far below
# DynamoDB's 400 KB (a ref and an instant are about 90 bytes).
VELOCITY_BUCKET_CAP = 2000


def _velocity_bucket(at: datetime) -> str:
    return at.astimezone(UTC).strftime(_BUCKET_FORMAT)


def _instant(at: datetime) -> str:
    """A time as a sort key: UTC, ISO 8601 to the microsecond (sorts as it orders)."""
    return at.astimezone(UTC).isoformat(timespec="microseconds")


# CAF numbers the validator gives first-time representatives start with 78, an issued prefix
# (IN-16), so they can never meet the 90-numbers the poster gave before numbering moved here.
ASSIGNED_PREFIX = "78"
# Numbers reserved from the sequence at a time: the numbers of a block are given by this
# process only, so replicas never give one twice; a block's unused rest is skipped at a restart.
NUMBER_BLOCK = 20
REVIEW_PK = "REVIEW#"  # a Tax Pro Account request's review verdict (IN-22)


@dataclass(frozen=True)
class ReviewVerdict:
    """IN-22: a Tax Pro Account request's review ended refused, or pending its taxpayer."""

    request_id: str
    refused: bool


class PostingDeadline(TimerPayload):
    """PO-11: a posting deadline of a grant ready to post since `ready_at` (`hours` after it);
    it carries what the SLA event says, so firing it reads nothing else."""

    kind: ClassVar[str] = "sla"
    grant_id: str
    message_id: str
    taxpayer_ref: str
    tin_last4: str
    form: FormType
    caf_number: str | None
    ready_at: datetime
    hours: int


class ConfirmationDue(TimerPayload):
    """PT-04: the end of the last day a taxpayer hold waits for its taxpayer's answer."""

    kind: ClassVar[str] = "confirm"
    grant_id: str


@dataclass(frozen=True)
class NumberGiven:
    """A first-time representative's CAF number, and whether this grant is the one it was given
    to (PO-08 announces it then)."""

    caf_number: str
    new: bool


@dataclass(frozen=True)
class Sighting:
    """VA-07: a grant named `caf_number` for `taxpayer_ref` at `seen_at`."""

    caf_number: str
    taxpayer_ref: str
    seen_at: datetime


@dataclass(frozen=True)
class HoldDecision:
    """CN-09: an operator's decision on a held grant, audited on the hold."""

    grant_id: str
    decision: Literal["release", "refuse"]
    operator: str
    why: str
    at: datetime


@dataclass(frozen=True)
class Hold:
    """A grant parked by VA-07 and what became of it (`held`, `released`, `refused`)."""

    grant_id: str
    command: PostGrant
    status: str
    held_at: str
    decided_by: str | None = None
    decided_at: str | None = None
    why: str | None = None


@dataclass(frozen=True)
class TaxpayerHold:
    """PT-01, PT-02: a grant parked for the protected taxpayer's confirmation."""

    grant_id: str
    command: PostGrant
    status: str  # held, confirmed, refused, expired
    confirm_by: str  # ISO date: the last New York day to answer


@dataclass(frozen=True)
class Answer:
    """PT-03, PT-04: what ended a taxpayer hold (the condition: it was still held)."""

    grant_id: str
    status: Literal["confirmed", "refused", "expired"]
    at: datetime
    message_id: str | None = None  # the taxpayer's answer; None when it expired


CONFIRM_PK = "CONFIRM"


def _hold(item: Mapping[str, Any]) -> Hold:
    def text(name: str) -> str | None:
        value = item.get(name)
        return str(value.get("S")) if value else None

    return Hold(
        grant_id=str(item["sk"].get("S")),
        command=PostGrant.model_validate_json(str(item["command"].get("S"))),
        status=str(item["status"].get("S")),
        held_at=str(item["held_at"].get("S")),
        decided_by=text("decided_by"),
        decided_at=text("decided_at"),
        why=text("why"),
    )


class ValidatorStore(Protocol):
    """What the validator's handlers need of its state: `DynamoValidatorStore`, and the tests'
    fakes (checked against this by mypy, so a fake cannot drift from the real store)."""

    @property
    def ledger(self) -> OutputLedger: ...

    @property
    def timers(self) -> TimerSchedule: ...

    async def ping(self) -> bool: ...

    async def practitioner(self, caf_number: str) -> PractitionerRecord | None: ...

    async def from_feed(self, caf_number: str) -> bool: ...

    async def protection(self, taxpayer_ref: str) -> ProtectionRecord | None: ...

    async def apply_protection(
        self, taxpayer_ref: str, record: bytes | None, partition: int, offset: int
    ) -> bool: ...

    async def apply_registry(
        self, caf_number: str, record: bytes | None, partition: int, offset: int
    ) -> bool: ...

    async def practitioner_by_ptin(self, ptin: str) -> PractitionerRecord | None: ...

    async def number_for(
        self, identity: str, grant_key: str, record: PractitionerRecord
    ) -> NumberGiven: ...

    async def given_number(self, identity: str, grant_key: str) -> NumberGiven | None: ...

    async def other_taxpayers(self, caf_number: str, taxpayer_ref: str, since: datetime) -> int: ...

    async def record(
        self,
        key: str,
        outputs: list[Output],
        velocity: Sighting | None = None,
        timers: tuple[Timer, ...] = (),
        *,
        hold: PostGrant | None = None,
        review: HoldDecision | None = None,
        taxpayer_hold: TaxpayerHold | None = None,
        answer: Answer | None = None,
        verdict: ReviewVerdict | None = None,
    ) -> bool: ...

    def answered(self, answer: Answer) -> TransactWriteItemTypeDef: ...

    async def held_for_taxpayer(self, grant_id: str) -> TaxpayerHold | None: ...

    async def request_refused(self, request_id: str) -> bool: ...

    async def held(self, grant_id: str) -> Hold | None: ...

    async def mark_ended(self, grant_id: str) -> None: ...

    async def ended(self, grant_id: str) -> bool: ...


class DynamoValidatorStore:
    """The only place that talks to the validator table; with the registry view (`app.py`),
    the feed's practitioner records are read from memory, not from the table."""

    def __init__(self, settings: ServiceSettings, registry: RegistryView | None = None) -> None:
        self._registry = registry
        self._full_buckets: set[tuple[str, str]] = set()  # (CAF number, hour) at the cap
        self._block: list[int] = []  # the rest of this process's block of CAF numbers
        self._block_lock = asyncio.Lock()
        self.table = DynamoTable(settings, "validator")
        self._marks = GroupWriter(self.table)  # ENDED flags, batched together
        self.ledger = Ledger(self.table, "GRANT#")
        self.timers = Timers(self.table)

    async def ping(self) -> bool:
        return await self.table.ping()

    async def practitioner(self, caf_number: str) -> PractitionerRecord | None:
        """The registry's record of the number: the feed's (in memory, when this store has the
        registry view), else one this validator gave (CN-02, the table)."""
        if self._registry is not None and self._registry.named(caf_number):
            return self._registry.get(caf_number)
        item = await self.table.get(f"PRAC#{caf_number}", "REC")
        if not item or "record" not in item:
            return None
        return decode_practitioner(item["record"]["S"].encode())

    async def from_feed(self, caf_number: str) -> bool:
        """PT-02: the number's record came from the registry feed (a number this validator gave
        a first-time representative is stored with offset -1 until the feed has it)."""
        if self._registry is not None:
            return self._registry.get(caf_number) is not None
        item = await self.table.get(f"PRAC#{caf_number}", "REC")
        offset = item.get("source_offset") if item else None
        return offset is not None and int(str(offset.get("N"))) >= 0 and "record" in (item or {})

    async def protection(self, taxpayer_ref: str) -> ProtectionRecord | None:
        """PT-01: the taxpayer's IP PIN program membership, if the feed has one."""
        item = await self.table.get(f"PROT#{taxpayer_ref}", "REC")
        if not item or "record" not in item:
            return None
        return decode_protection(item["record"]["S"].encode())

    async def apply_protection(
        self, taxpayer_ref: str, record: bytes | None, partition: int, offset: int
    ) -> bool:
        """Store a membership record (None = tombstone) unless a newer one is already there."""
        item = {
            "pk": {"S": f"PROT#{taxpayer_ref}"},
            "sk": {"S": "REC"},
            "source_partition": {"N": str(partition)},
            "source_offset": {"N": str(offset)},
        }
        if record is not None:
            item["record"] = {"S": record.decode()}
        put: TransactWriteItemTypeDef = {
            "Put": {
                "TableName": self.table.name,
                "Item": item,
                "ConditionExpression": "attribute_not_exists(pk) OR source_offset < :offset",
                "ExpressionAttributeValues": {":offset": {"N": str(offset)}},
            }
        }
        return await transact(self.table, [put]) is None

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
        items: list[TransactWriteItemTypeDef] = [
            {
                "Put": {
                    "TableName": self.table.name,
                    "Item": item,
                    "ConditionExpression": "attribute_not_exists(pk) OR source_offset < :offset",
                    "ExpressionAttributeValues": {":offset": {"N": str(offset)}},
                }
            }
        ]
        if record is not None:
            item["record"] = {"S": record.decode()}
            ptin = decode_practitioner(record).ptin
            if ptin:
                items.append(self._ptin_entry(ptin, caf_number))
        return await transact(self.table, items) is None

    def _ptin_entry(self, ptin: str, caf_number: str) -> TransactWriteItemTypeDef:
        return {
            "Put": {
                "TableName": self.table.name,
                "Item": {"pk": {"S": f"PTIN#{ptin.upper()}"}, "sk": {"S": f"CAF#{caf_number}"}},
            }
        }

    async def practitioner_by_ptin(self, ptin: str) -> PractitionerRecord | None:
        """CN-02/CN-03: the registry record (from the feed or given here) that carries `ptin`;
        the lowest CAF number when several do."""
        response = await self.table.client.query(
            TableName=self.table.name,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"PTIN#{ptin.upper()}"}},
            ConsistentRead=True,
        )
        numbers = {str(item["sk"].get("S")).removeprefix("CAF#") for item in response["Items"]}
        if self._registry is not None:  # the feed's own, however far the table copy lags
            numbers |= {record.caf_number for record in self._registry.with_ptin(ptin)}
        for number in sorted(numbers):
            record = await self.practitioner(number)
            if record is not None and (record.ptin or "").upper() == ptin.upper():
                return record
        return None

    async def number_for(
        self, identity: str, grant_key: str, record: PractitionerRecord
    ) -> NumberGiven:
        """CN-02: the CAF number of the first-time representative `identity` (PTIN or licence
        key), given now if it has none: the next of the sequence that no registry record holds.
        Idempotent: the grant that got the number gets it again (`new` stays true for it)."""
        key = {"pk": {"S": f"REP#{identity}"}, "sk": {"S": "NUMBER"}}
        while True:
            if known := await self.given_number(identity, grant_key):
                return known
            number = await self._unused_number()
            given = record.model_copy(update={"caf_number": number})
            items: list[TransactWriteItemTypeDef] = [
                {
                    "Put": {
                        "TableName": self.table.name,
                        "Item": {
                            **key,
                            "caf_number": {"S": number},
                            "grant": {"S": grant_key},
                        },
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
                {
                    "Put": {
                        "TableName": self.table.name,
                        "Item": {
                            "pk": {"S": f"PRAC#{number}"},
                            "sk": {"S": "REC"},
                            "source_partition": {"N": "-1"},
                            "source_offset": {"N": "-1"},
                            "record": {"S": given.model_dump_json()},
                        },
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            ]
            if given.ptin:
                items.append(self._ptin_entry(given.ptin, number))
            if await transact(self.table, items) is None:
                return NumberGiven(number, new=True)
            # another grant of the same representative won the race (or the number was taken
            # meanwhile): read again

    async def given_number(self, identity: str, grant_key: str) -> NumberGiven | None:
        """The number `number_for` gave `identity`, if any (`new` for the grant it was given
        to): read before the velocity check and on a redelivery, so neither depends on whether
        the grant's outcome was recorded yet."""
        item = await self.table.get(f"REP#{identity}", "NUMBER")
        if item is None:
            return None
        return NumberGiven(
            str(item["caf_number"].get("S")), str(item["grant"].get("S")) == grant_key
        )

    async def _next_in_sequence(self) -> int:
        """The next CAF number of this process's block of the sequence, reserving the next
        block (one UpdateItem per `NUMBER_BLOCK` numbers given) when it is used up."""
        async with self._block_lock:
            if not self._block:
                last = await self.table.next_in_sequence("CAF", step=NUMBER_BLOCK)
                self._block = list(range(last - NUMBER_BLOCK + 1, last + 1))
            return self._block.pop(0)

    async def _unused_number(self) -> str:
        while True:
            number = f"{ASSIGNED_PREFIX}{await self._next_in_sequence():07d}"
            if self._registry is not None and self._registry.named(number):
                continue
            if await self.table.get(f"PRAC#{number}", "REC") is None:
                return number  # CN-02: never one the registry holds

    async def other_taxpayers(self, caf_number: str, taxpayer_ref: str, since: datetime) -> int:
        """How many other taxpayers had a grant naming `caf_number` in the hour from `since`:
        two hour buckets (the one `since` falls in and the next), read with the poll's other
        reads in one BatchGetItem, whatever the number's history; a bucket holds at most
        `VELOCITY_BUCKET_CAP` taxpayers, so a busy number's read is bounded too."""
        first = _velocity_bucket(since)
        second = _velocity_bucket(since + VELOCITY_BUCKET)
        items = await asyncio.gather(
            self.table.get(f"VEL#{caf_number}", first),
            self.table.get(f"VEL#{caf_number}", second),
        )
        after = _instant(since)
        others: set[str] = set()
        for bucket, item in zip((first, second), items, strict=True):
            seen = {
                name.removeprefix(SEEN): str(value.get("S"))
                for name, value in (item or {}).items()
                if name.startswith(SEEN)
            }
            if len(seen) >= VELOCITY_BUCKET_CAP:
                self._full_buckets.add((caf_number, bucket))
            others |= {ref for ref, at in seen.items() if at >= after and ref != taxpayer_ref}
        return len(others)

    async def record(
        self,
        key: str,
        outputs: list[Output],
        velocity: Sighting | None = None,
        timers: tuple[Timer, ...] = (),
        *,
        hold: PostGrant | None = None,
        review: HoldDecision | None = None,
        taxpayer_hold: TaxpayerHold | None = None,
        answer: Answer | None = None,
        verdict: ReviewVerdict | None = None,
    ) -> bool:
        """Record the outputs with what the decision changes (the velocity sighting, the
        timers, a grant parked for review or for its taxpayer, a decision on one, a Tax Pro
        Account request refused at its review) atomically; False if already recorded, or the
        held grant was decided meanwhile."""
        items = [self.ledger.put(key, outputs), *(self.timers.schedule(t) for t in timers)]
        if verdict is not None:
            items.append(self._verdict(verdict))
        if taxpayer_hold is not None:
            items.append(self._parked_for_taxpayer(taxpayer_hold))
        if answer is not None:
            items.append(self.answered(answer))
        if velocity is not None and (sighting := self._sighting(velocity)) is not None:
            items.append(sighting)
        if hold is not None:
            items.append(self._parked(hold))
        if review is not None:
            items.append(self._decided(review))
        return await transact(self.table, items) is None

    def _verdict(self, verdict: ReviewVerdict) -> TransactWriteItemTypeDef:
        """IN-22: how the review of a Tax Pro Account request ended, kept for its approval."""
        return {
            "Put": {
                "TableName": self.table.name,
                "Item": {
                    "pk": {"S": f"{REVIEW_PK}{verdict.request_id}"},
                    "sk": {"S": "VERDICT"},
                    "refused": {"BOOL": verdict.refused},
                },
            }
        }

    def _sighting(self, velocity: Sighting) -> TransactWriteItemTypeDef | None:
        """VA-07: the grant named the CAF number for the taxpayer then: an attribute of the
        number's bucket of that hour (kept a day past the window). Nothing once the bucket
        holds `VELOCITY_BUCKET_CAP` taxpayers: the number is far past any limit that hour."""
        bucket = _velocity_bucket(velocity.seen_at)
        if (velocity.caf_number, bucket) in self._full_buckets:
            return None
        hour = datetime.strptime(bucket, _BUCKET_FORMAT).replace(tzinfo=UTC)
        expires_at = hour + VELOCITY_BUCKET + VELOCITY_KEPT
        return {
            "Update": {
                "TableName": self.table.name,
                "Key": {"pk": {"S": f"VEL#{velocity.caf_number}"}, "sk": {"S": bucket}},
                "UpdateExpression": "SET #seen = :at, expires_at = :expires",
                "ExpressionAttributeNames": {"#seen": f"{SEEN}{velocity.taxpayer_ref}"},
                "ExpressionAttributeValues": {
                    ":at": {"S": _instant(velocity.seen_at)},
                    ":expires": {"N": str(int(expires_at.timestamp()))},
                },
            }
        }

    def _parked(self, hold: PostGrant) -> TransactWriteItemTypeDef:
        """CN-09: the grant held for an operator, once."""
        return {
            "Put": {
                "TableName": self.table.name,
                "Item": {
                    "pk": {"S": "HOLDS"},
                    "sk": {"S": hold.grant_id},
                    "command": {"S": hold.model_dump_json()},
                    "status": {"S": "held"},
                    "held_at": {"S": hold.received_at.isoformat()},
                },
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }

    def _decided(self, review: HoldDecision) -> TransactWriteItemTypeDef:
        """CN-09: an operator's decision on a grant still held, with who, when and why."""
        return {
            "Update": {
                "TableName": self.table.name,
                "Key": {"pk": {"S": "HOLDS"}, "sk": {"S": review.grant_id}},
                "UpdateExpression": "SET #status = :decision, decided_by = :by, "
                "decided_at = :at, why = :why",
                "ConditionExpression": "#status = :held",
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": {
                    ":decision": {"S": f"{review.decision}d"},
                    ":by": {"S": review.operator},
                    ":at": {"S": review.at.isoformat()},
                    ":why": {"S": review.why},
                    ":held": {"S": "held"},
                },
            }
        }

    def _parked_for_taxpayer(self, hold: TaxpayerHold) -> TransactWriteItemTypeDef:
        """PT-01, PT-02: the grant held for its taxpayer, once."""
        return {
            "Put": {
                "TableName": self.table.name,
                "Item": {
                    "pk": {"S": CONFIRM_PK},
                    "sk": {"S": hold.grant_id},
                    "command": {"S": hold.command.model_dump_json()},
                    "status": {"S": hold.status},
                    "confirm_by": {"S": hold.confirm_by},
                },
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }

    def answered(self, answer: Answer) -> TransactWriteItemTypeDef:
        """PT-03, PT-04: a taxpayer hold ends, only if it is still held (the first answer, or
        the expiry, wins)."""
        values: dict[str, Any] = {
            ":status": {"S": answer.status},
            ":at": {"S": answer.at.isoformat()},
            ":held": {"S": "held"},
        }
        update = "SET #status = :status, answered_at = :at"
        if answer.message_id is not None:
            update += ", answer_message_id = :message"
            values[":message"] = {"S": answer.message_id}
        return {
            "Update": {
                "TableName": self.table.name,
                "Key": {"pk": {"S": CONFIRM_PK}, "sk": {"S": answer.grant_id}},
                "UpdateExpression": update,
                "ConditionExpression": "#status = :held",
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": values,
            }
        }

    async def held_for_taxpayer(self, grant_id: str) -> TaxpayerHold | None:
        """PT-01 … PT-04: a grant held for its protected taxpayer, and what became of it."""
        item = await self.table.get(CONFIRM_PK, grant_id)
        if item is None:
            return None
        return TaxpayerHold(
            grant_id=grant_id,
            command=PostGrant.model_validate_json(str(item["command"].get("S"))),
            status=str(item["status"].get("S")),
            confirm_by=str(item["confirm_by"].get("S")),
        )

    async def request_refused(self, request_id: str) -> bool:
        """IN-22: the Tax Pro Account request was refused when its review was decided, so no
        later outcome of it counts. A review decided by version 0.2, which kept no verdict, is
        read from the events it recorded: any but the pending announcement is a refusal (such
        reviews end with their requests, IN-23: this reading can go once they have)."""
        verdict = await self.table.get(f"{REVIEW_PK}{request_id}", "VERDICT")
        if verdict is not None:
            return bool(verdict["refused"].get("BOOL"))
        review = await self.ledger.recorded(f"review#{request_id}")
        return review is not None and any(
            output.topic == topics.EVENTS
            and decode_event(output.value).type != "AuthorizationPendingApproval"
            for output in review.outputs
        )

    async def held(self, grant_id: str) -> Hold | None:
        """A grant parked by VA-07 (CN-09), with its status and who decided it."""
        item = await self.table.get("HOLDS", grant_id)
        return _hold(item) if item else None

    async def holds(self) -> list[Hold]:
        """Every grant ever parked for review, oldest first (`cafctl holds list`)."""
        found: list[Hold] = []
        paginator = self.table.client.get_paginator("query")
        async for page in paginator.paginate(
            TableName=self.table.name,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": "HOLDS"}},
            ConsistentRead=True,
        ):
            found.extend(_hold(item) for item in page.get("Items", []))
        return sorted(found, key=lambda h: (h.held_at, h.grant_id))

    async def mark_ended(self, grant_id: str) -> None:
        """A grant reached its terminal outcome: its SLA timers have nothing left to say."""
        await self._marks.put({"pk": {"S": f"ENDED#{grant_id}"}, "sk": {"S": "ENDED"}})

    async def ended(self, grant_id: str) -> bool:
        return await self.table.get(f"ENDED#{grant_id}", "ENDED") is not None
