"""The read side's web pages: a practitioner's "My authorizations" (pending requests first) and a
taxpayer's "My authorization history", rendered on the server from the same `Histories` and the
same bearer tokens as the JSON API.

Signing in takes an access token (from the identity provider; on the local stack
`cafctl token --role practitioner|taxpayer`) and keeps it in an HttpOnly, SameSite=Strict cookie
scoped to `/ui`, so every page request is verified exactly as an API request is: an expired or
invalid token sends the browser back to the sign-in page, and a token of another role gets a 403
page that says nothing of what exists. Pages are not cached, not framed, and load nothing but
their own stylesheet (Content-Security-Policy).

Accessibility: one `lang`, a skip link, labelled controls, tables with captions and header
scopes, status in words (never colour alone), focus always visible, text contrast of at least
4.5:1 (checked in the browser test).
"""

# No `from __future__ import annotations`: FastAPI reads the route parameters' annotations.

import datetime as dt
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, get_args

from fastapi import FastAPI, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from services.caf_query.access import AccessTokens, Principal, Refused, Role
from services.caf_query.histories import GrantOut, Histories
from services.caf_query.views import Status

COOKIE = "caf_session"
MAX_TOKEN_BYTES = 8192
HERE = Path(__file__).parent
STATUSES: dict[str, Status] = {status: status for status in get_args(Status)}
PENDING: tuple[Status, ...] = ("pending", "held")
HOME: dict[Role, str] = {"practitioner": "/ui/practitioner", "taxpayer": "/ui/taxpayer"}
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; "
        "base-uri 'none'"
    ),
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",  # "no-referrer" would make a form's Origin "null"
    "X-Content-Type-Options": "nosniff",
}
STATUS_WORDS: dict[str, str] = {
    "pending": "Awaiting the taxpayer",
    "held": "Held for review",
    "active": "Active",
    "partly_revoked": "Partly revoked",
    "partly_withdrawn": "Partly withdrawn",
    "revoked": "Revoked",
    "withdrawn": "Withdrawn",
    "rejected": "Rejected",
    "not_processed": "Not processed",
    "declined": "Declined by the taxpayer",
    "expired": "Expired unanswered",
}
STEP_WORDS: dict[str, str] = {
    "AuthorizationPendingApproval": "Requested",
    "AuthorizationHeld": "Held",
    "AuthorizationPosted": "Recorded on the CAF",
    "AuthorizationRejected": "Rejected",
    "AuthorizationNotProcessed": "Not processed",
    "AuthorizationDeclined": "Declined",
    "AuthorizationExpired": "Expired",
    "AuthorizationRevoked": "Revoked",
    "AuthorizationWithdrawn": "Withdrawn",
}


class PageSession:
    """The signed-in caller of a page (the token in the session cookie, verified per request),
    and the pages rendered for them."""

    def __init__(
        self, tokens: AccessTokens, clock: Callable[[], dt.datetime], *, secure_cookies: bool
    ) -> None:
        self._tokens = tokens
        self._clock = clock
        self._templates = _environment()
        self.secure_cookies = secure_cookies

    async def caller(self, token: str | None) -> Principal | None:
        if not token or len(token) > MAX_TOKEN_BYTES:
            return None
        verified = await self._tokens.verify(token, self._clock())
        return None if isinstance(verified, Refused) else verified

    async def signed_in(self, request: Request, role: Role) -> Principal | Response:
        """The caller, if signed in with `role`; else the sign-in page (not signed in) or the
        refusal page (another role)."""
        caller = await self.caller(request.cookies.get(COOKIE))
        if caller is None:
            return RedirectResponse("/ui", status_code=303, headers=HEADERS)
        if caller.role != role:
            return self.refused(f"{role}s")
        return caller

    def page(self, name: str, status: int = 200, **context: object) -> HTMLResponse:
        body = self._templates.get_template(name).render(**context)
        return HTMLResponse(body, status_code=status, headers=HEADERS)

    def refused(self, wanted: str) -> HTMLResponse:
        return self.page("refused.html", 403, title="Not available", wanted=wanted)


def same_origin(request: Request) -> bool:
    """A form posted from this site's own pages, not from another site's, so sign-in and
    sign-out cannot be forged (login CSRF): by the browser's `Sec-Fetch-Site`, else by its
    `Origin` against this host. A client that sends neither is not a browser another site can
    drive."""
    fetched_from = request.headers.get("sec-fetch-site")
    if fetched_from is not None:
        return fetched_from in {"same-origin", "none"}
    origin = request.headers.get("origin")
    return origin is None or urllib.parse.urlsplit(origin).netloc == request.headers.get("host")


def _environment() -> Environment:
    environment = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.globals.update(status_words=STATUS_WORDS, step_words=STEP_WORDS)
    return environment


def add_pages(api: FastAPI, session: PageSession, histories: Histories) -> None:
    """The pages under `/ui`, outside the OpenAPI document."""
    _session_pages(api, session)
    _history_pages(api, session, histories)
    stylesheet = (HERE / "static" / "site.css").read_bytes()

    @api.get("/ui/site.css", include_in_schema=False)
    async def site_css() -> Response:
        return Response(stylesheet, media_type="text/css", headers={"Cache-Control": "max-age=300"})


def _session_pages(api: FastAPI, session: PageSession) -> None:
    """Signing in (a token into the session cookie) and out."""
    page, refused = session.page, session.refused

    @api.get("/ui", include_in_schema=False)
    async def sign_in_page(request: Request) -> Response:
        caller = await session.caller(request.cookies.get(COOKIE))
        if caller is not None and caller.role in HOME:
            return RedirectResponse(HOME[caller.role], status_code=303, headers=HEADERS)
        return page("sign_in.html", title="Sign in", failed=False)

    @api.post("/ui/session", include_in_schema=False)
    async def sign_in(request: Request) -> Response:
        if not same_origin(request):
            return refused("forms of this site")
        body = await request.body()
        if len(body) > MAX_TOKEN_BYTES * 2:
            return page("sign_in.html", 413, title="Sign in", failed=True)
        form = urllib.parse.parse_qs(body.decode(errors="replace"))
        token = "".join(form.get("token", [""])[:1]).strip()
        caller = await session.caller(token)
        if caller is None:
            return page("sign_in.html", 401, title="Sign in", failed=True)
        if caller.role not in HOME:
            return refused("taxpayers and practitioners")
        response = RedirectResponse(HOME[caller.role], status_code=303, headers=HEADERS)
        response.set_cookie(
            COOKIE,
            token,
            path="/ui",
            httponly=True,
            samesite="strict",
            secure=session.secure_cookies,
        )
        return response

    @api.post("/ui/session/end", include_in_schema=False)
    async def sign_out(request: Request) -> Response:
        if not same_origin(request):
            return refused("forms of this site")
        response = RedirectResponse("/ui", status_code=303, headers=HEADERS)
        response.delete_cookie(
            COOKIE, path="/ui", httponly=True, samesite="strict", secure=session.secure_cookies
        )
        return response


def _history_pages(api: FastAPI, session: PageSession, histories: Histories) -> None:
    """A practitioner's "My authorizations" and a taxpayer's "My authorization history"."""

    @api.get("/ui/practitioner", include_in_schema=False)
    async def practitioner_page(
        request: Request,
        status: Annotated[str, Query(max_length=30)] = "",
        cursor: Annotated[str | None, Query(max_length=200)] = None,
    ) -> Response:
        caller = await session.signed_in(request, "practitioner")
        if isinstance(caller, Response):
            return caller
        chosen = (STATUSES[status],) if status in STATUSES else ()
        pending = await histories.of_practitioner(caller, PENDING, limit=200)
        listed = await histories.of_practitioner(caller, chosen, limit=25, cursor=cursor)
        following = None
        if listed.next_cursor is not None:
            query = {"cursor": listed.next_cursor} | ({"status": status} if chosen else {})
            following = "/ui/practitioner?" + urllib.parse.urlencode(query)
        return session.page(
            "practitioner.html",
            title="My authorizations",
            caf_number=caller.caf_number,
            pending=pending.grants,
            listed=listed.grants,
            statuses=tuple(STATUSES),
            chosen=status if chosen else "",
            following=following,
        )

    @api.get("/ui/taxpayer", include_in_schema=False)
    async def taxpayer_page(request: Request) -> Response:
        caller = await session.signed_in(request, "taxpayer")
        if isinstance(caller, Response):
            return caller
        history = await histories.of_taxpayer(caller)
        awaiting: list[GrantOut] = [g for g in history.grants if g.can_approve]
        return session.page(
            "taxpayer.html",
            title="My authorization history",
            tin_last4=(caller.tin or "")[-4:],
            awaiting=awaiting,
            history=history.grants,
        )
