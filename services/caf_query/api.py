"""The authorization API (FastAPI): the check, and who may see which authorizations.

- `POST /v1/authorization-checks`: is this representative authorized for this taxpayer, this
  return, this period, and do they receive notices? For downstream systems and employees; an
  employee says why (`reason`), and the check is audited.
- `GET /v1/taxpayers/me/authorizations`: a taxpayer's complete history, pending requests
  included, with what they can still approve.
- `GET /v1/practitioners/me/authorizations`: a practitioner's grants and pending requests,
  filterable by status, paginated.
- `POST /v1/employee/taxpayer-authorizations`: an employee's search by taxpayer, with a reason,
  audited.
- `POST /v1/practitioners/me/withdrawals`: a practitioner withdraws from one of their active
  grants (MN-07); it goes through intake like any other withdrawal.

TINs travel only in request bodies (never in a URL) and appear in responses only as their last
four digits. A missing or invalid token is 401 and a token of the wrong role 403, both with the
same body whatever exists.
"""

# No `from __future__ import annotations`: FastAPI reads the dependencies in the handlers'
# annotations at run time, and some of them are local to `create_api`.

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import Field

from caf_runtime.evidence_bucket import EvidenceReader, EvidenceUnavailable, StoredEvidence
from caf_runtime.metrics import exposition
from schemas.errors import ContractError
from services.caf_query.access import AccessTokens, Principal, Refused, Role
from services.caf_query.cache import ViewCache
from services.caf_query.histories import (
    BusinessList,
    Clock,
    GrantPage,
    Histories,
    RefsOf,
    StrictBody,
    TaxpayerLookup,
    TaxpayerNamed,
)
from services.caf_query.pages import PageSession, add_pages
from services.caf_query.store import QueryStore
from services.caf_query.views import EvidenceRef, Status, check
from services.caf_query.withdrawals import Withdrawals

Audit = Callable[[Principal, str, str, str], Awaitable[None]]  # who, action, ref, why

UNAUTHORIZED = HTTPException(401, "Not authenticated", headers={"WWW-Authenticate": "Bearer"})
FORBIDDEN = HTTPException(403, "Forbidden")


class CheckRequest(TaxpayerNamed):
    caf_number: str = Field(pattern=r"^\d{9}$", examples=["781234567"])
    tax_type: str = Field(min_length=1, max_length=100, examples=["Income"])
    form_number: str = Field(min_length=1, max_length=30, examples=["1040"])
    period: str = Field(min_length=1, max_length=30, examples=["2024"])
    reason: str | None = Field(
        default=None, max_length=500, description="Required of employees: why (case number)."
    )


class SearchRequest(TaxpayerNamed):
    reason: str = Field(min_length=3, max_length=500, description="Why (case number).")


class Offset(StrictBody):
    partition: int
    offset: int


class CheckAnswer(StrictBody):
    authorized: Literal["POA", "TIA", "none"]
    receives_notices: bool
    grant_id: str | None
    authorization_id: str | None
    as_of: list[Offset] = Field(description="The outcome-stream offsets the answer reflects.")


class Bearer:
    """The caller of a request, from its bearer token (401 without a valid one)."""

    def __init__(self, tokens: AccessTokens, clock: Clock) -> None:
        self._tokens = tokens
        self._clock = clock

    async def principal(self, request: Request) -> Principal:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            raise UNAUTHORIZED
        verified = await self._tokens.verify(token.strip(), self._clock())
        if isinstance(verified, Refused):
            raise UNAUTHORIZED
        return verified

    def role(self, *allowed: Role) -> Callable[[Principal], Awaitable[Principal]]:
        """A dependency: the caller, if their role is one of `allowed` (else 403). Async, as
        every dependency here: FastAPI runs a plain function in a worker thread."""

        async def allowed_only(
            caller: Annotated[Principal, Depends(self.principal)],
        ) -> Principal:
            if caller.role not in allowed:
                raise FORBIDDEN
            return caller

        return allowed_only


def create_api(
    store: QueryStore,
    tokens: AccessTokens,
    refs_of: RefsOf,
    audit: Audit,
    clock: Clock,
    *,
    cache: ViewCache | None = None,
    secure_cookies: bool = True,
    evidence: EvidenceReader,
    withdrawals: Withdrawals | None = None,
) -> FastAPI:
    """The API over `store`; `refs_of` pseudonymises a TIN, `audit` records employee reads.
    `cache` (none: every look-up reads the table) answers taxpayer look-ups from memory where it
    may. The web pages keep a signed-in token in a cookie, `Secure` unless `secure_cookies` is
    off. `evidence` reads signature evidence back for an employee (ES-05). `withdrawals` (none:
    503) publishes a practitioner's withdrawal (MN-07)."""
    api = FastAPI(title="CAF authorization API", version="1", description=__doc__)
    bearer = Bearer(tokens, clock)
    lookup = TaxpayerLookup(store, refs_of, cache or ViewCache(capacity=0, remembered=0))
    histories = Histories(store, lookup, clock)
    _check_route(api, bearer, lookup, audit)
    _history_routes(api, bearer=bearer, histories=histories, audit=audit)
    _signature_route(api, bearer=bearer, store=store, evidence=evidence, audit=audit)
    _withdrawal_route(api, bearer=bearer, store=store, withdrawals=withdrawals)
    add_pages(api, PageSession(tokens, clock, secure_cookies=secure_cookies), histories)
    _service_routes(api, store)

    @api.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        """Where and why a request is invalid, without echoing what was sent (a TIN)."""
        detail = [{k: e[k] for k in ("loc", "msg", "type") if k in e} for e in error.errors()]
        return JSONResponse({"detail": detail}, status_code=422)

    @api.exception_handler(HTTPException)
    async def plain(request: Request, error: HTTPException) -> JSONResponse:
        headers: dict[str, Any] = dict(error.headers or {})
        return JSONResponse(
            {"detail": error.detail}, status_code=error.status_code, headers=headers
        )

    return api


def _check_route(api: FastAPI, bearer: Bearer, lookup: TaxpayerLookup, audit: Audit) -> None:
    """The check: systems and employees (an employee says why, and is audited)."""
    role, grants_of = bearer.role, lookup.grants

    @api.post("/v1/authorization-checks", response_model=CheckAnswer)
    async def authorization_check(
        body: CheckRequest,
        caller: Annotated[Principal, Depends(role("system", "employee"))],
    ) -> CheckAnswer:
        if caller.role == "employee" and not (body.reason or "").strip():
            raise HTTPException(422, "An employee's check needs a reason")
        ref, grants = await grants_of(body)
        if caller.role == "employee":
            await audit(caller, "authorization-check", ref, str(body.reason))
        try:
            answer = check(grants, body.caf_number, body.tax_type, body.form_number, body.period)
        except ContractError as error:
            raise HTTPException(422, "period is not a tax period of that return") from error
        return CheckAnswer(
            authorized=answer.authorized,
            receives_notices=answer.receives_notices,
            grant_id=answer.grant_id,
            authorization_id=answer.authorization_id,
            as_of=[Offset(partition=p.partition, offset=p.offset) for p in answer.as_of],
        )


def _history_routes(api: FastAPI, *, bearer: Bearer, histories: Histories, audit: Audit) -> None:
    """Who sees which grants: a taxpayer theirs, a practitioner those under their number, an
    employee any taxpayer's (audited)."""
    role = bearer.role

    @api.get("/v1/taxpayers/me/authorizations", response_model=GrantPage)
    async def my_history(
        caller: Annotated[Principal, Depends(role("taxpayer"))],
    ) -> GrantPage:
        return await histories.of_taxpayer(caller)

    @api.get("/v1/officials/me/businesses", response_model=BusinessList)
    async def my_businesses(
        caller: Annotated[Principal, Depends(role("taxpayer"))],
    ) -> BusinessList:
        """The businesses the signed-in person is an active Designated Official of (DO-08)."""
        return await histories.businesses(caller)

    @api.get("/v1/officials/me/businesses/{business_ref}/authorizations", response_model=GrantPage)
    async def business_history(
        business_ref: Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9.]+$")],
        caller: Annotated[Principal, Depends(role("taxpayer"))],
    ) -> GrantPage:
        """A business's authorizations and pending requests, for its active Designated
        Official (DO-08)."""
        return await histories.of_business(caller, business_ref)

    @api.get("/v1/practitioners/me/authorizations", response_model=GrantPage)
    async def my_grants(
        caller: Annotated[Principal, Depends(role("practitioner"))],
        status: Annotated[list[Status] | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        cursor: Annotated[str | None, Query(max_length=200)] = None,
    ) -> GrantPage:
        return await histories.of_practitioner(caller, status or (), limit, cursor)

    @api.post("/v1/employee/taxpayer-authorizations", response_model=GrantPage)
    async def employee_search(
        body: SearchRequest,
        caller: Annotated[Principal, Depends(role("employee"))],
    ) -> GrantPage:
        ref, page = await histories.of_named_taxpayer(body)
        await audit(caller, "taxpayer-authorizations", ref, body.reason)
        return page


class SignaturesRequest(StrictBody):
    grant_id: str = Field(min_length=1, max_length=200, description="The grant.")
    reason: str = Field(min_length=1, max_length=1000, description="Why (audited).")


class SignatureOut(StrictBody):
    role: str = Field(description="Who signed: taxpayer or representative.")
    act: str = Field(description="The act signed (tpa_request, tpa_approval, submission, ...).")
    key: str = Field(description="Object key in the evidence bucket (its content address).")
    sha256: str = Field(description="SHA-256 of the object as recorded when it was posted.")
    retain_until: dt.datetime | None = Field(
        description="Object Lock retain-until of the stored original (null: not found)."
    )
    lock_mode: str | None = Field(description="COMPLIANCE for an evidence object.")
    verified: bool = Field(
        description="The object a read of its key returns now has the recorded SHA-256."
    )
    original_kept: bool = Field(
        description="The original bytes are still stored (whatever was written over them)."
    )
    versions: int = Field(description="Versions stored at the key (1 unless written over).")


class SignaturesOut(StrictBody):
    grant_id: str
    signatures: list[SignatureOut]


def _signature_route(
    api: FastAPI, *, bearer: Bearer, store: QueryStore, evidence: EvidenceReader, audit: Audit
) -> None:
    """ES-05: an employee reads a grant's signature evidence, hashed again (audited)."""

    @api.post("/v1/employee/grant-signatures", response_model=SignaturesOut)
    async def grant_signatures(
        body: SignaturesRequest,
        caller: Annotated[Principal, Depends(bearer.role("employee"))],
    ) -> SignaturesOut:
        ref = await store.owner(body.grant_id)
        view = await store.grant(ref, body.grant_id) if ref else None
        if ref is None or view is None:
            raise HTTPException(404, "No such grant")
        await audit(caller, "grant-signatures", ref, body.reason)
        try:
            stored = [await evidence.read(s.key) for s in view.signatures]
        except EvidenceUnavailable as error:
            raise HTTPException(503, "The evidence store does not answer") from error
        return SignaturesOut(
            grant_id=view.grant_id,
            signatures=[
                _signature_out(s, found) for s, found in zip(view.signatures, stored, strict=True)
            ],
        )


class WithdrawalRequest(StrictBody):
    grant_id: str = Field(min_length=1, max_length=200, description="The grant to withdraw from.")


class WithdrawalAccepted(StrictBody):
    message_id: str = Field(description="The withdrawal's message id: its outcome names it.")
    grant_id: str
    status: Literal["submitted"] = "submitted"


def _withdrawal_route(
    api: FastAPI, *, bearer: Bearer, store: QueryStore, withdrawals: Withdrawals | None
) -> None:
    """MN-07: a practitioner withdraws from one of their active grants."""

    @api.post(
        "/v1/practitioners/me/withdrawals", response_model=WithdrawalAccepted, status_code=202
    )
    async def withdraw(
        body: WithdrawalRequest,
        caller: Annotated[Principal, Depends(bearer.role("practitioner"))],
    ) -> WithdrawalAccepted:
        """Submitted, not done: the outcome (`AuthorizationWithdrawn` or a rejection) follows
        on the outcome stream and in `GET /v1/practitioners/me/authorizations`."""
        if withdrawals is None:
            raise HTTPException(503, "Withdrawals through the API are not configured")
        ref = await store.owner(body.grant_id)
        view = await store.grant(ref, body.grant_id) if ref else None
        if view is None or view.caf_number != caller.caf_number or not view.in_effect:
            raise HTTPException(404, "No grant of yours in effect by that id")
        message_id = await withdrawals.submit(str(caller.caf_number), view)
        return WithdrawalAccepted(message_id=message_id, grant_id=view.grant_id)


def _signature_out(ref: EvidenceRef, found: StoredEvidence | None) -> SignatureOut:
    return SignatureOut(
        role=ref.role,
        act=ref.act,
        key=ref.key,
        sha256=ref.sha256,
        retain_until=found.retain_until if found else None,
        lock_mode=found.lock_mode if found else None,
        verified=found is not None and found.verified,
        original_kept=found is not None and found.original_kept,
        versions=found.versions if found else 0,
    )


def _service_routes(api: FastAPI, store: QueryStore) -> None:
    """Liveness, readiness (the table answers) and metrics, outside the OpenAPI document."""

    @api.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "live"}

    @api.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        try:
            ready = await store.ping()
        except Exception:  # noqa: BLE001 - an unreachable table is simply not ready
            ready = False
        return JSONResponse({"ready": ready}, status_code=200 if ready else 503)

    @api.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        body, content_type = exposition()
        return Response(body, media_type=content_type)
