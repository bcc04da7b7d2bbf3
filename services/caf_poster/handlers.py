"""caf_poster handlers.

Consumes: `GRANTS_VALIDATED`. Emits: posting outcomes on caf.events.v1.
The consumers are wired with the safe defaults (commit after handling, `earliest`); the business
handling arrives with the pipeline issue.
"""

from __future__ import annotations

import logging

from faststream.kafka import KafkaBroker, KafkaMessage

from caf_runtime.broker import AUTO_OFFSET_RESET, record_of
from schemas import topics
from services.caf_poster.config import CafPosterSettings
from services.caf_poster.store import CafPosterStore

log = logging.getLogger(__name__)


def register(broker: KafkaBroker, settings: CafPosterSettings, store: CafPosterStore) -> None:
    """Attach the caf_poster subscribers and publishers to `broker`."""
    del store  # state is read and written here once the handlers make decisions

    @broker.subscriber(
        settings.topic(topics.GRANTS_VALIDATED),
        group_id=settings.group_id,
        auto_offset_reset=AUTO_OFFSET_RESET,
    )
    async def on_grant_validated(message: KafkaMessage) -> None:
        record = record_of(message)
        log.info(
            "received grant that passed validation",
            extra={"topic": record.topic, "partition": record.partition, "offset": record.offset},
        )
