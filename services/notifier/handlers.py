"""Notifier handlers.

Consumes `caf.events.v1`. Emits `caf.notifications.v1`, keyed by `recipient_ref`: at most one
notification per (event, recipient, channel), NO-08. The notifier keeps no state: a notification
is decided from its event alone and its id is derived from the event's id, the recipient and the
channel, so a redelivered or republished event yields the same notification again (the same
`notification_id`), which delivery recognises, never a second one. Undecodable events go to
`caf.notifier.dlq.v1`.
"""

from __future__ import annotations

import functools
import logging

from aiokafka import ConsumerRecord
from faststream.kafka import KafkaBroker

from caf_runtime.clock import Clock
from caf_runtime.guard import Guard
from caf_runtime.outputs import Output, Publish, publish_all
from caf_runtime.topology import REDELIVERY_SUFFIX
from schemas import topics
from schemas.codec import decode_event
from services.notifier.config import NotifierSettings
from services.notifier.rules import notifications_for

log = logging.getLogger(__name__)


class NotifierHandler:
    """Turns one outcome event into its notifications."""

    def __init__(self, publish: Publish, clock: Clock) -> None:
        self._publish = publish
        self._clock = clock

    async def on_event(self, record: ConsumerRecord[bytes, bytes]) -> None:
        event = decode_event(record.value or b"")
        await self._publish(
            [
                Output.of(topics.NOTIFICATIONS, notification.recipient_ref, notification)
                for notification in notifications_for(event, self._clock.now())
            ]
        )


def register(broker: KafkaBroker, settings: NotifierSettings, clock: Clock) -> NotifierHandler:
    """Attach the notifier's subscriber to `broker`."""

    publish = functools.partial(publish_all, broker, settings)
    handler = NotifierHandler(publish, clock)

    guard = Guard(
        broker, settings, retry_topic=topics.NOTIFIER_RETRY, dlq_topic=topics.NOTIFIER_DLQ
    )
    guard.subscribe(topics.EVENTS, settings.group_id, handler.on_event)
    guard.subscribe_retries(settings.group_id + REDELIVERY_SUFFIX)

    return handler
