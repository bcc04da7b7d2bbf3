"""Intake's signature evidence (ES-01, ES-02) through its handler: the harness of
`test_intake_service` (`register` with the fake store under TestKafkaBroker), with each inbound
record built here and handed to the handler, so the evidence can be checked against the record
that carried the act (topic, partition, offset, `caf-signature`)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from aiokafka import ConsumerRecord
from faststream.kafka import TestKafkaBroker
from pydantic import BaseModel

from caf_runtime.broker import make_broker
from caf_runtime.guard import copy_of
from devstack import messages
from devstack.keys import ISSUER
from schemas import topics
from schemas.codec import decode_inbound
from schemas.evidence import SignatureEvidence
from schemas.grants import PostGrant, RevokeGrants, WithdrawGrants
from schemas.inbound import Submission
from services.intake.config import IntakeSettings
from services.intake.evidence import canonical_content
from services.intake.handlers import SIGNED_RECORD, IntakeHandler, register
from tests.service.fakes import FakeIntakeStore, FixedClock, Seen, probe
from tests.signing import assertion, signed_headers
from tests.unit.builders import NOW, RECEIVED, decode, removal, submission
from tests.unit.test_intake_tpa_rules import request as tpa_request

pytestmark = pytest.mark.service


@dataclass
class Intake:
    handler: IntakeHandler
    settings: IntakeSettings
    seen: Seen

    def commands(self) -> list[dict[str, Any]]:
        return [json.loads(value) for value, _ in self.seen.get(topics.GRANTS_ACCEPTED, [])]

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(value) for value, _ in self.seen.get(topics.EVENTS, [])]


@asynccontextmanager
async def intake(**settings_values: Any) -> AsyncIterator[Intake]:
    settings = IntakeSettings.model_validate(
        {"taxpayer_ref_key": os.environ["INTAKE_TAXPAYER_REF_KEY"], **settings_values}
    )
    broker = make_broker(settings, client_id="test")
    handler = register(broker, settings, FakeIntakeStore(), FixedClock())
    seen = probe(broker, topics.GRANTS_ACCEPTED, topics.EVENTS, topics.INBOUND_DLQ)
    async with TestKafkaBroker(broker):
        yield Intake(handler, settings, seen)
    assert topics.INBOUND_DLQ not in seen


def record(
    message: BaseModel | dict[str, Any],
    *,
    offset: int,
    topic: str = topics.INBOUND,
    kid: str | None = None,
    partition: int = 1,
) -> ConsumerRecord[bytes, bytes]:
    """The record of `caf.inbound.v1` that carries `message`, signed by its publisher."""
    value = (
        message.model_dump_json().encode()
        if isinstance(message, BaseModel)
        else json.dumps(message).encode()
    )
    return ConsumerRecord(
        topic=topic,
        partition=partition,
        offset=offset,
        timestamp=int(NOW.timestamp() * 1000),
        timestamp_type=0,
        key=b"k",
        value=value,
        checksum=None,
        serialized_key_size=1,
        serialized_value_size=len(value),
        headers=signed_headers(value, kid=kid),
    )


def evidence_of(command: dict[str, Any]) -> list[SignatureEvidence]:
    return [SignatureEvidence.model_validate(e) for e in command["signature_evidence"]]


def document_of(evidence: SignatureEvidence) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(evidence.payload())
    return document


def carried_by(carrier: ConsumerRecord[bytes, bytes]) -> dict[str, Any]:
    """The `record` an evidence object names: the record that carried the signed act."""
    [signature] = [v.decode() for k, v in carrier.headers if k == "caf-signature"]
    return {
        "topic": topics.INBOUND,
        "partition": carrier.partition,
        "offset": carrier.offset,
        "timestamp": dt.datetime.fromtimestamp(carrier.timestamp / 1000, tz=dt.UTC).isoformat(),
        "value_sha256": hashlib.sha256(carrier.value or b"").hexdigest(),
        "caf_signature": signature,
    }


def content_sha256(carrier: ConsumerRecord[bytes, bytes]) -> str:
    """The SHA-256 of the message as accepted, in canonical JSON."""
    return hashlib.sha256(canonical_content(decode_inbound(carrier.value or b""))).hexdigest()


def two_representatives(second_method: str) -> Submission:
    """A 2848 e-signed by the taxpayer and its first representative; the second signs with
    `second_method`."""
    document = submission().model_dump(mode="json")
    first = document["representatives"][0]
    second = first | {
        "caf_number": "0301-54321R",
        "name": "Blake Doe",
        "ptin": "P07654321",
        "licence_number": "CPA-55103",
        "receive_notices": False,
        "signature": {"date": "2026-11-19", "method": second_method},
    }
    document["representatives"] = [first, second]
    message = decode(document)
    assert isinstance(message, Submission)
    return message


async def test_an_e_signed_submission_carries_the_taxpayers_evidence_on_every_grant_and_each_e_signing_representatives_own_es_01() -> (  # noqa: E501
    None
):
    """One object per electronic signature: the taxpayer's on both grants (the same object, built
    once), the first representative's on its grant only; the wet-signing second representative
    leaves none."""
    carrier = record(two_representatives("wet"), offset=41)
    async with intake() as i:
        await i.handler.handle(carrier)
    first, second = i.commands()
    assert (first["grant_id"], second["grant_id"]) == ("m-1:0", "m-1:1")
    taxpayer, representative = evidence_of(first)
    assert evidence_of(second) == [taxpayer]
    assert [(e.role, e.act) for e in (taxpayer, representative)] == [
        ("taxpayer", "submission"),
        ("representative", "submission"),
    ]

    signed = document_of(taxpayer)
    assert signed["signer"] == {"taxpayer_ref": first["taxpayer_ref"]}
    assert (signed["method"], signed["signed_on"]) == ("electronic", "2026-11-18")
    assert signed["assurance"] == {"source": "declared", "ial": None, "aal": None}
    assert signed["record"] == carried_by(carrier)
    assert signed["content"]["sha256"] == content_sha256(carrier)

    own = document_of(representative)
    assert own["signer"] == {"caf_number": "030112345", "position": 0}
    assert (own["method"], own["signed_on"]) == ("electronic", "2026-11-19")
    assert own["record"] == carried_by(carrier)
    for evidence in (taxpayer, representative):
        data = evidence.payload()
        assert b"123-45-6789" not in data
        assert b"123456789" not in data


async def test_a_representatives_electronic_signature_adds_its_own_object_on_a_wet_signed_form_es_01() -> (  # noqa: E501
    None
):
    carrier = record(
        submission(taxpayer__signature={"date": "2026-11-18", "method": "wet"}), offset=42
    )
    async with intake() as i:
        await i.handler.handle(carrier)
    [grant] = i.commands()
    [own] = evidence_of(grant)
    assert (own.role, own.act) == ("representative", "submission")
    assert document_of(own)["signer"] == {"caf_number": "030112345", "position": 0}


async def test_a_wet_signed_submission_carries_no_evidence_es_01() -> None:
    """The paper is the evidence."""
    wet = submission(
        taxpayer__signature={"date": "2026-11-18", "method": "wet"},
        rep__signature={"date": "2026-11-19", "method": "wet"},
    )
    async with intake() as i:
        await i.handler.handle(record(wet, offset=43))
    [grant] = i.commands()
    assert (grant["action"], grant["signature_evidence"]) == ("post", [])


async def test_a_rejected_submission_leaves_no_evidence_anywhere_es_01() -> None:
    """Only an accepted grant carries evidence: a refusal (here TB-01, received too long ago)
    is an event, with none."""
    async with intake() as i:
        await i.handler.handle(record(submission(received_on="2026-08-01"), offset=44))
    assert i.commands() == []
    [refused] = i.events()
    assert refused["type"] == "AuthorizationRejected"
    assert "signature_evidence" not in refused


def tpa_decision() -> dict[str, Any]:
    """The taxpayer's approval of `tpa-1`, with their identity assertion."""
    approval = messages.tpa_decision(
        "tpa-1",
        signed=messages.online_signature(
            RECEIVED, at=dt.datetime(2026, 11, 20, 18, 59, tzinfo=dt.UTC)
        ),
        identity_assertion=assertion(
            tin="123-45-6789", nonce="tpa-1", issued_at=NOW, subject="user-7", jti="jti-7"
        ),
        message_id="d-1",
        sent_at=dt.datetime.fromisoformat("2026-11-20T13:59:00-05:00"),
    )
    return messages.document(approval)


async def test_a_tpa_request_carries_the_professionals_evidence_and_its_approval_both_signatures_es_01() -> (  # noqa: E501
    None
):
    """The request's grant (to review) carries the professional's checkbox signature with the
    levels the portal declared; the approval's grant carries it unchanged and the taxpayer's,
    with the verified identity assertion."""
    asked = record(tpa_request(), offset=50, kid="tax-pro-account")
    decided = record(tpa_decision(), offset=51, kid="online-account")
    async with intake() as i:
        await i.handler.handle(asked)
        await i.handler.handle(decided)
    pending, approved = (PostGrant.model_validate(c, strict=False) for c in i.commands())
    assert (pending.review, approved.review) == (True, False)
    [professional] = pending.signature_evidence
    assert approved.signature_evidence[0] == professional
    taxpayer = approved.signature_evidence[1]
    assert len(approved.signature_evidence) == 2

    request_signed = document_of(professional)
    assert (professional.role, professional.act) == ("representative", "tpa_request")
    assert request_signed["signer"] == {"caf_number": "030112345"}
    assert request_signed["method"] == "checkbox"
    assert request_signed["assurance"] == {"source": "declared", "ial": 2, "aal": 2}
    assert request_signed["record"] == carried_by(asked)
    assert request_signed["content"]["sha256"] == content_sha256(asked)

    approval = document_of(taxpayer)
    assert (taxpayer.role, taxpayer.act) == ("taxpayer", "tpa_approval")
    assert approval["signer"] == {"taxpayer_ref": approved.taxpayer_ref}
    assert approval["assurance"] == {
        "source": "identity_assertion",
        "ial": 2,
        "aal": 2,
        "issuer": ISSUER,
        "subject": "user-7",
        "jti": "jti-7",
    }
    assert (approval["method"], approval["signed_on"], approval["signed_at"]) == (
        "checkbox",
        "2026-11-20",
        "2026-11-20T18:59:00+00:00",
    )
    assert approval["record"] == carried_by(decided)
    assert approval["content"]["sha256"] == content_sha256(decided)


async def test_a_withdrawal_signed_by_checkbox_carries_the_representatives_evidence_es_01() -> None:
    carrier = record(removal("withdrawal"), offset=60)
    async with intake() as i:
        await i.handler.handle(carrier)
    [command] = i.commands()
    withdrawal = WithdrawGrants.model_validate(command, strict=False)
    [own] = withdrawal.signature_evidence
    assert (own.role, own.act) == ("representative", "withdrawal")
    signed = document_of(own)
    assert (signed["signer"], signed["method"]) == ({"caf_number": "030112345"}, "checkbox")
    assert signed["record"] == carried_by(carrier)


async def test_a_revocation_in_online_account_carries_the_taxpayers_asserted_evidence_and_a_paper_one_none_es_01() -> (  # noqa: E501
    None
):
    token = assertion(tin="123-45-6789", nonce="m-2", issued_at=NOW, subject="u-9", jti="j-9")
    online = removal("revocation", channel="online_account", identity_assertion=token)
    paper = removal(
        "revocation",
        message_id="m-3",
        channel="mail",
        signature={"date": "2026-11-20", "method": "wet"},
    )
    async with intake() as i:
        await i.handler.handle(record(online, offset=70, kid="online-account"))
        await i.handler.handle(record(paper, offset=71))
    first, second = (RevokeGrants.model_validate(c, strict=False) for c in i.commands())
    [taxpayer] = first.signature_evidence
    assert (taxpayer.role, taxpayer.act) == ("taxpayer", "revocation")
    assert document_of(taxpayer)["assurance"]["source"] == "identity_assertion"
    assert second.signature_evidence == []


async def test_an_approval_parked_until_its_request_arrives_names_the_record_that_carried_it_es_01() -> (  # noqa: E501
    None
):
    """IN-21 parks a decision that arrives before its request on the retry topic, as a sealed
    copy that names the record it came on (`signed-record`). Handled from there, the evidence
    still names the caf.inbound.v1 record the taxpayer's approval came on, not the copy."""
    decided = record(tpa_decision(), offset=51, kid="online-account")
    async with intake(decision_retry_delay_s=0.01) as i:
        # the decision came first: intake parked this sealed copy of it (`_retry_later`);
        # then its request arrived
        await i.handler.handle(record(tpa_request(), offset=52, kid="tax-pro-account"))
        sealer = i.settings.sealer()
        assert sealer is not None
        control = {
            "first-seen": NOW.isoformat(),
            "not-before": NOW.isoformat(),
            SIGNED_RECORD: f"{decided.topic}:{decided.partition}:{decided.offset}:"
            f"{decided.timestamp}",
        }
        parked = copy_of(decided, topics.INBOUND_RETRY, control, sealer)
        retried = ConsumerRecord(
            topic=i.settings.topic(topics.INBOUND_RETRY),
            partition=0,
            offset=9,
            timestamp=int((NOW + dt.timedelta(seconds=5)).timestamp() * 1000),
            timestamp_type=0,
            key=None,
            value=parked.value,
            checksum=None,
            serialized_key_size=0,
            serialized_value_size=len(parked.value),
            headers=[(k, v.encode()) for k, v in parked.headers.items()],
        )
        await i.handler.handle_retry(retried)
    approved = PostGrant.model_validate(i.commands()[-1], strict=False)
    assert approved.review is False
    [_, taxpayer] = approved.signature_evidence
    assert document_of(taxpayer)["record"] == carried_by(decided)
