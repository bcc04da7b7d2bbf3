"""What each caller may see of the CAF, and how it is shown: the grant documents of the API, a
taxpayer's grants looked up by TIN or ref (memory first, `ViewCache`), and `Histories`, which the
JSON routes and the web pages both answer from, so the two cannot disagree on who sees what."""

# No `from __future__ import annotations`: FastAPI reads these models' annotations at run time.

import datetime as dt
import re
from collections.abc import Callable, Collection

from fastapi import HTTPException
from pydantic import BaseModel, ConfigDict, Field

from schemas.ids import official_id
from services.caf_query.access import Principal
from services.caf_query.cache import ViewCache
from services.caf_query.store import QueryStore
from services.caf_query.views import GrantView, Status

Clock = Callable[[], dt.datetime]
RefsOf = Callable[[str], tuple[str, ...]]  # TIN digits -> its refs, oldest key version first


class StrictBody(BaseModel):
    """A document of the API: unknown fields refused, immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class TaxpayerNamed(StrictBody):
    """A taxpayer by TIN (in the body, never a URL) or by `taxpayer_ref`."""

    taxpayer_tin: str | None = Field(default=None, examples=["123-45-6789"])
    taxpayer_ref: str | None = Field(default=None, examples=["3f2a9c0d4b1e6a7f8c9d0e1f2a3b4c5d"])


class MatterOut(StrictBody):
    tax_type: str
    form_number: str
    periods: list[str]


class StepOut(StrictBody):
    type: str
    occurred_at: str
    reason_code: str | None


class GrantOut(StrictBody):
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


class BusinessOut(StrictBody):
    business_ref: str = Field(description="The business's pseudonym: names it in the next call.")
    tin_last4: str = Field(description="Last four digits of its EIN.")
    since: str = Field(description="When the caller became its Designated Official.")


class BusinessList(StrictBody):
    businesses: list[BusinessOut]


class GrantPage(StrictBody):
    grants: list[GrantOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")


def grant_out(view: GrantView, today: dt.date) -> GrantOut:
    can_approve = (
        view.status == "pending"
        and view.request_id is not None
        and (view.expires_on is None or dt.date.fromisoformat(view.expires_on) >= today)
    )
    document = view.to_document()
    # the pseudonym and the offset stay inside; signature evidence is an employee's (ES-05)
    for internal in ("taxpayer_ref", "position", "signatures", "applied"):
        del document[internal]
    return GrantOut.model_validate(document | {"can_approve": can_approve})


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

    async def businesses(self, caller: Principal) -> BusinessList:
        """DO-08: the businesses the caller is an active Designated Official of."""
        held = await self._store.businesses_of(official_id(caller.issuer, caller.subject))
        return BusinessList(
            businesses=[
                BusinessOut(business_ref=b.taxpayer_ref, tin_last4=b.tin_last4, since=b.since)
                for b in sorted(held, key=lambda b: b.since)
                if b.active
            ]
        )

    async def of_business(self, caller: Principal, business_ref: str) -> GrantPage:
        """DO-08: a business's authorizations and pending requests, for its active Designated
        Official only (anyone else: 404, which does not say whether the business exists)."""
        held = await self._store.businesses_of(official_id(caller.issuer, caller.subject))
        if not any(b.active and b.taxpayer_ref == business_ref for b in held):
            raise HTTPException(404, "Not found")
        _, grants = await self._lookup.grants(TaxpayerNamed(taxpayer_ref=business_ref))
        return self._page(_ordered(grants), limit=None)

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


def _ordered(grants: list[GrantView]) -> list[GrantView]:
    """By grant id: a stable order for pages."""
    return sorted(grants, key=lambda g: g.grant_id)
