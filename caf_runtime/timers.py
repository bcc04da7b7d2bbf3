"""Durable timers that fire once, whatever the number of replicas.

A timer is an item in the owning service's table (`TIMER#<shard>` / `<due>#<id>`), written in
the same transaction as the state that needs it. Every replica polls for due timers; firing one
is a conditional transaction (`scheduled` → `fired`, with the outputs recorded and any state
change of the service), so exactly one replica wins. The winner publishes the outputs and deletes
the timer. A timer left `fired` (its winner died before publishing) is re-published unchanged by
whichever replica sees it next: the same event ids, absorbed downstream.

A shard is read only when something in it may be due: each read also learns the shard's next
due time, and a timer this replica schedules moves it earlier. Timers another replica schedules
are found by a sweep of every shard (`SWEEP`), and by that replica itself, which fires them.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar

from faststream.kafka import KafkaBroker
from pydantic import BaseModel, ConfigDict

from caf_runtime.clock import Clock
from caf_runtime.config import ServiceSettings
from caf_runtime.dynamo import DynamoTable
from caf_runtime.ledger import transact
from caf_runtime.metrics import TIMERS
from caf_runtime.outputs import Output, Publish, dump_outputs, load_outputs, publish_all

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb.type_defs import TransactWriteItemTypeDef

log = logging.getLogger(__name__)

SHARDS = 8
STALE_FIRED = timedelta(seconds=30)
SWEEP = timedelta(seconds=10)  # every shard is read at least this often
READ_LIMIT = 100  # timers read per shard and round (a longer due queue: the next round)


class TimerPayload(BaseModel):
    """The data a timer of one kind carries: a model per kind, which `kind` names (the name is
    stored with the timer and picks the model again when it is read). Reading ignores fields a
    later version no longer has."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    kind: ClassVar[str]


P = TypeVar("P", bound=TimerPayload)


@dataclass(frozen=True)
class Timer:
    """Something to do at `due`; its payload says what (`kind`) and with which data."""

    timer_id: str
    due: datetime
    payload: TimerPayload

    @property
    def kind(self) -> str:
        return self.payload.kind


@dataclass(frozen=True)
class Firing:
    """What a due timer does: outputs to publish, and state changes written with the claim."""

    outputs: list[Output]
    changes: list[TransactWriteItemTypeDef]


NOTHING = Firing([], [])


@dataclass(frozen=True)
class Kind(Generic[P]):
    """One kind of timer of a service: the payload it carries and what firing it does."""

    payload: type[P]
    fire: Callable[[P], Awaitable[Firing]]

    async def fire_with(self, payload: TimerPayload) -> Firing:
        if not isinstance(payload, self.payload):  # pragma: no cover - read by this kind's model
            msg = f"a {payload.kind} payload is not a {self.payload.__name__}"
            raise TypeError(msg)
        return await self.fire(payload)


class TimerKinds:
    """A service's kinds of timer, by name: how to read each one's payload, what firing does.
    A kind this version does not know reads as nothing and fires nothing."""

    def __init__(self, *kinds: Kind[Any]) -> None:
        self._kinds: Mapping[str, Kind[Any]] = {kind.payload.kind: kind for kind in kinds}

    def read(self, kind: str, payload: dict[str, Any]) -> TimerPayload | None:
        known = self._kinds.get(kind)
        return known.payload.model_validate(payload) if known is not None else None

    async def fire(self, timer: Timer) -> Firing:
        known = self._kinds.get(timer.kind)
        return await known.fire_with(timer.payload) if known is not None else NOTHING


class TimerSchedule(Protocol):
    """What a service's decisions need of its timers: the write that schedules one."""

    def schedule(self, timer: Timer, *, once: bool = True) -> TransactWriteItemTypeDef: ...


def _shard(timer_id: str) -> str:
    return f"TIMER#{int(hashlib.sha256(timer_id.encode()).hexdigest(), 16) % SHARDS}"


class Timers:
    """The timers of one service, in its own table."""

    def __init__(self, table: DynamoTable) -> None:
        self._table = table
        # shard -> when to read it next (a known due time); absent: read it next round
        self._next: dict[str, datetime] = {}
        self._swept_at: datetime | None = None

    def schedule(self, timer: Timer, *, once: bool = True) -> TransactWriteItemTypeDef:
        """The transaction item that schedules `timer`: once (the same id twice is refused), or
        with `once=False` whether or not it is already scheduled (a timer chained from another,
        which a timer of the earlier layout may have scheduled already)."""
        shard = _shard(timer.timer_id)
        if shard in self._next:  # written or not, the shard is read once it falls due
            self._next[shard] = min(self._next[shard], timer.due)
        put: Any = {
            "TableName": self._table.name,
            "Item": {
                "pk": {"S": shard},
                # one zone, so the keys sort (and compare with `now`) in time order
                "sk": {"S": f"{timer.due.astimezone(UTC).isoformat()}#{timer.timer_id}"},
                "state": {"S": "scheduled"},
                "timer": {
                    "S": json.dumps(
                        {
                            "timer_id": timer.timer_id,
                            "kind": timer.kind,
                            "due": timer.due.isoformat(),
                            "payload": timer.payload.model_dump(mode="json"),
                        }
                    )
                },
            },
        }
        if once:
            put["ConditionExpression"] = "attribute_not_exists(pk)"
        return {"Put": put}

    async def due(self, now: datetime) -> list[dict[str, Any]]:
        """Due timers of the shards that may hold some (of every shard at a sweep)."""
        sweep = self._swept_at is None or not now - SWEEP < self._swept_at <= now
        if sweep:
            self._swept_at = now
        items: list[dict[str, Any]] = []
        for shard in (f"TIMER#{n}" for n in range(SHARDS)):
            if sweep or shard not in self._next or self._next[shard] <= now:
                items.extend(await self._read(shard, now))
        return items

    def forget(self) -> None:
        """Read every shard next round (a round failed half way)."""
        self._next.clear()

    async def _read(self, shard: str, now: datetime) -> list[dict[str, Any]]:
        """The shard's due timers, earliest first; learns when to read it next."""
        response = await self._table.client.query(
            TableName=self._table.name,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": shard}},
            ConsistentRead=True,
            Limit=READ_LIMIT,
        )
        cut = f"{now.astimezone(UTC).isoformat()}#~"
        items = list(response.get("Items", []))
        due = [item for item in items if str(item["sk"]["S"]) <= cut]
        later = [datetime.fromisoformat(str(i["sk"]["S"]).split("#", 1)[0]) for i in items]
        later = [at for at in later if at > now]
        if len(due) == len(items) and "LastEvaluatedKey" in response:
            later.append(now)  # more due than one read takes: the rest next round
        for item in due:  # a fired one whose winner may have died: look again when it is stale
            if item["state"]["S"] == "fired":
                later.append(datetime.fromisoformat(item["fired_at"]["S"]) + STALE_FIRED)
        self._next[shard] = min(later, default=datetime.max.replace(tzinfo=UTC))
        return due

    async def claim(self, item: dict[str, Any], firing: Firing, now: datetime) -> bool:
        claim: TransactWriteItemTypeDef = {
            "Update": {
                "TableName": self._table.name,
                "Key": {"pk": item["pk"], "sk": item["sk"]},
                "UpdateExpression": "SET #state = :fired, outputs = :outputs, fired_at = :at",
                "ConditionExpression": "#state = :scheduled",
                "ExpressionAttributeNames": {"#state": "state"},
                "ExpressionAttributeValues": {
                    ":fired": {"S": "fired"},
                    ":scheduled": {"S": "scheduled"},
                    ":outputs": {"S": dump_outputs(firing.outputs)},
                    ":at": {"S": now.isoformat()},
                },
            }
        }
        return await transact(self._table, [claim, *firing.changes]) is None

    async def done(self, item: dict[str, Any]) -> None:
        await self._table.client.delete_item(
            TableName=self._table.name, Key={"pk": item["pk"], "sk": item["sk"]}
        )


async def fire_due(
    timers: Timers,
    kinds: TimerKinds,
    publish: Publish,
    clock: Clock,
) -> int:
    """Fire every due timer once; returns how many this replica published."""
    now = clock.now()
    published = 0
    for item in sorted(await timers.due(now), key=lambda i: str(i["sk"]["S"])):
        state = item["state"]["S"]
        if state == "fired":
            fired_at = datetime.fromisoformat(item["fired_at"]["S"])
            if now - fired_at < STALE_FIRED:
                continue  # its winner is publishing it now
            outputs = load_outputs(item["outputs"]["S"])
        else:
            raw = json.loads(item["timer"]["S"])
            payload = kinds.read(raw["kind"], raw["payload"])
            firing = (
                NOTHING
                if payload is None
                else await kinds.fire(
                    Timer(raw["timer_id"], datetime.fromisoformat(raw["due"]), payload)
                )
            )
            if not await timers.claim(item, firing, now):
                continue  # another replica won, or the state moved on
            outputs = firing.outputs
        await publish(outputs)
        await timers.done(item)
        TIMERS.labels(kind=str(json.loads(item["timer"]["S"]).get("kind", ""))).inc()
        published += 1
    return published


async def run_timers(
    timers: Timers,
    kinds: TimerKinds,
    publish: Publish,
    clock: Clock,
    poll_s: float,
) -> None:
    """Poll for due timers until cancelled; a failing round is logged and retried."""
    while True:
        try:
            await fire_due(timers, kinds, publish, clock)
        except Exception:
            timers.forget()
            log.exception("timer round failed; retrying next round")
        await asyncio.sleep(poll_s)


class TimerLoop:
    """The polling task, opened and closed with the service like its other resources."""

    def __init__(
        self,
        timers: Timers,
        kinds: TimerKinds,
        publish: Publish,
        clock: Clock,
        poll_s: float,
    ) -> None:
        self._args = (timers, kinds, publish, clock, poll_s)
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def publishing_to(
        cls,
        broker: KafkaBroker,
        settings: ServiceSettings,
        timers: Timers,
        kinds: TimerKinds,
        clock: Clock,
    ) -> TimerLoop:
        """The loop of a service whose timers publish through its broker."""
        publish = functools.partial(publish_all, broker, settings)
        return cls(timers, kinds, publish, clock, settings.timer_poll_s)

    async def __aenter__(self) -> TimerLoop:
        self._task = asyncio.create_task(run_timers(*self._args))
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
