"""Who may publish what: the detached JWS of every record on `caf.inbound.v1` and
`caf.practitioners.v1` is verified against an allow-list of publisher keys (rule AU-01).

A publisher key's `kid` is `<publisher>` or `<publisher>@<version>`: several versions of one
publisher's key may be valid at once, which is how keys rotate (publish the new public key,
switch the portal to it, then drop the old one). The public keys come from a JWKS file or URL
(`CAF_PUBLISHER_JWKS`); an unknown `kid` makes the source be read again (at most every
`refresh_s`), so a rotation needs no restart. Which publisher may publish which `kind` on which
topic is `DEFAULT_ALLOW` (the contract), or `CAF_PUBLISHER_ALLOW`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import urllib.request
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from aiokafka import ConsumerRecord
from joserfc import jws
from joserfc.errors import JoseError, SecurityWarning
from joserfc.jwk import KeySet

from caf_client.signing import ALGORITHMS, SIGNATURE_HEADER
from caf_runtime.config import ServiceSettings
from schemas import topics

log = logging.getLogger(__name__)

ANY_KIND: Final = "*"
TAX_PRO_ACCOUNT: Final = "tax-pro-account"
ONLINE_ACCOUNT: Final = "online-account"
FORMS_INTAKE: Final = "forms-intake"
REGISTRY_FEED: Final = "registry-feed"
BUSINESS_TAX_ACCOUNT: Final = "business-tax-account"
ENTITY_FEED: Final = "entity-feed"
IP_PIN_FEED: Final = "ip-pin-feed"
CAF_API: Final = "caf-api"  # the authorization API: a practitioner's withdrawal (MN-07)
PUBLISHERS: Final = (
    TAX_PRO_ACCOUNT,
    ONLINE_ACCOUNT,
    FORMS_INTAKE,
    REGISTRY_FEED,
    BUSINESS_TAX_ACCOUNT,
    ENTITY_FEED,
    IP_PIN_FEED,
    CAF_API,
)

Allow = Mapping[str, Mapping[str, frozenset[str]]]
# The contract's allow-list: topic -> message kind -> publishers that may sign it.
DEFAULT_ALLOW: Final[Allow] = {
    topics.INBOUND: {
        "submission": frozenset({FORMS_INTAKE}),
        "tpa_request": frozenset({TAX_PRO_ACCOUNT}),
        "tpa_decision": frozenset({ONLINE_ACCOUNT}),
        "withdrawal": frozenset({TAX_PRO_ACCOUNT, FORMS_INTAKE, CAF_API}),
        "revocation": frozenset({ONLINE_ACCOUNT, FORMS_INTAKE}),
        # Designated Officials (DO-02 … DO-07): only Business Tax Account
        "do_pin_request": frozenset({BUSINESS_TAX_ACCOUNT}),
        "do_pin_redeem": frozenset({BUSINESS_TAX_ACCOUNT}),
        "entity_user": frozenset({BUSINESS_TAX_ACCOUNT}),
        "do_deactivate": frozenset({BUSINESS_TAX_ACCOUNT}),
        # protected taxpayers answer a held authorization in Online Account (PT-03)
        "protected_confirmation": frozenset({ONLINE_ACCOUNT}),
    },
    topics.PRACTITIONERS: {ANY_KIND: frozenset({REGISTRY_FEED})},
    topics.ENTITIES: {ANY_KIND: frozenset({ENTITY_FEED})},
    topics.PROTECTED: {ANY_KIND: frozenset({IP_PIN_FEED})},
}


class SignatureInvalid(Exception):  # noqa: N818 - the contract's error-class name
    """A record is unsigned, signed by a key not on the allow-list, or its signature is wrong."""


@dataclass(frozen=True)
class Signed:
    """Who signed a record that verified."""

    publisher: str
    kid: str


def publisher_of(kid: str) -> str:
    """`tax-pro-account@2027-01` → `tax-pro-account`."""
    return kid.partition("@")[0]


def parse_allow(document: Mapping[str, Mapping[str, list[str]]]) -> Allow:
    """An allow-list from its JSON form: `{"caf.inbound.v1": {"submission": ["forms-intake"]}}`."""
    return {
        topic: {kind: frozenset(publishers) for kind, publishers in kinds.items()}
        for topic, kinds in document.items()
    }


class JwksSource:
    """Public keys from a JWKS file or http(s) URL, read again when an unknown `kid` shows up
    (at most every `refresh_s`) and at least every `max_age_s`, so a key removed from the source
    stops being trusted within `max_age_s` even if no new key ever appears."""

    def __init__(self, location: str, *, refresh_s: float = 30.0, max_age_s: float = 300.0) -> None:
        self.location = location
        self._refresh_s = refresh_s
        self._max_age_s = max_age_s
        self._keys = self._read()
        self._read_at = time.monotonic()
        self._lock = asyncio.Lock()

    @property
    def keys(self) -> KeySet:
        return self._keys

    def kids(self) -> set[str]:
        return {key.kid for key in self._keys.keys if key.kid}

    def _read(self) -> KeySet:
        if self.location.startswith(("https://", "http://")):
            with urllib.request.urlopen(self.location, timeout=10) as response:  # noqa: S310
                document = json.load(response)
        else:
            document = json.loads(Path(self.location).read_text())
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            msg = f"{self.location} is not a JWKS (an object with a 'keys' list)"
            raise ValueError(msg)
        keys = KeySet.import_key_set(document)  # type: ignore[arg-type]
        private = [key.kid for key in keys.keys if key.is_private]
        if private:
            msg = f"{self.location} holds private keys ({private}); publish only public keys"
            raise ValueError(msg)
        return keys

    async def knows(self, kid: str) -> bool:
        """Whether `kid` is a current key, reading the source again if it is not (bounded) or
        if the keys are older than `max_age_s`."""
        if kid in self.kids() and time.monotonic() - self._read_at < self._max_age_s:
            return True
        async with self._lock:
            age = time.monotonic() - self._read_at
            if age < self._max_age_s and (kid in self.kids() or age < self._refresh_s):
                return kid in self.kids()
            try:
                self._keys = await asyncio.to_thread(self._read)
            except (OSError, ValueError, JoseError) as error:
                log.warning("key source unreadable", extra={"error_class": type(error).__name__})
            self._read_at = time.monotonic()
            return kid in self.kids()


def verify_detached(signature: str, value: bytes, keys: KeySet) -> str:
    """Verify a detached compact JWS of `value`; return its `kid`. Raises SignatureInvalid."""
    protected = _protected(signature)
    alg, kid = protected.get("alg"), protected.get("kid")
    if not isinstance(kid, str) or not kid:
        raise SignatureInvalid("the signature names no kid")
    if alg not in ALGORITHMS:
        raise SignatureInvalid(f"the signature's algorithm {alg!r} is not accepted")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SecurityWarning)  # EdDSA: the contract accepts it
            jws.deserialize_compact(signature, keys, payload=value, algorithms=ALGORITHMS)
    except (JoseError, ValueError) as error:
        raise SignatureInvalid(f"the signature does not verify ({type(error).__name__})") from error
    return kid


def _protected(signature: str) -> dict[str, object]:
    """The protected header of a detached compact JWS (`<header>..<signature>`), unverified."""
    head, _, rest = signature.partition("..")
    if not head or not rest or "." in head or "." in rest:
        raise SignatureInvalid("the signature is not a detached compact JWS (<header>..<sig>)")
    try:
        return dict(jws.extract_compact(f"{head}.e30.{rest}".encode()).headers())
    except (JoseError, ValueError) as error:
        raise SignatureInvalid("the signature header is not a compact JWS") from error


class RecordVerifier:
    """AU-01 for one service: checks a record's signature, its key and what the key may sign."""

    def __init__(self, keys: JwksSource, allow: Allow, topic_prefix: str = "") -> None:
        self._keys = keys
        self._allow = allow
        self._prefix = topic_prefix

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> RecordVerifier:
        """From `CAF_PUBLISHER_JWKS` (required) and `CAF_PUBLISHER_ALLOW` (optional)."""
        if not settings.publisher_jwks:
            msg = "CAF_PUBLISHER_JWKS is required: the publishers' public keys (AU-01)"
            raise ValueError(msg)
        allow = DEFAULT_ALLOW
        if settings.publisher_allow is not None:
            allow = parse_allow(settings.publisher_allow)
        return cls(JwksSource(settings.publisher_jwks), allow, settings.topic_prefix)

    async def verify(
        self, record: ConsumerRecord[bytes, bytes], topic: str | None = None
    ) -> Signed:
        """Who signed `record` (of contract topic `topic`, by default the one it was read
        from); raises SignatureInvalid when nobody allowed to did."""
        topic = topic or record.topic.removeprefix(self._prefix)
        kinds = self._allow.get(topic)
        if kinds is None:
            raise SignatureInvalid(f"no publisher may sign records of {topic}")
        signature = _header(record, SIGNATURE_HEADER)
        if signature is None:
            raise SignatureInvalid(f"the record has no {SIGNATURE_HEADER} header")
        kid = _kid_of(signature)
        if not await self._keys.knows(kid):
            raise SignatureInvalid(f"key {kid!r} is not on the allow-list")
        # a tombstone (no value) is signed over its key: a captured signature cannot delete
        # another practitioner
        value = record.value if record.value is not None else (record.key or b"")
        verify_detached(signature, value, self._keys.keys)
        publisher = publisher_of(kid)
        kind = ANY_KIND if ANY_KIND in kinds else _kind_of(value)
        allowed = kinds.get(kind) if kind is not None else None
        if kind is not None and (allowed is None or publisher not in allowed):
            raise SignatureInvalid(f"publisher {publisher!r} may not publish {kind!r} on {topic}")
        if kind is None and not any(publisher in allowed for allowed in kinds.values()):
            raise SignatureInvalid(f"publisher {publisher!r} may not publish on {topic}")
        return Signed(publisher, kid)


def _header(record: ConsumerRecord[bytes, bytes], name: str) -> str | None:
    values: list[bytes] = [value for key, value in record.headers or () if key == name]
    if len(values) != 1:
        return None  # none, or two (which one would count?)
    try:
        return values[0].decode("ascii")
    except UnicodeDecodeError:
        return None


def _kid_of(signature: str) -> str:
    kid = _protected(signature).get("kid")
    if not isinstance(kid, str) or not kid:
        raise SignatureInvalid("the signature names no kid")
    return kid


def _kind_of(value: bytes) -> str | None:
    """The `kind` of an inbound value; None when unreadable (decoding dead-letters it later)."""
    try:
        document = json.loads(value)
    except ValueError:
        return None
    kind: object = document.get("kind") if isinstance(document, dict) else None
    return kind if isinstance(kind, str) else None
