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

TINs travel only in request bodies (never in a URL) and appear in responses only as their last
four digits. A missing or invalid token is 401 and a token of the wrong role 403, both with the
same body whatever exists.
"""

# No `from __future__ import annotations`: FastAPI reads the dependencies in the handlers'
# annotations at run time, and some of them are local to `create_api`.

import datetime as dt
import re
from collections.abc import Awaitable, Callable, Collection
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from caf_runtime.metrics import exposition
from schemas.errors import ContractError
from services.caf_query.access import AccessTokens, Principal, Refused, Role
from services.caf_query.cache import ViewCache
from services.caf_query.pages import PageSession, add_pages
from services.caf_query.store import QueryStore
from services.caf_query.views import GrantView, Status, check

Clock = Callable[[], dt.datetime]
Audit = Callable[[Principal, str, str, str], Awaitable[None]]  # who, action, ref, why
RefsOf = Callable[[str], tuple[str, ...]]  # TIN digits -> its refs, oldest key version first

UNAUTHORIZED = HTTPException(401, "Not authenticated", headers={"WWW-Authenticate": "Bearer"})
FORBIDDEN = HTTPException(403, "Forbidden")


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TaxpayerNamed(_Body):
    """A taxpayer by TIN (in the body, never a URL) or by `taxpayer_ref`."""

    taxpayer_tin: str | None = Field(default=None, examples=["123-45-6789"])
    taxpayer_ref: str | None = Field(default=None, examples=["3f2a9c0d4b1e6a7f8c9d0e1f2a3b4c5d"])


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


class Offset(_Body):
    partition: int
    offset: int


class CheckAnswer(_Body):
    authorized: Literal["POA", "TIA", "none"]
    receives_notices: bool
    grant_id: str | None
    authorization_id: str | None
    as_of: list[Offset] = Field(description="The outcome-stream offsets the answer reflects.")


class MatterOut(_Body):
    tax_type: str
    form_number: str
    periods: list[str]


class StepOut(_Body):
    type: str
    occurred_at: str
    reason_code: str | None


class GrantOut(_Body):
    grant_id: str
    tin_last4: str | None
    form: str | None
    status: Status
    caf_number: str | None
    representative_name: str | None
    authorization_id: str | None
    request_id: str | None
    expires_on: str | None
    receive_notices: bool
    matters: list[MatterOut]
    story: list[StepOut]
    can_approve: bool = Field(description="A pending request the taxpayer can still decide.")


class GrantPage(_Body):
    grants: list[GrantOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")


def grant_out(view: GrantView, today: dt.date) -> GrantOut:
    can_approve = (
        view.status == "pending"
        and view.request_id is not None
        and (view.expires_on is None or dt.date.fromisoformat(view.expires_on) >= today)
    )
    return GrantOut(
        grant_id=view.grant_id,
        tin_last4=view.tin_last4,
        form=view.form,
        status=view.status,
        caf_number=view.caf_number,
        representative_name=view.representative_name,
        authorization_id=view.authorization_id,
        request_id=view.request_id,
        expires_on=view.expires_on,
        receive_notices=view.receive_notices,
        matters=[MatterOut(**m.__dict__ | {"periods": list(m.periods)}) for m in view.matters],
        story=[StepOut(**s.__dict__) for s in view.story],
        can_approve=can_approve,
    )


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


class TaxpayerLookup:
    """A taxpayer's grants, by TIN (the ref under every key version) or by ref."""

    def __init__(self, store: QueryStore, refs_of: RefsOf, cache: ViewCache) -> None:
        self._store = store
        self._refs_of = refs_of
        self._cache = cache

    async def grants(self, named: TaxpayerNamed) -> tuple[str, list[GrantView]]:
        if (named.taxpayer_tin is None) == (named.taxpayer_ref is None):
            raise HTTPException(422, "Name the taxpayer by taxpayer_tin or taxpayer_ref")
        if named.taxpayer_ref is not None:
            return named.taxpayer_ref, await self._of_taxpayer(named.taxpayer_ref)
        digits = re.sub(r"\D", "", named.taxpayer_tin or "")
        if len(digits) != 9:
            raise HTTPException(422, "taxpayer_tin is not a TIN")
        refs = self._refs_of(digits)
        for ref in reversed(refs):  # the current version first
            if found := await self._of_taxpayer(ref):
                return ref, found
        return refs[-1], []

    async def _of_taxpayer(self, ref: str) -> list[GrantView]:
        """From memory when it may answer (`cache`), else from the table."""
        views = self._cache.get(ref)
        if views is None:
            with self._cache.reading(ref) as keep:
                views = await self._store.of_taxpayer(ref)
                keep(views)
        return views


def create_api(
    store: QueryStore,
    tokens: AccessTokens,
    refs_of: RefsOf,
    audit: Audit,
    clock: Clock,
    *,
    cache: ViewCache | None = None,
    secure_cookies: bool = True,
) -> FastAPI:
    """The API over `store`; `refs_of` pseudonymises a TIN, `audit` records employee reads.
    `cache` (none: every look-up reads the table) answers taxpayer look-ups from memory where it
    may. The web pages keep a signed-in token in a cookie, `Secure` unless `secure_cookies` is
    off."""
    api = FastAPI(title="CAF authorization API", version="1", description=__doc__)
    bearer = Bearer(tokens, clock)
    lookup = TaxpayerLookup(store, refs_of, cache or ViewCache(capacity=0, remembered=0))
    histories = Histories(store, lookup, clock)
    _check_route(api, bearer, lookup, audit)
    _history_routes(api, bearer=bearer, histories=histories, audit=audit)
    add_pages(api, PageSession(tokens, clock, secure_cookies=secure_cookies), histories)
    _service_routes(api, store)

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


class Histories:
    """What each caller may see of the CAF, page by page: the JSON API and the web pages both
    answer from here, so the two cannot disagree on who sees what."""

    def __init__(self, store: QueryStore, lookup: TaxpayerLookup, clock: Clock) -> None:
        self._store = store
        self._lookup = lookup
        self._clock = clock

    async def of_taxpayer(self, caller: Principal) -> GrantPage:
        """A taxpayer's complete history (their own TIN's grants, under every key version)."""
        _, grants = await self._lookup.grants(TaxpayerNamed(taxpayer_tin=caller.tin))
        return self._page(_ordered(grants), limit=None)

    async def of_practitioner(
        self,
        caller: Principal,
        statuses: Collection[Status] = (),
        limit: int = 50,
        cursor: str | None = None,
    ) -> GrantPage:
        """The grants under a practitioner's CAF number, in `statuses` (all when empty), from
        after `cursor`, `limit` at a time."""
        grants = await self._store.of_practitioner(str(caller.caf_number))
        chosen = [g for g in _ordered(grants) if not statuses or g.status in statuses]
        if cursor is not None:
            chosen = [g for g in chosen if g.grant_id > cursor]
        return self._page(chosen, limit=limit)

    async def of_named_taxpayer(self, named: TaxpayerNamed) -> tuple[str, GrantPage]:
        """Any taxpayer's history (an employee's search; the caller audits it): their ref and
        page."""
        ref, grants = await self._lookup.grants(named)
        return ref, self._page(_ordered(grants), limit=None)

    def _page(self, grants: list[GrantView], limit: int | None) -> GrantPage:
        today = self._clock().date()
        page = grants if limit is None else grants[:limit]
        more = limit is not None and len(grants) > limit
        return GrantPage(
            grants=[grant_out(g, today) for g in page],
            next_cursor=page[-1].grant_id if more and page else None,
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


def _ordered(grants: list[GrantView]) -> list[GrantView]:
    """By grant id: a stable order for pages."""
    return sorted(grants, key=lambda g: g.grant_id)
