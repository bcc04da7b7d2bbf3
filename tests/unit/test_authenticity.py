"""AU-01: which records count. A record counts only when a publisher key on the allow-list
signed exactly its value, and that publisher may publish its kind on its topic."""

from __future__ import annotations

import asyncio
import json
import warnings
from pathlib import Path

import pytest
from aiokafka import ConsumerRecord
from joserfc import jws
from joserfc.errors import SecurityWarning
from joserfc.jwk import ECKey, OctKey

from caf_client.signing import SIGNATURE_HEADER, Signer
from caf_runtime.authenticity import (
    DEFAULT_ALLOW,
    JwksSource,
    RecordVerifier,
    SignatureInvalid,
    Signed,
    publisher_of,
)
from devstack.keys import DevKeys
from schemas import topics

pytestmark = pytest.mark.unit

SUBMISSION = json.dumps({"kind": "submission", "message_id": "m-1"}).encode()


@pytest.fixture
def keys(tmp_path: Path) -> DevKeys:
    return DevKeys(tmp_path / "keys").ensure()


def verifier(keys: DevKeys, refresh_s: float = 30.0) -> RecordVerifier:
    return RecordVerifier(JwksSource(str(keys.publishers_jwks), refresh_s=refresh_s), DEFAULT_ALLOW)


def record(
    value: bytes | None,
    headers: list[tuple[str, bytes]],
    topic: str = topics.INBOUND,
) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        topic,
        0,
        0,
        0,
        0,
        b"k",
        value,
        None,
        1,
        len(value or b""),
        headers,
    )


def signed_by(
    signer: Signer, value: bytes, topic: str = topics.INBOUND
) -> ConsumerRecord[bytes, bytes]:
    return record(value, signer.headers(value), topic)


async def test_au_01_a_record_signed_by_a_publisher_allowed_for_its_kind_counts(
    keys: DevKeys,
) -> None:
    signed = await verifier(keys).verify(signed_by(keys.signer("forms-intake"), SUBMISSION))
    assert signed == Signed("forms-intake", "forms-intake")


async def test_au_01_an_unsigned_record_does_not_count(keys: DevKeys) -> None:
    with pytest.raises(SignatureInvalid, match="no caf-signature"):
        await verifier(keys).verify(record(SUBMISSION, []))


async def test_au_01_a_record_with_two_signatures_does_not_count(keys: DevKeys) -> None:
    signer = keys.signer("forms-intake")
    headers = signer.headers(SUBMISSION) * 2
    with pytest.raises(SignatureInvalid):
        await verifier(keys).verify(record(SUBMISSION, headers))


async def test_au_01_a_value_changed_after_signing_does_not_count(keys: DevKeys) -> None:
    headers = keys.signer("forms-intake").headers(SUBMISSION)
    tampered = SUBMISSION.replace(b"m-1", b"m-2")
    with pytest.raises(SignatureInvalid, match="does not verify"):
        await verifier(keys).verify(record(tampered, headers))


async def test_au_01_a_key_that_is_not_on_the_allow_list_does_not_count(
    keys: DevKeys, tmp_path: Path
) -> None:
    outsider = DevKeys(tmp_path / "outsider")
    outsider.root.mkdir()
    outsider.write_key("forms-intake@outsider")
    with pytest.raises(SignatureInvalid, match="not on the allow-list"):
        await verifier(keys).verify(signed_by(outsider.signer("forms-intake@outsider"), SUBMISSION))


async def test_au_01_the_same_kid_with_another_key_does_not_verify(
    keys: DevKeys, tmp_path: Path
) -> None:
    """An impostor naming a listed kid is caught by the signature, not the name."""
    impostor = DevKeys(tmp_path / "impostor").ensure().signer("forms-intake")
    with pytest.raises(SignatureInvalid, match="does not verify"):
        await verifier(keys).verify(signed_by(impostor, SUBMISSION))


@pytest.mark.parametrize(
    ("publisher", "kind"),
    [
        ("tax-pro-account", "submission"),
        ("forms-intake", "tpa_decision"),
        ("online-account", "withdrawal"),
        ("registry-feed", "revocation"),
        ("tax-pro-account", "tpa_decision"),
    ],
)
async def test_au_01_a_publisher_may_not_sign_a_kind_it_is_not_allowed_to(
    keys: DevKeys, publisher: str, kind: str
) -> None:
    value = json.dumps({"kind": kind}).encode()
    with pytest.raises(SignatureInvalid, match="may not publish"):
        await verifier(keys).verify(signed_by(keys.signer(publisher), value))


async def test_au_01_only_the_registry_feed_signs_registry_records_and_tombstones(
    keys: DevKeys,
) -> None:
    registry = keys.signer("registry-feed")
    value = b'{"caf_number": "030112345", "name": "Avery Smith"}'
    assert (await verifier(keys).verify(signed_by(registry, value, topics.PRACTITIONERS))).publisher
    tombstone = record(None, registry.headers(b"k"), topics.PRACTITIONERS)  # over its key
    assert (await verifier(keys).verify(tombstone)).publisher == "registry-feed"
    elsewhere = record(None, registry.headers(b"030199999"), topics.PRACTITIONERS)
    with pytest.raises(SignatureInvalid, match="does not verify"):
        await verifier(keys).verify(elsewhere)  # a captured tombstone cannot remove another
    with pytest.raises(SignatureInvalid, match="may not publish"):
        await verifier(keys).verify(
            signed_by(keys.signer("forms-intake"), value, topics.PRACTITIONERS)
        )


async def test_au_01_a_rotated_key_is_valid_beside_the_old_one_until_the_old_one_goes(
    keys: DevKeys,
) -> None:
    checker = verifier(keys, refresh_s=0.0)
    keys.write_key("forms-intake@2027")
    keys.publish()  # the new public key is listed; the verifier reads it when it first sees it
    new = keys.signer("forms-intake@2027")
    assert (await checker.verify(signed_by(new, SUBMISSION))).publisher == "forms-intake"
    assert await checker.verify(signed_by(keys.signer("forms-intake"), SUBMISSION))
    old = keys.signer("forms-intake")
    (keys.root / "forms-intake.jwk").unlink()
    keys.publish()
    checker = verifier(keys)
    with pytest.raises(SignatureInvalid, match="not on the allow-list"):
        await checker.verify(signed_by(old, SUBMISSION))


async def test_au_01_a_key_removed_from_the_source_stops_verifying_once_the_keys_are_re_read(
    keys: DevKeys,
) -> None:
    """The same verifier, no new key ever shown to it: the removal still takes effect when its
    keys are older than `max_age_s`."""
    source = JwksSource(str(keys.publishers_jwks), max_age_s=0.05)
    checker = RecordVerifier(source, DEFAULT_ALLOW)
    old = keys.signer("forms-intake")
    assert await checker.verify(signed_by(old, SUBMISSION))
    (keys.root / "forms-intake.jwk").unlink()
    keys.publish()
    await asyncio.sleep(0.1)
    with pytest.raises(SignatureInvalid, match="not on the allow-list"):
        await checker.verify(signed_by(old, SUBMISSION))


async def test_au_01_es256_keys_and_the_older_eddsa_name_are_accepted(keys: DevKeys) -> None:
    ec = ECKey.generate_key("P-256", parameters={"kid": "forms-intake@ec"}, private=True)
    document = json.loads(keys.publishers_jwks.read_text())
    document["keys"].append(dict(ec.as_dict(private=False)))
    keys.publishers_jwks.write_text(json.dumps(document))
    assert await verifier(keys).verify(signed_by(Signer(ec), SUBMISSION))
    okp = keys.signer("forms-intake").key
    with pytest.warns(SecurityWarning):
        eddsa = jws.detach_content(
            jws.serialize_compact(
                {"alg": "EdDSA", "kid": "forms-intake"}, SUBMISSION, okp, algorithms=["EdDSA"]
            )
        )
    assert await verifier(keys).verify(record(SUBMISSION, [(SIGNATURE_HEADER, eddsa.encode())]))


@pytest.mark.parametrize("alg", ["HS256", "none"])
async def test_au_01_symmetric_and_unsigned_algorithms_are_refused(keys: DevKeys, alg: str) -> None:
    """A public key used as an HMAC secret (algorithm confusion) or `none` never verifies."""
    public = json.loads(keys.publishers_jwks.read_text())["keys"][0]
    secret = OctKey.import_key(public["x"].encode(), parameters={"kid": public["kid"]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SecurityWarning)
        compact = jws.serialize_compact(
            {"alg": alg, "kid": public["kid"]}, SUBMISSION, secret, algorithms=[alg]
        )
    forged = record(SUBMISSION, [(SIGNATURE_HEADER, jws.detach_content(compact).encode())])
    with pytest.raises(SignatureInvalid):
        await verifier(keys).verify(forged)


@pytest.mark.parametrize(
    "header",
    [b"", b"not a jws", b"a.b.c", b"\xff\xfe", b"eyJhbGciOiJFZDI1NTE5In0..c2ln"],
)
async def test_au_01_a_signature_header_that_is_not_a_detached_jws_does_not_count(
    keys: DevKeys, header: bytes
) -> None:
    with pytest.raises(SignatureInvalid):
        await verifier(keys).verify(record(SUBMISSION, [(SIGNATURE_HEADER, header)]))


def test_au_01_a_key_set_with_private_keys_is_refused(keys: DevKeys) -> None:
    with pytest.raises(ValueError, match="not a JWKS"):
        JwksSource(str(keys.root / "forms-intake.jwk"))
    private = {"keys": [json.loads((keys.root / "forms-intake.jwk").read_text())]}
    path = keys.root / "leaky.jwks"
    path.write_text(json.dumps(private))
    with pytest.raises(ValueError, match="private"):
        JwksSource(str(path))


def test_au_01_a_kid_names_its_publisher_before_the_version() -> None:
    assert publisher_of("tax-pro-account@2027-01") == "tax-pro-account"
    assert publisher_of("registry-feed") == "registry-feed"
