"""Notifier handlers.

Consumes `caf.events.v1`. Emits `caf.notifications.v1`, keyed by `recipient_ref`, each
notification at most once per (event, recipient). Undecodable events go to
`caf.notifier.dlq.v1`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable

from aiokafka import ConsumerRecord
from faststream.kafka import KafkaBroker

from caf_runtime.clock import Clock
from caf_runtime.guard import Guard
from caf_runtime.ledger import handle_once
from caf_runtime.outputs import Output, publish_all
from schemas import topics
from schemas.codec import decode_event
from services.notifier.config import NotifierSettings
from services.notifier.rules import notifications_for
from services.notifier.store import NotifierStore

log = logging.getLogger(__name__)

Publish = Callable[[list[Output]], Awaitable[None]]


class NotifierHandler:
    """Turns one outcome event into its notifications, once."""

    def __init__(self, store: NotifierStore, publish: Publish, clock: Clock) -> None:
        self._store = store
        self._publish = publish
        self._clock = clock

    async def on_event(self, record: ConsumerRecord[bytes, bytes]) -> None:
        event = decode_event(record.value or b"")

        async def decide_and_record() -> list[Output] | None:
            now = self._clock.now()
            outputs = [
                Output.of(topics.NOTIFICATIONS, notification.recipient_ref, notification)
                for notification in notifications_for(event, now)
            ]
            return outputs if await self._store.record(event.event_id, outputs) else None

        await handle_once(
            self._store.ledger, event.event_id, decide_and_record, self._publish, decide_first=True
        )


def register(
    broker: KafkaBroker, settings: NotifierSettings, store: NotifierStore, clock: Clock
) -> NotifierHandler:
    """Attach the notifier's subscriber to `broker`."""

    publish = functools.partial(publish_all, broker, settings)
    handler = NotifierHandler(store, publish, clock)

    guard = Guard(
        broker,
        settings,
        retry_topic=topics.NOTIFIER_RETRY,
        dlq_topic=topics.NOTIFIER_DLQ,
        dependencies=store.ping,
    )
    guard.subscribe(topics.EVENTS, settings.group_id, handler.on_event)
    guard.subscribe_retries(f"{settings.group_id}-redelivery")

    return handler
