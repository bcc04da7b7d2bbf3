"""notifier handlers.

Consumes: `EVENTS`. Emits: caf.notifications.v1.
The consumers are wired with the safe defaults (commit after handling, `earliest`); the business
handling arrives with the pipeline issue.
"""

from __future__ import annotations

import logging

from faststream.kafka import KafkaBroker, KafkaMessage

from caf_runtime.broker import AUTO_OFFSET_RESET, record_of
from schemas import topics
from services.notifier.config import NotifierSettings
from services.notifier.store import NotifierStore

log = logging.getLogger(__name__)


def register(broker: KafkaBroker, settings: NotifierSettings, store: NotifierStore) -> None:
    """Attach the notifier subscribers and publishers to `broker`."""
    del store  # state is read and written here once the handlers make decisions

    @broker.subscriber(
        settings.topic(topics.EVENTS),
        group_id=settings.group_id,
        auto_offset_reset=AUTO_OFFSET_RESET,
    )
    async def on_event(message: KafkaMessage) -> None:
        record = record_of(message)
        log.info(
            "received outcome event",
            extra={"topic": record.topic, "partition": record.partition, "offset": record.offset},
        )
