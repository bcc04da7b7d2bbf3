"""intake handlers.

Consumes: `INBOUND`. Emits: caf.grants.accepted.v1, outcomes on caf.events.v1, caf.inbound.dlq.v1.
The consumers are wired with the safe defaults (commit after handling, `earliest`); the business
handling arrives with the pipeline issue.
"""

from __future__ import annotations

import logging

from faststream.kafka import KafkaBroker, KafkaMessage

from caf_runtime.broker import AUTO_OFFSET_RESET, record_of
from schemas import topics
from services.intake.config import IntakeSettings
from services.intake.store import IntakeStore

log = logging.getLogger(__name__)


def register(broker: KafkaBroker, settings: IntakeSettings, store: IntakeStore) -> None:
    """Attach the intake subscribers and publishers to `broker`."""
    del store  # state is read and written here once the handlers make decisions

    @broker.subscriber(
        settings.topic(topics.INBOUND),
        group_id=settings.group_id,
        auto_offset_reset=AUTO_OFFSET_RESET,
    )
    async def on_inbound(message: KafkaMessage) -> None:
        record = record_of(message)
        log.info(
            "received raw inbound message from the portals",
            extra={"topic": record.topic, "partition": record.partition, "offset": record.offset},
        )
