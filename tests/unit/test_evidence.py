"""Signature evidence objects (ES-01, ES-02) and the poster's retry policy for storing them
(ES-03), pure: real objects built by intake's own builder (`tests.evidence_objects`)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from typing import Any

import pytest
import rfc8785

from schemas.evidence import FORMAT, KEY_PREFIX, SignatureEvidence, object_key, sha256_of_key
from services.caf_poster.rules import EvidenceRetry
from services.intake.evidence import CONTENT_FORMAT, canonical_content
from tests.evidence import RETRY
from tests.evidence_objects import SEALER, carrier, taxpayer_evidence
from tests.unit.builders import NOW, submission

pytestmark = pytest.mark.unit


def document_of(evidence: SignatureEvidence) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(evidence.payload())
    return document


def test_an_evidence_object_is_addressed_by_the_sha256_of_its_bytes_es_02() -> None:
    evidence = taxpayer_evidence()
    data = base64.b64decode(evidence.data)
    assert evidence.sha256 == hashlib.sha256(data).hexdigest()
    assert evidence.key == f"evidence/sha256/{evidence.sha256}" == object_key(evidence.sha256)
    assert sha256_of_key(evidence.key) == evidence.sha256
    assert evidence.payload() == data


def test_an_evidence_object_is_rfc_8785_canonical_json_es_02() -> None:
    data = taxpayer_evidence().payload()
    assert rfc8785.dumps(json.loads(data)) == data


def test_an_evidence_object_names_the_act_the_signer_the_method_and_the_record_es_01() -> None:
    document = document_of(taxpayer_evidence(offset=7))
    assert {k: v for k, v in document.items() if k not in {"content", "assurance"}} == {
        "format": FORMAT,
        "act": "submission",
        "role": "taxpayer",
        "signer": {"taxpayer_ref": "a" * 32},
        "method": "electronic",
        "signed_on": "2026-11-18",
        # no instant on the signature: the record's timestamp
        "signed_at": carrier().timestamp.isoformat(),
        "record": carrier(offset=7).document(),
    }
    assert document["record"]["topic"] == "caf.inbound.v1"
    assert document["record"]["offset"] == 7
    assert document["record"]["caf_signature"] == "eyJhbGciOiJFZERTQSJ9..c2ln"
    assert (
        document["record"]["value_sha256"] == hashlib.sha256(b'{"kind":"submission"}').hexdigest()
    )


def test_the_signed_content_is_sealed_and_opens_to_the_canonical_message_es_02() -> None:
    """The TIN never appears in the object; the sealer opens the content to exactly the message
    as accepted, in canonical JSON, whose SHA-256 the object states."""
    message = submission()
    data = taxpayer_evidence().payload()
    assert message.taxpayer.tin == "123-45-6789"
    for tin in (b"123-45-6789", b"123456789", b"Jordan Q Public", b"1 Main St"):
        assert tin not in data
    content = document_of(taxpayer_evidence())["content"]
    expected = canonical_content(message)
    assert content["format"] == CONTENT_FORMAT
    assert content["sha256"] == hashlib.sha256(expected).hexdigest()
    assert b"123-45-6789" in expected, "what is sealed is the whole message, TIN included"
    opened = SEALER.open(json.dumps(content["sealed"]).encode())
    assert opened.value == expected
    assert opened.value_sha256 == content["sha256"]
    assert rfc8785.dumps(json.loads(expected)) == expected


def test_the_same_act_sealed_twice_gives_two_objects_so_an_object_is_built_once_es_02() -> None:
    """A fresh data key each time: the content address differs, the fields do not."""
    first, second = taxpayer_evidence(), taxpayer_evidence()
    assert first.sha256 != second.sha256
    one, other = document_of(first), document_of(second)
    assert one["content"]["sha256"] == other["content"]["sha256"]
    assert {k: v for k, v in one.items() if k != "content"} == {
        k: v for k, v in other.items() if k != "content"
    }


def test_without_an_assertion_the_assurance_is_what_the_portal_declared_es_01() -> None:
    assert document_of(taxpayer_evidence())["assurance"] == {
        "source": "declared",
        "ial": 2,
        "aal": 2,
    }


def test_with_a_verified_assertion_the_assurance_names_its_issuer_subject_and_jti_es_01() -> None:
    assert document_of(taxpayer_evidence(asserted=True))["assurance"] == {
        "source": "identity_assertion",
        "ial": 2,
        "aal": 2,
        "issuer": "https://idp.example",
        "subject": "sub-1",
        "jti": "jti-1",
    }


def test_evidence_whose_bytes_do_not_match_its_sha256_is_refused_es_03() -> None:
    evidence = taxpayer_evidence()
    other = taxpayer_evidence(offset=8).data
    forged = evidence.model_copy(update={"data": other})
    with pytest.raises(ValueError, match="do not match"):
        forged.payload()
    tampered = bytearray(evidence.payload())
    tampered[-2] ^= 1
    changed = evidence.model_copy(update={"data": base64.b64encode(bytes(tampered)).decode()})
    with pytest.raises(ValueError, match="do not match"):
        changed.payload()


def test_a_ref_names_the_object_and_its_retention_es_03() -> None:
    evidence = taxpayer_evidence()
    until = RETRY.retain_until(NOW)
    ref = evidence.ref(until)
    assert (ref.role, ref.act, ref.key, ref.sha256, ref.retain_until) == (
        "taxpayer",
        "submission",
        evidence.key,
        evidence.sha256,
        dt.datetime(2033, 11, 21, tzinfo=dt.UTC),
    )


def test_the_store_is_tried_again_after_each_listed_delay_then_at_a_steady_pace_es_03() -> None:
    assert [RETRY.next_try(NOW, attempt) - NOW for attempt in range(1, 6)] == [
        dt.timedelta(seconds=5),
        dt.timedelta(seconds=30),
        dt.timedelta(minutes=5),
        dt.timedelta(minutes=5),
        dt.timedelta(minutes=5),
    ]


@pytest.mark.parametrize("listed", [1, 2, 3])
def test_a_delay_is_announced_exactly_once_when_the_attempt_after_the_listed_delays_fails_es_03(
    listed: int,
) -> None:
    retry = EvidenceRetry(
        retention=dt.timedelta(days=2557),
        delays=tuple(dt.timedelta(seconds=5 * (n + 1)) for n in range(listed)),
        every=dt.timedelta(minutes=5),
    )
    announcing = [attempt for attempt in range(1, 50) if retry.announces_delay(attempt)]
    assert announcing == [listed + 1]


def test_evidence_is_locked_for_2557_days_after_the_posting_to_the_end_of_that_day_es_03() -> None:
    assert RETRY.retain_until(NOW) == dt.datetime(2033, 11, 21, tzinfo=dt.UTC)


def test_every_posting_of_one_day_asks_the_same_lock_and_midnight_is_not_rounded_es_03() -> None:
    midnight = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
    first, last = midnight + dt.timedelta(microseconds=1), midnight + dt.timedelta(hours=23.9)
    assert RETRY.retain_until(first) == RETRY.retain_until(last) > last + RETRY.retention
    assert RETRY.retain_until(midnight) == midnight + RETRY.retention


@pytest.mark.parametrize(
    "key",
    [
        "",
        KEY_PREFIX,
        "9f" * 32,
        f"{KEY_PREFIX}{'9f' * 31}",
        f"{KEY_PREFIX}{'9f' * 33}",
        f"{KEY_PREFIX}{'9F' * 32}",
        f"{KEY_PREFIX}{'9g' * 32}",
        f"{KEY_PREFIX}{'9f' * 32}\n",
        f"{KEY_PREFIX}{'9f' * 32}/",
        f"/{KEY_PREFIX}{'9f' * 32}",
        f"evidence/sha1/{'9f' * 32}",
        f"other/{KEY_PREFIX}{'9f' * 32}",
        f"{KEY_PREFIX}../{'9f' * 32}",
    ],
)
def test_a_key_that_is_not_a_content_address_names_no_sha256_es_05(key: str) -> None:
    assert sha256_of_key(key) is None


def test_a_content_address_names_its_sha256_es_05() -> None:
    assert sha256_of_key(f"{KEY_PREFIX}{'9f' * 32}") == "9f" * 32
