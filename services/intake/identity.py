"""AU-02: identity-bound taxpayer acts. A Tax Pro Account decision and an online revocation
count only with an identity assertion (a JWT) from an allow-listed identity provider, issued for
this act, to this audience, recently, at IAL2 + AAL2, once, for this taxpayer.

`check_assertion` is pure: it takes the provider's keys and says which check failed first. The
two checks that need state are the handler's: the asserted TIN against the request's taxpayer
(`taxpayer_ref`), and the single use of `jti` (`IntakeStore.claim_assertion`).
"""

from __future__ import annotations

import datetime as dt
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from joserfc import jwt
from joserfc.errors import JoseError, SecurityWarning
from joserfc.jwk import KeySet

from caf_client.identity import AAL2, AUDIENCE, IAL2
from caf_client.signing import ALGORITHMS
from caf_runtime.tokens import TrustedIssuers, Untrusted, epoch_instant
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
    issued, expires = epoch_instant(claims.get("iat")), epoch_instant(claims.get("exp"))
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


class IdentityProviders:
    """The allow-listed identity providers: issuer → its keys (JWKS file or URL)."""

    def __init__(self, issuers: TrustedIssuers) -> None:
        self._issuers = issuers

    @classmethod
    def from_locations(cls, locations: Mapping[str, str]) -> IdentityProviders:
        return cls(TrustedIssuers.from_locations(locations))

    async def verify(
        self, token: str | None, *, nonce: str, now: dt.datetime
    ) -> Asserted | AssertionFailed:
        """Every check that needs no state, in order; the first failure is the answer."""
        if not token:
            return AssertionFailed(Check.PRESENT, "the act carries no identity assertion")
        keys = await self._issuers.keys_for(token)
        if isinstance(keys, Untrusted):
            return _UNTRUSTED[keys.check]
        return check_assertion(token, keys, nonce=nonce, now=now)


_UNTRUSTED = {
    "format": AssertionFailed(Check.FORMAT, "it is not a compact JWT naming its issuer and key"),
    "issuer": AssertionFailed(Check.ISSUER, "its issuer is not an allow-listed provider"),
    "key": AssertionFailed(Check.SIGNATURE, "its key is not one of the issuer's keys"),
}
