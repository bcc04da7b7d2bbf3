"""Timer shards are read only when something in them may be due (issue 16), never missing one."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from caf_runtime.timers import (
    NOTHING,
    SHARDS,
    SWEEP,
    Firing,
    Kind,
    Timer,
    TimerKinds,
    TimerPayload,
    Timers,
)
from services.caf_poster.store import AwaitEvidence, DecideHeld
from tests.unit.builders import post_grant

T0 = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


class Nudge(TimerPayload):
    kind: ClassVar[str] = "nudge"
    note: str = ""


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
    timer = Timer("sla#g-1#24", T0 + timedelta(seconds=5), Nudge())
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
    client.store(other.schedule(Timer("held#g-2", T0 + timedelta(seconds=1), Nudge())))

    assert await timers.due(T0 + timedelta(seconds=2)) == []  # not known here yet
    found = await timers.due(T0 + SWEEP)
    assert [item["sk"]["S"].split("#", 1)[1] for item in found] == ["held#g-2"]


async def test_a_later_timer_learned_by_a_read_is_read_again_when_due() -> None:
    timers, client = _timers()
    other, _ = _timers()
    client.store(other.schedule(Timer("purge#g-3", T0 + timedelta(hours=1), Nudge())))
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


def _stored(timer: Timer) -> dict[str, Any]:
    timers, client = _timers()
    client.store(timers.schedule(timer))
    [item] = [i for shard in client.items.values() for i in shard]
    document: dict[str, Any] = json.loads(item["timer"]["S"])
    return document


async def test_a_timer_is_read_back_as_the_payload_model_of_its_kind() -> None:
    fired: list[Nudge] = []

    async def nudge(payload: Nudge) -> Firing:
        fired.append(payload)
        return NOTHING

    kinds = TimerKinds(Kind(Nudge, nudge))
    stored = _stored(Timer("n#1", T0, Nudge(note="hello")))
    assert (stored["kind"], stored["payload"]) == ("nudge", {"note": "hello"})
    payload = kinds.read(stored["kind"], stored["payload"])
    assert payload == Nudge(note="hello")
    assert payload is not None
    await kinds.fire(Timer("n#1", T0, payload))
    assert fired == [Nudge(note="hello")]


async def test_a_timer_of_a_kind_this_version_does_not_know_reads_as_nothing() -> None:
    kinds = TimerKinds()
    assert kinds.read("retired_kind", {"anything": 1}) is None
    assert await kinds.fire(Timer("n#2", T0, Nudge())) == NOTHING


def test_a_waiting_grants_timer_keeps_its_command_as_json_text_as_every_version_stored_it() -> None:
    """ES-03: the stored layout is unchanged by the typed payloads (a replica of the previous
    version reads what this one writes, and this one reads what it wrote)."""
    grant = post_grant()
    stored = _stored(Timer("evidence#g#1", T0, AwaitEvidence(command=grant, attempt=1, since=T0)))
    assert stored["kind"] == "await_evidence"
    assert isinstance(stored["payload"]["command"], str)
    assert json.loads(stored["payload"]["command"]) == json.loads(grant.model_dump_json())
    first_layout = {"command": grant.model_dump_json()}  # no attempt, no since
    assert AwaitEvidence.model_validate(first_layout) == AwaitEvidence(command=grant)
    assert DecideHeld.model_validate(first_layout).command == grant
