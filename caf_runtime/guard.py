"""Retry with bounded backoff, then dead-letter: no message blocks its partition or disappears.

`handle_guarded` runs one message's work. Transient failures (throttling, timeouts, a broker
leader moving) are retried with exponential backoff; a message still failing, or failing with a
permanent error, is published to the consumer's dead-letter topic with error headers and the
offset is committed. Only when the dead-letter topic itself cannot be reached does the error
escape, after a pause, so the message is redelivered rather than lost.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from aiokafka import ConsumerRecord
from aiokafka.errors import KafkaError
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as AwsConnectionError
from faststream.kafka import KafkaBroker, KafkaMessage

from caf_runtime.broker import AUTO_OFFSET_RESET, record_of
from caf_runtime.config import ServiceSettings
from caf_runtime.metrics import HANDLING, MESSAGES, RETRIES
from caf_runtime.outputs import Output, publish_all

log = logging.getLogger(__name__)

_TRANSIENT_AWS_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionConflictException",
        "TransactionInProgressException",
    }
)


def is_transient(error: BaseException) -> bool:
    """True for failures worth retrying: the same message may succeed a moment later."""
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        if code == "TransactionCanceledException":
            reasons = error.response.get("CancellationReasons", [])
            return any(r.get("Code") in _TRANSIENT_AWS_CODES for r in reasons)
        return code in _TRANSIENT_AWS_CODES
    return isinstance(
        error, KafkaError | AwsConnectionError | HTTPClientError | TimeoutError | OSError
    )


def dead_letter(
    record: ConsumerRecord[bytes, bytes], topic: str, error: BaseException, attempts: int
) -> Output:
    """The original bytes and key with the contract's error headers."""
    key = record.key.decode(errors="replace") if record.key is not None else None
    original = {k: v.decode(errors="replace") for k, v in record.headers or ()}
    original.pop("content-type", None)
    return Output(
        topic=topic,
        key=key,
        value=record.value if record.value is not None else b"",
        headers={
            **original,
            "error-class": type(error).__name__,
            "error-message": str(error)[:500],
            "original-topic": record.topic,
            "original-partition": str(record.partition),
            "original-offset": str(record.offset),
            "failed-at": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "attempt-count": str(attempts),
        },
    )


async def handle_guarded(
    work: Callable[[], Awaitable[None]],
    *,
    record: ConsumerRecord[bytes, bytes],
    broker: KafkaBroker,
    settings: ServiceSettings,
    dlq_topic: str,
    attempts: int = 4,
    base_delay_s: float = 0.2,
) -> None:
    started = time.monotonic()
    try:
        outcome = await _attempts(
            work,
            record,
            broker=broker,
            settings=settings,
            dlq_topic=dlq_topic,
            attempts=attempts,
            base_delay_s=base_delay_s,
        )
    finally:
        HANDLING.labels(topic=record.topic).observe(time.monotonic() - started)
    MESSAGES.labels(topic=record.topic, outcome=outcome).inc()


async def _attempts(
    work: Callable[[], Awaitable[None]],
    record: ConsumerRecord[bytes, bytes],
    *,
    broker: KafkaBroker,
    settings: ServiceSettings,
    dlq_topic: str,
    attempts: int,
    base_delay_s: float,
) -> str:
    for attempt in range(1, attempts + 1):
        try:
            await work()
        except Exception as error:
            if is_transient(error) and attempt < attempts:
                delay = base_delay_s * 4 ** (attempt - 1)
                log.warning(
                    "transient failure; retrying",
                    extra={
                        "error_class": type(error).__name__,
                        "attempt": attempt,
                        "delay_s": delay,
                        "topic": record.topic,
                        "offset": record.offset,
                    },
                )
                RETRIES.labels(topic=record.topic).inc()
                await asyncio.sleep(delay)
                continue
            log.exception(
                "message dead-lettered",
                extra={
                    "error_class": type(error).__name__,
                    "attempt": attempt,
                    "topic": record.topic,
                    "partition": record.partition,
                    "offset": record.offset,
                },
            )
            try:
                await publish_all(
                    broker, settings, [dead_letter(record, dlq_topic, error, attempt)]
                )
            except Exception:
                await asyncio.sleep(1.0)  # the DLQ is unreachable: redeliver, but not in a hot loop
                raise
            return "dead_lettered"
        else:
            return "handled"
    return "handled"  # unreachable: the last attempt returns or dead-letters


def subscribe_guarded(
    broker: KafkaBroker,
    settings: ServiceSettings,
    *,
    topic: str,
    group_id: str,
    dlq_topic: str,
    work: Callable[[ConsumerRecord[bytes, bytes]], Awaitable[None]],
) -> None:
    """Subscribe `work` to a contract topic with the safe consumer defaults, guarded by retries
    and the dead-letter topic."""

    @broker.subscriber(
        settings.topic(topic), group_id=group_id, auto_offset_reset=AUTO_OFFSET_RESET
    )
    async def on_message(message: KafkaMessage) -> None:
        record = record_of(message)
        await handle_guarded(
            lambda: work(record),
            record=record,
            broker=broker,
            settings=settings,
            dlq_topic=dlq_topic,
        )
