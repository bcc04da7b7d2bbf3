"""Detached JWS signatures over Kafka record values (contract: "Authenticity of inbound messages").

The signature is a compact JWS whose payload part is left empty (RFC 7515 appendix F): the
payload is the record value itself. Its protected header names the algorithm (`Ed25519`, or
`ES256`) and the publisher key (`kid`). joserfc does the cryptography.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Final

from joserfc import jws
from joserfc.jwk import ECKey, OKPKey

__all__ = [
    "ALGORITHMS",
    "SIGNATURE_HEADER",
    "PrivateKey",
    "Signer",
    "algorithm_of",
    "load_private_key",
]

SIGNATURE_HEADER: Final = "caf-signature"
# Accepted when verifying; `EdDSA` is the older (RFC 8037) name of Ed25519 signatures.
ALGORITHMS: Final = ("Ed25519", "EdDSA", "ES256")

PrivateKey = OKPKey | ECKey


def load_private_key(path: str | Path) -> PrivateKey:
    """A private JWK (Ed25519 `OKP` or P-256 `EC`) from a file; it must carry a `kid`."""
    document = json.loads(Path(path).read_text())
    key = _import(document)
    if not key.kid:
        msg = f"the key in {path} has no kid"
        raise ValueError(msg)
    return key


def _import(document: dict[str, object]) -> PrivateKey:
    if document.get("kty") == "OKP":
        return OKPKey.import_key(document)  # type: ignore[arg-type]
    if document.get("kty") == "EC":
        return ECKey.import_key(document)  # type: ignore[arg-type]
    msg = f"unsupported key type {document.get('kty')!r} (OKP Ed25519 or EC P-256)"
    raise ValueError(msg)


def algorithm_of(key: PrivateKey) -> str:
    """The JWS algorithm of a key: Ed25519 for an OKP Ed25519 key, ES256 for EC P-256."""
    curve = key.get("crv")
    if isinstance(key, OKPKey) and curve == "Ed25519":
        return "Ed25519"
    if isinstance(key, ECKey) and curve == "P-256":
        return "ES256"
    msg = f"unsupported key: {key.key_type} {curve} (Ed25519 or P-256)"
    raise ValueError(msg)


class Signer:
    """Signs record values with one private key; `kid` tells verifiers which public key to use."""

    def __init__(self, key: PrivateKey) -> None:
        if not key.kid:
            msg = "a signing key needs a kid"
            raise ValueError(msg)
        if not key.is_private:
            msg = "a signing key must be private"
            raise ValueError(msg)
        self._key = key
        self._protected = {"alg": algorithm_of(key), "kid": key.kid}

    @classmethod
    def from_file(cls, path: str | Path) -> Signer:
        return cls(load_private_key(path))

    @classmethod
    def from_jwk(cls, text: str) -> Signer:
        """From a private JWK given as JSON text (a secret in configuration)."""
        document = json.loads(text)
        if not isinstance(document, dict):
            msg = "a JWK is a JSON object"
            raise ValueError(msg)
        return cls(_import(document))

    @property
    def kid(self) -> str:
        return str(self._protected["kid"])

    @property
    def key(self) -> PrivateKey:
        return self._key

    def sign(self, value: bytes) -> str:
        """The detached compact JWS of `value`: `<protected>..<signature>`."""
        compact = jws.serialize_compact(self._protected, value, self._key, algorithms=ALGORITHMS)
        return jws.detach_content(compact)

    def headers(self, value: bytes) -> list[tuple[str, bytes]]:
        """Kafka headers that carry the signature of `value`."""
        return [(SIGNATURE_HEADER, self.sign(value).encode())]
