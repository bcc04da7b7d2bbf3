"""JWTs from allow-listed issuers: which issuer's keys verify a token, and its time claims.

Shared by intake's identity assertions (AU-02) and the read side's bearer tokens: a token names
its issuer (`iss`) and key (`kid`) before it is verified; only an allow-listed issuer's key set
(JWKS file or URL, read again when an unknown kid shows up) may verify it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from caf_runtime.authenticity import JwksSource


@dataclass(frozen=True)
class Untrusted:
    """Why no allow-listed key may verify a token: not a JWT naming issuer and key (`format`),
    an issuer not on the list (`issuer`), or a key the issuer does not have (`key`)."""

    check: Literal["format", "issuer", "key"]


class TrustedIssuers:
    """The allow-listed issuers: issuer → its keys."""

    def __init__(self, sources: Mapping[str, JwksSource]) -> None:
        self._sources = dict(sources)

    @classmethod
    def from_locations(cls, locations: Mapping[str, str]) -> TrustedIssuers:
        return cls({issuer: JwksSource(location) for issuer, location in locations.items()})

    async def keys_for(self, token: str) -> KeySet | Untrusted:
        """The key set of the token's issuer, if it is allow-listed and has the token's key."""
        named = issuer_and_kid(token)
        if named is None:
            return Untrusted("format")
        issuer, kid = named
        source = self._sources.get(issuer)
        if source is None:
            return Untrusted("issuer")
        if not await source.knows(kid):
            return Untrusted("key")
        return source.keys


def issuer_and_kid(token: str) -> tuple[str, str] | None:
    """(issuer, kid) read before verification, to choose the keys; None if it names neither."""
    try:
        compact = jws.extract_compact(token.encode())
        claims = json.loads(compact.payload)
    except (JoseError, ValueError):
        return None
    issuer = claims.get("iss") if isinstance(claims, dict) else None
    kid = compact.headers().get("kid")
    if not isinstance(issuer, str) or not isinstance(kid, str):
        return None
    return issuer, kid


def epoch_instant(value: object) -> dt.datetime | None:
    """A NumericDate claim (`iat`, `exp`) as an aware time; None if it is not one."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return dt.datetime.fromtimestamp(value, dt.UTC)
    except (OverflowError, OSError, ValueError):
        return None
