"""caf_poster handlers.

Consumes `caf.grants.validated.v1`. Emits on `caf.events.v1`: posted, not processed, rejected,
revoked, withdrawn, CAF number assigned. Each command: load the taxpayer's CAF → decide → write
the whole delta with the recorded outcome in one transaction → publish → commit.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta

from aiokafka import ConsumerRecord
from faststream.kafka import KafkaBroker

from caf_runtime.clock import BUSINESS_ZONE, Clock
from caf_runtime.evidence_bucket import EvidenceStore, EvidenceUnavailable
from caf_runtime.guard import Guard
from caf_runtime.ledger import handle_once
from caf_runtime.outputs import Output, Publish, publish_all
from caf_runtime.timers import NOTHING, Firing, Kind, Timer, TimerKinds
from caf_runtime.topology import REDELIVERY_SUFFIX
from schemas import topics
from schemas.codec import decode_command
from schemas.errors import ContractError
from schemas.evidence import SignatureEvidence
from schemas.grants import (
    CloseRequest,
    ConfirmHeld,
    PostGrant,
    ReviewHold,
    RevokeGrants,
    WithdrawGrants,
)
from services.caf_poster.config import CafPosterSettings
from services.caf_poster.domain import TaxpayerCaf
from services.caf_poster.outcomes import (
    delayed_outputs,
    posting_outputs,
    purge_outputs,
    removal_outputs,
)
from services.caf_poster.rules import (
    EvidenceRetry,
    Posting,
    apply,
    decide_posting,
    decide_purge,
    decide_revocation,
    decide_withdrawal,
    hold_until,
)
from services.caf_poster.store import (
    AwaitEvidence,
    CafStore,
    DecideHeld,
    SaveResult,
    StoreEvidence,
    StudentPurge,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Change:
    """What a decision does: the CAF after it, the events it emits, the timers it sets."""

    after: TaxpayerCaf
    outputs: list[Output]
    timers: tuple[Timer, ...] = ()


class PosterHandler:
    """Applies grant commands to the CAF, one taxpayer at a time."""

    def __init__(
        self,
        store: CafStore,
        publish: Publish,
        clock: Clock,
        reorder_window: timedelta,
        *,
        evidence: EvidenceStore,
        evidence_retry: EvidenceRetry,
    ) -> None:
        self._store = store
        self.timer_kinds = TimerKinds(
            Kind(StoreEvidence, self._store_later),
            Kind(DecideHeld, self._decide_held),
            Kind(AwaitEvidence, self._await_evidence),
            Kind(StudentPurge, self._purge),
        )
        self._publish = publish
        self._clock = clock
        self._reorder_window = reorder_window
        self._evidence = evidence
        self._retry = evidence_retry

    async def on_command(self, record: ConsumerRecord[bytes, bytes]) -> None:
        command = decode_command(record.value or b"")
        if isinstance(command, CloseRequest | ReviewHold | ConfirmHeld) or (
            isinstance(command, PostGrant) and command.review
        ):
            msg = f"{command.action} commands end at the validator, not the poster"
            raise ContractError.single("action", "not_for_poster", msg)
        key = command.grant_id if isinstance(command, PostGrant) else command.message_id
        await handle_once(
            self._store.ledger, key, lambda: self._decide_and_record(command, key), self._publish
        )

    async def fire(self, timer: Timer) -> Firing:
        """PO-12: remove a student grant on its purge day; PO-03: decide a held approval; ES-03:
        try again to store a waiting grant's evidence, and post it once stored; ES-04: store a
        removal's evidence. The CAF changes under its version guard. A kind this version does
        not know fires nothing."""
        return await self.timer_kinds.fire(timer)

    async def _decide_held(self, held: DecideHeld) -> Firing:
        """PO-03: an approval whose reorder window ended."""
        return await self._post_waiting(held.command, None)

    async def _await_evidence(self, waiting: AwaitEvidence) -> Firing:
        """ES-03: a grant whose evidence the store refused before."""
        return await self._post_waiting(waiting.command, waiting)

    async def _post_waiting(self, command: PostGrant, waiting: AwaitEvidence | None) -> Firing:
        """PO-03, ES-03: a grant that waited (for the reorder window, for its evidence)."""
        now = self._clock.now()
        if not await self._stored(command.signature_evidence, now):
            return self._still_waiting(command, waiting, now)
        # read, not remembered: the timer loop writes this delta, and a stale one would fail on
        # every round without the store learning of it
        located = await self._store.locate(command.taxpayer_ref, command.previous_taxpayer_ref)
        command = command.model_copy(
            update={"taxpayer_ref": located.taxpayer_ref, "previous_taxpayer_ref": None}
        )
        change = await self._post(located.caf, command, now)
        changes = self._store.delta(command.taxpayer_ref, located.caf, change.after)
        timers = (self._store.timers.schedule(t) for t in change.timers)
        return Firing(change.outputs, [*changes, *timers])

    async def _purge(self, purge: StudentPurge) -> Firing:
        """PO-12: a student grant removed on its purge day."""
        located = await self._store.locate(purge.taxpayer_ref)
        taxpayer = {"taxpayer_ref": located.taxpayer_ref, "tin_last4": purge.tin_last4}
        caf = located.caf
        removal = decide_purge(caf, purge.grant_id)
        if not removal.losses:
            return NOTHING
        after = apply(caf, removal)
        outputs = purge_outputs(removal, taxpayer, self._clock.now())
        return Firing(outputs, self._store.delta(located.taxpayer_ref, caf, after))

    async def _decide_and_record(
        self, command: PostGrant | WithdrawGrants | RevokeGrants, key: str
    ) -> list[Output] | None:
        now = self._clock.now()
        if isinstance(command, PostGrant):
            waiting = await self._waiting_timer(command, now)
            if waiting is not None:
                return [] if await self._store.hold(key, waiting) else None
        # the CAF where it lives now (after a key rotation: followed or moved), and the command
        # speaking of it by that ref
        located = await self._store.locate(
            command.taxpayer_ref, command.previous_taxpayer_ref, remembered=True
        )
        command = command.model_copy(
            update={"taxpayer_ref": located.taxpayer_ref, "previous_taxpayer_ref": None}
        )
        change = await (
            self._post(located.caf, command, now)
            if isinstance(command, PostGrant)
            else self._remove(located.caf, command, now)
        )
        result = await self._store.save(
            command.taxpayer_ref,
            located.caf,
            change.after,
            key,
            change.outputs,
            timers=change.timers,
        )
        if result is not SaveResult.SAVED:
            log.info(
                "concurrent write; deciding again", extra={"grant_id": key, "result": result.value}
            )
            return None
        log.info(
            "decision recorded",
            extra={
                "grant_id": key,
                "taxpayer_ref": command.taxpayer_ref,
                "events": len(change.outputs),
            },
        )
        return change.outputs

    async def _waiting_timer(self, command: PostGrant, now: datetime) -> Timer | None:
        """What a grant waits for before it is decided, if anything: PO-03, the reorder window
        (then decided in approval order); ES-03, its evidence stored (tried again later)."""
        if due := hold_until(command, now, self._reorder_window):
            log.info("approval held for the reorder window", extra={"grant_id": command.grant_id})
            return Timer(f"held#{command.grant_id}", due, DecideHeld(command=command))
        if not await self._stored(command.signature_evidence, now):
            return self._waiting(command, attempt=1, since=now, now=now)
        return None

    async def _remove(
        self, caf: TaxpayerCaf, command: WithdrawGrants | RevokeGrants, now: datetime
    ) -> Change:
        """PO-09 a withdrawal, PO-10 a revocation. ES-04: it does not wait for its evidence;
        a timer stores what the store does not take now."""
        removal = (
            decide_revocation(caf, command)
            if isinstance(command, RevokeGrants)
            else decide_withdrawal(caf, command)
        )
        retain_until = self._retry.retain_until(now)
        refs = [e.ref(retain_until) for e in command.signature_evidence]
        timers: tuple[Timer, ...] = ()
        if removal.rejection is None and not await self._stored(command.signature_evidence, now):
            timers = (self._store_evidence_timer(command, retain_until, 1, now),)
        return Change(apply(caf, removal), removal_outputs(command, removal, now, refs), timers)

    async def _stored(self, evidence: list[SignatureEvidence], now: datetime) -> bool:
        """ES-03, ES-04: the evidence objects are stored and locked (none: nothing to store)."""
        if not evidence:
            return True
        try:
            await self._evidence.store(evidence, self._retry.retain_until(now))
        except EvidenceUnavailable as error:
            log.warning("signature evidence not stored", extra={"error": str(error)})
            return False
        return True

    def _waiting(
        self, command: PostGrant, *, attempt: int, since: datetime, now: datetime
    ) -> Timer:
        """ES-03: the timer that tries again to store a waiting grant's evidence."""
        return Timer(
            f"evidence#{command.grant_id}#{attempt}",
            self._retry.next_try(now, attempt),
            AwaitEvidence(command=command, attempt=attempt, since=since),
        )

    def _still_waiting(
        self, command: PostGrant, waiting: AwaitEvidence | None, now: datetime
    ) -> Firing:
        """ES-03: the store refused again: try later; past the listed delays, say so once."""
        attempt = (waiting.attempt if waiting is not None else 0) + 1
        since = waiting.since if waiting is not None and waiting.since is not None else now
        outputs = (
            delayed_outputs(command, since=since, attempts=attempt, now=now)
            if self._retry.announces_delay(attempt)
            else []
        )
        next_timer = self._waiting(command, attempt=attempt, since=since, now=now)
        return Firing(outputs, [self._store.timers.schedule(next_timer)])

    def _store_evidence_timer(
        self,
        command: WithdrawGrants | RevokeGrants,
        retain_until: datetime,
        attempt: int,
        now: datetime,
    ) -> Timer:
        later = StoreEvidence(
            evidence=command.signature_evidence,
            retain_until=retain_until,
            attempt=attempt,
            message_id=command.message_id,
        )
        return self._store_evidence_retry(later, now)

    def _store_evidence_retry(self, later: StoreEvidence, now: datetime) -> Timer:
        return Timer(
            f"store-evidence#{later.message_id}#{later.attempt}",
            self._retry.next_try(now, later.attempt),
            later,
        )

    async def _store_later(self, later: StoreEvidence) -> Firing:
        """ES-04: store a removal's evidence; while the store refuses, try again later."""
        try:
            await self._evidence.store(later.evidence, later.retain_until)
        except EvidenceUnavailable:
            again = later.model_copy(update={"attempt": later.attempt + 1})
            next_timer = self._store_evidence_retry(again, self._clock.now())
            return Firing([], [self._store.timers.schedule(next_timer)])
        return NOTHING

    async def _post(self, caf: TaxpayerCaf, command: PostGrant, now: datetime) -> Change:
        posting = decide_posting(caf, command, command.caf_number)
        assigned = command.caf_number_assigned  # PO-08: the validator gave it (CN-02)
        if posting.grant is not None:
            number = posting.grant.caf_number
            if number is None:  # a command validated before CN-02: number it here
                number = await self._store.next_caf_number()
                assigned = True
            posting = replace(
                posting,
                grant=replace(posting.grant, caf_number=number, posted_at=now.isoformat()),
            )
        retain_until = self._retry.retain_until(now)
        outputs = posting_outputs(
            command,
            posting,
            now,
            caf_number_assigned=assigned,
            signature_refs=[e.ref(retain_until) for e in command.signature_evidence],
        )
        return Change(apply(caf, posting), outputs, purge_timers(command, posting))


def purge_timers(command: PostGrant, posting: Posting) -> tuple[Timer, ...]:
    """PO-12: a posted student grant is removed on its purge day (midnight, business zone)."""
    grant = posting.grant
    if grant is None or grant.purge_on is None:
        return ()
    due = datetime.combine(grant.purge_on, time(), tzinfo=BUSINESS_ZONE)
    payload = StudentPurge(
        taxpayer_ref=command.taxpayer_ref, tin_last4=command.tin_last4, grant_id=grant.grant_id
    )
    return (Timer(f"purge#{grant.grant_id}", due, payload),)


def register(
    broker: KafkaBroker,
    settings: CafPosterSettings,
    store: CafStore,
    clock: Clock,
    evidence: EvidenceStore,
) -> PosterHandler:
    """Attach the poster's subscriber to `broker`."""

    publish = functools.partial(publish_all, broker, settings)
    handler = PosterHandler(
        store,
        publish,
        clock,
        timedelta(seconds=settings.reorder_window_s),
        evidence=evidence,
        evidence_retry=settings.evidence_retry(),
    )

    guard = Guard(
        broker,
        settings,
        retry_topic=topics.POSTER_RETRY,
        dlq_topic=topics.POSTER_DLQ,
        dependencies=store.ping,
    )
    guard.subscribe(topics.GRANTS_VALIDATED, settings.group_id, handler.on_command)
    guard.subscribe_retries(settings.group_id + REDELIVERY_SUFFIX)

    return handler
