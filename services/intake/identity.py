"""AU-02: identity-bound taxpayer acts. A Tax Pro Account decision and an online revocation
count only with an identity assertion (a JWT) from an allow-listed identity provider, issued for
this act, to this audience, recently, at IAL2 + AAL2, once, for this taxpayer.

`check_assertion` is pure: it takes the provider's keys and says which check failed first. The
two checks that need state are the handler's: the asserted TIN against the request's taxpayer
(`taxpayer_ref`), and the single use of `jti` (`IntakeStore.claim_assertion`).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from joserfc import jws, jwt
from joserfc.errors import JoseError, SecurityWarning
from joserfc.jwk import KeySet

from caf_client.identity import AAL2, AUDIENCE, IAL2
from caf_client.signing import ALGORITHMS
from caf_runtime.authenticity import JwksSource
from schemas.codes import ReasonCode, Rejection, RuleId

CLOCK_SKEW = dt.timedelta(seconds=60)
MAX_LIFETIME = dt.timedelta(minutes=15)
_TIN = re.compile(r"^\d{3}-?\d{2}-?\d{4}$|^\d{2}-?\d{7}$")


class Check(StrEnum):
    """The checks of an identity assertion, in the order they are made."""

    PRESENT = "present"
    FORMAT = "format"
    ISSUER = "issuer"
    SIGNATURE = "signature"
    AUDIENCE = "aud"
    ISSUED_AT = "iat"
    EXPIRY = "exp"
    LIFETIME = "lifetime"
    ASSURANCE = "acr"
    NONCE = "nonce"
    TAXPAYER = "tin"
    SINGLE_USE = "jti"


@dataclass(frozen=True)
class Asserted:
    """What a valid assertion says: who, at which provider, which TIN (digits), its jti."""

    issuer: str
    subject: str
    tin: str
    jti: str
    expires_at: dt.datetime


@dataclass(frozen=True)
class AssertionFailed:
    """The first check an assertion failed; `detail` never repeats a claim's value."""

    check: Check
    detail: str

    def rejection(self) -> Rejection:
        return Rejection(
            RuleId.AU_02,
            ReasonCode.REJ_IDENTITY_ASSERTION,
            f"The identity assertion failed its '{self.check}' check: {self.detail}.",
        )


def unverified_issuer(token: str) -> tuple[str, str] | AssertionFailed:
    """(issuer, kid) read before verification, to choose the provider's keys."""
    try:
        compact = jws.extract_compact(token.encode())
        claims = json.loads(compact.payload)
    except (JoseError, ValueError):
        return AssertionFailed(Check.FORMAT, "it is not a compact JWT")
    issuer = claims.get("iss") if isinstance(claims, dict) else None
    kid = compact.headers().get("kid")
    if not isinstance(issuer, str) or not isinstance(kid, str):
        return AssertionFailed(Check.FORMAT, "it names no issuer or no key")
    return issuer, kid


def check_assertion(
    token: str, keys: KeySet, *, nonce: str, now: dt.datetime
) -> Asserted | AssertionFailed:
    """Signature, audience, times, assurance and nonce of an assertion from a trusted issuer."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SecurityWarning)  # EdDSA: the contract accepts it
            claims = dict(jwt.decode(token, keys, algorithms=ALGORITHMS).claims)
    except (JoseError, ValueError):
        return AssertionFailed(Check.SIGNATURE, "it is not signed by the issuer's key")
    if not _audience_is_ours(claims.get("aud")):
        return AssertionFailed(Check.AUDIENCE, f"it is not addressed to {AUDIENCE}")
    issued, expires = _instant(claims.get("iat")), _instant(claims.get("exp"))
    if issued is None or issued > now + CLOCK_SKEW:
        return AssertionFailed(Check.ISSUED_AT, "it has no issue time or one in the future")
    if expires is None or expires <= now - CLOCK_SKEW:
        return AssertionFailed(Check.EXPIRY, "it has expired or has no expiry")
    if expires - issued > MAX_LIFETIME:
        return AssertionFailed(Check.LIFETIME, "it is valid for more than 15 minutes")
    acr = claims.get("acr")
    if not isinstance(acr, str) or not {IAL2, AAL2} <= set(acr.split()):
        return AssertionFailed(Check.ASSURANCE, "the login was not at IAL2 and AAL2")
    if claims.get("nonce") != nonce:
        return AssertionFailed(Check.NONCE, "it was issued for another act")
    tin, subject, jti = claims.get("tin"), claims.get("sub"), claims.get("jti")
    if not isinstance(tin, str) or not _TIN.match(tin.strip()):
        return AssertionFailed(Check.TAXPAYER, "it names no valid TIN")
    if not isinstance(jti, str) or not jti or not isinstance(subject, str):
        return AssertionFailed(Check.SINGLE_USE, "it has no jti or no subject")
    return Asserted(str(claims["iss"]), subject, re.sub(r"\D", "", tin), jti, expires)


def _audience_is_ours(audience: object) -> bool:
    if isinstance(audience, str):
        return audience == AUDIENCE
    return isinstance(audience, list) and AUDIENCE in audience


def _instant(value: object) -> dt.datetime | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return dt.datetime.fromtimestamp(value, dt.UTC)
    except (OverflowError, OSError, ValueError):
        return None


class IdentityProviders:
    """The allow-listed identity providers: issuer → its keys (JWKS file or URL)."""

    def __init__(self, sources: Mapping[str, JwksSource]) -> None:
        self._sources = dict(sources)

    @classmethod
    def from_locations(cls, locations: Mapping[str, str]) -> IdentityProviders:
        return cls({issuer: JwksSource(location) for issuer, location in locations.items()})

    async def verify(
        self, token: str | None, *, nonce: str, now: dt.datetime
    ) -> Asserted | AssertionFailed:
        """Every check that needs no state, in order; the first failure is the answer."""
        if not token:
            return AssertionFailed(Check.PRESENT, "the act carries no identity assertion")
        named = unverified_issuer(token)
        if isinstance(named, AssertionFailed):
            return named
        issuer, kid = named
        source = self._sources.get(issuer)
        if source is None:
            return AssertionFailed(Check.ISSUER, "its issuer is not an allow-listed provider")
        if not await source.knows(kid):
            return AssertionFailed(Check.SIGNATURE, "its key is not one of the issuer's keys")
        return check_assertion(token, source.keys, nonce=nonce, now=now)
