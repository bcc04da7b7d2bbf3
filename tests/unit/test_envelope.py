"""Sealed copies of inbound records (caf_runtime.envelope) and the strength of configured keys
(caf_runtime.secrets)."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets

import pytest
from pydantic import ValidationError

from caf_runtime.config import ServiceSettings
from caf_runtime.envelope import EnvelopeError, KeyRing, Sealer, read_envelope
from caf_runtime.secrets import WeakKeyError, key_bytes
from services.intake.config import IntakeSettings

pytestmark = pytest.mark.unit

PAYLOAD = b'{"taxpayer": {"tin": "123-45-6789", "name": "Pat Public"}}'


def ring(**keys: bytes) -> KeyRing:
    return KeyRing(keys, next(iter(keys)))


def test_a_sealed_record_opens_to_its_key_value_and_headers_and_shows_none_of_them() -> None:
    sealer = Sealer(ring(k1=secrets.token_bytes(32)))
    sealed = sealer.seal("m-1", PAYLOAD, {"caf-signature": "abc"})
    assert b"6789" not in sealed
    assert b"Pat" not in sealed
    assert b"m-1" not in sealed
    opened = sealer.open(sealed)
    assert (opened.key, opened.value, opened.headers) == ("m-1", PAYLOAD, {"caf-signature": "abc"})


def test_every_seal_uses_a_fresh_data_key_and_nonce() -> None:
    sealer = Sealer(ring(k1=secrets.token_bytes(32)))
    one, two = (read_envelope(sealer.seal(None, PAYLOAD, {})) for _ in range(2))
    assert one is not None
    assert two is not None
    assert one["dek"] != two["dek"]
    assert one["nonce"] != two["nonce"]


def test_a_tampered_envelope_does_not_open() -> None:
    sealer = Sealer(ring(k1=secrets.token_bytes(32)))
    envelope = json.loads(sealer.seal(None, PAYLOAD, {}))
    ct = bytearray(base64.urlsafe_b64decode(envelope["ct"] + "=="))
    ct[0] ^= 1
    envelope["ct"] = base64.urlsafe_b64encode(bytes(ct)).decode().rstrip("=")
    with pytest.raises(EnvelopeError):
        sealer.open(json.dumps(envelope).encode())


def test_an_envelope_does_not_open_with_another_key_nor_under_another_kid() -> None:
    sealed = Sealer(ring(k1=secrets.token_bytes(32))).seal(None, PAYLOAD, {})
    with pytest.raises(EnvelopeError):
        Sealer(ring(k1=secrets.token_bytes(32))).open(sealed)
    with pytest.raises(EnvelopeError):
        Sealer(ring(k2=secrets.token_bytes(32))).open(sealed)
    relabelled = json.loads(sealed) | {"kid": "k2"}
    with pytest.raises(EnvelopeError):
        Sealer(ring(k2=secrets.token_bytes(32))).open(json.dumps(relabelled).encode())


def test_after_a_key_rotation_old_envelopes_still_open_and_new_ones_use_the_new_kid() -> None:
    old, new = secrets.token_bytes(32), secrets.token_bytes(32)
    sealed_before = Sealer(KeyRing({"k1": old}, "k1")).seal("a", PAYLOAD, {})
    rotated = Sealer(KeyRing({"k1": old, "k2": new}, "k2"))
    assert rotated.open(sealed_before).value == PAYLOAD
    assert (read_envelope(rotated.seal("b", PAYLOAD, {})) or {})["kid"] == "k2"


def test_a_value_that_is_not_an_envelope_is_told_apart() -> None:
    assert read_envelope(PAYLOAD) is None
    assert read_envelope(b"not json") is None
    with pytest.raises(EnvelopeError):
        Sealer(ring(k1=secrets.token_bytes(32))).open(PAYLOAD)


@pytest.mark.parametrize(
    "key",
    [
        secrets.token_hex(32),
        base64.b64encode(secrets.token_bytes(32)).decode(),
        base64.urlsafe_b64encode(secrets.token_bytes(48)).decode(),
    ],
)
def test_a_random_key_of_32_bytes_or_more_is_accepted_as_hex_or_base64(key: str) -> None:
    assert len(key_bytes(key, "K")) >= 32


@pytest.mark.parametrize(
    ("key", "says"),
    [
        ("", "is empty"),
        ("   ", "is empty"),
        (secrets.token_hex(16), "shorter than 32"),
        ("development-only-not-a-secret", "shorter than 32"),
        ("this-is-my-very-long-development-only-secret-key-text", "shorter than 32"),
        ("a" * 64, "well-known or patterned"),
        ("00112233445566778899aabbccddeeff" * 2, "well-known or patterned"),
        ("0123456789abcdef" * 4, "well-known or patterned"),
    ],
)
def test_an_empty_short_or_well_known_key_is_refused_without_showing_it(
    key: str, says: str
) -> None:
    with pytest.raises(WeakKeyError, match=says) as refused:
        key_bytes(key, "INTAKE_TAXPAYER_REF_KEY")
    assert "INTAKE_TAXPAYER_REF_KEY" in str(refused.value)
    assert not key.strip() or key not in str(refused.value)


def test_a_key_ring_refuses_a_current_kid_it_does_not_hold() -> None:
    with pytest.raises(WeakKeyError):
        KeyRing({"k1": secrets.token_bytes(32)}, "k2")
    with pytest.raises(WeakKeyError):
        KeyRing.from_config({"k1": "short"}, "k1")


def test_a_value_too_large_to_keep_sealed_keeps_its_size_and_digest_only() -> None:
    sealer = Sealer(ring(k1=secrets.token_bytes(32)))
    huge = secrets.token_bytes(800_000)  # random: does not compress
    sealed = sealer.seal("m-1", huge, {"a": "b"})
    assert len(sealed) < 1_000_000, "fits on a Kafka topic"
    opened = sealer.open(sealed)
    assert opened.value is None
    assert (opened.value_bytes, opened.key, opened.headers) == (800_000, "m-1", {"a": "b"})
    assert opened.value_sha256 == hashlib.sha256(huge).hexdigest()


def test_a_large_but_compressible_value_is_kept_whole() -> None:
    sealer = Sealer(ring(k1=secrets.token_bytes(32)))
    value = b'{"pad": "' + b"x" * 900_000 + b'"}'
    assert sealer.open(sealer.seal(None, value, {})).value == value


def test_the_key_ring_setting_is_read_from_json_text_and_never_shown_in_an_error() -> None:
    """DP-03: settings built from environment-like text (as the demo does) read the ring; a
    weak one is refused without its value appearing in the error."""
    strong = secrets.token_hex(32)
    ring_text = json.dumps({"k1": strong})
    settings = ServiceSettings.model_validate(
        {"CAF_ENVELOPE_KEYS": ring_text, "CAF_ENVELOPE_KID": "k1"}
    )
    sealer = settings.sealer()
    assert sealer is not None
    assert sealer.kid == "k1"
    weak = "0123456789abcdef" * 2
    with pytest.raises(WeakKeyError) as refused:
        ServiceSettings.model_validate(
            {"CAF_ENVELOPE_KEYS": json.dumps({"k1": weak}), "CAF_ENVELOPE_KID": "k1"}
        ).sealer()
    assert weak not in str(refused.value)
    with pytest.raises(ValidationError) as invalid:
        IntakeSettings.model_validate(
            {"taxpayer_ref_key": strong, "CAF_ENVELOPE_KEYS": "not json " + strong}
        )
    assert strong not in str(invalid.value)
