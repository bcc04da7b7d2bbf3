"""The publisher SDK's pure parts: what it builds is what the processor accepts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiokafka import ConsumerRecord
from joserfc.jwk import OKPKey

from caf_client import KafkaConnection, Signer
from caf_client.connection import ClientScope
from caf_client.publisher import (
    signed_entity_record,
    signed_protection_record,
    signed_record,
    signed_registry_record,
)
from caf_runtime.authenticity import DEFAULT_ALLOW, JwksSource, RecordVerifier
from devstack.keys import DevKeys
from schemas import topics
from schemas.codec import decode_inbound
from tests.unit.builders import submission

pytestmark = pytest.mark.unit


@pytest.fixture
def keys(tmp_path: Path) -> DevKeys:
    return DevKeys(tmp_path / "keys").ensure()


def consumed(
    topic: str, key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]
) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(topic, 0, 0, 0, 0, key, value, None, 0, 0, headers)


async def test_au_01_a_message_built_by_the_sdk_is_keyed_signed_and_accepted(keys: DevKeys) -> None:
    form = submission()
    record = signed_record(keys.signer("forms-intake"), form)
    assert (record.topic, record.key) == (topics.INBOUND, form.message_id.encode())
    assert record.value is not None
    assert decode_inbound(record.value) == form
    verifier = RecordVerifier(JwksSource(str(keys.publishers_jwks)), DEFAULT_ALLOW)
    signed = await verifier.verify(consumed(record.topic, record.key, record.value, record.headers))
    assert signed.publisher == "forms-intake"


def test_tax_pro_account_messages_are_keyed_by_their_request(keys: DevKeys) -> None:
    decision = {"kind": "tpa_decision", "message_id": "m-1", "request_id": "tpa-9"}
    assert signed_record(keys.signer("online-account"), decision).key == b"tpa-9"


async def test_au_01_a_tombstone_built_by_the_sdk_is_signed_over_its_key(keys: DevKeys) -> None:
    record = signed_registry_record(keys.signer("registry-feed"), "030112345", None)
    assert (record.key, record.value) == (b"030112345", None)
    verifier = RecordVerifier(JwksSource(str(keys.publishers_jwks)), DEFAULT_ALLOW)
    tombstone = consumed(topics.PRACTITIONERS, record.key, None, record.headers)
    assert (await verifier.verify(tombstone)).publisher == "registry-feed"


def test_entity_and_protection_records_are_keyed_and_signed_like_registry_records(
    keys: DevKeys,
) -> None:
    signer = keys.signer("registry-feed")
    entity = signed_entity_record(signer, "ent-1", {"entity_id": "ent-1"})
    assert (entity.topic, entity.key, entity.value) == (
        topics.ENTITIES,
        b"ent-1",
        b'{"entity_id": "ent-1"}',
    )
    assert entity.headers == signer.headers(b'{"entity_id": "ent-1"}')
    ended = signed_protection_record(signer, "9f2c4e1a", None)
    assert (ended.topic, ended.key, ended.value) == (topics.PROTECTED, b"9f2c4e1a", None)
    assert ended.headers == signer.headers(b"9f2c4e1a")


async def test_a_client_scope_starts_its_client_on_entry_and_stops_it_even_after_an_error() -> None:
    calls: list[str] = []

    class Client:
        async def start(self) -> None:
            calls.append("start")

        async def stop(self) -> None:
            calls.append("stop")

    scope: ClientScope[Any] = ClientScope(Client())

    async def fail_inside() -> None:
        async with scope as entered:
            assert entered is scope
            assert calls == ["start"]
            raise RuntimeError

    with pytest.raises(RuntimeError):
        await fail_inside()
    assert calls == ["start", "stop"]


def test_a_signer_needs_a_private_key_with_a_kid(keys: DevKeys) -> None:
    public = keys.signer("forms-intake").key.as_dict(private=False)
    with pytest.raises(ValueError, match="private"):
        Signer(OKPKey.import_key(public))


def test_a_client_properties_file_becomes_aiokafka_options(tmp_path: Path) -> None:
    path = tmp_path / "portal.properties"
    path.write_text(
        "# written by make up\n"
        "bootstrap.servers=127.0.0.1:9092\n"
        "security.protocol=SASL_SSL\n"
        "sasl.mechanism=SCRAM-SHA-512\n"
        "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
        'username="portal" password="s3cr=t";\n'
        "ssl.truststore.type=PEM\n"
        f"ssl.truststore.location={tmp_path / 'ca.pem'}\n"
    )
    connection = KafkaConnection.from_properties(path)
    assert (connection.username, connection.password) == ("portal", "s3cr=t")
    assert connection.ca_file == str(tmp_path / "ca.pem")
    plain = KafkaConnection("127.0.0.1:9092").options()
    assert plain == {"bootstrap_servers": "127.0.0.1:9092", "security_protocol": "PLAINTEXT"}
