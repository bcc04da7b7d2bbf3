"""Identifiers derived from message content, so the same input always yields the same id.

- `taxpayer_ref`: keyed pseudonym of the normalized TIN (HMAC-SHA256, hex, first 32 chars),
  layered by key version (`RefKeys`): version 1 is the bare 32 hex digits, version N > 1 is
  `vN.` followed by the HMAC, under version N's key, of the version N-1 ref. So a stored ref is
  re-keyed to the next version with that version's key alone (`rekeyed`), never with a TIN, and
  a ref can be brute-forced back to a TIN only by whoever holds every layer's key.
- `grant_id`: `<message_id>:<index>` for a submission's grants; the `request_id` of a TPA grant;
  the `message_id` of a withdrawal or revocation.
- `event_id`: a UUIDv5 of the event type and everything that makes the event unique, so a
  redelivered duplicate carries the same id as the original.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid
from dataclasses import dataclass

from schemas.errors import ContractError

__all__ = [
    "EVENT_NAMESPACE",
    "TAXPAYER_REF_LENGTH",
    "TAXPAYER_REF_PATTERN",
    "RefKeys",
    "event_id",
    "keyed_digest",
    "message_ref",
    "notification_id",
    "official_id",
    "ref_version",
    "rekeyed",
    "submission_grant_id",
    "taxpayer_ref",
]

TAXPAYER_REF_LENGTH = 32
TAXPAYER_REF_PATTERN = r"^(v[1-9][0-9]{0,3}\.)?[0-9a-f]{32}$"
_VERSIONED = re.compile(r"v([1-9][0-9]{0,3})\.([0-9a-f]{32})")
# Namespace of every event_id; changing it would change every id ever issued.
EVENT_NAMESPACE = uuid.UUID("5b0f6b1e-3a51-4c1e-9f59-5c2d8a1f0c47")


def taxpayer_ref(normalized_tin: str, key: bytes) -> str:
    """The pseudonym of a TIN given as its nine digits (see `schemas.values.normalize_tin`)."""
    if len(normalized_tin) != 9 or not normalized_tin.isdigit():
        raise ContractError.single("tin", "tin_invalid", "taxpayer_ref needs the 9-digit TIN")
    if not key:
        raise ContractError.single("key", "key_missing", "taxpayer_ref needs a non-empty key")
    digest = hmac.new(key, normalized_tin.encode(), hashlib.sha256).hexdigest()
    return digest[:TAXPAYER_REF_LENGTH]


def ref_version(ref: str) -> int:
    """The key version of a taxpayer_ref (1 for a bare one)."""
    versioned = _VERSIONED.fullmatch(ref)
    return int(versioned.group(1)) if versioned else 1


def rekeyed(ref: str, version: int, layer_key: bytes) -> str:
    """The ref of version `version` from the ref of version `version - 1`, with that version's
    layer key: what a rotation writes in place of a stored ref."""
    if ref_version(ref) != version - 1 or version < 2:
        msg = f"a version {ref_version(ref)} ref does not re-key to version {version}"
        raise ContractError.single("taxpayer_ref", "ref_version_invalid", msg)
    digest = hmac.new(layer_key, ref.encode(), hashlib.sha256).hexdigest()
    return f"v{version}.{digest[:TAXPAYER_REF_LENGTH]}"


@dataclass(frozen=True)
class RefKeys:
    """The taxpayer_ref keys: `layers[0]` is version 1's key, `layers[n]` version n+1's. The
    current version is the last; the refs of earlier versions are still computed (a stored ref
    of any version is recognised while it waits to be re-keyed)."""

    layers: tuple[bytes, ...]

    def __post_init__(self) -> None:
        if not self.layers or not all(self.layers):
            raise ContractError.single("key", "key_missing", "taxpayer_ref needs its keys")

    @property
    def version(self) -> int:
        return len(self.layers)

    def refs(self, normalized_tin: str) -> tuple[str, ...]:
        """The TIN's ref under every version, oldest first."""
        refs = [taxpayer_ref(normalized_tin, self.layers[0])]
        for version, key in enumerate(self.layers[1:], start=2):
            refs.append(rekeyed(refs[-1], version, key))
        return tuple(refs)

    def ref(self, normalized_tin: str) -> str:
        """The TIN's ref under the current version."""
        return self.refs(normalized_tin)[-1]

    def message_ref(self, message_id: str) -> str:
        """See `message_ref`; keyed with the current version's key."""
        ref = message_ref(message_id, self.layers[-1])
        return ref if self.version == 1 else f"v{self.version}.{ref}"

    def digest(self, text: str) -> str:
        """See `keyed_digest`; keyed with version 1's key, so the fingerprints of forms seen
        before a rotation still match after it (IN-03)."""
        return keyed_digest(text, self.layers[0])


def submission_grant_id(message_id: str, index: int) -> str:
    """The grant of the `index`-th representative (from 0) of a submission."""
    if index < 0:
        raise ContractError.single("index", "index_invalid", "grant index starts at 0")
    return f"{message_id}:{index}"


def event_id(event_type: str, message_id: str, grant_id: str, *qualifiers: str) -> str:
    """A deterministic event id.

    `qualifiers` separate events of one type that one message causes for one grant (for
    example the SLA threshold); most events need none.
    """
    name = "\x1f".join((event_type, message_id, grant_id, *qualifiers))
    return str(uuid.uuid5(EVENT_NAMESPACE, name))


def notification_id(event_id_: str, recipient: str, recipient_ref: str) -> str:
    """A deterministic notification id: one per (event, recipient) (docs/rules.md NO-08)."""
    return str(
        uuid.uuid5(
            EVENT_NAMESPACE, "\x1f".join(("notification", event_id_, recipient, recipient_ref))
        )
    )


def message_ref(message_id: str, key: bytes) -> str:
    """The pseudonym used in place of `taxpayer_ref` when a message's TIN cannot be read.

    Keyed like `taxpayer_ref` and of the same shape, so outcomes of unreadable messages still
    have a stable partition key; the `message:` prefix keeps it apart from any TIN's pseudonym.
    """
    digest = hmac.new(key, f"message:{message_id}".encode(), hashlib.sha256).hexdigest()
    return digest[:TAXPAYER_REF_LENGTH]


def keyed_digest(text: str, key: bytes) -> str:
    """A keyed digest of content that may contain a TIN (e.g. a form fingerprint), safe to store."""
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def official_id(issuer: str, subject: str) -> str:
    """Who a person is across the records of Designated Officials (DO-01 … DO-08): SHA-256 of
    their identity provider and subject, 32 hex digits. Subjects are the provider's opaque ids,
    not a TIN or a name; the read side derives the same id from a caller's token."""
    return hashlib.sha256(f"{issuer}\n{subject}".encode()).hexdigest()[:32]
