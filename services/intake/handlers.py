"""Intake handlers.

Consumes `caf.inbound.v1`. Emits `caf.grants.accepted.v1` (accepted grants, withdrawals and
revocations, keyed by taxpayer_ref), rejections on `caf.events.v1`, and what cannot be decoded to
`caf.inbound.dlq.v1`. Decode → dedup → rules → record → publish → mark published → commit.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from aiokafka import ConsumerRecord
from faststream.kafka import KafkaBroker

from caf_runtime.clock import Clock, business_day
from caf_runtime.guard import dead_letter, subscribe_guarded
from caf_runtime.ledger import handle_once
from caf_runtime.outputs import Output, publish_all
from schemas import topics
from schemas.codec import decode_inbound, readable_message_id
from schemas.errors import ContractError
from schemas.ids import keyed_digest, message_ref, taxpayer_ref
from schemas.inbound import FormType, InboundMessage, Revocation, Submission, Withdrawal
from schemas.values import normalize_tin, tin_last4
from services.intake.config import IntakeSettings
from services.intake.outcomes import (
    SCHEMA,
    Subject,
    rejection_event,
    revocation_outputs,
    submission_outputs,
    withdrawal_outputs,
)
from services.intake.rules import (
    Assessment,
    assess_revocation,
    assess_submission,
    assess_withdrawal,
    form_fingerprint,
)
from services.intake.store import IntakeStore, RecordResult

log = logging.getLogger(__name__)

Publish = Callable[[list[Output]], Awaitable[None]]
NOT_YET_SUPPORTED = frozenset({"tpa_request", "tpa_decision"})


class UnsupportedKindError(Exception):
    """A known kind whose handling is not deployed yet; dead-lettered so it can be replayed."""


class IntakeHandler:
    """Turns one inbound record into its recorded, published outcome."""

    def __init__(self, store: IntakeStore, publish: Publish, clock: Clock, key: bytes) -> None:
        self._store = store
        self._publish = publish
        self._clock = clock
        self._key = key

    async def handle(self, record: ConsumerRecord[bytes, bytes]) -> None:
        raw = record.value or b""
        try:
            message = decode_inbound(raw)
        except ContractError as error:
            await self._undecodable(record, raw, error)
            return
        if message.kind in NOT_YET_SUPPORTED:
            unsupported = UnsupportedKindError(f"kind {message.kind} is not handled by this intake")
            await self._publish([dead_letter(record, topics.INBOUND_DLQ, unsupported, 1)])
            return

        async def decide_and_record() -> list[Output] | None:
            outputs, fingerprint = await self._decide(message)
            now = self._clock.now()
            result = await self._store.record(message.message_id, outputs, now, fingerprint)
            return outputs if result is RecordResult.RECORDED else None

        handled = await handle_once(
            self._store.ledger, message.message_id, decide_and_record, self._publish
        )
        log.info(
            "message handled" if handled else "duplicate message dropped (IN-02)",
            extra={"message_id": message.message_id, "kind": message.kind},
        )

    async def _decide(self, message: InboundMessage) -> tuple[list[Output], str | None]:
        now = self._clock.now()
        assessment: Assessment
        if isinstance(message, Submission):
            assessment = assess_submission(message)
        elif isinstance(message, Withdrawal):
            assessment = assess_withdrawal(message, business_day(now))
        elif isinstance(message, Revocation):
            assessment = assess_revocation(message, business_day(now))
        else:  # pragma: no cover - filtered before
            raise UnsupportedKindError(message.kind)
        subject = self._subject(message.message_id, assessment.normalized_tin, message.form, now)
        if isinstance(message, Withdrawal):
            return withdrawal_outputs(message, assessment, subject), None
        if isinstance(message, Revocation):
            return revocation_outputs(message, assessment, subject), None
        fingerprint = None
        duplicate = False
        if assessment.rejection is None and assessment.normalized_tin is not None:
            fingerprint = keyed_digest(
                form_fingerprint(message, assessment.normalized_tin), self._key
            )
            owner = await self._store.fingerprint_owner(fingerprint)
            duplicate = owner is not None and owner != message.message_id
        outputs = submission_outputs(message, assessment, subject, duplicate=duplicate)
        return outputs, None if duplicate else fingerprint

    def _subject(self, message_id: str, tin: str | None, form: object, now: datetime) -> Subject:
        if tin is not None:
            ref, last4 = taxpayer_ref(tin, self._key), tin_last4(tin)
        else:
            ref, last4 = message_ref(message_id, self._key), ""
        readable: FormType | None = "2848" if form == "2848" else "8821" if form == "8821" else None
        return Subject(ref, last4, message_id, readable, now)

    async def _undecodable(
        self, record: ConsumerRecord[bytes, bytes], raw: bytes, error: ContractError
    ) -> None:
        """IN-01: dead letter with error headers; with a readable message id also REJ-SCHEMA."""
        outputs = [dead_letter(record, topics.INBOUND_DLQ, error, 1)]
        message_id = readable_message_id(raw)
        log.info("undecodable message dead-lettered (IN-01)", extra={"codes": error.codes[:5]})
        if message_id is None:
            await self._publish(outputs)
            return

        async def decide_and_record() -> list[Output] | None:
            document = _loose_json(raw)
            now = self._clock.now()
            subject = self._subject(message_id, _readable_tin(document), document.get("form"), now)
            decided = [*outputs, rejection_event(subject, message_id, SCHEMA)]
            result = await self._store.record(message_id, decided, now, None)
            return decided if result is RecordResult.RECORDED else None

        await handle_once(self._store.ledger, message_id, decide_and_record, self._publish)


def _loose_json(raw: bytes) -> dict[str, object]:
    try:
        document = json.loads(raw)
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


def _readable_tin(document: dict[str, object]) -> str | None:
    taxpayer = document.get("taxpayer")
    if not isinstance(taxpayer, dict):
        return None
    tin, tin_type = taxpayer.get("tin"), taxpayer.get("tin_type")
    if not isinstance(tin, str) or tin_type not in ("SSN", "ITIN", "EIN"):
        return None
    try:
        return normalize_tin(tin, tin_type)
    except ContractError:
        return None


def register(
    broker: KafkaBroker, settings: IntakeSettings, store: IntakeStore, clock: Clock
) -> IntakeHandler:
    """Attach the intake subscriber to `broker`."""

    publish = functools.partial(publish_all, broker, settings)
    handler = IntakeHandler(
        store, publish, clock, settings.taxpayer_ref_key.get_secret_value().encode()
    )

    subscribe_guarded(
        broker,
        settings,
        topic=topics.INBOUND,
        group_id=settings.group_id,
        dlq_topic=topics.INBOUND_DLQ,
        work=handler.handle,
    )

    return handler
