"""Validator, poster and notifier under TestKafkaBroker with fake stores: each handler path and a
bad message."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace
from typing import Any

import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker

from caf_runtime.broker import make_broker
from caf_runtime.outputs import Output
from schemas import topics
from schemas.grants import PostGrant, ReviewHold
from schemas.protected import ProtectionRecord
from schemas.registry import PractitionerRecord
from services.caf_poster.config import CafPosterSettings
from services.caf_poster.handlers import register as register_poster
from services.notifier.config import NotifierSettings
from services.notifier.handlers import register as register_notifier
from services.validator.config import ValidatorSettings
from services.validator.handlers import register as register_validator
from services.validator.store import (
    Answer,
    Hold,
    HoldDecision,
    NumberGiven,
    ReviewVerdict,
    TaxpayerHold,
)
from tests.evidence import MemoryEvidence
from tests.service.fakes import FakeCafStore, FakeLedger, FakeTimers, FixedClock, probe
from tests.signing import signed
from tests.unit.builders import post_grant

pytestmark = pytest.mark.service


async def publish_registry(test_broker: KafkaBroker, record: dict[str, Any], key: bytes) -> None:
    """A registry record signed by the registry feed (AU-01)."""
    value = json.dumps(record).encode()
    await test_broker.publish(
        value, topic=topics.PRACTITIONERS, key=key, headers=signed(value, "registry")
    )


class FakeValidatorStore:
    async def ping(self) -> bool:
        return True

    def __init__(self) -> None:
        self.ledger = FakeLedger()
        self.registry: dict[str, bytes | None] = {}
        self.ended_grants: set[str] = set()
        self.given: dict[str, tuple[str, str]] = {}
        self.sightings: dict[str, set[str]] = {}
        self.parked: dict[str, Hold] = {}
        self.protected: dict[str, bytes | None] = {}
        self.for_taxpayer: dict[str, TaxpayerHold] = {}
        self.timers = FakeTimers()
        self.verdicts: dict[str, bool] = {}

    async def request_refused(self, request_id: str) -> bool:
        return self.verdicts.get(request_id, False)

    async def protection(self, taxpayer_ref: str) -> ProtectionRecord | None:
        raw = self.protected.get(taxpayer_ref)
        return ProtectionRecord.model_validate_json(raw) if raw else None

    async def apply_protection(
        self, taxpayer_ref: str, record: bytes | None, partition: int, offset: int
    ) -> bool:
        self.protected[taxpayer_ref] = record
        return True

    async def from_feed(self, caf_number: str) -> bool:
        given = {number for number, _ in self.given.values()}
        return self.registry.get(caf_number) is not None and caf_number not in given

    async def held_for_taxpayer(self, grant_id: str) -> TaxpayerHold | None:
        return self.for_taxpayer.get(grant_id)

    def answered(self, answer: Answer) -> Any:
        return {"answer": answer}

    def apply_answer(self, answer: Answer) -> bool:
        held = self.for_taxpayer.get(answer.grant_id)
        if held is None or held.status != "held":
            return False
        self.for_taxpayer[answer.grant_id] = replace(held, status=answer.status)
        return True

    async def practitioner(self, caf_number: str) -> PractitionerRecord | None:
        raw = self.registry.get(caf_number)
        return PractitionerRecord.model_validate_json(raw) if raw else None

    async def apply_registry(
        self, caf: str, record: bytes | None, partition: int, offset: int
    ) -> bool:
        self.registry[caf] = record
        return True

    async def practitioner_by_ptin(self, ptin: str) -> PractitionerRecord | None:
        found = [
            record
            for raw in self.registry.values()
            if raw and (record := PractitionerRecord.model_validate_json(raw)).ptin == ptin
        ]
        return min(found, key=lambda r: r.caf_number) if found else None

    async def given_number(self, identity: str, grant_key: str) -> NumberGiven | None:
        if identity not in self.given:
            return None
        number, first_grant = self.given[identity]
        return NumberGiven(number, new=first_grant == grant_key)

    async def number_for(
        self, identity: str, grant_key: str, record: PractitionerRecord
    ) -> NumberGiven:
        if identity not in self.given:
            number = f"78{len(self.given) + 1:07d}"
            self.given[identity] = (number, grant_key)
            given = record.model_copy(update={"caf_number": number})
            self.registry[number] = given.model_dump_json().encode()
        number, first_grant = self.given[identity]
        return NumberGiven(number, new=first_grant == grant_key)

    async def other_taxpayers(self, caf_number: str, taxpayer_ref: str, since: dt.datetime) -> int:
        return len(self.sightings.get(caf_number, set()) - {taxpayer_ref})

    async def record(
        self,
        key: str,
        outputs: list[Output],
        velocity: Any = None,
        timers: Any = (),
        *,
        hold: PostGrant | None = None,
        review: HoldDecision | None = None,
        taxpayer_hold: TaxpayerHold | None = None,
        answer: Answer | None = None,
        verdict: ReviewVerdict | None = None,
    ) -> bool:
        if review is not None and self.parked[review.grant_id].status != "held":
            return False
        if answer is not None and self.for_taxpayer[answer.grant_id].status != "held":
            return False
        if not self.ledger.claim(key, outputs):
            return False
        self.timers.timers.extend(timers)
        if verdict is not None:
            self.verdicts[verdict.request_id] = verdict.refused
        if taxpayer_hold is not None:
            self.for_taxpayer[taxpayer_hold.grant_id] = taxpayer_hold
        if answer is not None:
            self.apply_answer(answer)
        if velocity is not None:
            self.sightings.setdefault(velocity.caf_number, set()).add(velocity.taxpayer_ref)
        if hold is not None:
            self.parked[hold.grant_id] = Hold(hold.grant_id, hold, "held", "now")
        if review is not None:
            self.parked[review.grant_id] = replace(
                self.parked[review.grant_id],
                status=f"{review.decision}d",
                decided_by=review.operator,
                why=review.why,
            )
        return True

    async def held(self, grant_id: str) -> Hold | None:
        return self.parked.get(grant_id)

    async def mark_ended(self, grant_id: str) -> None:
        self.ended_grants.add(grant_id)

    async def ended(self, grant_id: str) -> bool:
        return grant_id in self.ended_grants


class NoWaitBarrier:
    async def wait_until_applied(self, published_before_ms: int) -> bool:
        return True


def validator(velocity_limit: int = 25) -> tuple[Any, FakeValidatorStore, Any]:
    settings = ValidatorSettings(velocity_limit=velocity_limit)
    broker = make_broker(settings, client_id="test")
    store = FakeValidatorStore()
    register_validator(
        broker,
        settings,
        store,
        FixedClock(),
        NoWaitBarrier(),
    )
    seen = probe(broker, topics.GRANTS_VALIDATED, topics.EVENTS, topics.VALIDATOR_DLQ)
    return broker, store, seen


async def test_the_validator_passes_a_grant_in_good_standing_and_rejects_a_suspended_one() -> None:
    """VA-01 through the handler, with the registry fed from its topic."""
    broker, _, seen = validator()
    record = {"caf_number": "030112345", "name": "Avery Smith", "status_code": ""}
    async with TestKafkaBroker(broker) as test_broker:
        await publish_registry(test_broker, record, b"030112345")
        await test_broker.publish(
            post_grant().model_dump_json().encode(), topic=topics.GRANTS_ACCEPTED
        )
        suspended = record | {"status_code": "S"}
        await publish_registry(test_broker, suspended, b"030112345")
        await test_broker.publish(
            post_grant(grant_id="m-1:1").model_dump_json().encode(), topic=topics.GRANTS_ACCEPTED
        )
    [(passed, _)] = seen[topics.GRANTS_VALIDATED]
    assert json.loads(passed)["grant_id"] == "m-1:0"
    [(rejected, _)] = seen[topics.EVENTS]
    assert json.loads(rejected)["reason_code"] == "REJ-REP-NOT-GOOD-STANDING"
    assert topics.VALIDATOR_DLQ not in seen


async def test_in_22_a_request_refused_at_its_review_gets_no_outcome_from_its_approval() -> None:
    """IN-22: the review of a Tax Pro Account request leaves its verdict; the approval of a
    request refused at review is not decided again, that of a pending one is."""
    broker, store, seen = validator()
    record = {"caf_number": "030112345", "name": "Avery Smith", "status_code": ""}
    expires_on = dt.date(2026, 12, 31)
    tpa = {"channel": "tpa", "request_id": "tpa-1", "grant_id": "tpa-1", "expires_on": expires_on}
    async with TestKafkaBroker(broker) as test_broker:
        await publish_registry(test_broker, record | {"status_code": "S"}, b"030112345")
        for grant in (post_grant(**tpa, review=True), post_grant(**tpa, review=False)):
            await test_broker.publish(
                grant.model_dump_json().encode(), topic=topics.GRANTS_ACCEPTED
            )
        await publish_registry(test_broker, record, b"030112345")
        other = tpa | {"request_id": "tpa-2", "grant_id": "tpa-2"}
        for grant in (post_grant(**other, review=True), post_grant(**other, review=False)):
            await test_broker.publish(
                grant.model_dump_json().encode(), topic=topics.GRANTS_ACCEPTED
            )
    assert store.verdicts == {"tpa-1": True, "tpa-2": False}
    refused, pending_approval = (json.loads(value) for value, _ in seen[topics.EVENTS])
    assert (refused["grant_id"], refused["reason_code"]) == ("tpa-1", "REJ-REP-NOT-GOOD-STANDING")
    assert (pending_approval["grant_id"], pending_approval["type"]) == (
        "tpa-2",
        "AuthorizationPendingApproval",
    )
    [(passed, _)] = seen[topics.GRANTS_VALIDATED]
    assert json.loads(passed)["grant_id"] == "tpa-2"


async def test_a_first_time_representative_gets_one_number_for_every_form_by_ptin() -> None:
    """PO-08, CN-01, CN-02, CN-03: the first form gets a new number (announced), the second form
    of the same PTIN the same number (not announced), and a third naming the number passes VA-04
    because the registry view learned it; a PTIN the feed already knows uses the feed's number
    and its standing."""
    broker, _, seen = validator()
    first = post_grant(caf_number=None, ptin="P00000001", grant_id="m-1:0")
    second = post_grant(caf_number=None, ptin="P00000001", grant_id="m-2:0", message_id="m-2")
    async with TestKafkaBroker(broker) as test_broker:
        for grant in (first, second):
            await test_broker.publish(
                grant.model_dump_json().encode(), topic=topics.GRANTS_ACCEPTED
            )
        [number] = {json.loads(v)["caf_number"] for v, _ in seen[topics.GRANTS_VALIDATED]}
        third = post_grant(caf_number=number, grant_id="m-3:0", message_id="m-3")
        await test_broker.publish(third.model_dump_json().encode(), topic=topics.GRANTS_ACCEPTED)
        suspended = {
            "caf_number": "030199999",
            "name": "Blake Doe",
            "status_code": "S",
            "ptin": "P00000002",
        }
        await publish_registry(test_broker, suspended, b"030199999")
        by_ptin = post_grant(
            caf_number=None,
            ptin="P00000002",
            representative_name="Blake Doe",
            grant_id="m-4:0",
            message_id="m-4",
        )
        await test_broker.publish(by_ptin.model_dump_json().encode(), topic=topics.GRANTS_ACCEPTED)
        urp = post_grant(
            caf_number=None, ptin="P00000003", designation="h", grant_id="m-5:0", message_id="m-5"
        )
        await test_broker.publish(urp.model_dump_json().encode(), topic=topics.GRANTS_ACCEPTED)
    validated = [json.loads(v) for v, _ in seen[topics.GRANTS_VALIDATED]]
    assert [(g["grant_id"], g["caf_number"], g["caf_number_assigned"]) for g in validated] == [
        ("m-1:0", number, True),
        ("m-2:0", number, False),
        ("m-3:0", number, False),
    ]
    assert number.startswith("78")
    refused = {
        e["grant_id"]: (e["rule_id"], e["reason_code"])
        for e in map(json.loads, (v for v, _ in seen[topics.EVENTS]))
    }
    assert refused == {
        "m-4:0": ("VA-01", "REJ-REP-NOT-GOOD-STANDING"),
        "m-5:0": ("CN-03", "REJ-URP-NOT-ELIGIBLE"),
    }


def review(grant_id: str, decision: str, n: int) -> bytes:
    return (
        ReviewHold.model_validate(
            {
                "action": "review",
                "message_id": f"review-{n}",
                "taxpayer_ref": "a" * 32,
                "tin_last4": "6789",
                "form": "2848",
                "received_at": "2026-11-20T19:00:00+00:00",
                "grant_id": grant_id,
                "decision": decision,
                "operator": "jdoe",
                "why": "called the firm",
            },
            strict=False,
        )
        .model_dump_json()
        .encode()
    )


async def test_cn_09_a_velocity_hold_waits_for_an_operator_who_releases_or_refuses_it() -> None:
    """CN-09 (amends VA-07): the grant over the limit is held (not terminal), released to the
    poster or refused REJ-FRAUD-REVIEW by an operator; a second decision changes nothing."""
    broker, store, seen = validator(velocity_limit=1)
    record = {"caf_number": "030112345", "name": "Avery Smith", "status_code": ""}
    grants = [
        post_grant(taxpayer_ref=f"{n}" * 32, grant_id=f"m-{n}:0", message_id=f"m-{n}")
        for n in range(1, 4)
    ]
    async with TestKafkaBroker(broker) as test_broker:
        await publish_registry(test_broker, record, b"030112345")
        for grant in grants:
            await test_broker.publish(
                grant.model_dump_json().encode(), topic=topics.GRANTS_ACCEPTED
            )
        for n, (grant_id, decision) in enumerate(
            [("m-2:0", "release"), ("m-3:0", "refuse"), ("m-3:0", "release")]
        ):
            await test_broker.publish(review(grant_id, decision, n), topic=topics.REVIEWS)
    validated = [json.loads(v)["grant_id"] for v, _ in seen[topics.GRANTS_VALIDATED]]
    assert validated == ["m-1:0", "m-2:0"]
    events = [json.loads(v) for v, _ in seen[topics.EVENTS]]
    assert [(e["type"], e["grant_id"], e.get("reason_code")) for e in events] == [
        ("AuthorizationHeld", "m-2:0", "HOLD-VELOCITY"),
        ("AuthorizationHeld", "m-3:0", "HOLD-VELOCITY"),
        ("AuthorizationRejected", "m-3:0", "REJ-FRAUD-REVIEW"),
    ]
    assert events[-1]["rule_id"] == "CN-09"
    audited = {g: (h.status, h.decided_by, h.why) for g, h in store.parked.items()}
    assert audited == {
        "m-2:0": ("released", "jdoe", "called the firm"),
        "m-3:0": ("refused", "jdoe", "called the firm"),
    }


async def test_au_04_a_review_only_counts_on_the_reviews_topic_and_a_grant_never_does() -> None:
    """Reviews have their own topic, which only the operator's principal writes: a review on the
    grant commands topic, or a grant on the reviews topic, is a dead letter and decides nothing."""
    broker, _, seen = validator(velocity_limit=1)
    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish(review("m-2:0", "release", 0), topic=topics.GRANTS_ACCEPTED)
        forged = post_grant(grant_id="m-9:0", message_id="m-9").model_dump_json().encode()
        await test_broker.publish(forged, topic=topics.REVIEWS)
    assert [h["error-class"] for _, h in seen[topics.VALIDATOR_DLQ]] == ["TypeError", "TypeError"]
    assert topics.GRANTS_VALIDATED not in seen


async def test_the_validator_dead_letters_a_command_it_cannot_read() -> None:
    broker, _, seen = validator()
    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish(b'{"action": "teleport"}', topic=topics.GRANTS_ACCEPTED)
    [(_, headers)] = seen[topics.VALIDATOR_DLQ]
    assert headers["error-class"] == "ContractError"


async def test_the_poster_posts_assigns_a_caf_number_and_a_redelivery_repeats_the_same_events() -> (
    None
):
    """PO-08 through the handler; a redelivered grant is not decided again: its recorded events
    go out again, the same ids (no second number, no second posting)."""
    settings = CafPosterSettings()
    broker = make_broker(settings, client_id="test")
    store = FakeCafStore()
    register_poster(broker, settings, store, FixedClock(), MemoryEvidence())
    seen = probe(broker, topics.EVENTS, topics.POSTER_DLQ)
    grant = post_grant(caf_number=None, first_time=True).model_dump_json().encode()
    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish(grant, topic=topics.GRANTS_VALIDATED)
        await test_broker.publish(grant, topic=topics.GRANTS_VALIDATED)
        await test_broker.publish(b"\x00", topic=topics.GRANTS_VALIDATED)
    events = [json.loads(v) for v, _ in seen[topics.EVENTS]]
    assert [e["type"] for e in events] == ["CafNumberAssigned", "AuthorizationPosted"] * 2
    assert events[:2] == events[2:]
    assert store.numbers == 1
    assert len(seen[topics.POSTER_DLQ]) == 1


async def test_the_notifier_gives_one_notification_id_per_event_and_recipient() -> None:
    """NO-02, NO-08 through the handler: the same event twice gives the same notification
    twice (one notification id), and delivery recognises it."""
    settings = NotifierSettings()
    broker = make_broker(settings, client_id="test")
    register_notifier(broker, settings, FixedClock())
    seen = probe(broker, topics.NOTIFICATIONS, topics.NOTIFIER_DLQ)
    event = {
        "event_id": "e1",
        "type": "AuthorizationPosted",
        "occurred_at": "2026-11-20T19:00:00Z",
        "taxpayer_ref": "a" * 32,
        "tin_last4": "6789",
        "form": "2848",
        "message_id": "m-1",
        "grant_id": "m-1:0",
        "caf_number": "030112345",
        "stage": "caf_poster",
        "authorization_id": "m-1",
        "receive_notices": True,
        "received_at": "2026-11-20T19:00:00Z",
        "posted_at": "2026-11-20T19:00:00Z",
        "tax_matters": [{"tax_type": "Income", "form_number": "1040", "periods": ["2024"]}],
    }
    async with TestKafkaBroker(broker) as test_broker:
        for _ in range(2):
            await test_broker.publish(json.dumps(event).encode(), topic=topics.EVENTS)
        await test_broker.publish(b"not an event", topic=topics.EVENTS)
    first, again = (note for note, _ in seen[topics.NOTIFICATIONS])
    assert first == again
    assert json.loads(first)["template"] == "authorization_posted"
    assert len(seen[topics.NOTIFIER_DLQ]) == 1
