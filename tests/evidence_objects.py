"""Real evidence objects for tests: built by intake's own builder with a throwaway key."""

from __future__ import annotations

import datetime as dt
import secrets

from aiokafka import ConsumerRecord

from caf_runtime.envelope import KeyRing, Sealer
from schemas.evidence import SignatureEvidence
from schemas.inbound import Signature
from services.intake.evidence import (
    Assurance,
    SignedBy,
    SigningRecord,
    canonical_content,
    evidence_object,
)
from tests.unit.builders import submission

SEALER = Sealer(KeyRing({"k1": secrets.token_bytes(32)}, "k1"))


def carrier(offset: int = 7) -> SigningRecord:
    record: ConsumerRecord[bytes, bytes] = ConsumerRecord(
        topic="caf.inbound.v1",
        partition=2,
        offset=offset,
        timestamp=1_795_000_000_000,
        timestamp_type=0,
        key=None,
        value=b'{"kind":"submission"}',
        checksum=None,
        serialized_key_size=0,
        serialized_value_size=21,
        headers=[("caf-signature", b"eyJhbGciOiJFZERTQSJ9..c2ln")],
    )
    return SigningRecord.of(record)


def taxpayer_evidence(offset: int = 7, *, asserted: bool = False) -> SignatureEvidence:
    """The evidence of a taxpayer's electronic signature on an uploaded 2848."""
    message = submission()
    signature = Signature(date=dt.date(2026, 11, 18), method="electronic", ial=2, aal=2)
    signed = SignedBy(
        act="submission",
        role="taxpayer",
        signer={"taxpayer_ref": "a" * 32},
        signature=signature,
        asserted=Assurance.asserted("https://idp.example", "sub-1", "jti-1") if asserted else None,
    )
    return evidence_object(signed, canonical_content(message), carrier(offset), SEALER)
