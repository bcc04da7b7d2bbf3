"""Generate the committed contract documents from the models.

`python -m schemas.documents` writes one JSON Schema file per public message type into
`schemas/generated/jsonschema/` and the AsyncAPI 3.0 document `schemas/generated/asyncapi.json`.
A test fails when the committed files differ from what this module generates.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from schemas import topics
from schemas.entities import EntityRecord
from schemas.events import EVENT_TYPES
from schemas.inbound import (
    DoDeactivation,
    DoPinRedeem,
    DoPinRequest,
    EntityUserChange,
    ProtectedConfirmation,
    Revocation,
    Submission,
    TpaDecision,
    TpaRequest,
    Withdrawal,
)
from schemas.notifications import Notification
from schemas.protected import ProtectionRecord
from schemas.registry import PractitionerRecord

__all__ = [
    "CHANNELS",
    "DLQ_HEADERS",
    "GENERATED",
    "INBOUND_MODELS",
    "PUBLIC_MODELS",
    "REGENERATE",
    "Channel",
    "asyncapi",
    "json_schemas",
    "main",
    "rendered",
]

GENERATED = Path(__file__).resolve().parent / "generated"
REGENERATE = "python -m schemas.documents"

INBOUND_MODELS: tuple[type[BaseModel], ...] = (
    Submission,
    TpaRequest,
    TpaDecision,
    Withdrawal,
    Revocation,
    DoPinRequest,
    DoPinRedeem,
    EntityUserChange,
    DoDeactivation,
    ProtectedConfirmation,
)
PUBLIC_MODELS: tuple[type[BaseModel], ...] = (
    *INBOUND_MODELS,
    PractitionerRecord,
    EntityRecord,
    ProtectionRecord,
    *EVENT_TYPES,
    Notification,
)

DLQ_HEADERS = {
    "type": "object",
    "description": "Headers of a dead letter; the value is the original bytes unchanged.",
    "properties": {
        name: {"type": "string", "description": description}
        for name, description in (
            ("error-class", "Class of the error that made the message undeliverable."),
            ("error-message", "The error in words (never contains a TIN)."),
            ("original-topic", "Topic the message was read from."),
            ("original-partition", "Partition it was read from."),
            ("original-offset", "Offset it was read from."),
            ("failed-at", "When it failed (RFC 3339)."),
        )
    },
    "required": [
        "error-class",
        "error-message",
        "original-topic",
        "original-partition",
        "original-offset",
        "failed-at",
    ],
}


@dataclass(frozen=True)
class Channel:
    """A public topic as the AsyncAPI document describes it."""

    topic: str
    key: str
    description: str
    messages: tuple[str, ...]  # model names
    configuration: dict[str, Any] = field(default_factory=dict)  # Kafka topic configuration


CHANNELS: tuple[Channel, ...] = (
    Channel(
        topics.INBOUND,
        "request_id for TPA messages, message_id otherwise (may be null)",
        "Requests published by the upstream portals, discriminated by `kind`.",
        tuple(model.__name__ for model in INBOUND_MODELS),
    ),
    Channel(
        topics.INBOUND_DLQ,
        "the original key",
        "Inbound messages intake could not decode: original bytes plus error headers.",
        ("DeadLetter",),
    ),
    Channel(
        topics.PRACTITIONERS,
        "CAF number (9 digits)",
        "Compacted practitioner registry: latest record per CAF number; tombstone = removed.",
        ("PractitionerRecord",),
        {"cleanup.policy": ["compact"]},
    ),
    Channel(
        topics.ENTITIES,
        "entity_id (the entity system's pseudonym of the EIN)",
        "Compacted business entity records: latest per entity; tombstone = closed.",
        ("EntityRecord",),
        {"cleanup.policy": ["compact"]},
    ),
    Channel(
        topics.PROTECTED,
        "taxpayer_ref",
        "Compacted IP PIN program membership (never a PIN): latest per taxpayer; tombstone = "
        "no longer protected.",
        ("ProtectionRecord",),
        {"cleanup.policy": ["compact"]},
    ),
    Channel(
        topics.EVENTS,
        "taxpayer_ref",
        "The outcome stream, discriminated by `type`.",
        tuple(model.__name__ for model in EVENT_TYPES),
    ),
    Channel(
        topics.NOTIFICATIONS,
        "recipient_ref",
        "Alerts to taxpayers, practitioners and SREs.",
        ("Notification",),
    ),
)


def json_schemas() -> dict[str, dict[str, Any]]:
    """One standalone JSON Schema (draft 2020-12) per public message type, by model name."""
    documents: dict[str, dict[str, Any]] = {}
    for model in PUBLIC_MODELS:
        schema = model.model_json_schema()
        documents[model.__name__] = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"urn:caf:schema:v1:{model.__name__}",
            **schema,
        }
    return documents


def asyncapi() -> dict[str, Any]:
    """The AsyncAPI 3.0 document of every public topic, its key and its messages."""
    _, definitions = models_json_schema(
        [(model, "validation") for model in PUBLIC_MODELS],
        ref_template="#/components/schemas/{model}",
    )
    messages: dict[str, Any] = {
        model.__name__: {
            "name": model.__name__,
            "title": model.__name__,
            "summary": (model.__doc__ or "").strip().splitlines()[0],
            "contentType": "application/json",
            "payload": {"$ref": f"#/components/schemas/{model.__name__}"},
        }
        for model in PUBLIC_MODELS
    }
    messages["DeadLetter"] = {
        "name": "DeadLetter",
        "title": "DeadLetter",
        "summary": "An inbound message that could not be decoded, with error headers.",
        "headers": DLQ_HEADERS,
        "payload": {"description": "The original message bytes, unchanged."},
    }
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for channel in CHANNELS:
        topic, names = channel.topic, channel.messages
        binding: dict[str, Any] = {"partitions": 12, "bindingVersion": "0.5.0"}
        if channel.configuration:
            binding["topicConfiguration"] = channel.configuration
        channels[topic] = {
            "address": topic,
            "description": f"{channel.description} Key: {channel.key}.",
            "messages": {name: {"$ref": f"#/components/messages/{name}"} for name in names},
            "bindings": {"kafka": binding},
        }
        operations[f"publish.{topic}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{topic}"},
            "messages": [{"$ref": f"#/channels/{topic}/messages/{name}"} for name in names],
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "CAF authorization processor",
            "version": "1.0.0",
            "description": "Wire contract v1: topics, keys and messages (docs/contract.md).",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {
            "messages": messages,
            "schemas": definitions.get("$defs", {}),
        },
    }


def rendered() -> dict[Path, str]:
    """Every generated file with its exact text."""
    files = {
        GENERATED / "jsonschema" / f"{name}.json": _dump(schema)
        for name, schema in json_schemas().items()
    }
    files[GENERATED / "asyncapi.json"] = _dump(asyncapi())
    return files


def _dump(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main() -> int:
    files = rendered()
    for stale in (GENERATED / "jsonschema").glob("*.json"):
        if stale not in files:
            stale.unlink()
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    print(f"wrote {len(files)} files under {GENERATED}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
