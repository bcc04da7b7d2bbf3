"""Development keys: one Ed25519 key pair per publisher and one for the identity provider, and the
symmetric secrets of intake (the taxpayer_ref key, the key-encryption key of sealed copies).

`make up` (and the test session) create them once in a folder (`.devstack/keys/`): each private
key as a JWK file `<kid>.jwk` (mode 0600) and the public keys as the JWKS files the services
trust (`publishers.jwks`, `secure-access.jwks`). A rotated key is one more file,
`<publisher>@<version>.jwk`; every `.jwk` of a publisher is listed, so old and new are valid
together until the old file is removed. Each secret is a `<name>.secret` file (64 hex digits,
mode 0600), made once so pseudonyms stay the same across restarts. Production keys never come
from here.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from joserfc.jwk import KeySet, OKPKey

from caf_client.identity import mint_access_token, mint_identity_assertion
from caf_client.pins import load_public_keys, new_pin_key
from caf_client.signing import Signer, load_private_key
from caf_runtime.authenticity import (
    BUSINESS_TAX_ACCOUNT,
    CAF_API,
    ENTITY_FEED,
    FORMS_INTAKE,
    IP_PIN_FEED,
    ONLINE_ACCOUNT,
    PUBLISHERS,
    REGISTRY_FEED,
    TAX_PRO_ACCOUNT,
    publisher_of,
)

IDENTITY_PROVIDER: Final = "secure-access"
REF_KEY: Final = "taxpayer-ref"
ENVELOPE_KID: Final = "dev-envelope-1"
PIN_KID: Final = "intake-pin-1"
ISSUER: Final = "https://secure-access.local"
# Who signs each kind in development (each is on the contract's allow-list for it).
SIGNER_OF_KIND: Final[Mapping[str, str]] = {
    "submission": FORMS_INTAKE,
    "tpa_request": TAX_PRO_ACCOUNT,
    "tpa_decision": ONLINE_ACCOUNT,
    "withdrawal": FORMS_INTAKE,
    "revocation": FORMS_INTAKE,
    "registry": REGISTRY_FEED,
    "entity": ENTITY_FEED,
    "do_pin_request": BUSINESS_TAX_ACCOUNT,
    "do_pin_redeem": BUSINESS_TAX_ACCOUNT,
    "entity_user": BUSINESS_TAX_ACCOUNT,
    "do_deactivate": BUSINESS_TAX_ACCOUNT,
    "protection": IP_PIN_FEED,
    "protected_confirmation": ONLINE_ACCOUNT,
}


@dataclass(frozen=True)
class DevKeys:
    """The key folder of one local stack (or one test session)."""

    root: Path

    @property
    def publishers_jwks(self) -> Path:
        return self.root / "publishers.jwks"

    @property
    def identity_jwks(self) -> Path:
        return self.root / f"{IDENTITY_PROVIDER}.jwks"

    @property
    def pin_private(self) -> Path:
        """Intake's PIN key pair (DO-05), a private JWKS (mode 0600)."""
        return self.root / "intake-pin.private.jwks"

    @property
    def pin_public(self) -> Path:
        """Its public half, what Business Tax Account seals a typed PIN to."""
        return self.root / "intake-pin.jwks"

    def ensure(self) -> DevKeys:
        """Create the missing key pairs and write the public key sets again (idempotent)."""
        self.root.mkdir(parents=True, exist_ok=True)
        for kid in (*PUBLISHERS, IDENTITY_PROVIDER):
            path = self.root / f"{kid}.jwk"
            if not path.exists():
                self.write_key(kid)
        for name in (REF_KEY, ENVELOPE_KID):
            self.secret(name)
        if not self.pin_private.exists():
            key = new_pin_key(PIN_KID)
            descriptor = os.open(self.pin_private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as file:
                json.dump({"keys": [key.as_dict(private=True)]}, file)
            _write_atomically(self.pin_public, {"keys": [key.as_dict(private=False)]})
        self.publish()
        return self

    def pin_keys(self) -> KeySet:
        """The public PIN keys a portal seals a typed PIN to (`caf_client.pins.seal_pin`)."""
        return load_public_keys(self.pin_public)

    def secret(self, name: str) -> str:
        """The development secret `name` (32 random bytes as hex), made on first use."""
        path = self.root / f"{name}.secret"
        if not path.exists():
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as file:
                file.write(secrets.token_hex(32))
        return path.read_text().strip()

    def write_key(self, kid: str) -> Path:
        """A new Ed25519 private key `<kid>.jwk` (mode 0600); `publish()` lists its public half."""
        key = OKPKey.generate_key("Ed25519", parameters={"kid": kid})
        path = self.root / f"{kid}.jwk"
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:
            json.dump(key.as_dict(private=True), file)
        return path

    def publish(self) -> None:
        """Write the public key sets from the private key files present now."""
        publishers: list[dict[str, Any]] = []
        identity: list[dict[str, Any]] = []
        for path in sorted(self.root.glob("*.jwk")):
            key = load_private_key(path)
            public = dict(key.as_dict(private=False))
            owner = publisher_of(str(key.kid))
            if owner in PUBLISHERS:
                publishers.append(public)
            elif owner == IDENTITY_PROVIDER:
                identity.append(public)
        _write_atomically(self.publishers_jwks, {"keys": publishers})
        _write_atomically(self.identity_jwks, {"keys": identity})

    def signer(self, kid: str) -> Signer:
        return Signer.from_file(self.root / f"{kid}.jwk")

    def signer_for(self, kind: str) -> Signer:
        """The development publisher allowed to sign messages of `kind` ("registry" for the
        practitioner topic)."""
        return self.signer(SIGNER_OF_KIND[kind])

    def assertion(self, *, tin: str, nonce: str, **claims: Any) -> str:
        """An identity assertion from the development provider (see `mint_identity_assertion`)."""
        key = load_private_key(self.root / f"{IDENTITY_PROVIDER}.jwk")
        return mint_identity_assertion(key, issuer=ISSUER, tin=tin, nonce=nonce, **claims)

    def access_token(self, *, role: str, subject: str, **claims: Any) -> str:
        """A bearer token of the authorization API from the development provider (see
        `mint_access_token`): `cafctl token` and the tests use it."""
        key = load_private_key(self.root / f"{IDENTITY_PROVIDER}.jwk")
        return mint_access_token(key, issuer=ISSUER, role=role, subject=subject, **claims)

    def environment(self) -> dict[str, str]:
        """What the services need to trust these keys, and intake's secrets (the operator's
        `cafctl dlq` opens sealed letters with the same key-encryption key)."""
        return {
            "CAF_PUBLISHER_JWKS": str(self.publishers_jwks),
            "INTAKE_IDENTITY_PROVIDERS": json.dumps({ISSUER: str(self.identity_jwks)}),
            "INTAKE_TAXPAYER_REF_KEY": self.secret(REF_KEY),
            # the read side looks TINs up by their ref, and accepts the provider's tokens
            "CAF_QUERY_TAXPAYER_REF_KEY": self.secret(REF_KEY),
            "CAF_QUERY_IDENTITY_PROVIDERS": json.dumps({ISSUER: str(self.identity_jwks)}),
            "CAF_ENVELOPE_KEYS": json.dumps({ENVELOPE_KID: self.secret(ENVELOPE_KID)}),
            "CAF_ENVELOPE_KID": ENVELOPE_KID,
            "INTAKE_PIN_KEYS": self.pin_private.read_text(),
            # the authorization API signs a practitioner's withdrawal (MN-07)
            "CAF_QUERY_SIGNING_KEY": (self.root / f"{CAF_API}.jwk").read_text(),
        }


def _write_atomically(path: Path, document: Mapping[str, Any]) -> None:
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(document, indent=1))
    partial.replace(path)
