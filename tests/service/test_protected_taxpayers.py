"""Protected taxpayers (PT-01 … PT-04) in the validator, under TestKafkaBroker with a fake
store: the IP PIN program feed, holds for the taxpayer, their answer and the 30-day end."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, cast

import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker

from caf_runtime.broker import make_broker
from schemas import topics
from schemas.grants import ConfirmHeld, PostGrant
from services.validator.config import ValidatorSettings
from services.validator.handlers import ValidatorHandler
from services.validator.handlers import register as register_validator
from tests.service.fakes import FixedClock, Seen, probe
from tests.service.test_downstream_services import (
    FakeValidatorStore,
    NoWaitBarrier,
    publish_registry,
)
from tests.signing import signed
from tests.unit.builders import NOW, post_grant

pytestmark = pytest.mark.service

REF = "b" * 32
REGISTERED = {"caf_number": "030112345", "name": "Avery Smith", "status_code": ""}


class Validator:
    def __init__(self) -> None:
        settings = ValidatorSettings()
        self.broker = make_broker(settings, client_id="test")
        self.store = FakeValidatorStore()
        self.handler: ValidatorHandler = register_validator(
            self.broker,
            settings,
            self.store,
            FixedClock(),
            NoWaitBarrier(),
            NoWaitBarrier(),
        )
        self.seen: Seen = probe(
            self.broker, topics.GRANTS_VALIDATED, topics.EVENTS, topics.VALIDATOR_DLQ
        )

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(v) for v, _ in self.seen.get(topics.EVENTS, [])]

    def validated(self) -> list[str]:
        return [json.loads(v)["grant_id"] for v, _ in self.seen.get(topics.GRANTS_VALIDATED, [])]


async def protect(
    test_broker: KafkaBroker, ref: str = REF, year: int = 2026, *, kind: str = "protection"
) -> None:
    record = {"taxpayer_ref": ref, "year": year, "basis": "identity_theft_victim"}
    value = json.dumps(record).encode()
    await test_broker.publish(
        value, topic=topics.PROTECTED, key=ref.encode(), headers=signed(value, kind)
    )


def paper(**changes: Any) -> PostGrant:
    return post_grant(taxpayer_ref=REF, channel="mail", **changes)


def online(**changes: Any) -> PostGrant:
    """A Tax Pro Account grant the taxpayer approved with a verified identity assertion."""
    values: dict[str, Any] = {
        "taxpayer_ref": REF,
        "channel": "tpa",
        "request_id": "tpa-1",
        "approved_by_assertion": True,
        "grant_id": "tpa-1",
    }
    return post_grant(**(values | changes))


def answer(decision: str, *, grant_id: str = "m-1:0", ref: str = REF, n: int = 1) -> bytes:
    return (
        ConfirmHeld(
            action="confirm",
            message_id=f"pc-{n}",
            taxpayer_ref=ref,
            tin_last4="6789",
            grant_id=grant_id,
            decision=decision,  # type: ignore[arg-type]
            answered_at=NOW,
        )
        .model_dump_json()
        .encode()
    )


async def send(test_broker: KafkaBroker, *values: bytes) -> None:
    for value in values:
        await test_broker.publish(value, topic=topics.GRANTS_ACCEPTED, key=REF.encode())


def grant_bytes(grant: PostGrant) -> bytes:
    return grant.model_dump_json().encode()


async def through_validator(*values: bytes, ref: str = REF, year: int = 2026) -> Validator:
    """A validator that knows the registered representative (030112345) and taxpayer `ref` as
    protected in `year`, once `values` were sent to it in turn."""
    validator = Validator()
    async with TestKafkaBroker(validator.broker) as test_broker:
        await publish_registry(test_broker, REGISTERED, b"030112345")
        await protect(test_broker, ref, year)
        await send(test_broker, *values)
    return validator


async def test_pt_01_a_protected_taxpayers_paper_form_is_held_then_confirmed_and_posted() -> None:
    """PT-01, PT-03: held with the last day to answer and a timer for its end; no posting
    deadline until the taxpayer confirms; then on to the poster with deadlines from then."""
    validator = Validator()
    async with TestKafkaBroker(validator.broker) as test_broker:
        await publish_registry(test_broker, REGISTERED, b"030112345")
        await protect(test_broker)
        await send(test_broker, grant_bytes(paper()))
        [held] = validator.events()
        assert (held["type"], held["rule_id"], held["reason_code"]) == (
            "AuthorizationHeld",
            "PT-01",
            "HOLD-TAXPAYER-CONFIRMATION",
        )
        assert held["confirm_by"] == "2026-12-20"
        assert validator.validated() == []
        [expiry] = validator.store.timers.timers
        assert expiry.kind == "confirm"
        assert expiry.due == dt.datetime(2026, 12, 21, 5, 0, tzinfo=dt.UTC)  # NY midnight
        await send(test_broker, answer("confirm"))
    assert validator.validated() == ["m-1:0"]
    assert validator.store.for_taxpayer["m-1:0"].status == "confirmed"
    deadline = validator.store.timers.timers[-1]
    assert (deadline.kind, deadline.due) == ("sla", NOW + dt.timedelta(hours=24))


async def test_pt_03_a_refusal_ends_the_grant_and_a_second_answer_changes_nothing() -> None:
    """PT-03: refused by the taxpayer → rejected REJ-PT-REFUSED; a later confirmation is
    refused REJ-PT-NOT-HELD and releases nothing."""
    validator = await through_validator(
        grant_bytes(paper()), answer("refuse"), answer("confirm", n=2)
    )
    assert [(e["type"], e["grant_id"], e["reason_code"]) for e in validator.events()] == [
        ("AuthorizationHeld", "m-1:0", "HOLD-TAXPAYER-CONFIRMATION"),
        ("AuthorizationRejected", "m-1:0", "REJ-PT-REFUSED"),
        ("AuthorizationRejected", "pc-2", "REJ-PT-NOT-HELD"),
    ]
    assert validator.events()[1]["rule_id"] == "PT-03"
    assert validator.validated() == []


async def test_pt_03_another_taxpayer_cannot_answer_for_a_held_grant() -> None:
    """PT-03: the answer's taxpayer must be the held grant's."""
    validator = await through_validator(grant_bytes(paper()), answer("confirm", ref="c" * 32))
    assert [e["reason_code"] for e in validator.events()] == [
        "HOLD-TAXPAYER-CONFIRMATION",
        "REJ-PT-NOT-HELD",
    ]
    assert validator.store.for_taxpayer["m-1:0"].status == "held"
    assert validator.validated() == []


async def test_pt_01_a_tpa_approval_with_the_taxpayers_assertion_is_not_held() -> None:
    """PT-01: the taxpayer's own identity-bound approval is their confirmation."""
    validator = await through_validator(grant_bytes(online()))
    assert validator.validated() == ["tpa-1"]
    assert validator.events() == []


async def test_pt_02_an_8821_for_an_unregistered_designee_is_held_even_approved_online() -> None:
    """PT-02: transcript fishing: a designee with no registry record."""
    validator = Validator()
    async with TestKafkaBroker(validator.broker) as test_broker:
        await protect(test_broker)
        await send(
            test_broker,
            grant_bytes(online(form="8821", caf_number=None, designation=None, ptin=None)),
        )
    [held] = validator.events()
    assert (held["rule_id"], held["reason_code"]) == ("PT-02", "HOLD-TAXPAYER-CONFIRMATION")
    assert held["caf_number"] is not None  # numbered as it would post
    assert validator.validated() == []


@pytest.mark.parametrize(("year", "held"), [(2025, False), (2026, True), (2027, True)])
async def test_pt_01_a_membership_protects_through_the_end_of_its_year(
    year: int, held: bool
) -> None:
    """PT-01: an IP PIN of an earlier year has lapsed."""
    validator = await through_validator(grant_bytes(paper()), year=year)
    assert (validator.validated() == []) is held


async def test_pt_01_a_taxpayer_not_in_the_program_posts_as_before() -> None:
    validator = await through_validator(grant_bytes(paper()), ref="d" * 32)
    assert validator.validated() == ["m-1:0"]


async def test_au_01_a_program_record_not_signed_by_the_ip_pin_feed_is_a_dead_letter() -> None:
    """AU-01: only `ip-pin-feed` may publish protection (a registry-feed key is refused)."""
    validator = Validator()
    async with TestKafkaBroker(validator.broker) as test_broker:
        await protect(test_broker, kind="registry")
    [(_, headers)] = validator.seen[topics.VALIDATOR_DLQ]
    assert headers["error-class"] == "SignatureInvalid"
    assert validator.store.protected == {}


async def test_pt_04_an_unanswered_hold_ends_rejected_when_its_last_day_ends() -> None:
    """PT-04: the timer's firing ends it (written on condition it is still held); once
    answered, the firing does nothing."""
    validator = await through_validator(
        grant_bytes(paper()),
        grant_bytes(paper(grant_id="m-1:1")),
        answer("confirm", grant_id="m-1:1"),
    )
    first, second = (t for t in validator.store.timers.timers if t.kind == "confirm")
    firing = await validator.handler.fire(first)
    [output] = firing.outputs
    event = json.loads(output.value)
    assert (event["type"], event["rule_id"], event["reason_code"]) == (
        "AuthorizationRejected",
        "PT-04",
        "REJ-PT-NOT-CONFIRMED",
    )
    [change] = cast("list[dict[str, Any]]", firing.changes)
    assert change["answer"].status == "expired"
    assert (await validator.handler.fire(second)).outputs == []


async def test_pt_05_a_program_record_carrying_an_ip_pin_is_dead_lettered_with_nothing_kept() -> (
    None
):
    validator = Validator()
    record = {"taxpayer_ref": REF, "year": 2026, "basis": "opt_in", "ip_pin": "123456"}
    value = json.dumps(record).encode()
    async with TestKafkaBroker(validator.broker) as test_broker:
        await test_broker.publish(
            value, topic=topics.PROTECTED, key=REF.encode(), headers=signed(value, "protection")
        )
    [(letter, headers)] = validator.seen[topics.VALIDATOR_DLQ]
    assert (letter, headers["error-class"]) == (b"", "BodyWithheld")
    assert validator.store.protected == {}


async def test_pt_02_a_number_the_validator_gave_a_designee_is_not_a_registration() -> None:
    """PT-02: a first-time designee's number (CN-01) does not make the next 8821 naming it
    look registered."""
    validator = Validator()
    first_time = {"form": "8821", "caf_number": None, "designation": None, "ptin": "P12345678"}
    async with TestKafkaBroker(validator.broker) as test_broker:
        await protect(test_broker)
        await send(test_broker, grant_bytes(online(**first_time)))
        [held] = validator.events()
        again = online(
            form="8821",
            caf_number=held["caf_number"],
            designation=None,
            grant_id="tpa-2",
            request_id="tpa-2",
        )
        await send(test_broker, grant_bytes(again))
    assert [(e["grant_id"], e["rule_id"]) for e in validator.events()] == [
        ("tpa-1", "PT-02"),
        ("tpa-2", "PT-02"),
    ]


async def test_pt_03_a_confirmation_judges_the_representative_again() -> None:
    """PT-03 with VA-02: a number put pending review while the grant waited is not released."""
    validator = Validator()
    async with TestKafkaBroker(validator.broker) as test_broker:
        await publish_registry(test_broker, REGISTERED, b"030112345")
        await protect(test_broker)
        await send(test_broker, grant_bytes(paper()))
        await publish_registry(test_broker, REGISTERED | {"status_code": "P"}, b"030112345")
        await send(test_broker, answer("confirm"))
    assert validator.validated() == []
    ended = validator.events()[-1]
    assert (ended["type"], ended["rule_id"], ended["reason_code"]) == (
        "AuthorizationRejected",
        "VA-02",
        "REJ-REP-PENDING-REVIEW",
    )


async def test_pt_03_an_answer_after_the_last_day_is_refused_even_before_the_timer_fires() -> None:
    late = ConfirmHeld(
        action="confirm",
        message_id="pc-late",
        taxpayer_ref=REF,
        tin_last4="6789",
        grant_id="m-1:0",
        decision="confirm",
        answered_at=NOW + dt.timedelta(days=31),
    )
    validator = await through_validator(grant_bytes(paper()), late.model_dump_json().encode())
    assert validator.events()[-1]["reason_code"] == "REJ-PT-NOT-HELD"
    assert validator.validated() == []
