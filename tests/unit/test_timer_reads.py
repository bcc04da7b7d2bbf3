"""Timer shards are read only when something in them may be due (issue 16), never missing one."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from caf_runtime.timers import SHARDS, SWEEP, Timer, Timers

T0 = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


@dataclass
class _Client:
    """A DynamoDB client holding timer items: answers the shard queries, counts them."""

    items: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    reads: list[str] = field(default_factory=list)

    async def query(self, **kwargs: Any) -> dict[str, Any]:
        shard = kwargs["ExpressionAttributeValues"][":pk"]["S"]
        self.reads.append(shard)
        found = sorted(self.items.get(shard, []), key=lambda i: i["sk"]["S"])
        return {"Items": found[: kwargs["Limit"]]}

    def store(self, put: Any) -> None:
        item = put["Put"]["Item"]
        self.items.setdefault(item["pk"]["S"], []).append(item)


@dataclass
class _Table:
    client: _Client
    name: str = "t"


def _timers() -> tuple[Timers, _Client]:
    client = _Client()
    return Timers(_Table(client)), client  # type: ignore[arg-type]


async def test_the_first_round_reads_every_shard_and_quiet_rounds_read_none() -> None:
    timers, client = _timers()
    assert await timers.due(T0) == []
    assert len(client.reads) == SHARDS
    client.reads.clear()
    for second in range(1, 9):
        assert await timers.due(T0 + timedelta(seconds=second)) == []
    assert client.reads == []  # nothing due anywhere, and no sweep yet


async def test_a_timer_scheduled_here_is_read_once_due_and_not_before() -> None:
    timers, client = _timers()
    await timers.due(T0)
    timer = Timer("sla#g-1#24", T0 + timedelta(seconds=5), "sla", {})
    client.store(timers.schedule(timer))
    client.reads.clear()

    assert await timers.due(T0 + timedelta(seconds=4)) == []
    assert client.reads == []
    due = await timers.due(T0 + timedelta(seconds=5))
    assert [item["sk"]["S"].split("#", 1)[1] for item in due] == ["sla#g-1#24"]
    assert len(client.reads) == 1


async def test_a_timer_another_replica_scheduled_is_found_by_the_sweep() -> None:
    timers, client = _timers()
    other, _ = _timers()
    await timers.due(T0)
    client.store(other.schedule(Timer("held#g-2", T0 + timedelta(seconds=1), "decide_held", {})))

    assert await timers.due(T0 + timedelta(seconds=2)) == []  # not known here yet
    found = await timers.due(T0 + SWEEP)
    assert [item["sk"]["S"].split("#", 1)[1] for item in found] == ["held#g-2"]


async def test_a_later_timer_learned_by_a_read_is_read_again_when_due() -> None:
    timers, client = _timers()
    other, _ = _timers()
    client.store(other.schedule(Timer("purge#g-3", T0 + timedelta(hours=1), "purge", {})))
    assert await timers.due(T0) == []  # the sweep read it: due in an hour
    client.reads.clear()

    await timers.due(T0 + timedelta(minutes=59, seconds=59, microseconds=999_999) - SWEEP / 2)
    shard_reads = len(client.reads)
    found = await timers.due(T0 + timedelta(hours=1))
    assert [item["sk"]["S"].split("#", 1)[1] for item in found] == ["purge#g-3"]
    assert len(client.reads) - shard_reads >= 1


async def test_after_a_failed_round_every_shard_is_read_again() -> None:
    timers, client = _timers()
    await timers.due(T0)
    client.reads.clear()
    timers.forget()
    await timers.due(T0 + timedelta(seconds=1))
    assert len(client.reads) == SHARDS
