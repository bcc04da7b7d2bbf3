"""Whether every consumer loop can still fetch and decode what its partitions hold.

FastStream's consume loop catches a fetch that fails (a record batch in a codec the process cannot
decompress, a corrupt batch, a broker error surfacing through `getone`), logs it, sleeps and tries
the same position again. Nothing else notices: the partition is stuck for good while the broker
still answers pings. `FetchMonitor` wraps each subscriber's fetch and keeps, per consumer, the
streak of failures since its last good fetch; a streak older than `not_ready_after_s` makes the
process not ready, one older than `not_live_after_s` makes it not live (Kubernetes restarts it),
and the longest streak is exported as `caf_consumer_fetch_failing_seconds`.

A streak ends only when failures stop for `stale_after_s` (longer than the consume loop's own
back-off between tries): a good fetch does not end it, because one consumer holds several
partitions and aiokafka hands out the records of the healthy ones between two failures on the
stuck one. A consumer whose partitions are idle blocks in `getone` without failing, so one
transient error followed by a quiet topic lapses after `stale_after_s`, below the ready bound.
A liveness restart cannot decode a batch the image has no codec for: the pod then crash-loops,
which is the loud signal wanted (the alert names the error class).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from faststream.kafka import KafkaBroker

from caf_runtime.metrics import FETCH_ERRORS, FETCH_FAILING

Clock = Callable[[], float]

# FastStream waits 15 s after a codec error and 5 s after another Kafka error before it fetches
# again; a streak is still going while its last failure is younger than this.
STALE_AFTER_S = 45.0


@dataclass
class _Streak:
    topic: str
    first_failure: float
    last_failure: float


class FetchMonitor:
    """Failure streaks of every consumer of one process."""

    def __init__(
        self,
        *,
        not_ready_after_s: float,
        not_live_after_s: float,
        stale_after_s: float = STALE_AFTER_S,
        clock: Clock = time.monotonic,
    ) -> None:
        self.not_ready_after_s = not_ready_after_s
        self.not_live_after_s = not_live_after_s
        self._stale_after_s = stale_after_s
        self._clock = clock
        self._streaks: dict[int, _Streak] = {}
        self._topics: set[str] = set()

    def watch(self, broker: KafkaBroker, prefix: str = "") -> None:
        """Wrap the fetch of every subscriber of `broker` (call before the broker starts)."""
        for subscriber in broker.subscribers:
            names = getattr(subscriber, "topic_names_for_subscribe", ()) or ()
            topic = ",".join(str(name).removeprefix(prefix) for name in names)
            self._topics.add(topic)
            FETCH_FAILING.labels(topic=topic).set(0)
            fetch = subscriber.get_msg  # type: ignore[attr-defined]  # the Kafka subscribers have it
            subscriber.get_msg = self._monitored(fetch, topic)  # type: ignore[attr-defined]

    def _monitored(
        self, fetch: Callable[[Any], Awaitable[Any]], topic: str
    ) -> Callable[[Any], Awaitable[Any]]:
        async def get_msg(consumer: Any) -> Any:
            try:
                return await fetch(consumer)
            except Exception as error:
                self.failed(id(consumer), topic, type(error).__name__)
                raise

        return get_msg

    def failed(self, consumer: int, topic: str, error: str) -> None:
        """A fetch of `consumer` raised `error` (the exception's class name)."""
        FETCH_ERRORS.labels(topic=topic, error=error).inc()
        self._topics.add(topic)
        now = self._clock()
        streak = self._streaks.get(consumer)
        if streak is None or now - streak.last_failure > self._stale_after_s:
            self._streaks[consumer] = _Streak(topic, now, now)
        else:
            streak.last_failure = now

    def failing_for(self) -> dict[str, float]:
        """Seconds the longest ongoing streak of each topic has lasted (topics failing now only);
        also sets the gauge of every watched topic (0 where nothing fails)."""
        now = self._clock()
        longest: dict[str, float] = {}
        for consumer, streak in list(self._streaks.items()):
            if now - streak.last_failure > self._stale_after_s:
                del self._streaks[consumer]
                continue
            longest[streak.topic] = max(longest.get(streak.topic, 0.0), now - streak.first_failure)
        for topic in self._topics | longest.keys():
            FETCH_FAILING.labels(topic=topic).set(longest.get(topic, 0.0))
        return longest

    async def ready(self) -> bool:
        """No consumer has failed to fetch for longer than `not_ready_after_s`."""
        return all(s <= self.not_ready_after_s for s in self.failing_for().values())

    def live(self) -> bool:
        """No consumer has failed to fetch for longer than `not_live_after_s`."""
        return all(s <= self.not_live_after_s for s in self.failing_for().values())
