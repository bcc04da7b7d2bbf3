"""Retries, a retry topic and a dead-letter topic: no message blocks its partition or disappears.

Each service has one `Guard`. It runs every consumed message's work and decides what a failure
means:

- a **permanent** error (the message can never be handled: a bug, a shape nobody expected) goes
  straight to the service's dead-letter topic, with error headers, and the offset is committed;
- a **transient** error (throttling, a timeout, a broker leader moving) is retried in place with
  bounded exponential backoff;
- when the retries are used up, the guard asks whether the service's dependencies answer at all.
  If they do not (DynamoDB or the broker is down), the failure is not this message's: every message
  would fail the same way, so the guard waits for the outage to end, bounded, and tries again,
  instead of dead-lettering healthy traffic;
- if the dependencies answer and this message still fails, it moves to the service's **retry
  topic** with a not-before time; the guard's retry consumer runs it again after each delay of the
  policy and, after the last round, dead-letters it. Meanwhile its partition moves on.

Messages that take the retry topic may be decided after later messages of the same key; every
consumer is idempotent and the poster's version condition keeps the CAF consistent.
Only when the retry or dead-letter topic itself cannot be reached does an error escape, after a
pause, so the message is redelivered rather than lost or spun on.

A service whose input carries taxpayer data in plaintext (intake) gives its guard a `Sealer`: the
copies it writes to its retry and dead-letter topics are then sealed (`caf_runtime.envelope`),
and only the error headers stay readable. `error-message` never repeats input text: a contract
error is told by its field paths and codes, any other error with digit runs removed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from aiokafka import ConsumerRecord
from aiokafka.errors import KafkaError
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as AwsConnectionError
from faststream.kafka import KafkaBroker, KafkaMessage

from caf_runtime.broker import AUTO_OFFSET_RESET, record_of, records_of
from caf_runtime.config import ServiceSettings
from caf_runtime.envelope import FORMAT, HEADER, KID_HEADER, EnvelopeError, Sealer, is_sealed
from caf_runtime.group_writer import UnprocessedItemsError
from caf_runtime.metrics import HANDLING, MESSAGES, OUTAGE_WAITING, RETRIES
from caf_runtime.outputs import Output, publish_all
from schemas.errors import ContractError
from schemas.values import redact_numbers

log = logging.getLogger(__name__)

Work = Callable[[ConsumerRecord[bytes, bytes]], Awaitable[None]]
Probe = Callable[[], Awaitable[bool]]

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
# The reason codes a cancelled transaction carries per item (not the error codes above).
_TRANSIENT_CANCELLATION_REASONS = frozenset(
    {"TransactionConflict", "ProvisionedThroughputExceeded", "ThrottlingError"}
)
# Headers the guard writes; a message taken from the retry topic is handed to its work without them.
CONTROL_HEADERS = frozenset(
    {
        "content-type",
        "error-class",
        "error-message",
        "original-topic",
        "original-partition",
        "original-offset",
        "original-timestamp",
        "first-failed-at",
        "failed-at",
        "attempt-count",
        "retry-round",
        "retry-not-before",
    }
)
# A sealed copy's `content-encryption` and `encryption-kid` are not control headers: sealing a
# copy that is itself sealed (a parked decision failing again) keeps them inside, so the inner
# envelope is recognised when the outer one is opened.


class BodyWithheld(Exception):  # noqa: N818 - the error-class header names it
    """The record must not be kept (it carries an IP PIN, PT-05): it is dead-lettered at once,
    never retried, and its copy keeps only the error headers, not its key, value or headers."""


def is_transient(error: BaseException) -> bool:
    """True for failures worth retrying: the same message may succeed a moment later."""
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        if code == "TransactionCanceledException":
            reasons = error.response.get("CancellationReasons", [])
            return any(r.get("Code") in _TRANSIENT_CANCELLATION_REASONS for r in reasons)
        return code in _TRANSIENT_AWS_CODES
    return isinstance(
        error,
        KafkaError
        | AwsConnectionError
        | HTTPClientError
        | TimeoutError
        | OSError
        | UnprocessedItemsError,
    )


@dataclass(frozen=True)
class RetryPolicy:
    """How hard the guard tries before giving a message up to the dead-letter topic."""

    attempts: int = 4  # in place, per delivery
    base_delay_s: float = 0.2  # then x4 per attempt: 0.2, 0.8, 3.2 s
    rounds_s: tuple[float, ...] = (5.0, 30.0, 120.0)  # delays of the rounds via the retry topic
    outage_limit_s: float = 300.0  # longest wait for unreachable dependencies, per message
    outage_poll_s: float = 1.0


@dataclass(frozen=True)
class Failure:
    """Where and how a message first failed; carried in headers through the retry rounds."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    first_failed_at: str
    attempts: int
    round: int = 0

    @classmethod
    def first(cls, record: ConsumerRecord[bytes, bytes], topic: str, attempts: int) -> Failure:
        return cls(
            topic=topic,
            partition=record.partition,
            offset=record.offset,
            timestamp=record.timestamp,
            first_failed_at=_now_iso(),
            attempts=attempts,
        )

    @classmethod
    def from_headers(cls, headers: dict[str, str], topic: str) -> Failure:
        return cls(
            topic=headers.get("original-topic", topic),
            partition=int(headers.get("original-partition", "-1")),
            offset=int(headers.get("original-offset", "-1")),
            timestamp=int(headers.get("original-timestamp", "0")),
            first_failed_at=headers.get("first-failed-at", _now_iso()),
            attempts=int(headers.get("attempt-count", "0")),
            round=int(headers.get("retry-round", "0")),
        )

    def headers(self, error: BaseException) -> dict[str, str]:
        return {
            "error-class": type(error).__name__,
            "error-message": error_text(error),
            "original-topic": self.topic,
            "original-partition": str(self.partition),
            "original-offset": str(self.offset),
            "original-timestamp": str(self.timestamp),
            "first-failed-at": self.first_failed_at,
            "failed-at": _now_iso(),
            "attempt-count": str(self.attempts),
        }


def error_text(error: BaseException) -> str:
    """What an error header may say: field paths and codes of a contract error, else the
    error's words with digit runs removed; never the input's text, at most 500 characters."""
    if isinstance(error, ContractError):
        text = "; ".join(f"{p.loc or '<message>'}: {p.code}" for p in error.problems[:10])
    else:
        text = str(error)
    return redact_numbers(text)[:500]


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _headers_of(record: ConsumerRecord[bytes, bytes]) -> dict[str, str]:
    return {k: v.decode(errors="replace") for k, v in record.headers or ()}


def _payload_headers(record: ConsumerRecord[bytes, bytes]) -> dict[str, str]:
    return {k: v for k, v in _headers_of(record).items() if k not in CONTROL_HEADERS}


def copy_of(
    record: ConsumerRecord[bytes, bytes],
    topic: str,
    control: dict[str, str],
    sealer: Sealer | None = None,
) -> Output:
    """The record for `topic` with the `control` headers: its original key, bytes and headers,
    or, with a sealer, those three sealed into the value (no key; only `control` readable)."""
    key = record.key.decode(errors="replace") if record.key is not None else None
    value = record.value if record.value is not None else b""
    payload = _payload_headers(record)
    if sealer is None:
        return Output(topic=topic, key=key, value=value, headers={**payload, **control})
    sealed = sealer.seal(key, value, payload)
    return Output(
        topic=topic,
        key=None,
        value=sealed,
        headers={**control, HEADER: FORMAT, KID_HEADER: sealer.kid},
    )


def opened(record: ConsumerRecord[bytes, bytes], sealer: Sealer) -> ConsumerRecord[bytes, bytes]:
    """A sealed copy as its original record (key, bytes, headers) with its control headers;
    `EnvelopeError` if it does not open."""
    headers = _headers_of(record)
    original = sealer.open(record.value or b"")
    if original.value is None:
        msg = f"the sealed copy kept only the size of its {original.value_bytes}-byte value"
        raise EnvelopeError(msg)
    control = {k: v for k, v in headers.items() if k in CONTROL_HEADERS}
    merged = {**original.headers, **control}
    return dataclasses.replace(
        record,
        key=original.key.encode() if original.key is not None else None,
        value=original.value,
        headers=[(k, v.encode()) for k, v in merged.items()],
    )


def dead_letter(
    record: ConsumerRecord[bytes, bytes],
    topic: str,
    error: BaseException,
    attempts: int,
    *,
    failure: Failure | None = None,
    sealer: Sealer | None = None,
) -> Output:
    """The original bytes and key with the contract's error headers (sealed with a sealer)."""
    failure = failure or Failure.first(record, record.topic, attempts)
    failure = dataclasses.replace(failure, attempts=attempts)
    return copy_of(record, topic, failure.headers(error), sealer)


class Guard:
    """One service's subscriptions, with retries, its retry topic and its dead-letter topic."""

    def __init__(
        self,
        broker: KafkaBroker,
        settings: ServiceSettings,
        *,
        retry_topic: str,
        dlq_topic: str,
        dependencies: Probe | None = None,
        policy: RetryPolicy | None = None,
        sealer: Sealer | None = None,
    ) -> None:
        self._broker = broker
        self._sealer = sealer
        self._settings = settings
        self._retry_topic = retry_topic
        self._dlq_topic = dlq_topic
        self._dependencies = dependencies
        self._policy = policy or RetryPolicy()
        self._work: dict[str, Work] = {}

    def subscribe(self, topic: str, group_id: str, work: Work) -> None:
        """Consume contract topic `topic` in `group_id`, committing after `work` is done:
        record by record, or poll by poll with `CAF_BATCH_MAX_RECORDS` (`handle_batch`)."""
        self._work[self._settings.topic(topic)] = work
        if self._settings.batch_max_records:
            self._subscribe_batches(topic, group_id, work)
            return

        @self._broker.subscriber(
            self._settings.topic(topic),
            group_id=group_id,
            auto_offset_reset=AUTO_OFFSET_RESET,
            max_workers=self._settings.consumers_per_topic,
        )
        async def on_message(message: KafkaMessage) -> None:
            record = record_of(message)
            await self._timed(record, self.handle(record, work))

    def _subscribe_batches(self, topic: str, group_id: str, work: Work) -> None:
        @self._broker.subscriber(
            self._settings.topic(topic),
            group_id=group_id,
            auto_offset_reset=AUTO_OFFSET_RESET,
            batch=True,
            max_records=self._settings.batch_max_records,
            batch_timeout_ms=self._settings.batch_timeout_ms,
        )
        async def on_batch(message: KafkaMessage) -> None:
            await self.handle_batch(records_of(message), work)

    async def handle_batch(
        self, records: Sequence[ConsumerRecord[bytes, bytes]], work: Work
    ) -> None:
        """The records of one poll: each key's in order (the order the contract promises),
        the keys concurrently, at most `CAF_BATCH_CONCURRENCY` at a time, each record with its
        own retries, retry-topic round or dead letter (`handle`). Records without a key keep
        their partition's order. Concurrent records share DynamoDB calls (group reads and
        transactions). The offsets are committed once, after every record has its outcome. If
        an outcome cannot be written (the retry or dead-letter topic unreachable), the other
        keys still finish, then the error escapes: every partition of the poll is rewound to
        its first record and redelivered (records already handled are recognised by their
        ledgers)."""
        by_key: dict[tuple[str, int, bytes | None], list[ConsumerRecord[bytes, bytes]]] = {}
        for record in records:
            by_key.setdefault((record.topic, record.partition, record.key), []).append(record)
        room = asyncio.Semaphore(self._settings.batch_concurrency)

        async def in_order(sequence: list[ConsumerRecord[bytes, bytes]]) -> None:
            async with room:
                for record in sequence:
                    await self._timed(record, self.handle(record, work))

        ended = await asyncio.gather(
            *(in_order(sequence) for sequence in by_key.values()), return_exceptions=True
        )
        for outcome in ended:
            if isinstance(outcome, BaseException):
                raise outcome

    def subscribe_retries(self, group_id: str) -> None:
        """Consume the retry topic: each message runs again, after its not-before time, with
        the work of the topic it came from."""

        @self._broker.subscriber(
            self._settings.topic(self._retry_topic),
            group_id=group_id,
            auto_offset_reset=AUTO_OFFSET_RESET,
        )
        async def on_retry(message: KafkaMessage) -> None:
            record = record_of(message)
            await self._timed(record, self.handle_retry(record))

    async def _timed(self, record: ConsumerRecord[bytes, bytes], handling: Awaitable[str]) -> None:
        started = time.monotonic()
        try:
            outcome = await handling
        finally:
            HANDLING.labels(topic=self._name(record.topic)).observe(time.monotonic() - started)
        MESSAGES.labels(topic=self._name(record.topic), outcome=outcome).inc()

    def _name(self, deployed_topic: str) -> str:
        return deployed_topic.removeprefix(self._settings.topic_prefix)

    async def handle(self, record: ConsumerRecord[bytes, bytes], work: Work) -> str:
        """Run `work` for a message of a subscribed topic; return how it ended."""
        error, attempts = await self._run(work, record)
        if error is None:
            return "handled"
        failure = Failure.first(record, record.topic, attempts)
        return await self._give_up(record, error, failure)

    async def handle_retry(self, record: ConsumerRecord[bytes, bytes]) -> str:
        """Run a message from the retry topic again once its not-before time has come."""
        headers = _headers_of(record)
        failure = Failure.from_headers(headers, record.topic)
        work = self._work.get(failure.topic)
        if work is None:
            unknown = LookupError(f"no work for the original topic {failure.topic!r}")
            await self._publish([self._dead_letter_as_is(record, unknown, failure)])
            return "dead_lettered"
        if self._sealer is not None and is_sealed(headers):
            try:
                record = opened(record, self._sealer)
            except EnvelopeError as unopened:
                await self._publish([self._dead_letter_as_is(record, unopened, failure)])
                return "dead_lettered"
        await self._sleep_until(headers.get("retry-not-before"), max(self._policy.rounds_s))
        original = dataclasses.replace(
            record,
            topic=failure.topic,
            partition=failure.partition,
            offset=failure.offset,
            timestamp=failure.timestamp,
            headers=[(k, v.encode()) for k, v in _payload_headers(record).items()],
        )
        error, attempts = await self._run(work, original)
        if error is None:
            return "handled"
        failure = dataclasses.replace(failure, attempts=failure.attempts + attempts)
        return await self._give_up(original, error, failure)

    async def _run(
        self, work: Work, record: ConsumerRecord[bytes, bytes]
    ) -> tuple[Exception | None, int]:
        """Try `work` with in-place retries; (None, attempts) on success, else the last error."""
        policy = self._policy
        attempt = total = 0
        outage_s = 0.0
        while True:
            attempt += 1
            try:
                await work(record)
            except Exception as error:  # noqa: BLE001 - every failure gets an outcome here
                if not is_transient(error):
                    return error, total + attempt
                RETRIES.labels(topic=self._name(record.topic)).inc()
                if attempt < policy.attempts:
                    await asyncio.sleep(policy.base_delay_s * 4 ** (attempt - 1))
                    continue
                waited = await self._wait_out_outage(
                    error, record, policy.outage_limit_s - outage_s
                )
                if waited is None:
                    return error, total + attempt
                outage_s += waited
                total += attempt
                attempt = 0  # the outage was not this message's fault: a fresh set of attempts
            else:
                return None, total + attempt

    async def _wait_out_outage(
        self, error: Exception, record: ConsumerRecord[bytes, bytes], budget_s: float
    ) -> float | None:
        """When the dependencies do not answer, wait (at most `budget_s`) until they do and
        return the time waited; None when they answer (the failure is this message's)."""
        if await self._answering():
            return None
        log.warning(
            "dependencies unreachable; waiting before retrying",
            extra={
                "error_class": type(error).__name__,
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
            },
        )
        started = time.monotonic()
        OUTAGE_WAITING.inc()
        try:
            while time.monotonic() - started < budget_s:
                await asyncio.sleep(self._policy.outage_poll_s)
                if await self._answering():
                    log.info("dependencies answer again; retrying")
                    return time.monotonic() - started
        finally:
            OUTAGE_WAITING.dec()
        return None

    async def _answering(self) -> bool:
        try:
            answering = await self._broker.ping(timeout=2.0)
            return answering and (self._dependencies is None or await self._dependencies())
        except Exception:  # noqa: BLE001 - an unreachable dependency fails in any way
            return False

    async def _give_up(
        self, record: ConsumerRecord[bytes, bytes], error: Exception, failure: Failure
    ) -> str:
        rounds = self._policy.rounds_s
        if isinstance(error, BodyWithheld):
            log.error(
                "message dead-lettered, body withheld", extra=self._context(record, error, failure)
            )
            withheld = dataclasses.replace(
                record,
                key=None,
                value=b"",
                headers=[],
                serialized_key_size=0,
                serialized_value_size=0,
            )
            await self._publish(
                [dead_letter(withheld, self._dlq_topic, error, failure.attempts, failure=failure)]
            )
            return "dead_lettered"
        if is_transient(error) and failure.round < len(rounds):
            delay = rounds[failure.round]
            not_before = datetime.now(UTC) + timedelta(seconds=delay)
            later = dataclasses.replace(failure, round=failure.round + 1)
            log.warning(
                "message moved to the retry topic",
                extra=self._context(record, error, later) | {"delay_s": delay},
            )
            control = {
                **later.headers(error),
                "retry-round": str(later.round),
                "retry-not-before": not_before.isoformat(timespec="milliseconds"),
            }
            await self._publish([copy_of(record, self._retry_topic, control, self._sealer)])
            return "retry_scheduled"
        log.error("message dead-lettered", extra=self._context(record, error, failure))
        letter = dead_letter(
            record, self._dlq_topic, error, failure.attempts, failure=failure, sealer=self._sealer
        )
        await self._publish([letter])
        return "dead_lettered"

    def _dead_letter_as_is(
        self, record: ConsumerRecord[bytes, bytes], error: Exception, failure: Failure
    ) -> Output:
        """A retry-topic record that cannot run, dead-lettered with its bytes and headers
        unchanged (a sealed one stays sealed)."""
        return dead_letter(record, self._dlq_topic, error, failure.attempts, failure=failure)

    def _context(
        self, record: ConsumerRecord[bytes, bytes], error: Exception, failure: Failure
    ) -> dict[str, object]:
        return {
            "error_class": type(error).__name__,
            "attempts": failure.attempts,
            "round": failure.round,
            "topic": self._name(failure.topic),
            "partition": failure.partition,
            "offset": failure.offset,
        }

    async def _publish(self, outputs: list[Output]) -> None:
        try:
            await publish_all(self._broker, self._settings, outputs)
        except Exception:
            await asyncio.sleep(1.0)  # the topic is unreachable: redeliver, but not in a hot loop
            raise

    @staticmethod
    async def _sleep_until(instant: str | None, longest_s: float) -> None:
        """Wait for a retry's not-before time, never longer than the longest round (AU-03)."""
        if not instant:
            return
        try:
            due = datetime.fromisoformat(instant)
            wait = (due - datetime.now(UTC)).total_seconds()
        except (ValueError, TypeError):  # unreadable, or without a time zone
            return
        await asyncio.sleep(min(max(0.0, wait), longest_s))
