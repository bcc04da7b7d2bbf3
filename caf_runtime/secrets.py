"""Key material from configuration, refused when it is weak.

A key is configured as text: 64 or more hex digits, or base64 (standard or URL-safe) of 32 or
more bytes. An empty key, a shorter one, a passphrase, or a well-known one (a repeated pattern, a
value published in documentation) is refused with `WeakKeyError`, whose message names the setting
but never shows the key: a service that gets one exits at start-up, before it reports ready.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re

from pydantic import SecretStr

from schemas.ids import RefKeys

MIN_KEY_BYTES = 32
# Fewer distinct byte values than this in 32 bytes is a pattern, not randomness (32 random bytes
# have about 30 distinct values; the chance of fewer than 16 is below 1e-12).
MIN_DISTINCT_BYTES = 16
# SHA-256 of keys that are public: examples from our documentation and manifests. A key that was
# ever written down in the repository is known to everyone who can read it.
WELL_KNOWN = frozenset(
    {
        # "00112233445566778899aabbccddeeff" * 2, the documentation's placeholder
        "4773d12e2371bb935b9a0f5439b4a1c3ad3f2414b86980f8418d1cfabdfadfef",
    }
)
_HEX = re.compile(r"[0-9a-fA-F]+")
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]+={0,2}")


class WeakKeyError(ValueError):
    """A configured key is missing, too short or well known."""


def key_bytes(text: str, setting: str) -> bytes:
    """The bytes of a configured key; `WeakKeyError` (naming `setting`) if it is not strong."""
    text = text.strip()
    if not text:
        raise WeakKeyError(f"{setting} is empty")
    key = _decode(text)
    if key is None or len(key) < MIN_KEY_BYTES:
        raise WeakKeyError(
            f"{setting} is shorter than {MIN_KEY_BYTES} random bytes (give 64 hex digits or "
            f"base64 of {MIN_KEY_BYTES} bytes, e.g. `openssl rand -hex 32`)"
        )
    if len(set(key)) < MIN_DISTINCT_BYTES or hashlib.sha256(key).hexdigest() in WELL_KNOWN:
        raise WeakKeyError(f"{setting} is a well-known or patterned value; generate a random one")
    return key


def secret_map(secret: SecretStr, setting: str) -> dict[str, str]:
    """A secret given as a JSON object of names to keys (`{"kid": "<hex>"}`); `WeakKeyError`
    naming the setting, never showing it, when it is not one."""
    try:
        document = json.loads(secret.get_secret_value())
    except ValueError:
        document = None
    if not isinstance(document, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in document.items()
    ):
        raise WeakKeyError(f"{setting} is not a JSON object of names to keys")
    return document


def ref_keys(key: SecretStr, layers: SecretStr | None, prefix: str) -> RefKeys:
    """The taxpayer_ref key of every version from `<prefix>TAXPAYER_REF_KEY` (version 1) and
    `<prefix>TAXPAYER_REF_LAYERS` (versions 2, 3, ...); `WeakKeyError` if one is weak or
    missing, or a version is skipped."""
    given = secret_map(layers, f"{prefix}TAXPAYER_REF_LAYERS") if layers is not None else {}
    versions = sorted(given, key=lambda v: int(v) if v.isdigit() else 0)
    if versions != [str(v) for v in range(2, len(versions) + 2)]:
        msg = f"{prefix}TAXPAYER_REF_LAYERS must give versions 2, 3, ... without a gap"
        raise WeakKeyError(msg)
    base = key_bytes(key.get_secret_value(), f"{prefix}TAXPAYER_REF_KEY")
    later = [key_bytes(given[v], f"{prefix}TAXPAYER_REF_LAYERS[{v}]") for v in versions]
    return RefKeys((base, *later))


def _decode(text: str) -> bytes | None:
    """Hex, or base64 (either alphabet); None for anything else, including a passphrase that
    happens to use only base64 letters (all lower case: random base64 has upper case too)."""
    if len(text) % 2 == 0 and _HEX.fullmatch(text):
        return bytes.fromhex(text)
    if not _BASE64.fullmatch(text) or text.lower() == text:
        return None
    padded = text.rstrip("=") + "=" * (-len(text.rstrip("=")) % 4)
    try:
        return base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        return None
