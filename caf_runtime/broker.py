"""Kafka broker factory with the processor's safe defaults.

FastStream's own defaults are unsafe for this system (measured when the project began): it commits
before handling, starts new groups at `latest` and produces with `acks=1`. Every service builds its
broker and its subscribers here instead, so those choices are made once.
"""

from __future__ import annotations

import logging
import ssl
from typing import Any, Final, Literal

from aiokafka import ConsumerRecord
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.message import StreamMessage
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from caf_runtime.config import ServiceSettings
from caf_runtime.metrics import FASTSTREAM

# Commit only after the handler returned. A handler catches everything it can give an outcome
# (rejection or dead letter); what escapes (e.g. the dead-letter topic itself unreachable) is
# nacked, so the message is redelivered instead of committed unhandled.
ACK_POLICY = AckPolicy.NACK_ON_ERROR
AUTO_OFFSET_RESET: Final = "earliest"


async def raw_body(message: StreamMessage[Any]) -> bytes:
    """Hand handlers the raw bytes: decoding is theirs, so a body that is not JSON becomes a
    dead letter instead of a decode error inside the framework that would loop forever."""
    return message.body


def make_broker(settings: ServiceSettings, *, client_id: str) -> KafkaBroker:
    """A broker whose producer is idempotent with `acks=all` and whose consumers commit late."""
    return KafkaBroker(
        settings.kafka_bootstrap_servers,
        client_id=client_id,
        enable_idempotence=True,
        acks="all",
        compression_type=compression(settings),
        linger_ms=settings.producer_linger_ms,
        allow_auto_create_topics=False,
        ack_policy=ACK_POLICY,
        graceful_timeout=settings.graceful_timeout_s,
        security=_security(settings),
        decoder=raw_body,
        logger=logging.getLogger(f"{client_id}.broker"),
        middlewares=(FASTSTREAM,),
    )


def compression(settings: ServiceSettings) -> Literal["gzip", "snappy", "lz4", "zstd"] | None:
    """The producers' codec (`KAFKA_COMPRESSION`), as aiokafka names it."""
    return None if settings.kafka_compression == "none" else settings.kafka_compression


def _security(settings: ServiceSettings) -> BaseSecurity | None:
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    use_ssl = protocol.endswith("SSL")
    context = ssl_context(settings) if use_ssl else None
    if protocol == "SSL":
        return BaseSecurity(ssl_context=context, use_ssl=True)
    username = settings.kafka_sasl_username
    password = settings.kafka_sasl_password
    if username is None or password is None:
        msg = f"KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD are required with {protocol}"
        raise ValueError(msg)
    secret = password.get_secret_value()
    mechanism = {
        "PLAIN": SASLPlaintext,
        "SCRAM-SHA-256": SASLScram256,
        "SCRAM-SHA-512": SASLScram512,
    }[settings.kafka_sasl_mechanism]
    return mechanism(username, secret, ssl_context=context, use_ssl=use_ssl)


def ssl_context(settings: ServiceSettings) -> ssl.SSLContext:
    """TLS that verifies the brokers against `KAFKA_SSL_CAFILE` (else the system's CAs)."""
    return ssl.create_default_context(cafile=settings.kafka_ssl_cafile)


def record_of(message: KafkaMessage) -> ConsumerRecord[bytes, bytes]:
    """The aiokafka record behind a (non-batch) FastStream message."""
    record = message.raw_message
    if not isinstance(record, ConsumerRecord):
        msg = "batch messages are not supported here"
        raise TypeError(msg)
    return record


def records_of(message: KafkaMessage) -> tuple[ConsumerRecord[bytes, bytes], ...]:
    """The aiokafka records behind a batch FastStream message, in the order polled (a tuple
    from a real poll, a list from FastStream's in-memory test broker)."""
    records = message.raw_message
    if not isinstance(records, tuple | list):
        msg = "a batch message was expected"
        raise TypeError(msg)
    return tuple(records)


def client_options(settings: ServiceSettings) -> dict[str, Any]:
    """Connection options for plain aiokafka clients (admin, offset probes) that match the
    broker's, so SASL/TLS clusters work for them too."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "security_protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_security_protocol.endswith("SSL"):
        options["ssl_context"] = ssl_context(settings)
    if settings.kafka_security_protocol.startswith("SASL"):
        password = settings.kafka_sasl_password
        options |= {
            "sasl_mechanism": settings.kafka_sasl_mechanism,
            "sasl_plain_username": settings.kafka_sasl_username,
            "sasl_plain_password": password.get_secret_value() if password else None,
        }
    return options


def producer_options(settings: ServiceSettings) -> dict[str, Any]:
    """Options for a plain aiokafka producer (the operator tools) that match the services' own:
    the same connection, idempotent with `acks=all`, the configured codec."""
    return client_options(settings) | {
        "enable_idempotence": True,
        "acks": "all",
        "compression_type": compression(settings),
    }
