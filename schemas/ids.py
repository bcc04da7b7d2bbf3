"""Identifiers derived from message content, so the same input always yields the same id.

- `taxpayer_ref`: keyed pseudonym of the normalized TIN (HMAC-SHA256, hex, first 32 chars).
- `grant_id`: `<message_id>:<index>` for a submission's grants; the `request_id` of a TPA grant;
  the `message_id` of a withdrawal or revocation.
- `event_id`: a UUIDv5 of the event type and everything that makes the event unique, so a
  redelivered duplicate carries the same id as the original.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid

from schemas.errors import ContractError

TAXPAYER_REF_LENGTH = 32
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
