"""Identity assertions of a taxpayer's act (contract: "Identity-bound taxpayer acts").

An identity provider (Secure Access in production; `secure-access` of the local stack in
development) signs a short-lived JWT naming the taxpayer who logged in (`tin`), how strongly
(`acr`), for which act (`nonce`) and once only (`jti`). The portal puts it in the message as
`identity_assertion`. Production assertions come from the identity provider; this function is
what the development provider and the tests use to issue them.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Final

from joserfc import jwt

from caf_client.signing import ALGORITHMS, PrivateKey, algorithm_of

__all__ = [
    "AAL2",
    "ASSURANCE_IAL2_AAL2",
    "AUDIENCE",
    "IAL2",
    "QUERY_AUDIENCE",
    "ROLES",
    "mint_access_token",
    "mint_identity_assertion",
]

IAL2: Final = "http://idmanagement.gov/ns/assurance/ial/2"
AAL2: Final = "http://idmanagement.gov/ns/assurance/aal/2"
ASSURANCE_IAL2_AAL2: Final = f"{IAL2} {AAL2}"
AUDIENCE: Final = "caf-intake"


def mint_identity_assertion(
    key: PrivateKey,
    *,
    issuer: str,
    tin: str,
    nonce: str,
    subject: str | None = None,
    audience: str = AUDIENCE,
    acr: str = ASSURANCE_IAL2_AAL2,
    issued_at: datetime | None = None,
    lifetime: timedelta = timedelta(minutes=10),
    jti: str | None = None,
) -> str:
    """A signed identity assertion (compact JWT) for the taxpayer with `tin`.

    `nonce` binds it to one act: the `request_id` of a Tax Pro Account decision, the
    `message_id` of an online revocation.
    """
    issued = issued_at or datetime.now(UTC)
    claims = {
        "iss": issuer,
        "aud": audience,
        "sub": subject or f"user-{uuid.uuid4()}",
        "tin": tin,
        "acr": acr,
        "iat": int(issued.timestamp()),
        "exp": int((issued + lifetime).timestamp()),
        "nonce": nonce,
        "jti": jti or str(uuid.uuid4()),
    }
    header = {"alg": algorithm_of(key), "kid": key.kid, "typ": "JWT"}
    return jwt.encode(header, claims, key, algorithms=ALGORITHMS)


QUERY_AUDIENCE: Final = "caf-query"
ROLES: Final = ("taxpayer", "practitioner", "employee", "system")


def mint_access_token(
    key: PrivateKey,
    *,
    issuer: str,
    role: str,
    subject: str,
    tin: str | None = None,
    caf_number: str | None = None,
    audience: str = QUERY_AUDIENCE,
    issued_at: datetime | None = None,
    lifetime: timedelta = timedelta(hours=1),
) -> str:
    """A bearer token for the authorization API: who (`sub`), in which `role`, and for a
    taxpayer their `tin`, for a practitioner their `caf_number`. Production tokens come from
    the identity provider; the development provider (`cafctl token`) and the tests mint them
    here."""
    issued = issued_at or datetime.now(UTC)
    claims: dict[str, object] = {
        "iss": issuer,
        "aud": audience,
        "sub": subject,
        "role": role,
        "iat": int(issued.timestamp()),
        "exp": int((issued + lifetime).timestamp()),
        "jti": str(uuid.uuid4()),
    }
    if tin is not None:
        claims["tin"] = tin
    if caf_number is not None:
        claims["caf_number"] = caf_number
    header = {"alg": algorithm_of(key), "kid": key.kid, "typ": "JWT"}
    return jwt.encode(header, claims, key, algorithms=ALGORITHMS)
