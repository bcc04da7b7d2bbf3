"""The validator's outcomes as pure builders: the events it publishes and the posting
deadlines (PO-11) it schedules, from the commands and records it decided on."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Protocol, TypedDict

from caf_runtime.timers import Timer
from schemas.codes import Rejection
from schemas.errors import ContractError
from schemas.events import (
    AuthorizationDeclined,
    AuthorizationExpired,
    AuthorizationHeld,
    AuthorizationNotProcessed,
    AuthorizationPendingApproval,
    AuthorizationRejected,
    SlaAtRisk,
    SlaBreached,
    Stage,
    held_event,
)
from schemas.grants import CloseRequest, PostGrant, refusal_of
from schemas.ids import event_id
from schemas.inbound import FormType
from services.validator.store import PostingDeadline

SLA_HOURS = (24, 48)


def sla_start(command: PostGrant, ready_at: datetime) -> Timer:
    """PO-11: the first posting deadline of a grant ready to post since `ready_at`."""
    deadline = PostingDeadline(
        grant_id=command.grant_id,
        message_id=command.message_id,
        taxpayer_ref=command.taxpayer_ref,
        tin_last4=command.tin_last4,
        form=command.form,
        caf_number=command.caf_number,
        ready_at=ready_at,
        hours=SLA_HOURS[0],
    )
    return deadline_timer(deadline)


def next_deadline(deadline: PostingDeadline) -> Timer | None:
    """The deadline after `deadline` (48 h after 24 h), if any."""
    later = [hours for hours in SLA_HOURS if hours > deadline.hours]
    return deadline_timer(deadline.model_copy(update={"hours": later[0]})) if later else None


def deadline_timer(deadline: PostingDeadline) -> Timer:
    return Timer(
        timer_id=f"{PostingDeadline.kind}#{deadline.grant_id}#{deadline.hours}",
        due=deadline.ready_at + timedelta(hours=deadline.hours),
        payload=deadline,
    )


class _Source(Protocol):
    """What the validator's events take from what they speak of (a command, a deadline)."""

    @property
    def taxpayer_ref(self) -> str: ...

    @property
    def tin_last4(self) -> str: ...

    @property
    def form(self) -> FormType: ...

    @property
    def message_id(self) -> str: ...

    @property
    def caf_number(self) -> str | None: ...


class _About(TypedDict):
    """What every event of the validator says of its grant: when, whose, which form."""

    occurred_at: datetime
    taxpayer_ref: str
    tin_last4: str
    form: FormType
    message_id: str
    grant_id: str
    caf_number: str | None
    stage: Stage


def _about(source: _Source, grant_id: str, now: datetime) -> _About:
    return _About(
        occurred_at=now,
        taxpayer_ref=source.taxpayer_ref,
        tin_last4=source.tin_last4,
        form=source.form,
        message_id=source.message_id,
        grant_id=grant_id,
        caf_number=source.caf_number,
        stage="validator",
    )


def sla_event(deadline: PostingDeadline, now: datetime) -> SlaAtRisk | SlaBreached:
    """SlaAtRisk at 24 h, SlaBreached at 48 h after the grant became ready (PO-11, NO-07)."""
    about = _about(deadline, deadline.grant_id, now)
    age_hours = round((now - deadline.ready_at).total_seconds() / 3600, 2)
    ids = (deadline.message_id, deadline.grant_id, str(deadline.hours))
    if deadline.hours == SLA_HOURS[0]:
        at_risk = event_id("SlaAtRisk", *ids)
        return SlaAtRisk(
            **about,
            type="SlaAtRisk",
            event_id=at_risk,
            ready_at=deadline.ready_at,
            age_hours=age_hours,
        )
    breached = event_id("SlaBreached", *ids)
    return SlaBreached(
        **about,
        type="SlaBreached",
        event_id=breached,
        ready_at=deadline.ready_at,
        age_hours=age_hours,
    )


def pending(grant: PostGrant, now: datetime) -> AuthorizationPendingApproval:
    """The announcement that a request in good standing waits for the taxpayer (NO-01)."""
    if grant.request_id is None or grant.expires_on is None:
        msg = "a Tax Pro Account review names its request and the day it expires"
        raise ContractError.single("expires_on", "missing", msg)
    return AuthorizationPendingApproval(
        **_about(grant, grant.grant_id, now),
        event_id=event_id("AuthorizationPendingApproval", grant.message_id, grant.grant_id),
        type="AuthorizationPendingApproval",
        representative_name=grant.representative_name,
        request_id=grant.request_id,
        expires_on=grant.expires_on,
    )


def held_event_of(
    grant: PostGrant, hold: Rejection, now: datetime, confirm_by: date | None = None
) -> AuthorizationHeld:
    """CN-09, PT-01, PT-02: the held event of a grant parked as it would post (numbered)."""
    return held_event(
        hold,
        occurred_at=now,
        taxpayer_ref=grant.taxpayer_ref,
        tin_last4=grant.tin_last4,
        form=grant.form,
        message_id=grant.message_id,
        grant_id=grant.grant_id,
        caf_number=grant.caf_number,
        representative_name=grant.representative_name,
        confirm_by=confirm_by,
    )


RequestEnd = (
    AuthorizationDeclined | AuthorizationExpired | AuthorizationRejected | AuthorizationNotProcessed
)


def close_event(command: CloseRequest, now: datetime) -> RequestEnd:
    """IN-22 declined, IN-23 expired, or a refused decision: a request's terminal event."""
    if command.outcome == "rejected" and command.rule_id and command.reason_code:
        rejection = Rejection(command.rule_id, command.reason_code, command.reason or "")
        event: RequestEnd = refusal_of(command, rejection, stage="validator", occurred_at=now)
    else:
        about = _about(command, command.request_id, now)
        ids = (command.message_id, command.request_id)
        if command.outcome == "expired":
            expired = event_id("AuthorizationExpired", *ids)
            event = AuthorizationExpired(
                **about,
                type="AuthorizationExpired",
                event_id=expired,
                request_id=command.request_id,
            )
        else:
            declined = event_id("AuthorizationDeclined", *ids)
            event = AuthorizationDeclined(
                **about,
                type="AuthorizationDeclined",
                event_id=declined,
                request_id=command.request_id,
            )
    return event
