"""Intake under TestKafkaBroker with a fake store: each handler path, without a broker process."""

from __future__ import annotations

import datetime as dt
import json
import os
from typing import Any

import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker
from pydantic import BaseModel

from caf_runtime.broker import make_broker
from caf_runtime.clock import SystemClock
from schemas import topics
from services.intake.config import IntakeSettings
from services.intake.handlers import register
from tests.service.fakes import FakeIntakeStore, FixedClock, Seen, probe
from tests.signing import assertion, signed
from tests.unit.builders import NOW, submission

pytestmark = pytest.mark.service


def wired(clock: Any = None, **settings_values: Any) -> tuple[KafkaBroker, FakeIntakeStore, Seen]:
    settings = IntakeSettings.model_validate(
        {"taxpayer_ref_key": os.environ["INTAKE_TAXPAYER_REF_KEY"], **settings_values}
    )
    broker = make_broker(settings, client_id="test")
    store = FakeIntakeStore()
    register(broker, settings, store, clock or FixedClock())
    seen = probe(broker, topics.GRANTS_ACCEPTED, topics.EVENTS, topics.INBOUND_DLQ)
    return broker, store, seen


async def publish_inbound(test_broker: KafkaBroker, value: bytes, key: bytes) -> None:
    """An inbound record signed by the development publisher of its kind (AU-01)."""
    await test_broker.publish(value, topic=topics.INBOUND, key=key, headers=signed(value))


def as_bytes(message: BaseModel) -> bytes:
    return message.model_dump_json().encode()


def as_document(message: BaseModel) -> dict[str, Any]:
    return dict(json.loads(message.model_dump_json()))


def only_value(seen: Seen, topic: str) -> bytes:
    """The value of the one record intake published to `topic` (there must be exactly one)."""
    [(value, _)] = seen[topic]
    return value


def only(seen: Seen, topic: str) -> dict[str, Any]:
    """The one record intake published to `topic`, decoded (there must be exactly one)."""
    return dict(json.loads(only_value(seen, topic)))


async def test_an_accepted_form_becomes_one_grant_per_representative() -> None:
    broker, _, seen = wired()
    async with TestKafkaBroker(broker) as test_broker:
        await publish_inbound(test_broker, as_bytes(submission()), b"m-1")
    value = only_value(seen, topics.GRANTS_ACCEPTED)
    grant = json.loads(value)
    assert (grant["action"], grant["grant_id"], grant["caf_number"]) == (
        "post",
        "m-1:0",
        "030112345",
    )
    assert "123-45-6789" not in value.decode()
    assert "123456789" not in value.decode()


async def test_a_repeated_message_id_has_no_second_outcome() -> None:
    """IN-02."""
    broker, _, seen = wired()
    async with TestKafkaBroker(broker) as test_broker:
        for _ in range(2):
            await publish_inbound(test_broker, as_bytes(submission()), b"m-1")
    assert len(seen[topics.GRANTS_ACCEPTED]) == 1


async def test_a_rejected_form_becomes_a_rejection_event_per_grant() -> None:
    """IN-10 through the handler."""
    broker, _, seen = wired()
    async with TestKafkaBroker(broker) as test_broker:
        await publish_inbound(test_broker, as_bytes(submission(taxpayer__signature=None)), b"m-1")
    event = only(seen, topics.EVENTS)
    assert (event["type"], event["reason_code"], event["stage"]) == (
        "AuthorizationRejected",
        "REJ-TP-SIG-MISSING",
        "intake",
    )
    assert topics.GRANTS_ACCEPTED not in seen


async def test_bytes_that_are_not_json_go_to_the_dead_letter_topic_with_headers() -> None:
    """IN-01."""
    broker, store, seen = wired()
    async with TestKafkaBroker(broker) as test_broker:
        await publish_inbound(test_broker, b"\xff\xfe not json", b"k")
    [(value, headers)] = seen[topics.INBOUND_DLQ]
    assert b"not json" not in value, "sealed: intake's input stays inside intake"
    sealer = IntakeSettings.model_validate({}).sealer()
    assert sealer is not None
    assert sealer.open(value).value == b"\xff\xfe not json"
    assert headers["content-encryption"] == "caf-envelope/1"
    assert headers["error-class"] == "ContractError"
    assert headers["original-topic"] == topics.INBOUND
    assert store.ledger.items == {}


async def test_a_decision_for_an_unknown_request_is_parked_then_rejected_after_the_window() -> None:
    """IN-21: not rejected at once, retried through the retry topic, rejected once at the end."""
    broker, _, seen = wired(
        SystemClock(), decision_retry_window_s=0.08, decision_retry_delay_s=0.05
    )
    retried = probe(broker, topics.INBOUND_RETRY)
    decision = {
        "kind": "tpa_decision",
        "schema_version": 1,
        "message_id": "d-1",
        "sent_at": "2026-11-21T09:00:00-05:00",
        "request_id": "tpa-1",
        "decision": "approve",
    }
    async with TestKafkaBroker(broker) as test_broker:
        await publish_inbound(test_broker, json.dumps(decision).encode(), b"tpa-1")
    parked = retried[topics.INBOUND_RETRY]
    assert parked
    assert all({"first-seen", "not-before"} <= set(headers) for _, headers in parked)
    event = only(seen, topics.EVENTS)
    assert (event["reason_code"], event["grant_id"]) == ("REJ-UNKNOWN-REQUEST", "tpa-1")


async def test_au_03_a_first_seen_header_from_outside_is_ignored() -> None:
    """AU-03: a forged `first-seen` on caf.inbound.v1 cannot make a decision look older (and be
    refused at once); intake parks it with the moment it really arrived."""
    broker, _, seen = wired(SystemClock(), decision_retry_window_s=0.3, decision_retry_delay_s=0.05)
    retried = probe(broker, topics.INBOUND_RETRY)
    decision = {
        "kind": "tpa_decision",
        "schema_version": 1,
        "message_id": "d-2",
        "sent_at": "2026-11-21T09:00:00-05:00",
        "request_id": "tpa-2",
        "decision": "approve",
    }
    value = json.dumps(decision).encode()
    forged = {**signed(value), "first-seen": "2000-01-01T00:00:00+00:00"}
    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish(value, topic=topics.INBOUND, key=b"tpa-2", headers=forged)
    parked = retried[topics.INBOUND_RETRY]
    assert parked, "parked, not refused at once"
    first_seen = dt.datetime.fromisoformat(parked[0][1]["first-seen"])
    assert abs((first_seen - dt.datetime.now(dt.UTC)).total_seconds()) < 30
    assert only(seen, topics.EVENTS)["reason_code"] == "REJ-UNKNOWN-REQUEST"


def confirmation(tin: str = "123-45-6789", **changes: Any) -> dict[str, Any]:
    """A protected taxpayer's answer in Online Account (PT-03), with their assertion."""
    document: dict[str, Any] = {
        "kind": "protected_confirmation",
        "schema_version": 1,
        "message_id": "pc-1",
        "sent_at": "2026-11-20T13:59:00-05:00",
        "grant_id": "m-9:0",
        "taxpayer": {"tin": tin, "tin_type": "SSN"},
        "decision": "confirm",
        "identity_assertion": assertion(
            tin="123-45-6789", nonce="m-9:0", issued_at=NOW, subject="user-7", jti="jti-pc"
        ),
    }
    return document | changes


async def test_pt_03_a_protected_taxpayers_answer_goes_to_the_validator_by_their_ref() -> None:
    """PT-03 with AU-02: the assertion verified, the answer travels as a command keyed by the
    taxpayer's ref, without their TIN."""
    broker, _, seen = wired()
    async with TestKafkaBroker(broker) as test_broker:
        await publish_inbound(test_broker, json.dumps(confirmation()).encode(), b"pc-1")
    value = only_value(seen, topics.GRANTS_ACCEPTED)
    command = json.loads(value)
    assert (command["action"], command["grant_id"], command["decision"]) == (
        "confirm",
        "m-9:0",
        "confirm",
    )
    assert command["assertion_jti"] == "jti-pc"
    assert "123456789" not in value.decode()
    assert "123-45-6789" not in value.decode()


@pytest.mark.parametrize(
    ("changes", "check"),
    [
        ({"identity_assertion": None}, "REJ-IDENTITY-ASSERTION"),
        ({"taxpayer": {"tin": "234-56-7890", "tin_type": "SSN"}}, "REJ-IDENTITY-ASSERTION"),
        ({"grant_id": "m-8:0"}, "REJ-IDENTITY-ASSERTION"),  # its nonce is another grant's
    ],
)
async def test_pt_03_an_answer_without_the_taxpayers_own_assertion_is_refused(
    changes: dict[str, Any], check: str
) -> None:
    """PT-03 with AU-02: no assertion, another taxpayer's, or one made for another grant."""
    broker, _, seen = wired()
    async with TestKafkaBroker(broker) as test_broker:
        await publish_inbound(test_broker, json.dumps(confirmation(**changes)).encode(), b"pc-1")
    assert only(seen, topics.EVENTS)["reason_code"] == check
    assert topics.GRANTS_ACCEPTED not in seen


@pytest.mark.parametrize(
    "carrying",
    [
        {"ip_pin": "123456"},
        {"taxpayer": {"tin": "123-45-6789", "tin_type": "SSN", "ipPin": "123456"}},
        {"notes": "taxpayer's IP PIN: 123456"},
    ],
)
async def test_pt_05_a_message_carrying_an_ip_pin_is_refused_and_nothing_of_it_kept(
    carrying: dict[str, Any],
) -> None:
    """PT-05: rejected REJ-IP-PIN-COLLECTED; no grant, no dead letter, no evidence."""
    broker, store, seen = wired()
    document = as_document(submission()) | carrying
    async with TestKafkaBroker(broker) as test_broker:
        await publish_inbound(test_broker, json.dumps(document).encode(), b"m-1")
    event = only(seen, topics.EVENTS)
    assert (event["rule_id"], event["reason_code"], event["grant_id"]) == (
        "PT-05",
        "REJ-IP-PIN-COLLECTED",
        "m-1",
    )
    assert topics.GRANTS_ACCEPTED not in seen
    assert topics.INBOUND_DLQ not in seen
    assert "123456" not in json.dumps(
        [o.value.decode() for recorded in store.ledger.items.values() for o in recorded.outputs]
    )


@pytest.mark.parametrize(
    ("raw", "headers"),
    [
        (b'{"ip_pin": "123456"', None),  # no readable message id
        (b'{"message_id": "m-123456", "notes": "IP PIN 123456"}', None),  # an id that may be it
        (b'{"message_id": "m-7", "ip_pin": "123456"}', {"caf-signature": "forged"}),  # unsigned
    ],
)
async def test_pt_05_an_ip_pin_message_that_cannot_be_refused_by_event_keeps_nothing(
    raw: bytes, headers: dict[str, str] | None
) -> None:
    """PT-05: a clear outcome (a dead letter with error headers, `BodyWithheld`) whose body,
    key and headers are withheld: nothing to open, nothing to replay."""
    broker, store, seen = wired()
    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish(
            raw, topic=topics.INBOUND, key=b"k-123456", headers=headers or signed(raw)
        )
    [(value, letter)] = seen[topics.INBOUND_DLQ]
    assert value == b""
    assert letter["error-class"] == "BodyWithheld"
    assert "123456" not in json.dumps(letter)
    assert "caf-signature" not in letter
    assert store.ledger.items == {}
    assert topics.EVENTS not in seen


def api_withdrawal(**taxpayer: Any) -> dict[str, Any]:
    """A withdrawal as the authorization API publishes it (MN-07): the taxpayer by ref."""
    return {
        "kind": "withdrawal",
        "schema_version": 1,
        "message_id": "api-wd-1",
        "sent_at": "2026-11-20T13:59:00-05:00",
        "caf_number": "030112345",
        "taxpayer": taxpayer or {"ref": "c" * 32, "tin_last4": "6789"},
        "form": "2848",
        "tax_matters": [{"tax_type": "Income", "form_number": "1040", "periods": ["2024"]}],
        "signature": {"date": "2026-11-20", "method": "checkbox"},
    }


async def test_mn_07_a_withdrawal_from_the_api_names_the_taxpayer_by_ref() -> None:
    """MN-07 with IN-04: signed `caf-api`, the ref becomes the command's taxpayer_ref."""
    broker, _, seen = wired()
    value = json.dumps(api_withdrawal()).encode()
    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish(
            value, topic=topics.INBOUND, key=b"api-wd-1", headers=signed(value, kid="caf-api")
        )
    withdraw = only(seen, topics.GRANTS_ACCEPTED)
    assert (withdraw["action"], withdraw["taxpayer_ref"], withdraw["tin_last4"]) == (
        "withdraw",
        "c" * 32,
        "6789",
    )


@pytest.mark.parametrize(
    ("publisher", "taxpayer"),
    [
        ("tax-pro-account", {"ref": "c" * 32, "tin_last4": "6789"}),  # only the API names a ref
        ("caf-api", {"ref": "c" * 32}),  # without the last four digits
        ("caf-api", {"tin": "123-45-6789", "tin_type": "SSN"}),  # the API never holds a TIN
    ],
)
async def test_in_04_a_taxpayer_by_ref_is_accepted_only_from_the_api_and_only_whole(
    publisher: str, taxpayer: dict[str, str]
) -> None:
    broker, _, seen = wired()
    value = json.dumps(api_withdrawal(**taxpayer)).encode()
    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish(
            value, topic=topics.INBOUND, key=b"api-wd-1", headers=signed(value, kid=publisher)
        )
    event = only(seen, topics.EVENTS)
    assert (event["rule_id"], event["reason_code"]) == (
        "IN-04",
        "REJ-TP-ID-MISSING",
    )
    assert topics.GRANTS_ACCEPTED not in seen


async def test_pt_05_a_message_id_with_other_digits_still_gets_its_refusal_event() -> None:
    """Only the PIN itself makes an id unkeepable (a uuid often holds six digits in a row)."""
    broker, _, seen = wired()
    raw = b'{"message_id": "m-777777-a", "ip_pin": "123456"}'
    async with TestKafkaBroker(broker) as test_broker:
        await publish_inbound(test_broker, raw, b"m-777777-a")
    assert only(seen, topics.EVENTS)["reason_code"] == "REJ-IP-PIN-COLLECTED"
    assert topics.INBOUND_DLQ not in seen
