"""Durable timers that fire once, whatever the number of replicas.

A timer is an item in the owning service's table (`TIMER#<shard>` / `<due>#<id>`), written in
the same transaction as the state that needs it. Every replica polls for due timers; firing one
is a conditional transaction (`scheduled` → `fired`, with the outputs recorded and any state
change of the service), so exactly one replica wins. The winner publishes the outputs and deletes
the timer. A timer left `fired` (its winner died before publishing) is re-published unchanged by
whichever replica sees it next: the same event ids, absorbed downstream.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from faststream.kafka import KafkaBroker

from caf_runtime.clock import Clock
from caf_runtime.config import ServiceSettings
from caf_runtime.dynamo import DynamoTable
from caf_runtime.ledger import transact
from caf_runtime.metrics import TIMERS
from caf_runtime.outputs import Output, dump_outputs, load_outputs, publish_all

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb.type_defs import TransactWriteItemTypeDef

log = logging.getLogger(__name__)

SHARDS = 8
STALE_FIRED = timedelta(seconds=30)


@dataclass(frozen=True)
class Timer:
    """Something to do at `due`: `kind` names the work, `payload` carries its data."""

    timer_id: str
    due: datetime
    kind: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class Firing:
    """What a due timer does: outputs to publish, and state changes written with the claim."""

    outputs: list[Output]
    changes: list[TransactWriteItemTypeDef]


Fire = Callable[[Timer], Awaitable[Firing]]


def _shard(timer_id: str) -> str:
    return f"TIMER#{int(hashlib.sha256(timer_id.encode()).hexdigest(), 16) % SHARDS}"


class Timers:
    """The timers of one service, in its own table."""

    def __init__(self, table: DynamoTable) -> None:
        self._table = table

    def schedule(self, timer: Timer) -> TransactWriteItemTypeDef:
        """The transaction item that schedules `timer` (once: the same id twice is refused)."""
        return {
            "Put": {
                "TableName": self._table.name,
                "Item": {
                    "pk": {"S": _shard(timer.timer_id)},
                    # one zone, so the keys sort (and compare with `now`) in time order
                    "sk": {"S": f"{timer.due.astimezone(UTC).isoformat()}#{timer.timer_id}"},
                    "state": {"S": "scheduled"},
                    "timer": {
                        "S": json.dumps(
                            {
                                "timer_id": timer.timer_id,
                                "kind": timer.kind,
                                "due": timer.due.isoformat(),
                                "payload": timer.payload,
                            }
                        )
                    },
                },
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }

    async def due(self, now: datetime) -> list[dict[str, Any]]:
        """Due timers of every shard, earliest first."""
        items: list[dict[str, Any]] = []
        for shard in range(SHARDS):
            response = await self._table.client.query(
                TableName=self._table.name,
                KeyConditionExpression="pk = :pk AND sk <= :now",
                ExpressionAttributeValues={
                    ":pk": {"S": f"TIMER#{shard}"},
                    ":now": {"S": f"{now.astimezone(UTC).isoformat()}#~"},
                },
                ConsistentRead=True,
            )
            items.extend(response.get("Items", []))
        return items

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
    timers: Timers, fire: Fire, publish: Callable[[list[Output]], Awaitable[None]], clock: Clock
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
            timer = Timer(
                raw["timer_id"], datetime.fromisoformat(raw["due"]), raw["kind"], raw["payload"]
            )
            firing = await fire(timer)
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
    fire: Fire,
    publish: Callable[[list[Output]], Awaitable[None]],
    clock: Clock,
    poll_s: float,
) -> None:
    """Poll for due timers until cancelled; a failing round is logged and retried."""
    while True:
        try:
            await fire_due(timers, fire, publish, clock)
        except Exception:
            log.exception("timer round failed; retrying next round")
        await asyncio.sleep(poll_s)


class TimerLoop:
    """The polling task, opened and closed with the service like its other resources."""

    def __init__(
        self,
        timers: Timers,
        fire: Fire,
        publish: Callable[[list[Output]], Awaitable[None]],
        clock: Clock,
        poll_s: float,
    ) -> None:
        self._args = (timers, fire, publish, clock, poll_s)
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def publishing_to(
        cls,
        broker: KafkaBroker,
        settings: ServiceSettings,
        timers: Timers,
        fire: Fire,
        clock: Clock,
    ) -> TimerLoop:
        """The loop of a service whose timers publish through its broker."""
        publish = functools.partial(publish_all, broker, settings)
        return cls(timers, fire, publish, clock, settings.timer_poll_s)

    async def __aenter__(self) -> TimerLoop:
        self._task = asyncio.create_task(run_timers(*self._args))
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
