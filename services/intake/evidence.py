"""ES-01, ES-02: the evidence object of each electronic signature intake accepts.

Pure but for the sealer: the same act, record and content give an object with the same fields;
the sealed content differs each time it is sealed (a fresh data key), which is why an object is
built once, when intake decides, and then travels as recorded bytes (its content address is the
SHA-256 of those bytes, `schemas.evidence`).

What counts as an electronic signature (ES-01): a Tax Pro Account request (the professional's
checkbox) and its approval (the taxpayer's, with the verified identity assertion); a submission's
taxpayer or representative signature whose method is `electronic` or `checkbox`; a withdrawal
signed the same way; a revocation made in Online Account (with its verified assertion). A wet
signature on paper leaves no evidence object: the paper is the evidence.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import rfc8785
from aiokafka import ConsumerRecord
from pydantic import BaseModel

from caf_client.signing import SIGNATURE_HEADER
from caf_runtime.envelope import Sealer
from schemas.evidence import FORMAT, SignatureEvidence, SignedAct, SignerRole
from schemas.inbound import Signature
from services.intake.identity import Asserted

ELECTRONIC_METHODS = frozenset({"electronic", "checkbox"})
CONTENT_FORMAT = "rfc8785-json"


@dataclass(frozen=True)
class SigningRecord:
    """The Kafka record that carried a signed act, and its publisher's `caf-signature`."""

    topic: str
    partition: int
    offset: int
    timestamp: dt.datetime
    value_sha256: str
    caf_signature: str | None

    @classmethod
    def of(cls, record: ConsumerRecord[bytes, bytes]) -> SigningRecord:
        signatures = [v for k, v in record.headers or () if k == SIGNATURE_HEADER]
        return cls(
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            timestamp=dt.datetime.fromtimestamp(record.timestamp / 1000, tz=dt.UTC),
            value_sha256=hashlib.sha256(record.value or b"").hexdigest(),
            caf_signature=signatures[0].decode(errors="replace") if len(signatures) == 1 else None,
        )

    def document(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "timestamp": self.timestamp.isoformat(),
            "value_sha256": self.value_sha256,
            "caf_signature": self.caf_signature,
        }


@dataclass(frozen=True)
class Assurance:
    """How sure we are of who signed: a verified identity assertion, or the levels a portal
    declared for its own login (a professional's Tax Pro Account session)."""

    source: Literal["identity_assertion", "declared"]
    ial: int | None
    aal: int | None
    issuer: str | None = None
    subject: str | None = None
    jti: str | None = None

    @classmethod
    def declared(cls, signature: Signature | None) -> Assurance:
        if signature is None:
            return cls("declared", None, None)
        return cls("declared", signature.ial, signature.aal)

    @classmethod
    def asserted(cls, issuer: str, subject: str, jti: str) -> Assurance:
        # AU-02 accepts an assertion only at IAL2 and AAL2 (its `acr`)
        return cls("identity_assertion", 2, 2, issuer, subject, jti)

    def document(self) -> dict[str, Any]:
        document: dict[str, Any] = {"source": self.source, "ial": self.ial, "aal": self.aal}
        if self.source == "identity_assertion":
            document |= {"issuer": self.issuer, "subject": self.subject, "jti": self.jti}
        return document


@dataclass(frozen=True, kw_only=True)
class SignedBy:
    """One signature of an act: who (`{"taxpayer_ref": …}` or `{"caf_number": …}`), how, when;
    without a verified assertion, the assurance the portal declared."""

    act: SignedAct
    role: SignerRole
    signer: Mapping[str, str | int | None]
    signature: Signature | None
    asserted: Assurance | None = None

    @classmethod
    def by_asserted_taxpayer(
        cls,
        act: SignedAct,
        taxpayer_ref: str,
        signature: Signature | None,
        verdict: Asserted,
        *,
        designated_official: str | None = None,
    ) -> SignedBy:
        """A taxpayer's online act, with the identity assertion that verified (AU-02); for a
        business, signed by its Designated Official (DO-08: their official id)."""
        signer: dict[str, str | int | None] = {"taxpayer_ref": taxpayer_ref}
        if designated_official is not None:
            signer["designated_official"] = designated_official
        return cls(
            act=act,
            role="taxpayer",
            signer=signer,
            signature=signature,
            asserted=Assurance.asserted(verdict.issuer, verdict.subject, verdict.jti),
        )

    @property
    def method(self) -> str:
        signature = self.signature
        return signature.method if signature is not None and signature.method else "checkbox"

    @property
    def assurance(self) -> Assurance:
        return self.asserted or Assurance.declared(self.signature)


def is_electronic(signature: Signature | None) -> bool:
    return signature is not None and signature.method in ELECTRONIC_METHODS


def canonical_content(message: BaseModel) -> bytes:
    """The fields of the message as accepted, as RFC 8785 canonical JSON."""
    return rfc8785.dumps(message.model_dump(mode="json"))


def evidence_object(
    signed: SignedBy,
    content: bytes,
    record: SigningRecord,
    sealer: Sealer,
) -> SignatureEvidence:
    """ES-01, ES-02: the evidence object of one signature, its content sealed."""
    signature = signed.signature
    signed_at = signature.at if signature is not None and signature.at else record.timestamp
    sealed = json.loads(sealer.seal(None, content, {"content-type": "application/json"}))
    document = {
        "format": FORMAT,
        "act": signed.act,
        "role": signed.role,
        "signer": dict(signed.signer),
        "method": signed.method,
        "signed_on": signature.date.isoformat() if signature and signature.date else None,
        "signed_at": signed_at.isoformat(),
        "assurance": signed.assurance.document(),
        "content": {
            "format": CONTENT_FORMAT,
            "sha256": hashlib.sha256(content).hexdigest(),
            "sealed": sealed,
        },
        "record": record.document(),
    }
    data = rfc8785.dumps(document)
    return SignatureEvidence(
        role=signed.role,
        act=signed.act,
        sha256=hashlib.sha256(data).hexdigest(),
        data=base64.b64encode(data).decode(),
    )
