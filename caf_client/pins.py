"""Sealing a Designated Official's PIN for intake (contract: "Designated Officials").

The CP311 letter is the only place a PIN is written in the clear. When the requester types it in
Business Tax Account, the portal seals it to intake's PIN key before publishing `do_pin_redeem`:
a compact JWE (ECDH-ES+A256KW, A256GCM) that only intake's private key opens, so the PIN is on no
topic, in no dead letter and in no log.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Final

from joserfc import jwe
from joserfc.jwk import ECKey, KeySet

__all__ = [
    "CONTENT_ALGORITHM",
    "KEY_ALGORITHM",
    "PIN_ALGORITHMS",
    "load_public_keys",
    "new_pin_key",
    "seal_pin",
]

KEY_ALGORITHM: Final = "ECDH-ES+A256KW"
CONTENT_ALGORITHM: Final = "A256GCM"
PIN_ALGORITHMS: Final = (KEY_ALGORITHM, CONTENT_ALGORITHM)


def seal_pin(pin: str, public_keys: KeySet) -> str:
    """The PIN sealed to intake's current PIN key (the first key of the set)."""
    key = public_keys.keys[0]
    header = {"alg": KEY_ALGORITHM, "enc": CONTENT_ALGORITHM, "kid": key.kid}
    return jwe.encrypt_compact(header, pin.encode(), key, algorithms=list(PIN_ALGORITHMS))


def load_public_keys(path: str | Path) -> KeySet:
    """Intake's published PIN keys (a JWKS of EC P-256 public keys, the current one first)."""
    return KeySet.import_key_set(json.loads(Path(path).read_text()))


def new_pin_key(kid: str) -> ECKey:
    """A new P-256 key pair for sealing PINs (development and tests; production keys come from
    the key service)."""
    return ECKey.generate_key("P-256", parameters={"kid": kid}, private=True)
