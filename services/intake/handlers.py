"""Intake handlers.

Consumes `caf.inbound.v1`. Emits `caf.grants.accepted.v1` (accepted grants, withdrawals and
revocations, keyed by taxpayer_ref), rejections on `caf.events.v1`, and what cannot be decoded to
`caf.inbound.dlq.v1`. Decode → dedup → rules → record → publish → mark published → commit.

Plaintext stops here: the copies intake writes elsewhere of a record it could not finish (dead
letters, retry rounds, decisions parked until their request arrives) are sealed
(`caf_runtime.envelope`), and its ledger holds only the outcomes it publishes, never an input.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from aiokafka import ConsumerRecord
from faststream.kafka import KafkaBroker

from caf_runtime.authenticity import (
    CAF_API,
    ONLINE_ACCOUNT,
    RecordVerifier,
    SignatureInvalid,
    Signed,
)
from caf_runtime.clock import Clock, business_day
from caf_runtime.envelope import Sealer, is_sealed
from caf_runtime.feed_barrier import FeedWait
from caf_runtime.guard import BodyWithheld, Guard, copy_of, dead_letter, opened
from caf_runtime.ledger import handle_once
from caf_runtime.outputs import Output, Publish, publish_all
from caf_runtime.timers import NOTHING, Firing, Kind, Timer, TimerKinds
from caf_runtime.topology import OFFICIALS_SUFFIX, REDELIVERY_SUFFIX, RETRY_SUFFIX
from schemas import topics
from schemas.codec import decode_entity, decode_inbound, readable_message_id
from schemas.codes import Rejection
from schemas.entities import DeactivateOfficial
from schemas.errors import ContractError
from schemas.evidence import SignatureEvidence
from schemas.grants import ConfirmHeld
from schemas.ids import official_id
from schemas.inbound import (
    DoDeactivation,
    DoPinRedeem,
    DoPinRequest,
    EntityUserChange,
    FormType,
    InboundMessage,
    ProtectedConfirmation,
    Revocation,
    Submission,
    TaxpayerIdentity,
    TpaDecision,
    TpaRequest,
    Withdrawal,
)
from schemas.ip_pin import carries_ip_pin, pins_in
from schemas.values import normalize_tin, tin_last4
from services.intake.config import IntakeSettings
from services.intake.evidence import (
    SignedBy,
    SigningRecord,
    canonical_content,
    evidence_object,
    is_electronic,
)
from services.intake.identity import (
    Asserted,
    AssertionFailed,
    Check,
    IdentityProviders,
)
from services.intake.official_acts import (
    ActDecision,
    Business,
    OfficialDesk,
    business_of,
    entity_digest,
    readable_ein,
)
from services.intake.officials import NOT_OFFICIAL_APPROVAL, EntityView
from services.intake.outcomes import (
    IP_PIN_COLLECTED,
    SCHEMA,
    UNKNOWN_REQUEST,
    Subject,
    approval_outputs,
    closing_outputs,
    expiry_outputs,
    rejection_event,
    revocation_outputs,
    submission_outputs,
    tpa_request_outputs,
    withdrawal_outputs,
)
from services.intake.pins import PinVault
from services.intake.rules import (
    assess_revocation,
    assess_submission,
    assess_withdrawal,
    check_identity,
    form_fingerprint,
)
from services.intake.store import (
    ExpireRequest,
    FeedPosition,
    IntakeStore,
    RecordResult,
    RequestChange,
)
from services.intake.tpa_rules import (
    DecisionOutcome,
    RequestState,
    assess_tpa_decision,
    assess_tpa_request,
    request_expires_at,
    route_decision,
)

log = logging.getLogger(__name__)

FIRST_SEEN = "first-seen"
NOT_BEFORE = "not-before"
SIGNED_RECORD = "signed-record"  # topic:partition:offset:timestamp of a parked decision


@dataclass(frozen=True)
class Decision:
    """What handling a message decided: its outputs and the state written with them."""

    outputs: list[Output]
    fingerprint: str | None = None
    request: RequestChange | None = None
    timer: Timer | None = None
    writes: tuple[Any, ...] = ()  # Designated Official items (DO-01 … DO-07)


class DecisionTooEarly(Exception):  # noqa: N818 - a signal, not a failure
    """A decision names a request not seen yet: try it again later (IN-21)."""


class IntakeHandler:
    """Turns one inbound record into its recorded, published outcome."""

    def __init__(
        self,
        store: IntakeStore,
        publish: Publish,
        clock: Clock,
        settings: IntakeSettings,
        *,
        verifier: RecordVerifier,
        identities: IdentityProviders,
        sealer: Sealer,
        vault: PinVault,
        entities: FeedWait | None = None,
    ) -> None:
        self._store = store
        self._publish = publish
        self._clock = clock
        self._settings = settings
        self._verifier = verifier
        self._identities = identities
        self._sealer = sealer
        self._refs = settings.ref_keys()
        self._entities = entities
        self._officials = OfficialDesk(store, vault, self._assert_official)
        self.timer_kinds = TimerKinds(Kind(ExpireRequest, self._expire))

    async def handle(self, record: ConsumerRecord[bytes, bytes]) -> None:
        """A record of `caf.inbound.v1`: only its publisher's signature makes it count (AU-01;
        SignatureInvalid dead-letters it, with no event)."""
        await self._handle(record, self._clock.now())

    async def _handle(self, record: ConsumerRecord[bytes, bytes], first_seen: datetime) -> None:
        raw = record.value or b""
        if carries_ip_pin(raw):  # PT-05: before anything could keep a copy of it
            await self._ip_pin_refused(record, raw)
            return
        signed = await self._verifier.verify(record, topics.INBOUND)  # also when parked
        carrier = SigningRecord.of(record)
        try:
            message = decode_inbound(raw)
        except ContractError as error:
            await self._undecodable(record, raw, error)
            return

        attempts = 0

        async def decide_and_record() -> list[Output] | None:
            # IN-03: the first attempt claims the form's fingerprint without reading it (most
            # forms are new); a claim refused by the transaction decides again from the owner.
            nonlocal attempts
            attempts += 1
            decision = await self._decide(
                message, signed, carrier, first_seen, read_fingerprint=attempts > 1
            )
            now = self._clock.now()
            result = await self._store.record(
                message.message_id,
                decision.outputs,
                now,
                fingerprint=decision.fingerprint,
                request=decision.request,
                timer=decision.timer,
                writes=decision.writes,
            )
            return decision.outputs if result is RecordResult.RECORDED else None

        try:
            handled = await handle_once(
                self._store.ledger,
                message.message_id,
                decide_and_record,
                self._publish,
                decide_first=True,
            )
        except DecisionTooEarly:
            await self._retry_later(record, first_seen)
            return
        log.info(
            "message handled" if handled else "duplicate message dropped (IN-02)",
            extra={"message_id": message.message_id, "kind": message.kind},
        )

    async def _decide(
        self,
        message: InboundMessage,
        signed: Signed,
        carrier: SigningRecord,
        first_seen: datetime,
        *,
        read_fingerprint: bool,
    ) -> Decision:
        now = self._clock.now()
        if isinstance(message, DoPinRequest | DoPinRedeem | EntityUserChange | DoDeactivation):
            await self._caught_up(carrier)
            business = await self._business(message.entity, message.message_id, now)
            act = await self._officials.decide(message, business, now)
            return Decision(act.outputs, writes=act.writes)
        if isinstance(message, TpaRequest):
            return await self._decide_request(message, carrier, now)
        if isinstance(message, TpaDecision):
            return await self._decide_decision(message, carrier, now, first_seen)
        if isinstance(message, Revocation):
            return await self._decide_revocation(message, signed, carrier, now)
        if isinstance(message, Withdrawal):
            return self._decide_withdrawal(message, signed, carrier, now)
        if isinstance(message, ProtectedConfirmation):
            return await self._decide_confirmation(message, now)
        return await self._decide_submission(
            message, carrier, now, read_fingerprint=read_fingerprint
        )

    def _decide_withdrawal(
        self, message: Withdrawal, signed: Signed, carrier: SigningRecord, now: datetime
    ) -> Decision:
        from_api = signed.publisher == CAF_API
        assessment = assess_withdrawal(message, business_day(now), from_api=from_api)
        subject = self._subject(message.message_id, assessment.normalized_tin, message.form, now)
        taxpayer = message.taxpayer
        if from_api and assessment.rejection is None and taxpayer.ref and taxpayer.tin_last4:
            # MN-07: the API names the taxpayer by the ref its views hold (the current version)
            subject = Subject(
                taxpayer.ref, taxpayer.tin_last4, message.message_id, message.form, now
            )
        evidence = []
        if is_electronic(message.signature) and assessment.rejection is None:
            by = SignedBy(
                act="withdrawal",
                role="representative",
                signer={"caf_number": assessment.caf_numbers[0]},
                signature=message.signature,
            )
            evidence = [self._evidence(by, message, carrier)]
        return Decision(withdrawal_outputs(message, assessment, subject, evidence))

    async def _decide_submission(
        self, message: Submission, carrier: SigningRecord, now: datetime, *, read_fingerprint: bool
    ) -> Decision:
        assessment = assess_submission(
            message, business_day(now), self._settings.max_receipt_age_days
        )
        subject = self._subject(message.message_id, assessment.normalized_tin, message.form, now)
        fingerprint = None
        duplicate = False
        if assessment.rejection is None and assessment.normalized_tin is not None:
            fingerprint = self._refs.digest(form_fingerprint(message, assessment.normalized_tin))
            owner = await self._store.fingerprint_owner(fingerprint) if read_fingerprint else None
            duplicate = owner is not None and owner != message.message_id
        taxpayer_signature = message.taxpayer.signature

        @functools.cache
        def taxpayer_evidence() -> tuple[SignatureEvidence, ...]:
            """Sealed once, when the first accepted grant asks, and shared by every grant."""
            if not is_electronic(taxpayer_signature):
                return ()
            signed = SignedBy(
                act="submission",
                role="taxpayer",
                signer={"taxpayer_ref": subject.taxpayer_ref},
                signature=taxpayer_signature,
            )
            return (self._evidence(signed, message, carrier),)

        def evidence(index: int) -> list[SignatureEvidence]:
            rep = message.representatives[index]
            if not is_electronic(rep.signature):
                return list(taxpayer_evidence())
            numbers = assessment.caf_numbers
            signer = {"caf_number": numbers[index] if numbers else None, "position": index}
            signed = SignedBy(
                act="submission", role="representative", signer=signer, signature=rep.signature
            )
            return [*taxpayer_evidence(), self._evidence(signed, message, carrier)]

        outputs = submission_outputs(
            message, assessment, subject, duplicate=duplicate, evidence=evidence
        )
        return Decision(outputs, None if duplicate else fingerprint)

    def _evidence(
        self, signed: SignedBy, message: InboundMessage, carrier: SigningRecord
    ) -> SignatureEvidence:
        """ES-01: the sealed evidence object of one electronic signature of `message`."""
        return evidence_object(signed, canonical_content(message), carrier, self._sealer)

    async def _decide_request(
        self, message: TpaRequest, carrier: SigningRecord, now: datetime
    ) -> Decision:
        if await self._store.request(message.request_id) is not None:
            return Decision([])  # the same request again under another message id
        entity = None
        if message.taxpayer.tin_type == "EIN":  # DO-08: a business with an active official
            await self._caught_up(carrier)
            entity = await self._entity(message.taxpayer.tin, now)
        represented = entity is not None and await self._store.has_active_official(entity.entity_id)
        assessment = assess_tpa_request(
            message,
            business_day(now),
            self._settings.max_receipt_age_days,
            business_with_official=represented,
        )
        subject = self._subject(message.message_id, assessment.normalized_tin, message.form, now)
        expires_on = message.received_on + timedelta(days=self._settings.request_expiry_days)
        rep, caf_numbers = message.representative, assessment.caf_numbers
        outputs, grant = tpa_request_outputs(
            message,
            assessment,
            subject,
            expires_on,
            lambda: self._evidence(
                SignedBy(
                    act="tpa_request",
                    role="representative",
                    signer={"caf_number": caf_numbers[0] if caf_numbers else None},
                    signature=rep.signature,
                ),
                message,
                carrier,
            ),
        )
        entity_id = entity.entity_id if entity is not None else None
        if grant is None:
            change = RequestChange(message.request_id, RequestState.DECIDED, entity_id=entity_id)
            return Decision(outputs, request=change)
        expiry = Timer(
            timer_id=f"expire#{message.request_id}",
            due=request_expires_at(message.received_on, self._settings.request_expiry_days),
            payload=ExpireRequest(request_id=message.request_id),
        )
        change = RequestChange(message.request_id, RequestState.PENDING, grant, entity_id=entity_id)
        return Decision(outputs, request=change, timer=expiry)

    async def fire(self, timer: Timer) -> Firing:
        return await self.timer_kinds.fire(timer)

    async def _expire(self, payload: ExpireRequest) -> Firing:
        """IN-23: a request still pending when its timer is due ends expired."""
        request_id = payload.request_id
        known = await self._store.request(request_id)
        if known is None or known.state is not RequestState.PENDING or known.grant is None:
            return NOTHING  # decided in the meantime
        now = self._clock.now()
        expired = RequestChange(
            request_id, RequestState.EXPIRED, from_pending=True, entity_id=known.entity_id
        )
        return Firing(expiry_outputs(known.grant, now), [self._store.request_put(expired, now)])

    async def _decide_decision(
        self, message: TpaDecision, carrier: SigningRecord, now: datetime, first_seen: datetime
    ) -> Decision:
        known = await self._store.request(message.request_id)
        state, request = (known.state, known.grant) if known is not None else (None, None)
        entity_id = known.entity_id if known is not None else None
        window = timedelta(seconds=self._settings.decision_retry_window_s)
        route = route_decision(message, state, first_seen=first_seen, now=now, retry_window=window)
        if route is DecisionOutcome.WAIT:
            raise DecisionTooEarly(message.request_id)
        if route is DecisionOutcome.UNKNOWN:
            subject = self._subject(message.message_id, None, None, now)
            return Decision([rejection_event(subject, message.request_id, UNKNOWN_REQUEST)])
        if route is DecisionOutcome.DROP or request is None:
            return Decision([])
        closed = RequestChange(
            message.request_id, RequestState.DECIDED, from_pending=True, entity_id=entity_id
        )
        rejection = assess_tpa_decision(message, now)
        verdict: Asserted | AssertionFailed | None = None
        if rejection is None:
            verdict = await self._asserted(
                message.identity_assertion,
                message.message_id,
                nonce=message.request_id,
                now=now,
                # DO-08: a business's approval is its Designated Official's, checked below
                taxpayer_matches=lambda tin: (
                    entity_id is not None or request.taxpayer_ref in self._refs.refs(tin)
                ),
            )
            rejection = verdict.rejection() if isinstance(verdict, AssertionFailed) else None
        official = None
        if rejection is None and entity_id is not None and isinstance(verdict, Asserted):
            official = official_id(verdict.issuer, verdict.subject)
            held = await self._store.official(entity_id, official)
            rejection = None if held is not None and held.active else NOT_OFFICIAL_APPROVAL
        if route is DecisionOutcome.DECLINE or rejection is not None:
            return Decision(closing_outputs(request, message, now, rejection), request=closed)
        assert isinstance(verdict, Asserted)  # an approval without a refusal was asserted
        signed = SignedBy.by_asserted_taxpayer(
            "tpa_approval",
            request.taxpayer_ref,
            message.taxpayer_signature,
            verdict,
            designated_official=official,
        )
        evidence = self._evidence(signed, message, carrier)
        return Decision(approval_outputs(request, message, now, evidence), request=closed)

    async def _decide_revocation(
        self, message: Revocation, signed: Signed, carrier: SigningRecord, now: datetime
    ) -> Decision:
        assessment = assess_revocation(message, business_day(now))
        subject = self._subject(message.message_id, assessment.normalized_tin, message.form, now)
        online = message.channel == "online_account" or signed.publisher == ONLINE_ACCOUNT
        if online and assessment.rejection is None:
            verdict = await self._asserted(
                message.identity_assertion,
                message.message_id,
                nonce=message.message_id,
                now=now,
                taxpayer_matches=lambda tin: tin == assessment.normalized_tin,
            )
            if isinstance(verdict, AssertionFailed):
                return Decision([rejection_event(subject, message.message_id, verdict.rejection())])
            by = SignedBy.by_asserted_taxpayer(
                "revocation", subject.taxpayer_ref, message.signature, verdict
            )
            evidence = self._evidence(by, message, carrier)
            return Decision(revocation_outputs(message, assessment, subject, [evidence]))
        return Decision(revocation_outputs(message, assessment, subject))

    async def _decide_confirmation(self, message: ProtectedConfirmation, now: datetime) -> Decision:
        """PT-03: a protected taxpayer's answer counts only with their own identity assertion
        (AU-02, `nonce` = the held grant's id, its TIN the message's); the validator, which
        holds the grant, checks that it is this taxpayer's and still held."""
        tin, refused = check_identity(message.taxpayer)
        subject = self._subject(message.message_id, tin, None, now)
        if refused is not None or tin is None:
            return Decision([rejection_event(subject, message.message_id, refused or SCHEMA)])
        verdict = await self._asserted(
            message.identity_assertion,
            message.message_id,
            nonce=message.grant_id,
            now=now,
            taxpayer_matches=lambda asserted: asserted == tin,
        )
        if isinstance(verdict, AssertionFailed):
            return Decision([rejection_event(subject, message.message_id, verdict.rejection())])
        answer = ConfirmHeld(
            action="confirm",
            message_id=message.message_id,
            taxpayer_ref=subject.taxpayer_ref,
            previous_taxpayer_ref=subject.previous_ref,
            tin_last4=subject.tin_last4,
            grant_id=message.grant_id,
            decision=message.decision,
            answered_at=now,
            assertion_jti=verdict.jti,
        )
        return Decision([Output.of(topics.GRANTS_ACCEPTED, subject.taxpayer_ref, answer)])

    async def _ip_pin_refused(self, record: ConsumerRecord[bytes, bytes], raw: bytes) -> None:
        """PT-05: refused, and nothing of it kept. Signed by its publisher and with a readable
        message id (one that does not hold the PIN): `rejected` `REJ-IP-PIN-COLLECTED`, so
        the portal learns why. Otherwise, or if recording that fails, a dead letter with its
        body, key and headers withheld (`BodyWithheld`: never a retry, which would keep it)."""
        log.warning("message carrying an IP PIN refused (PT-05)")
        try:
            await self._verifier.verify(record, topics.INBOUND)
        except SignatureInvalid as error:
            msg = "an unsigned message carrying an IP PIN"
            raise BodyWithheld(msg) from error
        message_id = readable_message_id(raw)
        if message_id is None or any(pin in message_id for pin in pins_in(raw)):
            msg = "a message carrying an IP PIN, without a message id that can be kept"
            raise BodyWithheld(msg)
        try:
            await self._refuse_unread(raw, message_id, IP_PIN_COLLECTED)
        except Exception as error:
            cause = type(error).__name__
            msg = f"a message carrying an IP PIN whose refusal could not be recorded ({cause})"
            raise BodyWithheld(msg) from error

    async def _refuse_unread(self, raw: bytes, message_id: str, refusal: Rejection) -> None:
        """A message that was not (or must not be) decoded, refused once by its message id,
        with what of its TIN and form can be read loosely (IN-01, PT-05)."""

        async def decide_and_record() -> list[Output] | None:
            document = _loose_json(raw)
            now = self._clock.now()
            subject = self._subject(message_id, _readable_tin(document), document.get("form"), now)
            decided = [rejection_event(subject, message_id, refusal)]
            result = await self._store.record(message_id, decided, now)
            return decided if result is RecordResult.RECORDED else None

        await handle_once(
            self._store.ledger, message_id, decide_and_record, self._publish, decide_first=True
        )

    async def _caught_up(self, carrier: SigningRecord) -> None:
        """DO-01: judge a business only once the entity view holds every entity record
        published before the message (bounded; then on the view as it is)."""
        if self._entities is not None:
            await self._entities.wait_until_applied(int(carrier.timestamp.timestamp() * 1000))

    async def _entity(self, tin: str | None, now: datetime) -> EntityView | None:
        ein = readable_ein(TaxpayerIdentity(tin=tin, tin_type="EIN"))
        if ein is None:
            return None
        return await self._store.entity(entity_digest(self._refs.digest, ein))

    async def _business(self, entity: TaxpayerIdentity, message_id: str, now: datetime) -> Business:
        view = await self._entity(entity.tin, now) if entity.tin_type == "EIN" else None
        return business_of(
            entity,
            ref=self._refs.ref,
            message_ref=self._refs.message_ref(message_id),
            view=view,
        )

    async def _assert_official(
        self, token: str | None, message_id: str, now: datetime
    ) -> Asserted | AssertionFailed:
        """AU-02 for a Designated Official act: bound to the message, any person (who they
        are is the assertion's issuer and subject, DO-02)."""
        return await self._asserted(
            token, message_id, nonce=message_id, now=now, taxpayer_matches=lambda _: True
        )

    async def on_entity_record(self, record: ConsumerRecord[bytes, bytes]) -> None:
        """DO-01: an entity record counts only signed by the entity feed (AU-01; a tombstone's
        signature is over its key). Intake keeps its type, status and pseudonyms, never its
        EIN, name or address."""
        await self._verifier.verify(record, topics.ENTITIES)
        entity_id = (record.key or b"").decode(errors="replace")
        at = FeedPosition(record.partition, record.offset)
        if record.value is None:
            applied = await self._store.apply_entity(entity_id, None, None, at)
        else:
            entity = decode_entity(record.value)
            if entity.entity_id != entity_id:
                msg = "an entity record published under another entity's key"
                raise ValueError(msg)
            ein = normalize_tin(entity.ein, "EIN")
            view = EntityView(
                entity_id=entity_id,
                entity_type=entity.entity_type,
                active=entity.status == "active",
                taxpayer_ref=self._refs.ref(ein),
                tin_last4=tin_last4(ein),
            )
            digest = entity_digest(self._refs.digest, ein)
            applied = await self._store.apply_entity(entity_id, view, digest, at)
        log.info(
            "entity record applied" if applied else "older entity record ignored",
            extra={"entity_id": entity_id, "tombstone": record.value is None},
        )

    async def on_official_operation(self, record: ConsumerRecord[bytes, bytes]) -> None:
        """DO-07 by an operator: a `DeactivateOfficial` from cafctl (only its principal writes
        `caf.officials.v1`), applied once (its `command_id` is its ledger key)."""
        command = DeactivateOfficial.model_validate_json(record.value or b"")

        async def decide_and_record() -> list[Output] | None:
            now = self._clock.now()
            act: ActDecision = await self._officials.operator_deactivation(command, now)
            result = await self._store.record(
                command.command_id, act.outputs, now, writes=act.writes
            )
            return act.outputs if result is RecordResult.RECORDED else None

        await handle_once(
            self._store.ledger,
            command.command_id,
            decide_and_record,
            self._publish,
            decide_first=True,
        )

    async def _asserted(
        self,
        token: str | None,
        message_id: str,
        *,
        nonce: str,
        now: datetime,
        taxpayer_matches: Callable[[str], bool],
    ) -> Asserted | AssertionFailed:
        """AU-02: the assertion's own checks, then its taxpayer, then its single use."""
        verdict = await self._identities.verify(token, nonce=nonce, now=now)
        if isinstance(verdict, AssertionFailed):
            return verdict
        if not taxpayer_matches(verdict.tin):
            return AssertionFailed(Check.TAXPAYER, "it names another taxpayer")
        if not await self._store.claim_assertion(verdict, message_id, now):
            return AssertionFailed(Check.SINGLE_USE, "it was presented before")
        return verdict

    async def _retry_later(
        self, record: ConsumerRecord[bytes, bytes], first_seen: datetime
    ) -> None:
        """IN-21: park the decision on the retry topic; its consumer brings it back."""
        not_before = self._clock.now() + timedelta(seconds=self._settings.decision_retry_delay_s)
        control = {
            FIRST_SEEN: first_seen.isoformat(),
            NOT_BEFORE: not_before.isoformat(),
            # ES-01: the evidence names the record that carried the decision, not its copy
            SIGNED_RECORD: f"{record.topic}:{record.partition}:{record.offset}:{record.timestamp}",
        }
        await self._publish([copy_of(record, topics.INBOUND_RETRY, control, self._sealer)])
        log.info("decision parked until its request arrives (IN-21)")

    async def handle_retry(self, record: ConsumerRecord[bytes, bytes]) -> None:
        """Wait until the parked decision is due, then handle it again.

        AU-03: only here, on our own retry topic, are `first-seen` and `not-before` read, and
        both are bounded: the wait by the retry delay, the first sighting to the retry window
        (so a forged header can neither park a decision for long nor make it look older)."""
        headers = {k: v.decode(errors="replace") for k, v in record.headers or ()}
        now = self._clock.now()
        due = _instant(headers.get(NOT_BEFORE))
        if due is not None:
            wait = (due - now).total_seconds()
            await asyncio.sleep(min(max(wait, 0.0), self._settings.decision_retry_delay_s))
        window = timedelta(seconds=self._settings.decision_retry_window_s)
        seen = _instant(headers.get(FIRST_SEEN)) or now
        parked = opened(record, self._sealer) if is_sealed(headers) else record
        await self._handle(_as_carried(parked, headers), min(max(seen, now - window), now))

    def _subject(self, message_id: str, tin: str | None, form: object, now: datetime) -> Subject:
        readable: FormType | None = "2848" if form == "2848" else "8821" if form == "8821" else None
        if tin is None:
            return Subject(self._refs.message_ref(message_id), "", message_id, readable, now)
        *earlier, ref = self._refs.refs(tin)
        previous = earlier[-1] if earlier else None
        return Subject(ref, tin_last4(tin), message_id, readable, now, previous)

    async def _undecodable(
        self, record: ConsumerRecord[bytes, bytes], raw: bytes, error: ContractError
    ) -> None:
        """IN-01: dead letter with error headers; with a readable message id also REJ-SCHEMA.

        The (sealed) dead letter is published first and is not part of the recorded outcome:
        the ledger never holds an input, sealed or not (a redelivery may dead-letter it twice,
        which replay absorbs: intake drops a message id it has seen, IN-02)."""
        await self._publish(
            [dead_letter(record, topics.INBOUND_DLQ, error, 1, sealer=self._sealer)]
        )
        message_id = readable_message_id(raw)
        log.info("undecodable message dead-lettered (IN-01)", extra={"codes": error.codes[:5]})
        if message_id is not None:
            await self._refuse_unread(raw, message_id, SCHEMA)


def _as_carried(
    record: ConsumerRecord[bytes, bytes], headers: dict[str, str]
) -> ConsumerRecord[bytes, bytes]:
    """A parked decision as the record that first carried it (ES-01: its evidence names that
    record); AU-03: read only on our own retry topic, and only our inbound topic is believed."""
    topic, _, rest = headers.get(SIGNED_RECORD, "").partition(":")
    fields = rest.split(":")
    if (
        not topic.endswith(topics.INBOUND)
        or len(fields) != 3
        or not all(f.isdigit() for f in fields)
    ):
        return record
    partition, offset, timestamp = (int(f) for f in fields)
    return dataclasses.replace(
        record, topic=topic, partition=partition, offset=offset, timestamp=timestamp
    )


def _instant(text: str | None) -> datetime | None:
    try:
        instant = datetime.fromisoformat(text) if text else None
    except ValueError:
        return None
    return instant if instant is not None and instant.tzinfo is not None else None


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
    broker: KafkaBroker,
    settings: IntakeSettings,
    store: IntakeStore,
    clock: Clock,
    entities: FeedWait | None = None,
) -> IntakeHandler:
    """Attach the intake subscribers (inbound, parked decisions, the entity feed and the
    operators' Designated Official actions) to `broker`. Without `entities` (a unit of work
    under a test broker), a business is judged on the entity view as it is."""
    publish = functools.partial(publish_all, broker, settings)
    sealer = settings.sealer()
    if sealer is None:  # IntakeSettings refuses to exist without one
        msg = "intake needs CAF_ENVELOPE_KEYS"
        raise RuntimeError(msg)
    handler = IntakeHandler(
        store,
        publish,
        clock,
        settings,
        verifier=RecordVerifier.from_settings(settings),
        identities=IdentityProviders.from_locations(settings.identity_providers),
        sealer=sealer,
        vault=settings.pin_vault(),
        entities=entities,
    )
    guard = Guard(
        broker,
        settings,
        retry_topic=topics.INTAKE_RETRY,
        dlq_topic=topics.INBOUND_DLQ,
        dependencies=store.ping,
        sealer=sealer,
    )
    guard.subscribe(topics.INBOUND, settings.group_id, handler.handle)
    guard.subscribe(topics.INBOUND_RETRY, settings.group_id + RETRY_SUFFIX, handler.handle_retry)
    guard.subscribe(topics.ENTITIES, settings.entities_group_id, handler.on_entity_record)
    guard.subscribe(
        topics.OFFICIALS, settings.group_id + OFFICIALS_SUFFIX, handler.on_official_operation
    )
    guard.subscribe_retries(settings.group_id + REDELIVERY_SUFFIX)
    return handler
