"""validator handlers.

Consumes: `GRANTS_ACCEPTED`, `PRACTITIONERS`.
Emits: caf.grants.validated.v1, rejections on caf.events.v1.
The consumers are wired with the safe defaults (commit after handling, `earliest`); the business
handling arrives with the pipeline issue.
"""

from __future__ import annotations

import logging

from faststream.kafka import KafkaBroker, KafkaMessage

from caf_runtime.broker import AUTO_OFFSET_RESET, record_of
from schemas import topics
from services.validator.config import ValidatorSettings
from services.validator.store import ValidatorStore

log = logging.getLogger(__name__)


def register(broker: KafkaBroker, settings: ValidatorSettings, store: ValidatorStore) -> None:
    """Attach the validator subscribers and publishers to `broker`."""
    del store  # state is read and written here once the handlers make decisions

    @broker.subscriber(
        settings.topic(topics.GRANTS_ACCEPTED),
        group_id=settings.group_id,
        auto_offset_reset=AUTO_OFFSET_RESET,
    )
    async def on_grant_accepted(message: KafkaMessage) -> None:
        record = record_of(message)
        log.info(
            "received grant accepted by intake",
            extra={"topic": record.topic, "partition": record.partition, "offset": record.offset},
        )

    @broker.subscriber(
        settings.topic(topics.PRACTITIONERS),
        group_id=settings.group_id,
        auto_offset_reset=AUTO_OFFSET_RESET,
    )
    async def on_practitioner_record(message: KafkaMessage) -> None:
        record = record_of(message)
        log.info(
            "received practitioner registry record",
            extra={"topic": record.topic, "partition": record.partition, "offset": record.offset},
        )
