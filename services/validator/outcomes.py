"""The validator's outcomes as pure builders: the events it publishes and the posting
deadlines (PO-11) it schedules, from the commands and records it decided on."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import TypedDict

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


class _Deadline(TypedDict):
    """What an SLA event says of the grant whose posting deadline passed."""

    occurred_at: datetime
    taxpayer_ref: str
    tin_last4: str
    form: FormType
    message_id: str
    grant_id: str
    caf_number: str | None
    stage: Stage
    ready_at: datetime
    age_hours: float


def sla_event(deadline: PostingDeadline, now: datetime) -> SlaAtRisk | SlaBreached:
    """SlaAtRisk at 24 h, SlaBreached at 48 h after the grant became ready (PO-11, NO-07)."""
    fields = _Deadline(
        occurred_at=now,
        taxpayer_ref=deadline.taxpayer_ref,
        tin_last4=deadline.tin_last4,
        form=deadline.form,
        message_id=deadline.message_id,
        grant_id=deadline.grant_id,
        caf_number=deadline.caf_number,
        stage="validator",
        ready_at=deadline.ready_at,
        age_hours=round((now - deadline.ready_at).total_seconds() / 3600, 2),
    )
    ids = (deadline.message_id, deadline.grant_id, str(deadline.hours))
    if deadline.hours == SLA_HOURS[0]:
        return SlaAtRisk(**fields, type="SlaAtRisk", event_id=event_id("SlaAtRisk", *ids))
    return SlaBreached(**fields, type="SlaBreached", event_id=event_id("SlaBreached", *ids))


def pending(grant: PostGrant, now: datetime) -> AuthorizationPendingApproval:
    """The announcement that a request in good standing waits for the taxpayer (NO-01)."""
    if grant.request_id is None or grant.expires_on is None:
        msg = "a Tax Pro Account review names its request and the day it expires"
        raise ContractError.single("expires_on", "missing", msg)
    return AuthorizationPendingApproval(
        event_id=event_id("AuthorizationPendingApproval", grant.message_id, grant.grant_id),
        type="AuthorizationPendingApproval",
        occurred_at=now,
        taxpayer_ref=grant.taxpayer_ref,
        tin_last4=grant.tin_last4,
        form=grant.form,
        message_id=grant.message_id,
        grant_id=grant.grant_id,
        caf_number=grant.caf_number,
        stage="validator",
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


class _RequestEnd(TypedDict):
    """What a request's terminal event says of it (its grant id is the request's)."""

    occurred_at: datetime
    taxpayer_ref: str
    tin_last4: str
    form: FormType
    message_id: str
    grant_id: str
    caf_number: str | None
    stage: Stage
    request_id: str


def close_event(command: CloseRequest, now: datetime) -> RequestEnd:
    """IN-22 declined, IN-23 expired, or a refused decision: a request's terminal event."""
    if command.outcome == "rejected" and command.rule_id and command.reason_code:
        rejection = Rejection(command.rule_id, command.reason_code, command.reason or "")
        event: RequestEnd = refusal_of(command, rejection, stage="validator", occurred_at=now)
    else:
        fields = _RequestEnd(
            occurred_at=now,
            taxpayer_ref=command.taxpayer_ref,
            tin_last4=command.tin_last4,
            form=command.form,
            message_id=command.message_id,
            grant_id=command.request_id,
            caf_number=command.caf_number,
            stage="validator",
            request_id=command.request_id,
        )
        ids = (command.message_id, command.request_id)
        event = (
            AuthorizationExpired(
                **fields,
                type="AuthorizationExpired",
                event_id=event_id("AuthorizationExpired", *ids),
            )
            if command.outcome == "expired"
            else AuthorizationDeclined(
                **fields,
                type="AuthorizationDeclined",
                event_id=event_id("AuthorizationDeclined", *ids),
            )
        )
    return event
