"""Validator handlers.

Consumes `caf.practitioners.v1` (into the registry view), `caf.protected.v1` (into the IP PIN
program view) and `caf.grants.accepted.v1`. Emits
`caf.grants.validated.v1` (grants in good standing, withdrawals and revocations passed through)
and rejections / holds on `caf.events.v1`. Undecodable records go to `caf.validator.dlq.v1`.
"""

from __future__ import annotations

import functools
import json
import logging
from dataclasses import dataclass
from datetime import timedelta

from aiokafka import ConsumerRecord
from faststream.kafka import KafkaBroker

from caf_runtime.authenticity import RecordVerifier
from caf_runtime.clock import Clock, business_day
from caf_runtime.feed_barrier import FeedWait
from caf_runtime.guard import BodyWithheld, Guard
from caf_runtime.ledger import handle_once
from caf_runtime.outputs import Output, Publish, publish_all
from caf_runtime.timers import NOTHING, Firing, Kind, Timer, TimerKinds
from caf_runtime.topology import REDELIVERY_SUFFIX, REVIEWS_SUFFIX, SLA_SUFFIX
from schemas import topics
from schemas.codec import decode_command, decode_practitioner, decode_protection, encode
from schemas.codes import ReasonCode, Rejection, RuleId
from schemas.events import (
    TERMINAL_TYPES,
    refusal_event,
)
from schemas.grants import (
    CloseRequest,
    ConfirmHeld,
    GrantCommand,
    PostGrant,
    ReviewHold,
    refusal_of,
)
from schemas.ip_pin import carries_ip_pin
from schemas.registry import PractitionerRecord
from schemas.values import normalize_caf_number
from services.validator.config import ValidatorSettings
from services.validator.outcomes import (
    close_event,
    held_event_of,
    next_deadline,
    pending,
    sla_event,
    sla_start,
)
from services.validator.protection import (
    NOT_CONFIRMED,
    NOT_HELD,
    REFUSED_BY_TAXPAYER,
    confirm_by,
    confirmation_due,
    taxpayer_hold,
)
from services.validator.rules import assess_grant, assess_standing
from services.validator.store import (
    Answer,
    ConfirmationDue,
    HoldDecision,
    NumberGiven,
    PostingDeadline,
    ReviewVerdict,
    Sighting,
    TaxpayerHold,
    ValidatorStore,
)

log = logging.getLogger(__name__)

VELOCITY_WINDOW = timedelta(hours=1)


class ValidatorHandler:
    """Judges grants against the registry view; keeps the view up to date."""

    def __init__(
        self,
        store: ValidatorStore,
        publish: Publish,
        clock: Clock,
        barrier: FeedWait,
        velocity_limit: int,
        *,
        verifier: RecordVerifier,
        protected: FeedWait | None = None,
    ) -> None:
        self._verifier = verifier
        self._protected = protected
        self._store = store
        self.timer_kinds = TimerKinds(
            Kind(PostingDeadline, self._deadline_passed), Kind(ConfirmationDue, self._unconfirmed)
        )
        self._publish = publish
        self._clock = clock
        self._barrier = barrier
        self._velocity_limit = velocity_limit

    async def on_registry_record(self, record: ConsumerRecord[bytes, bytes]) -> None:
        """A registry record counts only signed by the registry feed (AU-01: SignatureInvalid
        dead-letters it; a tombstone's signature is over its key)."""
        await self._verifier.verify(record)
        key = normalize_caf_number((record.key or b"").decode(errors="replace"))
        if record.value is not None:
            practitioner = decode_practitioner(record.value)
            if practitioner.caf_number != key:
                msg = f"record for CAF {practitioner.caf_number} published under another key"
                raise ValueError(msg)
        applied = await self._store.apply_registry(
            key, record.value, record.partition, record.offset
        )
        log.info(
            "registry record applied" if applied else "older registry record ignored",
            extra={"caf_number": key, "tombstone": record.value is None},
        )

    async def on_protection_record(self, record: ConsumerRecord[bytes, bytes]) -> None:
        """PT-01: an IP PIN program record counts only signed by the IP PIN feed (AU-01); it
        names the program year and basis, never a PIN (one carrying a PIN is dead-lettered with
        its body withheld, PT-05)."""
        if record.value is not None and carries_ip_pin(record.value):
            msg = "a program record carrying an IP PIN"
            raise BodyWithheld(msg)
        await self._verifier.verify(record, topics.PROTECTED)
        key = (record.key or b"").decode(errors="replace")
        kept = None
        if record.value is not None:
            protection = decode_protection(record.value)
            if protection.taxpayer_ref != key:
                msg = "a protection record published under another taxpayer's key"
                raise ValueError(msg)
            kept = encode(protection)  # its own fields only: nothing else a feed added (PT-05)
        applied = await self._store.apply_protection(key, kept, record.partition, record.offset)
        log.info(
            "protection record applied" if applied else "older protection record ignored",
            extra={"tombstone": record.value is None},
        )

    async def on_grant(self, record: ConsumerRecord[bytes, bytes]) -> None:
        """A command from intake. An operator's review never comes this way (AU-04: it has its
        own topic, which only the operator's principal writes): one here is dead-lettered."""
        command = decode_command(record.value or b"")
        if isinstance(command, ReviewHold):
            msg = "a hold review on the grant commands topic (reviews have their own)"
            raise TypeError(msg)
        await self._command(record, command)

    async def on_review(self, record: ConsumerRecord[bytes, bytes]) -> None:
        """An operator's decision on a held grant (CN-09); anything else is dead-lettered."""
        command = decode_command(record.value or b"")
        if not isinstance(command, ReviewHold):
            msg = f"a {command.action!r} command on the reviews topic"
            raise TypeError(msg)
        await self._command(record, command)

    async def _command(self, record: ConsumerRecord[bytes, bytes], command: GrantCommand) -> None:
        key = _ledger_key(command)

        async def decide_and_record() -> list[Output] | None:
            decided = await self._decide(command, record.timestamp)
            recorded = await self._store.record(
                key,
                decided.outputs,
                decided.velocity,
                (*sla_timers(command, decided), *decided.timers),
                hold=decided.hold,
                review=decided.review,
                taxpayer_hold=decided.taxpayer_hold,
                answer=decided.answer,
                verdict=decided.verdict,
            )
            return decided.outputs if recorded else None

        await handle_once(
            self._store.ledger, key, decide_and_record, self._publish, decide_first=True
        )

    async def _decide(self, command: GrantCommand, published_ms: int) -> Decided:
        if isinstance(command, CloseRequest):
            return Decided(await self._close(command))
        if isinstance(command, ReviewHold):
            return await self._review(command)
        if isinstance(command, ConfirmHeld):
            return await self._answer(command)
        if not isinstance(command, PostGrant):
            return Decided([Output.of(topics.GRANTS_VALIDATED, command.taxpayer_ref, command)])
        if (
            command.request_id is not None
            and not command.review
            and await self._store.request_refused(command.request_id)
        ):
            return Decided([])  # the request already ended refused: no second outcome
        await self._barrier.wait_until_applied(published_ms)
        practitioner = await self._registry_record(command)
        given = await self._given(command)
        number = command.caf_number or (
            given.caf_number if given else practitioner.caf_number if practitioner else None
        )
        others = 0
        if number is not None:
            others = await self._store.other_taxpayers(
                number,
                command.taxpayer_ref,
                command.received_at - VELOCITY_WINDOW,
            )
        rejection = assess_grant(command, practitioner, others, self._velocity_limit)
        now = self._clock.now()
        seen = Sighting(number, command.taxpayer_ref, command.received_at) if number else None
        if (rejection is None or rejection.rule == RuleId.VA_07) and not command.review:
            held_for = await self._taxpayer_hold(command, practitioner, published_ms)
            if held_for is not None:  # PT-01, PT-02: the taxpayer's say comes before velocity
                return await self._hold_for_taxpayer(command, practitioner, held_for, seen)
        if rejection is not None and rejection.rule == RuleId.VA_07 and not command.review:
            parked = await self._numbered(command, practitioner)  # CN-09: held for review
            held = held_event_of(parked, rejection, now)
            return Decided([Output.of(topics.EVENTS, command.taxpayer_ref, held)], seen, parked)
        if rejection is not None:
            event = refusal_of(command, rejection, stage="validator", occurred_at=now)
            outputs = [Output.of(topics.EVENTS, command.taxpayer_ref, event)]
            return Decided(outputs, seen, verdict=_verdict(command, refused=True))
        if command.review:
            outputs = [Output.of(topics.EVENTS, command.taxpayer_ref, pending(command, now))]
            return Decided(outputs, seen, verdict=_verdict(command, refused=False))
        validated = await self._numbered(command, practitioner)
        numbered = validated.caf_number
        seen = Sighting(numbered, command.taxpayer_ref, command.received_at) if numbered else None
        return Decided([Output.of(topics.GRANTS_VALIDATED, command.taxpayer_ref, validated)], seen)

    async def _review(self, command: ReviewHold) -> Decided:
        """CN-09: an operator releases a held grant (on to the poster, its SLA timers still
        running from the hold) or refuses it (`REJ-FRAUD-REVIEW`); a grant not held, or already
        decided, is left alone."""
        hold = await self._store.held(command.grant_id)
        if hold is None or hold.status != "held":
            log.info("nothing held to review", extra={"grant_id": command.grant_id})
            return Decided([])
        parked = hold.command
        decision = HoldDecision(
            command.grant_id, command.decision, command.operator, command.why, self._clock.now()
        )
        if command.decision == "release":
            output = Output.of(topics.GRANTS_VALIDATED, parked.taxpayer_ref, parked)
        else:
            rejection = Rejection(
                RuleId.CN_09,
                ReasonCode.REJ_FRAUD_REVIEW,
                "Refused after a review of unusual activity on the CAF number.",
            )
            event = refusal_of(parked, rejection, stage="validator", occurred_at=decision.at)
            output = Output.of(topics.EVENTS, parked.taxpayer_ref, event)
        log.info(
            "held grant reviewed",
            extra={"grant_id": command.grant_id, "decision": command.decision},
        )
        return Decided([output], review=decision)

    async def _taxpayer_hold(
        self, command: PostGrant, practitioner: PractitionerRecord | None, published_ms: int
    ) -> Rejection | None:
        """PT-01, PT-02 on the program view once it holds every record published before the
        grant; the taxpayer is found under either ref during a key rotation; a designee counts as
        registered only by a record of the registry feed (not a number given here, CN-01)."""
        if self._protected is not None:
            await self._protected.wait_until_applied(published_ms)
        protection = await self._store.protection(command.taxpayer_ref)
        if protection is None and command.previous_taxpayer_ref:
            protection = await self._store.protection(command.previous_taxpayer_ref)
        registered = practitioner
        if practitioner is not None and not await self._store.from_feed(practitioner.caf_number):
            registered = None
        return taxpayer_hold(command, protection, registered, business_day(self._clock.now()))

    async def _hold_for_taxpayer(
        self,
        command: PostGrant,
        practitioner: PractitionerRecord | None,
        hold: Rejection,
        seen: Sighting | None,
    ) -> Decided:
        """PT-01, PT-02: park the grant (numbered, as it would post) until its taxpayer answers
        or the 30th New York day after today ends; its posting deadlines start at release."""
        parked = await self._numbered(command, practitioner)
        now = self._clock.now()
        last_day = confirm_by(business_day(now))
        held = held_event_of(parked, hold, now, confirm_by=last_day)
        expiry = Timer(
            timer_id=f"{ConfirmationDue.kind}#{command.grant_id}",
            due=confirmation_due(last_day),
            payload=ConfirmationDue(grant_id=command.grant_id),
        )
        return Decided(
            [Output.of(topics.EVENTS, command.taxpayer_ref, held)],
            seen,
            taxpayer_hold=TaxpayerHold(command.grant_id, parked, "held", last_day.isoformat()),
            timers=(expiry,),
        )

    async def _answer(self, command: ConfirmHeld) -> Decided:
        """PT-03: the protected taxpayer confirms (on to the poster, its representative's
        standing judged again now; its posting deadlines start now) or refuses (`rejected`
        `REJ-PT-REFUSED`) a grant held for them. An answer for a grant not held for that
        taxpayer, no longer held, or given after its last day, is refused `REJ-PT-NOT-HELD`."""
        hold = await self._store.held_for_taxpayer(command.grant_id)
        now = self._clock.now()
        mine = hold is not None and hold.command.taxpayer_ref in {
            command.taxpayer_ref,
            command.previous_taxpayer_ref,
        }
        late = hold is not None and business_day(command.answered_at).isoformat() > hold.confirm_by
        if hold is None or not mine or hold.status != "held" or late:
            refused = refusal_event(
                NOT_HELD,
                stage="validator",
                occurred_at=now,
                taxpayer_ref=command.taxpayer_ref,
                tin_last4=command.tin_last4,
                form=hold.command.form if hold is not None and mine else None,
                message_id=command.message_id,
                grant_id=command.message_id,
                caf_number=None,
                representative_name=None,
            )
            return Decided([Output.of(topics.EVENTS, command.taxpayer_ref, refused)])
        parked = hold.command
        if command.decision == "confirm":
            answer = Answer(command.grant_id, "confirmed", now, command.message_id)
            lapsed = assess_standing(parked, await self._registry_record(parked))
            if lapsed is not None:  # e.g. the number was put pending review meanwhile (MN-06)
                event = refusal_of(parked, lapsed, stage="validator", occurred_at=now)
                return Decided(
                    [Output.of(topics.EVENTS, parked.taxpayer_ref, event)], answer=answer
                )
            released = Output.of(topics.GRANTS_VALIDATED, parked.taxpayer_ref, parked)
            return Decided([released], answer=answer, timers=(sla_start(parked, now),))
        answer = Answer(command.grant_id, "refused", now, command.message_id)
        event = refusal_of(parked, REFUSED_BY_TAXPAYER, stage="validator", occurred_at=now)
        return Decided([Output.of(topics.EVENTS, parked.taxpayer_ref, event)], answer=answer)

    async def _registry_record(self, command: PostGrant) -> PractitionerRecord | None:
        """The record of the grant's CAF number; for a first-time representative, the one
        carrying its PTIN (CN-03), if any."""
        if command.caf_number is not None:
            return await self._store.practitioner(command.caf_number)
        if command.ptin is not None:
            return await self._store.practitioner_by_ptin(command.ptin)
        return None

    @staticmethod
    def _identity(command: PostGrant) -> str:
        """CN-02: who a first-time representative is: the PTIN, else licence and jurisdiction,
        else nobody known (each such grant is its own representative)."""
        return command.ptin or command.licence_key or f"GRANT#{command.grant_id}"

    async def _given(self, command: PostGrant) -> NumberGiven | None:
        if command.caf_number is not None:
            return None
        return await self._store.given_number(self._identity(command), command.grant_id)

    async def _numbered(
        self, command: PostGrant, practitioner: PractitionerRecord | None
    ) -> PostGrant:
        """PO-08, CN-01, CN-02: a first-time representative posts with the number it was given
        before (announced only by the grant it was given to, also when that grant is handled
        again), else the registry's number for its PTIN, else one given now (and learned by the
        registry view at once)."""
        if command.caf_number is not None:
            return command.model_copy(update={"first_time": False})
        given = await self._given(command)
        if given is None and practitioner is not None:
            return command.model_copy(
                update={"caf_number": practitioner.caf_number, "first_time": True}
            )
        if given is None:
            record = PractitionerRecord(
                caf_number="000000000",
                name=command.representative_name,
                status_code="",
                designations=[command.designation] if command.designation else [],
                ptin=command.ptin,
                updated_at=command.received_at,
            )
            identity = self._identity(command)
            given = await self._store.number_for(identity, command.grant_id, record)
        return command.model_copy(
            update={
                "caf_number": given.caf_number,
                "first_time": True,
                "caf_number_assigned": given.new,
            }
        )

    async def on_outcome(self, record: ConsumerRecord[bytes, bytes]) -> None:
        """A terminal event ends the grant's posting deadlines (PO-11)."""
        try:
            event = json.loads(record.value or b"null")
        except ValueError:
            return  # not ours to judge: the notifier dead-letters what it cannot read
        if isinstance(event, dict) and event.get("type") in TERMINAL_TYPES:
            await self._store.mark_ended(str(event.get("grant_id")))

    async def fire(self, timer: Timer) -> Firing:
        return await self.timer_kinds.fire(timer)

    async def _deadline_passed(self, deadline: PostingDeadline) -> Firing:
        """A posting deadline passed: say so, unless the grant already ended; at 24 h, the 48 h
        deadline is scheduled with the claim (a grant that ended by then never gets one)."""
        if await self._store.ended(deadline.grant_id):
            return NOTHING
        event = sla_event(deadline, self._clock.now())
        later = next_deadline(deadline)
        changes = [self._store.timers.schedule(later, once=False)] if later else []
        return Firing([Output.of(topics.EVENTS, event.taxpayer_ref, event)], changes)

    async def _unconfirmed(self, due: ConfirmationDue) -> Firing:
        """PT-04: still held at the end of its last day: `rejected` `REJ-PT-NOT-CONFIRMED`,
        written with the claim on condition it is still held (an answer that won stays)."""
        grant_id = due.grant_id
        hold = await self._store.held_for_taxpayer(grant_id)
        if hold is None or hold.status != "held":
            return NOTHING
        now = self._clock.now()
        event = refusal_of(hold.command, NOT_CONFIRMED, stage="validator", occurred_at=now)
        ended = self._store.answered(Answer(grant_id, "expired", now))
        return Firing([Output.of(topics.EVENTS, event.taxpayer_ref, event)], [ended])

    async def _close(self, command: CloseRequest) -> list[Output]:
        """IN-22 declined, IN-23 expired, or a refused decision: the request's terminal
        outcome, once."""
        if await self._store.request_refused(command.request_id):
            return []
        event = close_event(command, self._clock.now())
        return [Output.of(topics.EVENTS, command.taxpayer_ref, event)]


def sla_timers(command: GrantCommand, decided: Decided) -> tuple[Timer, ...]:
    """PO-11: a grant sent on to the poster (or held for an operator's review, CN-09) is ready
    to post; its deadlines start when intake accepted it. One timer, for the first deadline
    (24 h): its firing schedules the next (`next_deadline`), so a grant that ends in time costs
    one timer item, not two. A grant held for its taxpayer (PT-01) is not ready: its deadlines
    start when the taxpayer confirms it (`sla_start`)."""
    if not isinstance(command, PostGrant):
        return ()
    if decided.hold is None and not any(
        o.topic == topics.GRANTS_VALIDATED for o in decided.outputs
    ):
        return ()
    return (sla_start(command, command.received_at),)


@dataclass(frozen=True)
class Decided:
    """What handling one command decided: the outputs, the velocity sighting to remember, a
    grant to park (CN-09) or an operator's decision on a parked one."""

    outputs: list[Output]
    velocity: Sighting | None = None
    hold: PostGrant | None = None
    review: HoldDecision | None = None
    taxpayer_hold: TaxpayerHold | None = None  # PT-01, PT-02: parked for its taxpayer
    answer: Answer | None = None  # PT-03: the taxpayer's answer ends the hold
    timers: tuple[Timer, ...] = ()  # besides the posting deadlines of `sla_timers`
    verdict: ReviewVerdict | None = None  # IN-22: how a request's review ended


def _verdict(command: PostGrant, *, refused: bool) -> ReviewVerdict | None:
    """IN-22: the verdict a request's review leaves for its approval (none but for reviews)."""
    if not command.review or command.request_id is None:
        return None
    return ReviewVerdict(command.request_id, refused)


def _ledger_key(command: GrantCommand) -> str:
    if isinstance(command, PostGrant):
        return f"review#{command.grant_id}" if command.review else command.grant_id
    if isinstance(command, CloseRequest):
        return f"close#{command.request_id}"
    if isinstance(command, ConfirmHeld):
        return f"answer#{command.message_id}"
    return command.message_id


def register(  # noqa: PLR0917 - the composition root's pieces, each named once
    broker: KafkaBroker,
    settings: ValidatorSettings,
    store: ValidatorStore,
    clock: Clock,
    barrier: FeedWait,
    protected: FeedWait | None = None,
) -> ValidatorHandler:
    """Attach the validator's subscribers to `broker`. Without `protected` (a unit of work
    under a test broker), a grant is judged on the IP PIN program view as it is."""

    publish = functools.partial(publish_all, broker, settings)
    handler = ValidatorHandler(
        store,
        publish,
        clock,
        barrier,
        settings.velocity_limit,
        verifier=RecordVerifier.from_settings(settings),
        protected=protected,
    )

    guard = Guard(
        broker,
        settings,
        retry_topic=topics.VALIDATOR_RETRY,
        dlq_topic=topics.VALIDATOR_DLQ,
        dependencies=store.ping,
    )
    guard.subscribe(topics.PRACTITIONERS, settings.registry_group_id, handler.on_registry_record)
    guard.subscribe(topics.PROTECTED, settings.protected_group_id, handler.on_protection_record)
    guard.subscribe(topics.GRANTS_ACCEPTED, settings.group_id, handler.on_grant)
    guard.subscribe(topics.REVIEWS, settings.group_id + REVIEWS_SUFFIX, handler.on_review)
    guard.subscribe(topics.EVENTS, settings.group_id + SLA_SUFFIX, handler.on_outcome)
    guard.subscribe_retries(settings.group_id + REDELIVERY_SUFFIX)
    return handler
