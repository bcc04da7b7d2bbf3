"""The misuse monitor's handler on its real table (DynamoDB Local), without a broker: counting
once per event whatever the redeliveries, a velocity-held grant counted once when it later
posts, a suspicion raised once per number, rule and day, old history counted but not alerted,
statements page by page."""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

import pytest
from aiokafka import ConsumerRecord

from caf_runtime.config import ServiceSettings
from caf_runtime.outputs import Output
from caf_runtime.provision import ensure_tables
from caf_runtime.topology import TABLES
from services.monitor.config import MonitorSettings
from services.monitor.handlers import MonitorHandler
from services.monitor.store import DynamoMonitorStore
from tests.integration.conftest import store_settings

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

pytestmark = pytest.mark.integration

CAF = "030155555"
# now, not a fixed day: the monitor's items carry a TTL (`expires_at`) from their event's time, and
# DynamoDB Local's TTL sweeper deletes those whose time has passed (a fixed day in the past made
# the hour buckets vanish at random: the flake of the first runs)
NOW = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)


class Clock:
    def __init__(self, now: dt.datetime = NOW) -> None:
        self.at = now

    def now(self) -> dt.datetime:
        return self.at


def event(kind: str, n: int, **fields: Any) -> ConsumerRecord[bytes, bytes]:
    body = {
        "type": kind,
        "event_id": f"{kind}-{n}",
        "occurred_at": NOW.isoformat(),
        "taxpayer_ref": f"{n:032x}",
        "tin_last4": f"{n % 10000:04d}",
        "form": "8821",
        "message_id": f"m-{n}",
        "grant_id": f"m-{n}:0",
        "caf_number": CAF,
        "stage": "caf_poster",
        **fields,
    }
    raw = json.dumps(body).encode()
    return ConsumerRecord("caf.events.v1", 0, n, 0, 0, None, raw, None, 0, len(raw), [])


def posted(n: int) -> ConsumerRecord[bytes, bytes]:
    return event(
        "AuthorizationPosted",
        n,
        authorization_id=f"m-{n}",
        tax_matters=[{"tax_type": "Income", "form_number": "1040", "periods": ["2024"]}],
        receive_notices=False,
        dropped_periods=[],
        channel="mail",
        received_at=NOW.isoformat(),
        posted_at=NOW.isoformat(),
    )


def held(n: int) -> ConsumerRecord[bytes, bytes]:
    return event(
        "AuthorizationHeld",
        n,
        stage="validator",
        reason_code="HOLD-VELOCITY",
        reason="held",
        rule_id="VA-07",
    )


class Rig:
    def __init__(self, store: DynamoMonitorStore, clock: Clock, burst: int) -> None:
        self.store = store
        self.published: list[Output] = []
        settings = MonitorSettings(burst_ceiling=burst, first_use_ceiling=1000)

        async def publish(outputs: list[Output]) -> None:
            self.published.extend(outputs)

        self.handler = MonitorHandler(store, publish, clock, settings)

    def suspicions(self) -> list[dict[str, Any]]:
        return [
            json.loads(o.value)
            for o in self.published
            if json.loads(o.value).get("type") == "CafMisuseSuspected"
        ]


@pytest.fixture
async def store(settings: ServiceSettings, dynamodb: DynamoDBClient) -> Any:
    await ensure_tables(dynamodb, TABLES, prefix=settings.table_prefix)
    monitor = DynamoMonitorStore(store_settings(MonitorSettings, settings))
    async with monitor.table:
        yield monitor


async def test_an_event_is_counted_once_however_often_it_is_delivered(
    store: DynamoMonitorStore,
) -> None:
    """MN-01: redeliveries of the same events never add up to a burst."""
    rig = Rig(store, Clock(), burst=3)
    for _ in range(3):
        await rig.handler.on_event(posted(1))
        await rig.handler.on_event(posted(2))
    snapshot = await store.snapshot(CAF, NOW)
    assert sum(b.grants for b in snapshot.days) == 2
    assert rig.suspicions() == []
    await rig.handler.on_event(posted(3))
    found = rig.suspicions()
    after = await store.snapshot(CAF, NOW)
    assert len(found) == 1, f"{rig.published!r} hours={after.hours!r} days={after.days!r}"
    [suspected] = found
    assert (suspected["rule_id"], suspected["evidence"]["distinct_taxpayers"]) == ("MN-01", 3)


async def test_a_grant_held_for_velocity_and_then_posted_is_counted_once(
    store: DynamoMonitorStore,
) -> None:
    """MN-01, MN-02: a held grant counts when it is held; its release's posting does not."""
    rig = Rig(store, Clock(), burst=100)
    await rig.handler.on_event(held(7))
    await rig.handler.on_event(posted(7))
    snapshot = await store.snapshot(CAF, NOW)
    assert (sum(b.grants for b in snapshot.days), sum(b.form_8821 for b in snapshot.days)) == (
        1,
        1,
    )
    assert [g.grant_id for g in await store.active_grants(CAF)] == ["m-7:0"]


async def test_a_suspicion_is_raised_once_a_day_and_old_history_is_counted_without_alerting(
    store: DynamoMonitorStore,
) -> None:
    late = Rig(store, Clock(NOW + dt.timedelta(days=3)), burst=2)  # a replay of old history
    for n in range(1, 4):
        await late.handler.on_event(posted(n))
    assert late.suspicions() == []
    current = Rig(store, Clock(), burst=2)
    for n in range(4, 7):
        await current.handler.on_event(posted(n))
    assert len(current.suspicions()) == 1  # MN-01, once for the number and day


async def test_a_statement_goes_out_page_by_page_once_per_run(store: DynamoMonitorStore) -> None:
    """MN-07: every active grant on a page, each page once however often the run is read."""
    rig = Rig(store, Clock(), burst=1000)
    for n in range(1, 15):
        await rig.handler.on_event(posted(n))
    run = json.dumps(
        {"command_id": "run-1", "requested_at": NOW.isoformat(), "requested_by": "dana"}
    ).encode()
    record = ConsumerRecord("caf.statements.v1", 0, 0, 0, 0, None, run, None, 0, len(run), [])
    await rig.handler.on_statement_run(record)
    await rig.handler.on_statement_run(record)
    pages = [json.loads(o.value) for o in rig.published if o.topic == "caf.notifications.v1"]
    assert len(pages) == 3  # 14 grants, 6 a page; the second reading sends nothing
    listed = [line for p in pages for line in p["body"].splitlines() if line.startswith("- ")]
    assert len(listed) == 14
