"""Publish signed contract messages to the processor's inbound topics.

```python
signer = Signer.from_file(".devstack/keys/forms-intake.jwk")
connection = KafkaConnection.from_properties(".devstack/clients/portal.properties")
async with CafPublisher(signer, connection) as caf:
    await caf.publish(Submission(...))         # caf.inbound.v1, keyed by message_id
```
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer
from pydantic import BaseModel

from caf_client.connection import ClientScope, KafkaConnection
from caf_client.signing import Signer
from schemas import topics
from schemas.entities import EntityRecord
from schemas.inbound import TpaDecision, TpaRequest
from schemas.protected import ProtectionRecord
from schemas.registry import PractitionerRecord

__all__ = [
    "CONTENT_TYPE",
    "CafPublisher",
    "Published",
    "SignedRecord",
    "encode_message",
    "inbound_key",
    "signed_entity_record",
    "signed_protection_record",
    "signed_record",
    "signed_registry_record",
]

CONTENT_TYPE = ("content-type", b"application/json")


@dataclass(frozen=True)
class SignedRecord:
    """One record ready to send: contract topic (without prefix), key, value and headers."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]


def encode_message(message: BaseModel | dict[str, Any]) -> bytes:
    """The JSON value of a message (a model of `schemas`, or a dict already in contract form)."""
    if isinstance(message, BaseModel):
        return message.model_dump_json(exclude_none=True).encode()
    import json  # noqa: PLC0415 - only for the dict form

    return json.dumps(message).encode()


def inbound_key(message: BaseModel | dict[str, Any]) -> bytes | None:
    """The contract's key: `request_id` for Tax Pro Account messages, else `message_id`."""
    if isinstance(message, TpaRequest | TpaDecision):
        return message.request_id.encode()
    if isinstance(message, BaseModel):
        return str(message.message_id).encode() if hasattr(message, "message_id") else None
    kind = message.get("kind")
    key = message.get("request_id") if kind in ("tpa_request", "tpa_decision") else None
    key = key or message.get("message_id")
    return str(key).encode() if key else None


def signed_record(signer: Signer, message: BaseModel | dict[str, Any]) -> SignedRecord:
    """An inbound message as a signed record of `caf.inbound.v1`."""
    value = encode_message(message)
    return SignedRecord(
        topics.INBOUND, inbound_key(message), value, [CONTENT_TYPE, *signer.headers(value)]
    )


def signed_registry_record(
    signer: Signer, caf_number: str, record: PractitionerRecord | dict[str, Any] | None
) -> SignedRecord:
    """A registry record (or, with None, the tombstone that removes `caf_number`), signed: a
    record over its value, a tombstone over its key."""
    return _signed_keyed(signer, topics.PRACTITIONERS, caf_number, record)


def signed_entity_record(
    signer: Signer, entity_id: str, record: EntityRecord | dict[str, Any] | None
) -> SignedRecord:
    """An entity record of `caf.entities.v1` (or, with None, the tombstone that closes
    `entity_id`), signed like a registry record."""
    return _signed_keyed(signer, topics.ENTITIES, entity_id, record)


def signed_protection_record(
    signer: Signer, taxpayer_ref: str, record: ProtectionRecord | dict[str, Any] | None
) -> SignedRecord:
    """An IP PIN program record of `caf.protected.v1` (or, with None, the tombstone that ends
    the protection of `taxpayer_ref`), signed like a registry record. Never an IP PIN."""
    return _signed_keyed(signer, topics.PROTECTED, taxpayer_ref, record)


def _signed_keyed(
    signer: Signer, topic: str, key: str, record: BaseModel | dict[str, Any] | None
) -> SignedRecord:
    """A record of a compacted topic keyed by `key`, or with None its tombstone: signed over
    its value, a tombstone over its key."""
    key_bytes = key.encode()
    value = None if record is None else encode_message(record)
    return SignedRecord(
        topic, key_bytes, value, signer.headers(value if value is not None else key_bytes)
    )


@dataclass(frozen=True)
class Published:
    """Where the broker stored a record, and its broker timestamp (ms)."""

    topic: str
    partition: int
    offset: int
    timestamp: int


class CafPublisher(ClientScope[AIOKafkaProducer]):
    """An async producer that signs every record with one publisher key.

    Idempotent with `acks=all`; `topic_prefix` is for test and staging environments.
    """

    def __init__(
        self,
        signer: Signer,
        connection: KafkaConnection,
        *,
        topic_prefix: str = "",
        compression_type: str | None = "lz4",
        client_id: str | None = None,
    ) -> None:
        super().__init__(
            AIOKafkaProducer(
                **connection.options(),
                client_id=client_id or f"caf-client-{signer.kid}",
                enable_idempotence=True,
                acks="all",
                compression_type=compression_type,
            )
        )
        self._signer = signer
        self._prefix = topic_prefix

    @property
    def signer(self) -> Signer:
        return self._signer

    async def publish(self, message: BaseModel | dict[str, Any]) -> Published:
        """Sign and publish one inbound message; returns once the broker has it (acks=all)."""
        return await self.send(signed_record(self._signer, message))

    async def publish_many(self, messages: list[BaseModel | dict[str, Any]]) -> list[Published]:
        """Sign and publish many, pipelined; returns once the broker has them all."""
        futures = [
            await self._send_later(signed_record(self._signer, message)) for message in messages
        ]
        return [_published(await future) for future in futures]

    async def publish_registry(
        self, caf_number: str, record: PractitionerRecord | dict[str, Any] | None
    ) -> Published:
        """Publish (or with None, remove) one practitioner on the registry topic."""
        return await self.send(signed_registry_record(self._signer, caf_number, record))

    async def publish_entity(
        self, entity_id: str, record: EntityRecord | dict[str, Any] | None
    ) -> Published:
        """Publish (or with None, close) one business on the entity topic (DO-01)."""
        return await self.send(signed_entity_record(self._signer, entity_id, record))

    async def publish_protection(
        self, taxpayer_ref: str, record: ProtectionRecord | dict[str, Any] | None
    ) -> Published:
        """Publish (or with None, end) one taxpayer's IP PIN program membership (PT-01)."""
        return await self.send(signed_protection_record(self._signer, taxpayer_ref, record))

    async def send(self, record: SignedRecord) -> Published:
        """Send a record built by `signed_record` / `signed_registry_record` (or by hand)."""
        return _published(await (await self._send_later(record)))

    async def _send_later(self, record: SignedRecord) -> Any:
        return await self._client.send(
            self._prefix + record.topic, record.value, key=record.key, headers=record.headers
        )


def _published(metadata: Any) -> Published:
    return Published(metadata.topic, metadata.partition, metadata.offset, metadata.timestamp)
