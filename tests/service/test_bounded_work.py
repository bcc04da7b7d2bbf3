"""Bounded work (MK-06): the biggest message the contract lets through never holds a service's
event loop. Two 10,000-period forms for one taxpayer go through intake, and two 10,000-period
commands (as if intake had been bypassed) through the poster, while a probe task measures how
late the event loop runs it."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest
from faststream.kafka import TestKafkaBroker

from caf_runtime.broker import make_broker
from schemas import topics
from schemas.grants import MatterSpec
from services.caf_poster.config import CafPosterSettings
from services.caf_poster.handlers import register as register_poster
from services.intake.config import IntakeSettings
from services.intake.handlers import register as register_intake
from tests.evidence import MemoryEvidence
from tests.service.fakes import FakeCafStore, FakeIntakeStore, FixedClock, probe
from tests.signing import signed
from tests.unit.builders import post_grant, submission

pytestmark = pytest.mark.service

LIMIT_S = 0.100
QUARTERS = [f"{year}-{month:02d}" for year in range(1950, 2030) for month in (3, 6, 9, 12)]


def ten_thousand_periods() -> list[list[str]]:
    """100 matters of 100 periods each (the schema's largest form): 10,000 periods."""
    periods = [QUARTERS[i % len(QUARTERS)] for i in range(10_000)]
    return [periods[i : i + 100] for i in range(0, 10_000, 100)]


@dataclass
class LoopProbe:
    """How late a 5 ms tick runs at worst: the longest the loop was held."""

    worst_s: float = 0.0

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await asyncio.sleep(0.005)
            self.worst_s = max(self.worst_s, loop.time() - started - 0.005)


@asynccontextmanager
async def probed() -> AsyncIterator[LoopProbe]:
    lag = LoopProbe()
    task = asyncio.create_task(lag.run())
    await asyncio.sleep(0.02)
    try:
        yield lag
    finally:
        task.cancel()


async def timed(work: Awaitable[None]) -> float:
    started = time.perf_counter()
    await work
    return time.perf_counter() - started


async def test_mk_06_two_10000_period_forms_are_refused_without_holding_intakes_loop() -> None:
    settings = IntakeSettings.model_validate({})
    broker = make_broker(settings, client_id="test")
    register_intake(broker, settings, FakeIntakeStore(), FixedClock())
    seen = probe(broker, topics.EVENTS, topics.GRANTS_ACCEPTED)
    forms = []
    for n in (1, 2):
        form = json.loads(submission(message_id=f"big-{n}").model_dump_json())
        form["tax_matters"] = [
            {"tax_type": "Employment", "form_number": "941", "periods": chunk}
            for chunk in ten_thousand_periods()
        ]
        forms.append(json.dumps(form).encode())
    async with TestKafkaBroker(broker) as test_broker, probed() as lag:
        took = [
            await timed(
                test_broker.publish(raw, topic=topics.INBOUND, key=b"k", headers=signed(raw))
            )
            for raw in forms
        ]
    codes = [json.loads(value)["reason_code"] for value, _ in seen[topics.EVENTS]]
    assert codes == ["REJ-MATTER-TOO-MANY", "REJ-MATTER-TOO-MANY"]
    assert topics.GRANTS_ACCEPTED not in seen
    assert max(took) < LIMIT_S, f"decisions took {took}"
    assert lag.worst_s < LIMIT_S, f"the loop was held {lag.worst_s * 1000:.0f} ms"


async def test_mk_06_two_10000_period_commands_are_refused_without_holding_the_posters_loop() -> (
    None
):
    settings = CafPosterSettings()
    broker = make_broker(settings, client_id="test")
    register_poster(broker, settings, FakeCafStore(), FixedClock(), MemoryEvidence())
    seen = probe(broker, topics.EVENTS)
    matters = [
        MatterSpec(tax_type="Employment", form_number="941", periods=chunk)
        for chunk in ten_thousand_periods()
    ]
    commands = [
        post_grant(message_id=f"big-{n}", grant_id=f"big-{n}:0", tax_matters=matters)
        .model_dump_json()
        .encode()
        for n in (1, 2)
    ]
    async with TestKafkaBroker(broker) as test_broker, probed() as lag:
        took = [
            await timed(test_broker.publish(raw, topic=topics.GRANTS_VALIDATED)) for raw in commands
        ]
    codes = [json.loads(value)["reason_code"] for value, _ in seen[topics.EVENTS]]
    assert codes == ["REJ-MATTER-TOO-MANY", "REJ-MATTER-TOO-MANY"]
    assert max(took) < LIMIT_S, f"decisions took {took}"
    assert lag.worst_s < LIMIT_S, f"the loop was held {lag.worst_s * 1000:.0f} ms"
