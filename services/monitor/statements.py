"""MN-07: the annual review statement, pure. Each practitioner with active grants is sent the
list of them ("review your Power of Attorney submissions annually") with how to withdraw what
they no longer need ("withdraw your POA for clients you no longer represent"); one whose oldest
grant is older than the configured age and who had no new grant for as long is reminded.

A statement is split into pages that fit a notification (each page its own notification, with
its own id), listing per grant the taxpayer's last four digits, the form, the matters and since
when.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from schemas.base import MAX_TEXT
from schemas.ids import notification_id
from schemas.notifications import Notification
from services.monitor.store import ActiveGrant

PER_PAGE = 6
WITHDRAW = (
    "To withdraw from one you no longer need: POST /v1/practitioners/me/withdrawals with its "
    "grant id (signed in with your CAF number), or a withdrawal from Tax Pro Account."
)


def _periods(matters: Sequence[dict[str, object]]) -> str:
    parts = []
    for matter in matters:
        periods = matter.get("periods") or []
        shown = ", ".join(str(p) for p in periods) if isinstance(periods, list) else ""
        parts.append(f"{matter.get('form_number', '')} {shown}".strip())
    text = "; ".join(parts)
    return text if len(text) <= 60 else text[:59] + "…"


def _line(grant: ActiveGrant) -> str:
    return (
        f"- ...{grant.tin_last4} Form {grant.form} {_periods(grant.matters)} "
        f"since {grant.since.date().isoformat()} ({grant.grant_id[:48]})"
    )


def statement_pages(
    run_id: str, caf_number: str, grants: Sequence[ActiveGrant], now: datetime
) -> list[Notification]:
    """MN-07: the statement of `grants`, one notification per page of `PER_PAGE` grants."""
    pages = [grants[i : i + PER_PAGE] for i in range(0, len(grants), PER_PAGE)]
    notes = []
    for number, page in enumerate(pages, start=1):
        head = (
            f"Annual review of the authorizations under CAF number {caf_number} "
            f"({len(grants)} active; page {number} of {len(pages)}):"
        )
        body = "\n".join([head, *(_line(g) for g in page), WITHDRAW])
        event = f"statement:{run_id}:{caf_number}:{number}"
        notes.append(
            Notification(
                notification_id=notification_id(event, "representative", caf_number),
                event_id=event,
                recipient="representative",
                recipient_ref=caf_number,
                template="annual_review_statement",
                channel="tax_pro_account",
                created_at=now,
                subject="Review your authorizations on file",
                body=body[:MAX_TEXT],
            )
        )
    return notes


def reminder(
    run_id: str,
    caf_number: str,
    grants: Sequence[ActiveGrant],
    *,
    last_grant_at: datetime | None,
    now: datetime,
    remind_after: timedelta,
) -> Notification | None:
    """MN-07: old grants and no activity: a reminder to withdraw what is no longer needed."""
    if not grants or now - grants[0].since < remind_after:
        return None
    if last_grant_at is not None and now - last_grant_at < remind_after:
        return None
    event = f"statement:{run_id}:{caf_number}:reminder"
    years = remind_after.days // 365
    return Notification(
        notification_id=notification_id(event, "representative", caf_number),
        event_id=event,
        recipient="representative",
        recipient_ref=caf_number,
        template="review_reminder",
        channel="tax_pro_account",
        created_at=now,
        subject="Authorizations you may no longer need",
        body=(
            f"CAF number {caf_number} holds {len(grants)} authorizations, the oldest since "
            f"{grants[0].since.date().isoformat()}, and named no new one for over {years} years. "
            f"Withdraw those for clients you no longer represent. {WITHDRAW}"
        ),
    )
