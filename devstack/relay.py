"""`python -m devstack.relay <from> <to>`: one hop of the benchmark's ceiling.

Consume a topic and produce each message unchanged to the next one, with the services' client
library and settings (FastStream on aiokafka, commit after handling, idempotent producer with
acks=all, raw bytes) and no logic: the most a hop can move on this machine.
"""

from __future__ import annotations

import asyncio
import sys

from faststream import FastStream
from faststream.kafka import KafkaBroker, KafkaMessage

from caf_runtime.broker import AUTO_OFFSET_RESET, make_broker, record_of, records_of
from caf_runtime.config import ServiceSettings
from caf_runtime.service import event_loop


def create_app(source: str, target: str, settings: ServiceSettings) -> FastStream:
    broker = make_broker(settings, client_id="bench-relay")
    if settings.batch_max_records:
        _relay_batches(broker, source, target, settings)
        return FastStream(broker)

    @broker.subscriber(
        settings.topic(source),
        group_id=f"bench-relay-{source}",
        auto_offset_reset=AUTO_OFFSET_RESET,
        max_workers=settings.consumers_per_topic,
    )
    async def relay(message: KafkaMessage) -> None:
        record = record_of(message)
        await broker.publish(record.value, topic=settings.topic(target), key=record.key)

    return FastStream(broker)


def _relay_batches(
    broker: KafkaBroker, source: str, target: str, settings: ServiceSettings
) -> None:
    """The services' batch policy (CAF_BATCH_MAX_RECORDS): a poll at a time, every record
    sent, all acks awaited, one commit."""

    @broker.subscriber(
        settings.topic(source),
        group_id=f"bench-relay-{source}",
        auto_offset_reset=AUTO_OFFSET_RESET,
        batch=True,
        max_records=settings.batch_max_records,
        batch_timeout_ms=settings.batch_timeout_ms,
    )
    async def relay(message: KafkaMessage) -> None:
        acks = [
            await broker.publish(
                record.value, topic=settings.topic(target), key=record.key, no_confirm=True
            )
            for record in records_of(message)
        ]
        await asyncio.gather(*acks)


def main() -> None:
    source, target = sys.argv[1], sys.argv[2]
    settings = ServiceSettings()
    with event_loop(settings) as runner:  # the services' event loop, so the ceiling is theirs
        runner.run(create_app(source, target, settings).run())


if __name__ == "__main__":
    main()
