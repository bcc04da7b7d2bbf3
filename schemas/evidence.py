"""Signature evidence (ESSAR, rules ES-01 … ES-05): what an electronically signed act leaves.

Intake writes one evidence object per electronic signature it accepts (docs/contract.md,
"Signature evidence"). The object is canonical JSON (RFC 8785) that names the act, the signer's
role and reference, the method, day and instant, the identity assurance, the record that carried
it (topic, partition, offset, `caf-signature`), and the signed content: the request as accepted,
in canonical JSON, with its SHA-256, *sealed* (`caf_runtime.envelope`) because it holds the TIN.

The object travels inside the command it belongs to (`SignatureEvidence`, base64 of its exact
bytes) to the poster, which stores it under Object Lock before it posts the grant (ES-03); events
carry only `SignatureRef`. Objects are content-addressed: the key ends with the SHA-256 of the
bytes, so a stored copy is verified by hashing it again, without any key.
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Literal

from pydantic import AwareDatetime

from schemas.base import InboundModel, OutboundModel, described

__all__ = [
    "FORMAT",
    "KEY_PREFIX",
    "MAX_OBJECT_BYTES",
    "SignatureEvidence",
    "SignatureRef",
    "SignedAct",
    "SignerRole",
    "object_key",
    "sha256_of_key",
]

FORMAT = "caf-signature-evidence/1"
KEY_PREFIX = "evidence/sha256/"
MAX_OBJECT_BYTES = 96 * 1024  # an inbound message is at most 64 KiB; sealing and base64 add
_SHA256 = r"^[0-9a-f]{64}$"

SignerRole = Literal["taxpayer", "representative"]
SignedAct = Literal["tpa_request", "tpa_approval", "submission", "withdrawal", "revocation"]


def object_key(sha256: str) -> str:
    """The content address of an evidence object."""
    return f"{KEY_PREFIX}{sha256}"


def sha256_of_key(key: str) -> str | None:
    """The SHA-256 an object key names, or None when it is not a content address."""
    digest = key.removeprefix(KEY_PREFIX)
    return digest if key.startswith(KEY_PREFIX) and re.fullmatch(_SHA256, digest) else None


class SignatureEvidence(InboundModel):
    """One evidence object riding on a command (intake → validator → poster)."""

    role: SignerRole = described("Who signed.", "taxpayer")
    act: SignedAct = described("The act signed.", "tpa_approval")
    sha256: str = described(
        "SHA-256 (hex) of the object's bytes: its content address.", "9f" * 32, pattern=_SHA256
    )
    data: str = described(
        "The object's bytes, base64.",
        "eyJmb3JtYXQiOiJjYWYtc2lnbmF0dXJlLWV2aWRlbmNlLzEifQ==",
        max_length=MAX_OBJECT_BYTES * 4 // 3 + 4,
    )

    @property
    def key(self) -> str:
        return object_key(self.sha256)

    def payload(self) -> bytes:
        """The object's bytes; `ValueError` when they are not the bytes the hash names."""
        data = base64.b64decode(self.data, validate=True)
        if hashlib.sha256(data).hexdigest() != self.sha256:
            msg = "the evidence bytes do not match their SHA-256"
            raise ValueError(msg)
        return data

    def ref(self, retain_until: AwareDatetime) -> SignatureRef:
        return SignatureRef(
            role=self.role,
            act=self.act,
            key=self.key,
            sha256=self.sha256,
            retain_until=retain_until,
        )


class SignatureRef(OutboundModel):
    """Where the evidence of one signature is kept (on `AuthorizationPosted` and removals)."""

    role: SignerRole = described("Who signed.", "taxpayer")
    act: SignedAct = described("The act signed.", "tpa_approval")
    key: str = described(
        "Object key in the evidence bucket (content address).", object_key("9f" * 32)
    )
    sha256: str = described("SHA-256 (hex) of the object's bytes.", "9f" * 32, pattern=_SHA256)
    retain_until: AwareDatetime = described(
        "Object Lock (compliance mode) holds the object until then.", "2033-11-21T14:05:12+00:00"
    )
