"""The fetch monitor: a consumer that cannot fetch or decode makes the process not ready, then not
live; an idle consumer or one transient error does not."""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka.errors import UnsupportedCodecError
from faststream.kafka import KafkaBroker, KafkaMessage
from prometheus_client import REGISTRY

from caf_runtime.fetch_health import FetchMonitor
from tests.unit.builders import SteppedClock

pytestmark = pytest.mark.unit


def monitor(clock: SteppedClock) -> FetchMonitor:
    return FetchMonitor(not_ready_after_s=60, not_live_after_s=300, stale_after_s=45, clock=clock)


def failed_every_15_s(topic: str, times: int, error: str) -> tuple[SteppedClock, FetchMonitor]:
    """A monitor on a clock of its own that saw `times` failed fetches of `topic` (`error`), one
    every 15 s (the consume loop tries again every 15 s), the clock 15 s past the last."""
    clock = SteppedClock()
    fetches = monitor(clock)
    for _ in range(times):
        fetches.failed(1, topic, error)
        clock.now += 15
    return clock, fetches


def gauge(topic: str) -> float | None:
    return REGISTRY.get_sample_value("caf_consumer_fetch_failing_seconds", {"topic": topic})


async def test_a_consumer_failing_past_the_ready_bound_makes_the_process_not_ready() -> None:
    _, fetches = failed_every_15_s("unit.a", 5, "UnsupportedCodecError")
    assert await fetches.ready() is False
    assert fetches.live() is True
    assert fetches.failing_for() == {"unit.a": 75.0}
    assert gauge("unit.a") == 75.0


async def test_a_consumer_failing_past_the_live_bound_makes_the_process_not_live() -> None:
    _, fetches = failed_every_15_s("unit.b", 22, "UnsupportedCodecError")
    assert fetches.live() is False


async def test_a_streak_ends_when_failures_stop_and_resets_the_gauge() -> None:
    clock, fetches = failed_every_15_s("unit.c", 6, "KafkaError")
    assert await fetches.ready() is False
    clock.now += 46
    assert await fetches.ready() is True
    assert fetches.failing_for() == {}
    assert gauge("unit.c") == 0.0


async def test_one_error_then_a_quiet_topic_is_not_an_outage() -> None:
    """An idle consumer blocks in getone without failing; its old streak goes stale."""
    clock = SteppedClock()
    fetches = monitor(clock)
    fetches.failed(1, "unit.d", "KafkaError")
    clock.now += 10
    assert fetches.failing_for() == {"unit.d": 10.0}
    clock.now += 3600
    assert await fetches.ready() is True
    assert fetches.live() is True
    assert fetches.failing_for() == {}


async def test_records_from_healthy_partitions_do_not_hide_a_stuck_one() -> None:
    """One consumer, several partitions: its fetches alternate between records of the healthy
    partitions and the error of the stuck one; the streak keeps growing."""
    # between the failures, records of the other partitions are handed out
    _, fetches = failed_every_15_s("unit.e", 6, "UnsupportedCodecError")
    assert await fetches.ready() is False


async def test_the_monitor_wraps_every_subscriber_fetch_and_counts_errors_by_class() -> None:
    broker = KafkaBroker()

    @broker.subscriber("pfx.unit.topic", group_id="g", max_workers=2)
    async def handle(message: KafkaMessage) -> None:  # pragma: no cover - never consumed
        del message

    [subscriber] = broker.subscribers
    outcomes: list[Any] = [UnsupportedCodecError("no snappy")] * 2 + ["record"]

    async def fetch(consumer: Any) -> Any:
        del consumer
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    subscriber.get_msg = fetch  # type: ignore[attr-defined]
    clock = SteppedClock()
    fetches = monitor(clock)
    fetches.watch(broker, prefix="pfx.")
    assert gauge("unit.topic") == 0.0
    before = REGISTRY.get_sample_value(
        "caf_consumer_fetch_errors_total", {"topic": "unit.topic", "error": "UnsupportedCodecError"}
    )
    consumer = object()
    for _ in range(2):
        with pytest.raises(UnsupportedCodecError):
            await subscriber.get_msg(consumer)  # type: ignore[attr-defined]
        clock.now += 35
    assert await fetches.ready() is False
    assert await subscriber.get_msg(consumer) == "record"  # type: ignore[attr-defined]
    assert await fetches.ready() is False  # a good fetch does not end the streak
    clock.now += 46
    assert await fetches.ready() is True
    after = REGISTRY.get_sample_value(
        "caf_consumer_fetch_errors_total", {"topic": "unit.topic", "error": "UnsupportedCodecError"}
    )
    assert (after or 0) - (before or 0) == 2
