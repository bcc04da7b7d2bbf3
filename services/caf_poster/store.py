"""The CAF (table `caf`), owned by the poster.

Per taxpayer, partition `TP#<taxpayer_ref>`:
- `VERSION`: a counter every decision increments under a condition, which serializes writers and
  fences a zombie consumer that lost its partition;
- `GRANT#<grant_id>`: a grant and the matters it still covers (created once, never twice);
- `GROUP#<authorization_id>`: the authorization's first signature day and notice electors;
- `FLOOR#<message_id>`: a revocation or withdrawal's signature day and what it covers (RT-02).
After a taxpayer_ref key rotation moved the partition (`move`), the old partition keeps only its
`VERSION` item, with `moved_to` (the new ref) and an expiry: commands still in flight with the
old ref follow it until it expires (`MOVED_KEPT`, longer than anything waits with an old ref).
Elsewhere: `MARK#<grant or message id>` / `MARK` (recorded outcome), `SEQ` / `CAF` (the CAF
number sequence) and `TIMER#<shard>` (purge days of student grants, PO-12). A decision's
whole delta is written in one `TransactWriteItems`.

The store remembers the CAF of the taxpayers it wrote last (`KNOWN_CAFS`, the least recently
used forgotten first): the next command for one of them is decided on what it wrote, without
reading the partition again (the grants of one form come one after another, under one key).
The memory cannot make a decision on stale state stick: the delta is conditional on the version
it was decided on, every write of a partition (another replica's after a rebalance, a purge
timer, a key rotation's move) bumps that version, and a write that fails its condition forgets
the taxpayer, so the command is decided again on a fresh read.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import OrderedDict
from dataclasses import asdict, dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from pydantic import field_serializer, field_validator

from caf_runtime.dynamo import DynamoTable
from caf_runtime.ledger import Ledger, OutputLedger, transact
from caf_runtime.outputs import Output
from caf_runtime.timers import Timer, TimerPayload, Timers, TimerSchedule
from schemas.errors import ContractError
from schemas.evidence import SignatureEvidence
from schemas.grants import PostGrant
from schemas.matters import QUARTER_ENDS, Matter, Unit, expand, matter_key
from services.caf_poster.config import CafPosterSettings
from services.caf_poster.domain import Floor, Grant, Group, TaxpayerCaf

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb.type_defs import TransactWriteItemTypeDef

# CAF numbers assigned here start with 90, an issued prefix (docs/rules.md IN-16).
ASSIGNED_PREFIX = "90"
# How long a moved partition forwards to its new ref: longer than a Tax Pro Account request
# waits for its decision (30 days) and than any command stays on a topic (7 days).
MOVED_KEPT = dt.timedelta(days=45)
_MAX_HOPS = 4
# How many taxpayers' CAFs the store remembers after writing them.
KNOWN_CAFS = 5_000


class _WaitingGrant(TimerPayload):
    """A grant kept in a timer: stored as its JSON text, as every version stored it."""

    command: PostGrant

    @field_validator("command", mode="before")
    @classmethod
    def _from_text(cls, value: object) -> object:
        return PostGrant.model_validate_json(value) if isinstance(value, str | bytes) else value

    @field_serializer("command")
    def _as_text(self, command: PostGrant) -> str:
        return command.model_dump_json()


class DecideHeld(_WaitingGrant):
    """PO-03: an approval held for the reorder window, decided when it ends."""

    kind: ClassVar[str] = "decide_held"


class AwaitEvidence(_WaitingGrant):
    """ES-03: a grant waiting for its evidence to be stored; `attempt` counts the tries,
    `since` is when it began to wait (absent in timers of the first layout: the firing's time)."""

    kind: ClassVar[str] = "await_evidence"
    attempt: int = 0
    since: dt.datetime | None = None


class StoreEvidence(TimerPayload):
    """ES-04: a removal's evidence the store did not take at once, tried again."""

    kind: ClassVar[str] = "store_evidence"
    evidence: list[SignatureEvidence]
    retain_until: dt.datetime
    attempt: int
    message_id: str


class StudentPurge(TimerPayload):
    """PO-12: a posted student grant, removed on its purge day."""

    kind: ClassVar[str] = "student_purge"
    taxpayer_ref: str
    tin_last4: str
    grant_id: str


@dataclass(frozen=True)
class Located:
    """Where a taxpayer's CAF lives now, and what it holds."""

    taxpayer_ref: str
    caf: TaxpayerCaf


@dataclass(frozen=True)
class Partition:
    """A taxpayer's stored items as read, with its version item's forwarding, if moved."""

    items: tuple[dict[str, Any], ...]
    version: int
    moved_to: str | None


class SaveResult(Enum):
    SAVED = "saved"
    ALREADY_RECORDED = "already_recorded"
    CONFLICT = "conflict"


def grant_to_json(grant: Grant) -> str:
    """A grant as stored: its matters one unit each (`period` is the unit's label)."""
    document = asdict(grant)
    document["signature_date"] = grant.signature_date.isoformat()
    document["purge_on"] = grant.purge_on.isoformat() if grant.purge_on else None
    document["matters"] = [
        {"tax_type": m.tax_type, "form_number": m.form_number, "period": m.period}
        for m in grant.matters
    ]
    return json.dumps(document, sort_keys=True)


def grant_from_json(text: str) -> Grant:
    """A stored grant. Records written before period units (one matter per period as received,
    e.g. `2020 thru 2025`) expand to their units here, so they read as if written today."""
    document: dict[str, Any] = json.loads(text)
    document["signature_date"] = dt.date.fromisoformat(document["signature_date"])
    purge_on = document.get("purge_on")
    document["purge_on"] = dt.date.fromisoformat(purge_on) if purge_on else None
    document["matters"] = _stored_matters(document["matters"])
    return Grant(**document)


def _stored_matters(stored: list[dict[str, str]]) -> tuple[Matter, ...]:
    matters: dict[Unit, Matter] = {}
    for item in stored:
        tax_type, form_number, period = item["tax_type"], item["form_number"], item["period"]
        for unit in _stored_units(matter_key(tax_type, form_number), period):
            matters.setdefault(unit, Matter(unit, tax_type, form_number))
    return tuple(matters.values())


def _stored_units(key: str, period: str) -> tuple[Unit, ...]:
    """The units of a stored period. The old code accepted any month for a quarterly family
    (`941` `2024-11`); such a period is the quarter containing that month."""
    try:
        return expand(key, period)
    except ContractError:
        year, month = (int(part) for part in period.split("-"))
        return (Unit(key, year, next(end for end in QUARTER_ENDS if end >= month)),)


def floor_to_json(floor: Floor) -> str:
    return json.dumps(
        {
            "form": floor.form,
            "signed_on": floor.signed_on.isoformat(),
            "caf_numbers": sorted(floor.caf_numbers) if floor.caf_numbers is not None else None,
            "units": (
                sorted([u.key, u.year, u.month] for u in floor.units)
                if floor.units is not None
                else None
            ),
        },
        sort_keys=True,
    )


def floor_from_json(floor_id: str, text: str) -> Floor:
    document: dict[str, Any] = json.loads(text)
    numbers, units = document["caf_numbers"], document["units"]
    return Floor(
        floor_id=floor_id,
        form=document["form"],
        signed_on=dt.date.fromisoformat(document["signed_on"]),
        caf_numbers=frozenset(numbers) if numbers is not None else None,
        units=frozenset(Unit(k, y, m) for k, y, m in units) if units is not None else None,
    )


def in_read_order(caf: TaxpayerCaf) -> TaxpayerCaf:
    """Grants by posting, floors by signature day, as a read of the partition lists them."""
    return TaxpayerCaf(
        version=caf.version,
        grants=tuple(sorted(caf.grants, key=lambda g: (g.posted_at, g.grant_id))),
        groups=dict(caf.groups),
        floors=tuple(sorted(caf.floors, key=lambda f: (f.signed_on, f.floor_id))),
    )


def as_read(before: TaxpayerCaf, after: TaxpayerCaf) -> TaxpayerCaf:
    """`after`, written over `before`, as a read of the partition would give it back: what the
    write changed in its stored form, in read order (what it kept was read so already)."""
    kept = {id(item) for item in (*before.grants, *before.floors)}  # `before` holds them
    return in_read_order(
        TaxpayerCaf(
            version=after.version,
            grants=tuple(
                g if id(g) in kept else grant_from_json(grant_to_json(g)) for g in after.grants
            ),
            groups=after.groups,
            floors=tuple(
                f if id(f) in kept else floor_from_json(f.floor_id, floor_to_json(f))
                for f in after.floors
            ),
        )
    )


class CafStore(Protocol):
    """What the poster's handlers need of the CAF: `DynamoCafStore`, and the tests' fakes
    (checked against this by mypy, so a fake cannot drift from the real store)."""

    @property
    def ledger(self) -> OutputLedger: ...

    @property
    def timers(self) -> TimerSchedule: ...

    async def ping(self) -> bool: ...

    async def locate(
        self, taxpayer_ref: str, previous_ref: str | None = None, *, remembered: bool = False
    ) -> Located: ...

    async def next_caf_number(self) -> str: ...

    async def save(
        self,
        taxpayer_ref: str,
        before: TaxpayerCaf,
        after: TaxpayerCaf,
        key: str,
        outputs: list[Output],
        *,
        timers: tuple[Timer, ...] = (),
    ) -> SaveResult: ...

    async def hold(self, key: str, timer: Timer) -> bool: ...

    def delta(
        self, taxpayer_ref: str, before: TaxpayerCaf, after: TaxpayerCaf
    ) -> list[TransactWriteItemTypeDef]: ...


class DynamoCafStore:
    """The only place that talks to the CAF table."""

    def __init__(self, settings: CafPosterSettings) -> None:
        self.table = DynamoTable(settings, "caf")
        self.ledger = Ledger(self.table, "MARK#")
        self.timers = Timers(self.table)
        self._known: OrderedDict[str, TaxpayerCaf] = OrderedDict()  # ref: as last written

    async def ping(self) -> bool:
        return await self.table.ping()

    async def locate(
        self, taxpayer_ref: str, previous_ref: str | None = None, *, remembered: bool = False
    ) -> Located:
        """The taxpayer's CAF, read where it lives now: a moved partition is followed to its
        new ref; an unknown ref whose `previous_ref` (a key rotation under way) still holds the
        records is moved first. `remembered`: a CAF this store wrote last answers without a
        read, for a decision whose write `save` makes conditional on its version (see the
        module's docstring); anything else reads."""
        known = self._known.get(taxpayer_ref) if remembered else None
        if known is not None:
            self._known.move_to_end(taxpayer_ref)
            return Located(taxpayer_ref, known)
        partition = await self.partition(taxpayer_ref)
        for _ in range(_MAX_HOPS):
            if partition.moved_to is None:
                break
            taxpayer_ref = partition.moved_to
            partition = await self.partition(taxpayer_ref)
        if not partition.items and previous_ref is not None:
            old = await self.partition(previous_ref)
            if old.items and old.moved_to is None:
                await self.move(previous_ref, taxpayer_ref)
                partition = await self.partition(taxpayer_ref)  # moved by us or another
        return Located(taxpayer_ref, self._caf(partition))

    async def load(self, taxpayer_ref: str) -> TaxpayerCaf:
        """The taxpayer's CAF under this ref exactly (see `locate`)."""
        return self._caf(await self.partition(taxpayer_ref))

    async def partition(self, taxpayer_ref: str) -> Partition:
        items: list[dict[str, Any]] = []
        version, moved_to = 0, None
        paginator = self.table.client.get_paginator("query")
        async for page in paginator.paginate(
            TableName=self.table.name,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"TP#{taxpayer_ref}"}},
            ConsistentRead=True,
        ):
            for item in page.get("Items", []):
                if item["sk"].get("S") == "VERSION":
                    version = int(str(item["version"].get("N")))
                    moved_to = item.get("moved_to", {}).get("S")
                else:
                    items.append(dict(item))
        return Partition(tuple(items), version, moved_to)

    async def move(self, old_ref: str, new_ref: str, now: dt.datetime | None = None) -> bool:
        """Move a taxpayer's partition from `old_ref` to `new_ref` (a taxpayer_ref key
        rotation): copy the items, then in one transaction mark the old version item moved
        (bumping its version, so a writer that read the old partition fails its condition and
        reads again) and create the new one; then delete the old copies. True once moved, by
        this call or another; False if there was nothing to move or `new_ref` is taken."""
        self._known.pop(old_ref, None)
        self._known.pop(new_ref, None)
        for _ in range(_MAX_HOPS):
            old = await self.partition(old_ref)
            if old.moved_to is not None:
                return old.moved_to == new_ref
            if not old.items and old.version == 0:
                return False
            pk = {"S": f"TP#{new_ref}"}
            copies: list[TransactWriteItemTypeDef] = [
                {"Put": {"TableName": self.table.name, "Item": {**item, "pk": pk}}}
                for item in old.items
            ]
            for start in range(0, len(copies), 100):
                await transact(self.table, copies[start : start + 100])
            kept = (now or dt.datetime.now(dt.UTC)) + MOVED_KEPT
            switched = await transact(
                self.table,
                [
                    {
                        "Update": {
                            "TableName": self.table.name,
                            "Key": {"pk": {"S": f"TP#{old_ref}"}, "sk": {"S": "VERSION"}},
                            "UpdateExpression": "SET version = :next, moved_to = :to, "
                            "expires_at = :kept",
                            "ConditionExpression": "attribute_not_exists(pk) OR version = :seen",
                            "ExpressionAttributeValues": {
                                ":next": {"N": str(old.version + 1)},
                                ":seen": {"N": str(old.version)},
                                ":to": {"S": new_ref},
                                ":kept": {"N": str(int(kept.timestamp()))},
                            },
                        }
                    },
                    {
                        "Put": {
                            "TableName": self.table.name,
                            "Item": {
                                "pk": pk,
                                "sk": {"S": "VERSION"},
                                "version": {"N": str(old.version)},
                            },
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                ],
            )
            if switched is None:
                await self._delete_moved(old_ref, old.items)
                return True
            if switched[0] != "ConditionalCheckFailed":
                return False  # the new ref has records of its own: not ours to overwrite
            # the old partition changed (a write, or another mover won): read it again
        return False

    async def _delete_moved(self, old_ref: str, items: tuple[dict[str, Any], ...]) -> None:
        deletes: list[TransactWriteItemTypeDef] = [
            {
                "Delete": {
                    "TableName": self.table.name,
                    "Key": {"pk": {"S": f"TP#{old_ref}"}, "sk": item["sk"]},
                }
            }
            for item in items
        ]
        for start in range(0, len(deletes), 100):
            await transact(self.table, deletes[start : start + 100])

    def _caf(self, partition: Partition) -> TaxpayerCaf:
        grants: list[Grant] = []
        groups: dict[str, Group] = {}
        floors: list[Floor] = []
        version = partition.version
        for item in partition.items:
            sk = str(item["sk"].get("S"))
            if sk.startswith("GRANT#"):
                grants.append(grant_from_json(str(item["grant"].get("S"))))
            elif sk.startswith("GROUP#"):
                groups[sk.removeprefix("GROUP#")] = Group(
                    authorization_id=sk.removeprefix("GROUP#"),
                    signature_date=dt.date.fromisoformat(str(item["signature_date"].get("S"))),
                    notice_electors=int(str(item["notice_electors"].get("N"))),
                )
            elif sk.startswith("FLOOR#"):
                floors.append(
                    floor_from_json(sk.removeprefix("FLOOR#"), str(item["floor"].get("S")))
                )
        return in_read_order(TaxpayerCaf(version, tuple(grants), groups, tuple(floors)))

    async def next_caf_number(self) -> str:
        return f"{ASSIGNED_PREFIX}{await self.table.next_in_sequence('CAF'):07d}"

    async def save(
        self,
        taxpayer_ref: str,
        before: TaxpayerCaf,
        after: TaxpayerCaf,
        key: str,
        outputs: list[Output],
        *,
        timers: tuple[Timer, ...] = (),
    ) -> SaveResult:
        """Write the delta between `before` and `after`, the version, the timers and the
        marker at once."""
        items: list[TransactWriteItemTypeDef] = [
            self.ledger.put(key, outputs),
            *self.delta(taxpayer_ref, before, after),
            *(self.timers.schedule(timer) for timer in timers),
        ]
        self._known.pop(taxpayer_ref, None)
        failed = await transact(self.table, items)
        if failed is None:
            self._remember(taxpayer_ref, as_read(before, after))
            return SaveResult.SAVED
        if failed[0] == "ConditionalCheckFailed":
            return SaveResult.ALREADY_RECORDED
        return SaveResult.CONFLICT

    def _remember(self, taxpayer_ref: str, caf: TaxpayerCaf) -> None:
        self._known[taxpayer_ref] = caf
        self._known.move_to_end(taxpayer_ref)
        while len(self._known) > KNOWN_CAFS:
            self._known.popitem(last=False)

    async def hold(self, key: str, timer: Timer) -> bool:
        """Record that a command is held (no outcome yet) and schedule its decision."""
        return (
            await transact(self.table, [self.ledger.put(key, []), self.timers.schedule(timer)])
            is None
        )

    def delta(
        self, taxpayer_ref: str, before: TaxpayerCaf, after: TaxpayerCaf
    ) -> list[TransactWriteItemTypeDef]:
        """The items that turn `before` into `after`, guarded by the taxpayer's version."""
        pk = {"S": f"TP#{taxpayer_ref}"}
        version: TransactWriteItemTypeDef = {
            "Put": {
                "TableName": self.table.name,
                "Item": {"pk": pk, "sk": {"S": "VERSION"}, "version": {"N": str(after.version)}},
                "ConditionExpression": "attribute_not_exists(pk) OR version = :expected",
                "ExpressionAttributeValues": {":expected": {"N": str(before.version)}},
            }
        }
        known = {f.floor_id for f in before.floors}
        floors = [
            self._put(pk, f"FLOOR#{f.floor_id}", {"floor": {"S": floor_to_json(f)}})
            for f in after.floors
            if f.floor_id not in known
        ]
        return [
            version,
            *self._grant_puts(pk, before, after),
            *self._group_puts(pk, before, after),
            *floors,
        ]

    def _grant_puts(
        self, pk: dict[str, str], before: TaxpayerCaf, after: TaxpayerCaf
    ) -> list[TransactWriteItemTypeDef]:
        """A grant changed or new (a new one only if no other write created it)."""
        old = {g.grant_id: g for g in before.grants}
        items: list[TransactWriteItemTypeDef] = []
        for grant in after.grants:
            if old.get(grant.grant_id) == grant:
                continue
            status = "active" if grant.matters else "inactive"
            attributes = {"grant": {"S": grant_to_json(grant)}, "status": {"S": status}}
            put = self._put(pk, f"GRANT#{grant.grant_id}", attributes)
            if grant.grant_id not in old:
                put["Put"]["ConditionExpression"] = "attribute_not_exists(pk)"
            items.append(put)
        return items

    def _group_puts(
        self, pk: dict[str, str], before: TaxpayerCaf, after: TaxpayerCaf
    ) -> list[TransactWriteItemTypeDef]:
        return [
            self._put(
                pk,
                f"GROUP#{authorization_id}",
                {
                    "signature_date": {"S": group.signature_date.isoformat()},
                    "notice_electors": {"N": str(group.notice_electors)},
                },
            )
            for authorization_id, group in after.groups.items()
            if before.groups.get(authorization_id) != group
        ]

    def _put(
        self, pk: dict[str, str], sk: str, attributes: dict[str, Any]
    ) -> TransactWriteItemTypeDef:
        return {
            "Put": {
                "TableName": self.table.name,
                "Item": {"pk": pk, "sk": {"S": sk}, **attributes},
            }
        }
