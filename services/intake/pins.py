"""One-time PINs of Designated Officials (DO-04, DO-05): made, hashed, opened, compared.

- A PIN is 10 characters from a 31-letter alphabet without look-alikes (0/O, 1/I/L), about 50
  bits, drawn with `secrets` (the operating system's CSPRNG) and printed `XXXXX-XXXXX`.
- Only its argon2id hash is kept (argon2-cffi's defaults: 64 MiB, 3 passes), salted, and over
  the business and the requester as well as the PIN, so a hash copied to another record never
  verifies. Hashing takes a few hundred milliseconds: it runs in a worker thread.
- The PIN comes back sealed to intake's PIN key (a compact JWE, `caf_client.pins`); the private
  keys are configuration (`INTAKE_PIN_KEYS`), the public half is what the portal is given.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from dataclasses import dataclass, field

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from joserfc import jwe
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from caf_client.pins import PIN_ALGORITHMS

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
PIN_LENGTH = 10


def new_pin() -> str:
    """A fresh PIN, `XXXXX-XXXXX`."""
    text = "".join(secrets.choice(ALPHABET) for _ in range(PIN_LENGTH))
    return f"{text[:5]}-{text[5:]}"


def normalized_pin(text: str) -> str:
    """A PIN as typed, as it is compared: upper case, without spaces or hyphens."""
    return "".join(ch for ch in text.upper() if ch.isalnum())


def _material(entity_id: str, official: str, pin: str) -> str:
    return f"{entity_id}\x1f{official}\x1f{normalized_pin(pin)}"


@dataclass(frozen=True)
class PinVault:
    """Makes and checks PINs; opens the sealed PINs portals send."""

    keys: KeySet
    hasher: PasswordHasher = field(default_factory=PasswordHasher)

    @classmethod
    def from_jwks(cls, document: str, hasher: PasswordHasher | None = None) -> PinVault:
        """From the private JWKS in configuration (EC P-256 keys, by kid)."""
        try:
            keys = KeySet.import_key_set(json.loads(document))
        except (ValueError, KeyError, TypeError, JoseError) as error:
            msg = f"INTAKE_PIN_KEYS is not a JWKS: {type(error).__name__}"
            raise ValueError(msg) from error
        if not keys.keys or not all(key.key_type == "EC" and key.is_private for key in keys.keys):
            msg = "INTAKE_PIN_KEYS must hold private EC keys"
            raise ValueError(msg)
        return cls(keys, hasher or PasswordHasher())

    async def hash(self, entity_id: str, official: str, pin: str) -> str:
        return await asyncio.to_thread(self.hasher.hash, _material(entity_id, official, pin))

    async def matches(self, stored: str, entity_id: str, official: str, pin: str) -> bool:
        def verify() -> bool:
            try:
                return self.hasher.verify(stored, _material(entity_id, official, pin))
            except (VerificationError, InvalidHashError):
                return False

        return await asyncio.to_thread(verify)

    def open(self, sealed: str | None) -> str | None:
        """The PIN a portal sealed to one of our keys; None if it does not open (counted as a
        wrong entry: a forged or garbled PIN is not a right one)."""
        if not sealed:
            return None
        try:
            plaintext = jwe.decrypt_compact(sealed, self.keys, algorithms=list(PIN_ALGORITHMS))
        except (JoseError, ValueError, TypeError):
            return None
        try:
            return plaintext.plaintext.decode() if plaintext.plaintext else None
        except UnicodeDecodeError:
            return None
