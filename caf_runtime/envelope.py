"""Envelope encryption of the copies of inbound records that intake parks or gives up on.

A record of `caf.inbound.v1` carries a taxpayer's TIN, name and address in plaintext; intake is
the only service that may read them. When intake cannot finish a record (a dead letter, a retry
round, a decision parked until its request arrives) the copy it writes to another topic is
*sealed*: the original key, value and headers are encrypted with AES-256-GCM under a fresh data
key, and the data key is wrapped (AES key wrap, RFC 3394) with a key-encryption key named by its
`kid`. Only the error headers stay readable, and they never carry input text.

Both primitives come from `cryptography` (a maintained library); nothing here is home-made
cryptography. `KeyWrapper` is the seam for a key-management service: on AWS, KMS `Encrypt` /
`Decrypt` of the data key under a customer-managed key takes the place of `KeyRing`.

The sealed value is JSON:

    {"enc": "caf-envelope/1", "kid": "<kek id>", "dek": "<wrapped data key, base64url>",
     "nonce": "<96-bit nonce, base64url>", "ct": "<ciphertext + tag, base64url>"}

and the plaintext, zlib-compressed, is `{"key": <str|null>, "value": <base64url>, "headers":
{name: value}}`. The associated data binds the ciphertext to the format and the kid, so neither
can be swapped. A value too large to keep sealed on a topic (more than `MAX_SEALED_BYTES`
compressed) is kept as its size and SHA-256 only (`"value": null`): the copy still says what
failed and where the original is (`original-topic/partition/offset`), but cannot be replayed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap

from caf_runtime.secrets import WeakKeyError, key_bytes

FORMAT = "caf-envelope/1"
MAX_SEALED_BYTES = 512 * 1024  # compressed; base64 of it stays well under Kafka's 1 MiB
HEADER = "content-encryption"  # on a sealed record: its FORMAT
KID_HEADER = "encryption-kid"


class EnvelopeError(Exception):
    """A sealed record cannot be opened: unknown kid, wrong key, or tampered bytes."""


class KeyWrapper(Protocol):
    """Wraps and unwraps data keys; `KeyRing` locally, a KMS client in production."""

    @property
    def current_kid(self) -> str: ...

    def wrap(self, data_key: bytes) -> bytes: ...

    def unwrap(self, kid: str, wrapped: bytes) -> bytes: ...


@dataclass(frozen=True)
class KeyRing:
    """Key-encryption keys by kid; new envelopes use `current_kid`, older kids still open."""

    keys: Mapping[str, bytes]
    current_kid: str

    def __post_init__(self) -> None:
        if self.current_kid not in self.keys:
            msg = f"the current key-encryption key {self.current_kid!r} is not in the key ring"
            raise WeakKeyError(msg)

    @classmethod
    def from_config(cls, keys: Mapping[str, str], current_kid: str) -> KeyRing:
        """Keys as configured (`{kid: 64 hex digits or base64 of >= 32 bytes}`); a short,
        empty or well-known key raises `WeakKeyError`."""
        if not keys:
            msg = "no key-encryption key is configured"
            raise WeakKeyError(msg)
        ring = {kid: key_bytes(text, f"CAF_ENVELOPE_KEYS[{kid!r}]") for kid, text in keys.items()}
        return cls({kid: key[:32] for kid, key in ring.items()}, current_kid)

    def wrap(self, data_key: bytes) -> bytes:
        return aes_key_wrap(self.keys[self.current_kid], data_key)

    def unwrap(self, kid: str, wrapped: bytes) -> bytes:
        key = self.keys.get(kid)
        if key is None:
            msg = f"no key-encryption key {kid!r} in the key ring"
            raise EnvelopeError(msg)
        try:
            return aes_key_unwrap(key, wrapped)
        except InvalidUnwrap:
            msg = f"the data key does not unwrap with key-encryption key {kid!r}"
            raise EnvelopeError(msg) from None


@dataclass(frozen=True)
class Opened:
    """A sealed record's original key, value and headers."""

    key: str | None
    value: bytes | None  # None: too large to keep; only its size and digest were sealed
    headers: dict[str, str] = field(default_factory=dict)
    value_bytes: int = 0
    value_sha256: str = ""


class Sealer:
    """Seals and opens records with one key wrapper."""

    def __init__(self, wrapper: KeyWrapper) -> None:
        self._wrapper = wrapper

    def seal(self, key: str | None, value: bytes, headers: Mapping[str, str]) -> bytes:
        document: dict[str, object] = {
            "key": key,
            "value": _b64(value),
            "headers": dict(headers),
            "value_bytes": len(value),
            "value_sha256": hashlib.sha256(value).hexdigest(),
        }
        plaintext = zlib.compress(json.dumps(document, separators=(",", ":")).encode())
        if len(plaintext) > MAX_SEALED_BYTES:
            document["value"] = None
            plaintext = zlib.compress(json.dumps(document, separators=(",", ":")).encode())
        data_key = AESGCM.generate_key(bit_length=256)
        nonce = os.urandom(12)
        kid = self._wrapper.current_kid
        ciphertext = AESGCM(data_key).encrypt(nonce, plaintext, _associated(kid))
        envelope = {
            "enc": FORMAT,
            "kid": kid,
            "dek": _b64(self._wrapper.wrap(data_key)),
            "nonce": _b64(nonce),
            "ct": _b64(ciphertext),
        }
        return json.dumps(envelope, separators=(",", ":")).encode()

    @property
    def kid(self) -> str:
        return self._wrapper.current_kid

    def open(self, sealed: bytes) -> Opened:
        envelope = read_envelope(sealed)
        if envelope is None:
            msg = "not a sealed record"
            raise EnvelopeError(msg)
        kid = envelope["kid"]
        try:
            data_key = self._wrapper.unwrap(kid, _unb64(envelope["dek"]))
            plaintext = AESGCM(data_key).decrypt(
                _unb64(envelope["nonce"]), _unb64(envelope["ct"]), _associated(kid)
            )
            document = json.loads(zlib.decompress(plaintext))
            value = document["value"]
            return Opened(
                key=document["key"],
                value=_unb64(value) if value is not None else None,
                headers={str(k): str(v) for k, v in document["headers"].items()},
                value_bytes=int(document["value_bytes"]),
                value_sha256=str(document["value_sha256"]),
            )
        except (InvalidTag, ValueError, KeyError, TypeError, zlib.error) as error:
            msg = f"the sealed record does not open ({type(error).__name__})"
            raise EnvelopeError(msg) from None


def read_envelope(value: bytes | None) -> dict[str, str] | None:
    """The envelope fields of a sealed value; None when the value is not one."""
    if not value or not value.startswith(b"{"):
        return None
    try:
        document = json.loads(value)
    except ValueError:
        return None
    if not isinstance(document, dict) or document.get("enc") != FORMAT:
        return None
    fields = ("kid", "dek", "nonce", "ct")
    if not all(isinstance(document.get(name), str) for name in fields):
        return None
    return {name: document[name] for name in ("enc", *fields)}


def is_sealed(headers: Mapping[str, str]) -> bool:
    return headers.get(HEADER) == FORMAT


def _associated(kid: str) -> bytes:
    return f"{FORMAT}\x1f{kid}".encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as error:
        raise ValueError(str(error)) from None
