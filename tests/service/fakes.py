"""Hand-written fakes of the services' stores, for the service-layer tests (not mocks)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from faststream.kafka import KafkaBroker, KafkaMessage

from caf_runtime.broker import record_of
from caf_runtime.ledger import Recorded
from caf_runtime.outputs import Output
from tests.unit.builders import NOW


class FakeLedger:
    """`caf_runtime.ledger.Ledger` in memory; it marks what was published only when asked to,
    as the real one does (intake's)."""

    def __init__(self, *, marks_published: bool = False) -> None:
        self.items: dict[str, Recorded] = {}
        self._marks_published = marks_published

    async def recorded(self, key: str) -> Recorded | None:
        return self.items.get(key)

    async def mark_published(self, key: str, outputs: list[Output]) -> None:
        if self._marks_published:
            self.items[key] = Recorded("published", self.items[key].outputs)

    def claim(self, key: str, outputs: list[Output]) -> bool:
        if key in self.items:
            return False
        self.items[key] = Recorded("pending", outputs)
        return True


class FixedClock:
    def now(self) -> dt.datetime:
        return NOW


Seen = dict[str, list[tuple[bytes, dict[str, str]]]]


def probe(broker: KafkaBroker, *topics: str) -> Seen:
    """Collect what the service publishes to `topics` (values and headers)."""
    seen: Seen = {}
    for topic in topics:

        def collect(name: str) -> Any:
            async def on_message(message: KafkaMessage) -> None:
                record = record_of(message)
                headers = {k: v.decode() for k, v in record.headers}
                seen.setdefault(name, []).append((record.value or b"", headers))

            return on_message

        broker.subscriber(topic, group_id=f"probe-{topic}")(collect(topic))
    return seen
