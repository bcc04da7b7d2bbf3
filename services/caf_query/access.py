"""Who may see what: bearer tokens of the authorization API.

A token is a JWT from an allow-listed identity provider (issuer → its JWKS), addressed to
`caf-query`, unexpired, issued at most an hour before it expires, naming its holder (`sub`) and
their `role`:

- `taxpayer`, with their `tin`: sees only their own records (the TIN is turned into the
  `taxpayer_ref` the records are kept under, and never kept), and those of a business whose
  active Designated Official they are (by their issuer and subject, DO-08);
- `practitioner`, with their `caf_number`: sees only grants naming that number;
- `employee`: may read any taxpayer's records, each read audited with a reason;
- `system`: a downstream system, which may ask the check and nothing else.

Verification is joserfc's (signature, algorithms); the claims are checked here, in order, and
the first failure is kept for the log. What a caller is told never says which check failed.
"""

from __future__ import annotations

import datetime as dt
import re
import warnings
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from joserfc import jwt
from joserfc.errors import JoseError, SecurityWarning

from caf_client.identity import QUERY_AUDIENCE
from caf_client.signing import ALGORITHMS
from caf_runtime.tokens import TrustedIssuers, Untrusted, epoch_instant

Role = Literal["taxpayer", "practitioner", "employee", "system"]
CLOCK_SKEW = dt.timedelta(seconds=60)
MAX_LIFETIME = dt.timedelta(hours=1)
VERIFIED_FOR = dt.timedelta(seconds=30)  # well within JwksSource's max_age_s (300 s)
REMEMBERED = 10_000  # verified tokens kept, least recently used dropped first
_TIN = re.compile(r"^\d{3}-?\d{2}-?\d{4}$|^\d{2}-?\d{7}$")
_CAF = re.compile(r"^\d{9}$")


@dataclass(frozen=True)
class Principal:
    """A verified caller: who, in which role, and (by role) their TIN digits or CAF number."""

    issuer: str
    subject: str
    role: Role
    tin: str | None = None
    caf_number: str | None = None


@dataclass(frozen=True)
class Refused:
    """Why a token was not accepted (for the log; the caller hears only 401)."""

    why: str


class AccessTokens:
    """The allow-listed identity providers of the API.

    A token whose signature verified is remembered (its claims, by the exact token text) for
    `VERIFIED_FOR`, well within the time a key removed from the provider's JWKS is still trusted
    anyway (`JwksSource` re-reads its keys at least every five minutes),
    so a system asking many checks with one token pays for the signature once; the claims,
    expiry included, are checked again on every use."""

    def __init__(self, issuers: TrustedIssuers) -> None:
        self._issuers = issuers
        self._verified: OrderedDict[str, tuple[dt.datetime, dict[str, object]]] = OrderedDict()

    @classmethod
    def from_locations(cls, locations: Mapping[str, str]) -> AccessTokens:
        return cls(TrustedIssuers.from_locations(locations))

    async def verify(self, token: str | None, now: dt.datetime) -> Principal | Refused:
        if not token:
            return Refused("no bearer token")
        remembered = self._verified.get(token)
        if remembered is not None and remembered[0] <= now < remembered[0] + VERIFIED_FOR:
            self._verified.move_to_end(token)
            return principal_of(remembered[1], now)
        keys = await self._issuers.keys_for(token)
        if isinstance(keys, Untrusted):
            return Refused(f"untrusted: {keys.check}")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", SecurityWarning)  # EdDSA is accepted
                claims = dict(jwt.decode(token, keys, algorithms=ALGORITHMS).claims)
        except (JoseError, ValueError):
            return Refused("signature")
        self._verified[token] = (now, claims)
        if len(self._verified) > REMEMBERED:
            self._verified.popitem(last=False)
        return principal_of(claims, now)


def principal_of(claims: Mapping[str, object], now: dt.datetime) -> Principal | Refused:
    """The caller a verified token's claims name, or why they name none."""
    audience = claims.get("aud")
    if audience != QUERY_AUDIENCE and not (
        isinstance(audience, list) and QUERY_AUDIENCE in audience
    ):
        return Refused("audience")
    issued, expires = epoch_instant(claims.get("iat")), epoch_instant(claims.get("exp"))
    if issued is None or issued > now + CLOCK_SKEW:
        return Refused("issued in the future or no issue time")
    if expires is None or expires <= now - CLOCK_SKEW:
        return Refused("expired")
    if expires - issued > MAX_LIFETIME:
        return Refused("lifetime over an hour")
    subject, role = claims.get("sub"), claims.get("role")
    if not isinstance(subject, str) or not subject:
        return Refused("no subject")
    issuer = str(claims.get("iss"))
    if role == "taxpayer":
        tin = claims.get("tin")
        if not isinstance(tin, str) or not _TIN.match(tin.strip()):
            return Refused("taxpayer without a valid TIN")
        return Principal(issuer, subject, "taxpayer", tin=re.sub(r"\D", "", tin))
    if role == "practitioner":
        number = claims.get("caf_number")
        if not isinstance(number, str) or not _CAF.match(number):
            return Refused("practitioner without a CAF number")
        return Principal(issuer, subject, "practitioner", caf_number=number)
    if role in ("employee", "system"):
        return Principal(issuer, subject, role)
    return Refused("unknown role")
