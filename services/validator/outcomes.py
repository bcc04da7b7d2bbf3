"""The validator's outcomes as pure builders: the events it publishes and the posting
deadlines (PO-11) it schedules, from the commands and records it decided on."""

from __future__ import annotations

from datetime import date, datetime, timedelta

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
    held_event,
    subject_of,
)
from schemas.grants import CloseRequest, PostGrant, refusal_of
from schemas.ids import event_id
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


def sla_event(deadline: PostingDeadline, now: datetime) -> SlaAtRisk | SlaBreached:
    """SlaAtRisk at 24 h, SlaBreached at 48 h after the grant became ready (PO-11, NO-07)."""
    about = subject_of(deadline, deadline.grant_id, now)
    age_hours = round((now - deadline.ready_at).total_seconds() / 3600, 2)
    ids = (deadline.message_id, deadline.grant_id, str(deadline.hours))
    if deadline.hours == SLA_HOURS[0]:
        return SlaAtRisk(
            **about,
            caf_number=deadline.caf_number,
            stage="validator",
            type="SlaAtRisk",
            event_id=event_id("SlaAtRisk", *ids),
            ready_at=deadline.ready_at,
            age_hours=age_hours,
        )
    return SlaBreached(
        **about,
        caf_number=deadline.caf_number,
        stage="validator",
        type="SlaBreached",
        event_id=event_id("SlaBreached", *ids),
        ready_at=deadline.ready_at,
        age_hours=age_hours,
    )


def pending(grant: PostGrant, now: datetime) -> AuthorizationPendingApproval:
    """The announcement that a request in good standing waits for the taxpayer (NO-01)."""
    if grant.request_id is None or grant.expires_on is None:
        msg = "a Tax Pro Account review names its request and the day it expires"
        raise ContractError.single("expires_on", "missing", msg)
    return AuthorizationPendingApproval(
        **subject_of(grant, grant.grant_id, now),
        caf_number=grant.caf_number,
        stage="validator",
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
        **subject_of(grant, grant.grant_id, now),
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
        about = subject_of(command, command.request_id, now)
        ids = (command.message_id, command.request_id)
        if command.outcome == "expired":
            event = AuthorizationExpired(
                **about,
                caf_number=command.caf_number,
                stage="validator",
                type="AuthorizationExpired",
                event_id=event_id("AuthorizationExpired", *ids),
                request_id=command.request_id,
            )
        else:
            event = AuthorizationDeclined(
                **about,
                caf_number=command.caf_number,
                stage="validator",
                type="AuthorizationDeclined",
                event_id=event_id("AuthorizationDeclined", *ids),
                request_id=command.request_id,
            )
    return event
