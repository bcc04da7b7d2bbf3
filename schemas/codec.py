"""Bytes to models and back. Decoding raises `ContractError` and nothing else, whatever the input.

Values are UTF-8 JSON objects (docs/contract.md); one message is at most `MAX_MESSAGE_BYTES`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError

from schemas.entities import EntityRecord
from schemas.errors import ContractError, Problem
from schemas.events import Event
from schemas.grants import GrantCommand
from schemas.inbound import INBOUND_KINDS, InboundMessage, identifier
from schemas.notifications import Notification
from schemas.protected import ProtectionRecord
from schemas.registry import PractitionerRecord

__all__ = [
    "COMMAND",
    "CONTENT_TYPE",
    "ENTITY",
    "EVENT",
    "INBOUND",
    "MAX_MESSAGE_BYTES",
    "NOTIFICATION",
    "PRACTITIONER",
    "PROTECTION",
    "T",
    "decode_command",
    "decode_entity",
    "decode_event",
    "decode_inbound",
    "decode_notification",
    "decode_practitioner",
    "decode_protection",
    "encode",
    "readable_message_id",
]

MAX_MESSAGE_BYTES = 1_048_576
CONTENT_TYPE = "application/json"

T = TypeVar("T")

INBOUND: TypeAdapter[InboundMessage] = TypeAdapter(InboundMessage)
EVENT: TypeAdapter[Event] = TypeAdapter(Event)
PRACTITIONER: TypeAdapter[PractitionerRecord] = TypeAdapter(PractitionerRecord)
NOTIFICATION: TypeAdapter[Notification] = TypeAdapter(Notification)
ENTITY: TypeAdapter[EntityRecord] = TypeAdapter(EntityRecord)
COMMAND: TypeAdapter[GrantCommand] = TypeAdapter(GrantCommand)
PROTECTION: TypeAdapter[ProtectionRecord] = TypeAdapter(ProtectionRecord)


def decode_inbound(raw: bytes) -> InboundMessage:
    """Decode a `caf.inbound.v1` value; unknown `kind` and schema failures are `ContractError`."""
    document = _json_object(raw)
    kind = document.get("kind")
    if kind not in INBOUND_KINDS:
        raise ContractError.single(
            "kind", "kind_unknown", f"kind must be one of {', '.join(INBOUND_KINDS)}"
        )
    return _validate(INBOUND, raw)


def _decoder(adapter: TypeAdapter[T], doc: str) -> Callable[[bytes], T]:
    """A decoder of one topic's values: a JSON object (`_json_object`'s errors), then the
    adapter's model (its errors as `Problem`s)."""

    def decode(raw: bytes) -> T:
        _json_object(raw)
        return _validate(adapter, raw)

    decode.__doc__ = doc
    return decode


_TOMBSTONE = "(a tombstone is a null value, not decoded here)"
decode_event = _decoder(EVENT, "Decode a `caf.events.v1` value.")
decode_practitioner = _decoder(PRACTITIONER, f"Decode a `caf.practitioners.v1` value {_TOMBSTONE}.")
decode_entity = _decoder(ENTITY, f"Decode a `caf.entities.v1` value {_TOMBSTONE}.")
decode_protection = _decoder(PROTECTION, f"Decode a `caf.protected.v1` value {_TOMBSTONE}.")
decode_notification = _decoder(NOTIFICATION, "Decode a `caf.notifications.v1` value.")
decode_command = _decoder(
    COMMAND,
    "Decode an internal grant command (`caf.grants.accepted.v1`, `caf.grants.validated.v1`).",
)


def encode(model: BaseModel) -> bytes:
    """The wire form of a model: compact UTF-8 JSON."""
    return model.model_dump_json().encode()


def readable_message_id(raw: bytes) -> str | None:
    """The `message_id` of a message that failed to decode, if one can still be read (IN-01)."""
    try:
        document = _json_object(raw)
    except ContractError:
        return None
    message_id = document.get("message_id")
    if not isinstance(message_id, str):
        return None
    try:
        return identifier(message_id)
    except ValueError:
        return None  # not an id we may repeat anywhere (a TIN, free text): dead letter only


def _json_object(raw: bytes) -> dict[str, Any]:
    if not isinstance(raw, bytes | bytearray):
        raise ContractError.single("", "not_bytes", "a message value is bytes")
    if len(raw) > MAX_MESSAGE_BYTES:
        raise ContractError.single(
            "", "too_large", f"message is {len(raw)} bytes; at most {MAX_MESSAGE_BYTES}"
        )
    try:
        document = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ContractError.single("", "utf8_invalid", "message is not UTF-8") from None
    except (json.JSONDecodeError, RecursionError):
        raise ContractError.single("", "json_invalid", "message is not valid JSON") from None
    if not isinstance(document, dict):
        raise ContractError.single("", "not_object", "message is not a JSON object")
    return document


def _validate(adapter: TypeAdapter[T], raw: bytes) -> T:
    try:
        return adapter.validate_json(raw)
    except ValidationError as error:
        raise ContractError(
            [
                Problem(
                    loc=".".join(str(part) for part in detail["loc"]),
                    code=detail["type"],
                    message=detail["msg"],
                )
                for detail in error.errors(include_url=False, include_input=False)
            ]
        ) from None
    except (ValueError, RecursionError) as error:
        raise ContractError.single("", "invalid", str(error)[:200]) from None
