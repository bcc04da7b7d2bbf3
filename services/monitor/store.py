"""The monitor's own state (table `monitor`).

- `CAF#<caf>` / `HOUR#<UTC hour>`: grants naming the number that hour (posted, or held by the
  velocity rule), how many were 8821s, and the set of their taxpayers' refs (distinct taxpayers
  over 24 hours, MN-01, MN-05); kept 2 days.
- `CAF#<caf>` / `DAY#<UTC day>`: the day's grants, 8821s, refusals (name mismatch, not in good
  standing) and revocations by taxpayers of grants younger than 30 days; kept 40 days (the 7-
  and 30-day windows, and the baseline of the 30 days before the last 24 hours).
- `CAF#<caf>` / `META`: when the number last named a grant, when its current spell of use began
  and how many idle days came before it, when it was assigned (MN-05).
- `ACTIVE#<caf>` / `<grant_id>`: the number's active grants (taxpayer's last four digits, form,
  matters, since when), for revocations within 30 days (MN-04) and the annual statement (MN-07);
  `PRACTITIONERS` / `<caf>`: how many it has (the statement goes to those with any).
- `HELD#<caf>` / `<grant_id>`: a grant counted when the velocity rule held it (its posting, if
  an operator releases it, is not counted again); kept 40 days.
- `CASES` / `<caf>#<New York day>#<rule>`: each suspicion raised (the event), once per number,
  rule and day; `cafctl misuse list|show` reads them, `cafctl misuse hold` marks them.
- `EVT#<event_id>` / `MARK`: the recorded outputs of each event and statement handled.
- `TIMER#<shard>`: the yearly statement run (MN-07).
Every change of one handling is written in one transaction with its ledger record, so a
redelivered event is never counted twice.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from caf_runtime.config import ServiceSettings
from caf_runtime.dynamo import DynamoTable
from caf_runtime.ledger import Ledger, OutputLedger, transact
from caf_runtime.outputs import Output
from caf_runtime.timers import Timer, TimerPayload, Timers, TimerSchedule

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb.type_defs import TransactWriteItemTypeDef

HOURS_KEPT = timedelta(days=2)
DAYS_KEPT = timedelta(days=40)


def hour_key(at: datetime) -> str:
    return f"HOUR#{at.astimezone(UTC).strftime('%Y-%m-%dT%H')}"


def day_key(at: datetime) -> str:
    return f"DAY#{at.astimezone(UTC).strftime('%Y-%m-%d')}"


class StatementRunDue(TimerPayload):
    """MN-07: the yearly run of statements of `year`, on the configured New York day."""

    kind: ClassVar[str] = "statements"
    year: int


@dataclass(frozen=True)
class Delta:
    """What one event adds to its CAF number's counts."""

    at: datetime
    grants: int = 0
    form_8821: int = 0
    refusals: int = 0
    taxpayer_revocations: int = 0
    taxpayer_ref: str | None = None  # a grant's taxpayer, for the distinct count


@dataclass(frozen=True)
class Bucket:
    """One hour or day of counts as stored."""

    key: str
    grants: int
    form_8821: int
    refusals: int
    taxpayer_revocations: int
    taxpayers: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class Meta:
    """MN-05: the number's spells of use and its assignment."""

    last_grant_at: datetime | None = None
    spell_started_at: datetime | None = None
    idle_days_before: int | None = None
    assigned_at: datetime | None = None


@dataclass(frozen=True)
class Snapshot:
    """What the store holds of a number around the time of an event."""

    hours: list[Bucket]
    days: list[Bucket]
    meta: Meta


@dataclass(frozen=True)
class ActiveGrant:
    """MN-04, MN-07: an active grant under the number."""

    caf_number: str
    grant_id: str
    tin_last4: str
    form: str
    matters: list[dict[str, Any]]
    since: datetime


def _int(item: Mapping[str, Any], name: str) -> int:
    value = item.get(name)
    return int(str(value.get("N"))) if value else 0


def _time(item: Mapping[str, Any], name: str) -> datetime | None:
    value = item.get(name)
    return datetime.fromisoformat(str(value.get("S"))) if value else None


def _bucket(item: Mapping[str, Any]) -> Bucket:
    refs = item.get("taxpayers")
    return Bucket(
        key=str(item["sk"].get("S")),
        grants=_int(item, "grants"),
        form_8821=_int(item, "form_8821"),
        refusals=_int(item, "refusals"),
        taxpayer_revocations=_int(item, "revocations"),
        taxpayers=frozenset(refs.get("SS", [])) if refs else frozenset(),
    )


def active_from_item(item: Mapping[str, Any]) -> ActiveGrant:
    return ActiveGrant(
        caf_number=str(item["pk"].get("S")).removeprefix("ACTIVE#"),
        grant_id=str(item["sk"].get("S")),
        tin_last4=str(item["tin_last4"].get("S")),
        form=str(item["form"].get("S")),
        matters=list(json.loads(str(item["matters"].get("S")))),
        since=datetime.fromisoformat(str(item["since"].get("S"))),
    )


class MonitorStore(Protocol):
    """What the monitor's handlers need of its state (`DynamoMonitorStore` implements it)."""

    @property
    def ledger(self) -> OutputLedger: ...

    @property
    def timers(self) -> TimerSchedule: ...

    async def ping(self) -> bool: ...

    async def snapshot(self, caf_number: str, at: datetime) -> Snapshot: ...

    async def active(self, caf_number: str, grant_id: str) -> ActiveGrant | None: ...

    async def active_grants(self, caf_number: str) -> list[ActiveGrant]: ...

    async def practitioners(self) -> list[str]: ...

    async def counted_when_held(self, caf_number: str, grant_id: str) -> bool: ...

    def held_counted(
        self, caf_number: str, grant_id: str, at: datetime
    ) -> TransactWriteItemTypeDef: ...

    async def case_raised(self, caf_number: str, day: str, rule: str) -> bool: ...

    async def schedule_once(self, timer: Timer) -> bool: ...

    async def record(self, key: str, outputs: list[Output], changes: list[Any]) -> bool: ...

    def counted(self, caf_number: str, delta: Delta) -> list[TransactWriteItemTypeDef]: ...

    def spell(self, caf_number: str, meta: Meta) -> TransactWriteItemTypeDef: ...

    def activated(self, grant: ActiveGrant) -> list[TransactWriteItemTypeDef]: ...

    def narrowed(self, grant: ActiveGrant, matters: list[dict[str, Any]]) -> list[Any]: ...

    def case(
        self, caf_number: str, day: str, rule: str, event: bytes
    ) -> TransactWriteItemTypeDef: ...


class DynamoMonitorStore:
    """The only place that talks to the monitor table."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.table = DynamoTable(settings, "monitor")
        # MN-07: a statement run read again sends nothing again (caf_runtime.ledger)
        self.ledger = Ledger(self.table, "EVT#", retention=DAYS_KEPT, marks_published=True)
        self.timers = Timers(self.table)

    async def ping(self) -> bool:
        return await self.table.ping()

    async def _range(self, pk: str, first: str, last: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        paginator = self.table.client.get_paginator("query")
        async for page in paginator.paginate(
            TableName=self.table.name,
            KeyConditionExpression="pk = :pk AND sk BETWEEN :first AND :last",
            ExpressionAttributeValues={
                ":pk": {"S": pk},
                ":first": {"S": first},
                ":last": {"S": last},
            },
            ConsistentRead=True,
        ):
            items.extend(page.get("Items", []))
        return items

    async def snapshot(self, caf_number: str, at: datetime) -> Snapshot:
        """The number's last 24 hours, last 37 days and spells, as of `at`."""
        pk = f"CAF#{caf_number}"
        hours = await self._range(pk, hour_key(at - timedelta(hours=23)), hour_key(at))
        days = await self._range(pk, day_key(at - timedelta(days=37)), day_key(at))
        item = await self.table.get(pk, "META")
        meta = Meta()
        if item is not None:
            idle = item.get("idle_days_before")
            meta = Meta(
                last_grant_at=_time(item, "last_grant_at"),
                spell_started_at=_time(item, "spell_started_at"),
                idle_days_before=int(str(idle.get("N"))) if idle else None,
                assigned_at=_time(item, "assigned_at"),
            )
        return Snapshot([_bucket(i) for i in hours], [_bucket(i) for i in days], meta)

    async def active(self, caf_number: str, grant_id: str) -> ActiveGrant | None:
        item = await self.table.get(f"ACTIVE#{caf_number}", grant_id)
        return active_from_item(item) if item else None

    async def active_grants(self, caf_number: str) -> list[ActiveGrant]:
        """MN-07: every active grant under the number, oldest first."""
        items = await self._range(f"ACTIVE#{caf_number}", " ", "\U0010ffff")
        return sorted((active_from_item(i) for i in items), key=lambda g: (g.since, g.grant_id))

    async def practitioners(self) -> list[str]:
        """MN-07: the CAF numbers with active grants."""
        items = await self._range("PRACTITIONERS", " ", "\U0010ffff")
        return sorted(str(i["sk"].get("S")) for i in items if _int(i, "active") > 0)

    async def counted_when_held(self, caf_number: str, grant_id: str) -> bool:
        """A grant the velocity rule held was counted then: its posting is not counted again."""
        return await self.table.get(f"HELD#{caf_number}", grant_id) is not None

    def held_counted(
        self, caf_number: str, grant_id: str, at: datetime
    ) -> TransactWriteItemTypeDef:
        return {
            "Put": {
                "TableName": self.table.name,
                "Item": {
                    "pk": {"S": f"HELD#{caf_number}"},
                    "sk": {"S": grant_id},
                    "expires_at": {"N": str(int((at + DAYS_KEPT).timestamp()))},
                },
            }
        }

    async def case_raised(self, caf_number: str, day: str, rule: str) -> bool:
        return await self.table.get("CASES", f"{caf_number}#{day}#{rule}") is not None

    async def schedule_once(self, timer: Timer) -> bool:
        """Schedule `timer` unless it already is (False then)."""
        return await transact(self.table, [self.timers.schedule(timer)]) is None

    async def record(self, key: str, outputs: list[Output], changes: list[Any]) -> bool:
        """The outputs and every change they come with, atomically; False if already recorded
        (or a case was raised meanwhile by a concurrent event: decide again)."""
        items: list[TransactWriteItemTypeDef] = [self.ledger.put(key, outputs), *changes]
        return await transact(self.table, items) is None

    # the changes ------------------------------------------------------------------------------

    def counted(self, caf_number: str, delta: Delta) -> list[TransactWriteItemTypeDef]:
        """The delta added to its hour (grants only) and day."""
        changes: list[TransactWriteItemTypeDef] = []
        if delta.grants:
            values: dict[str, Any] = {
                ":grants": {"N": str(delta.grants)},
                ":f8821": {"N": str(delta.form_8821)},
                ":expires": {"N": str(int((delta.at + HOURS_KEPT).timestamp()))},
            }
            update = "ADD grants :grants, form_8821 :f8821 SET expires_at = :expires"
            if delta.taxpayer_ref:
                update = (
                    "ADD grants :grants, form_8821 :f8821, taxpayers :ref SET expires_at = :expires"
                )
                values[":ref"] = {"SS": [delta.taxpayer_ref]}
            changes.append(self._update(f"CAF#{caf_number}", hour_key(delta.at), update, values))
        changes.append(
            self._update(
                f"CAF#{caf_number}",
                day_key(delta.at),
                "ADD grants :grants, form_8821 :f8821, refusals :refusals, "
                "revocations :revocations SET expires_at = :expires",
                {
                    ":grants": {"N": str(delta.grants)},
                    ":f8821": {"N": str(delta.form_8821)},
                    ":refusals": {"N": str(delta.refusals)},
                    ":revocations": {"N": str(delta.taxpayer_revocations)},
                    ":expires": {"N": str(int((delta.at + DAYS_KEPT).timestamp()))},
                },
            )
        )
        return changes

    def spell(self, caf_number: str, meta: Meta) -> TransactWriteItemTypeDef:
        """MN-05: the number's spells of use, as `meta` says after this event."""
        values: dict[str, Any] = {}
        sets = []
        for name in ("last_grant_at", "spell_started_at", "assigned_at"):
            value = getattr(meta, name)
            if value is not None:
                sets.append(f"{name} = :{name}")
                values[f":{name}"] = {"S": value.isoformat()}
        if meta.idle_days_before is not None:
            sets.append("idle_days_before = :idle")
            values[":idle"] = {"N": str(meta.idle_days_before)}
        return self._update(f"CAF#{caf_number}", "META", "SET " + ", ".join(sets), values)

    def activated(self, grant: ActiveGrant) -> list[TransactWriteItemTypeDef]:
        """MN-07: a posted grant joins the number's active grants."""
        return [
            {
                "Put": {
                    "TableName": self.table.name,
                    "Item": {
                        "pk": {"S": f"ACTIVE#{grant.caf_number}"},
                        "sk": {"S": grant.grant_id},
                        "tin_last4": {"S": grant.tin_last4},
                        "form": {"S": grant.form},
                        "matters": {"S": json.dumps(grant.matters)},
                        "since": {"S": grant.since.isoformat()},
                    },
                }
            },
            self._active_count(grant.caf_number, +1),
        ]

    def narrowed(self, grant: ActiveGrant, matters: list[dict[str, Any]]) -> list[Any]:
        """A revocation or withdrawal took some of its units (all: it leaves the list)."""
        key = {"pk": {"S": f"ACTIVE#{grant.caf_number}"}, "sk": {"S": grant.grant_id}}
        if not matters:
            return [
                {"Delete": {"TableName": self.table.name, "Key": key}},
                self._active_count(grant.caf_number, -1),
            ]
        return [
            self._update(
                key["pk"]["S"],
                grant.grant_id,
                "SET matters = :matters",
                {":matters": {"S": json.dumps(matters)}},
            )
        ]

    def case(self, caf_number: str, day: str, rule: str, event: bytes) -> TransactWriteItemTypeDef:
        """A suspicion raised, once per number, rule and day."""
        return {
            "Put": {
                "TableName": self.table.name,
                "Item": {
                    "pk": {"S": "CASES"},
                    "sk": {"S": f"{caf_number}#{day}#{rule}"},
                    "event": {"S": event.decode()},
                    "status": {"S": "open"},
                },
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }

    def _active_count(self, caf_number: str, change: int) -> TransactWriteItemTypeDef:
        return self._update(
            "PRACTITIONERS", caf_number, "ADD active :change", {":change": {"N": str(change)}}
        )

    def _update(
        self, pk: str, sk: str, expression: str, values: dict[str, Any]
    ) -> TransactWriteItemTypeDef:
        return {
            "Update": {
                "TableName": self.table.name,
                "Key": {"pk": {"S": pk}, "sk": {"S": sk}},
                "UpdateExpression": expression,
                "ExpressionAttributeValues": values,
            }
        }
