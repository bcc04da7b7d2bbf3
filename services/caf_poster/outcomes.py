"""The poster's events, built purely from a command, its decision and the given time."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import TypedDict

from caf_runtime.outputs import Output
from schemas import topics
from schemas.codes import ReasonCode, Rejection, RuleId
from schemas.events import (
    AuthorizationPosted,
    AuthorizationRevoked,
    AuthorizationWithdrawn,
    CafNumberAssigned,
    DroppedPeriod,
    PostingDelayed,
    RecordedMatter,
    RevokedBy,
    subject_of,
)
from schemas.evidence import SignatureRef
from schemas.grants import PostGrant, RevokeGrants, WithdrawGrants, refusal_of
from schemas.ids import event_id
from schemas.inbound import form_type
from schemas.matters import Matter
from services.caf_poster.domain import Grant, Loss
from services.caf_poster.rules import Posting, Removal


def recorded_matters(matters: Iterable[Matter]) -> list[RecordedMatter]:
    grouped: dict[tuple[str, str], list[str]] = {}
    for matter in matters:
        grouped.setdefault((matter.tax_type, matter.form_number), []).append(matter.period)
    return [
        RecordedMatter(tax_type=tax_type, form_number=form_number, periods=periods)
        for (tax_type, form_number), periods in grouped.items()
    ]


class _Lost(TypedDict):
    """What a withdrawn or revoked event says about the grant that lost matters."""

    authorization_id: str
    caf_number: str | None
    representative_name: str
    tax_matters: list[RecordedMatter]
    remaining_matters: list[RecordedMatter]
    signature_refs: list[SignatureRef]


def _loss_event(
    command: PostGrant | WithdrawGrants | RevokeGrants,
    loss: Loss,
    now: dt.datetime,
    revoked_by: RevokedBy | None,
    *,
    superseded_by: str | None = None,
    signature_refs: Sequence[SignatureRef] = (),
) -> Output:
    grant = loss.grant
    lost = _Lost(
        authorization_id=grant.authorization_id,
        caf_number=grant.caf_number,
        representative_name=grant.representative_name,
        tax_matters=recorded_matters(loss.matters),
        remaining_matters=recorded_matters(loss.remaining),
        signature_refs=list(signature_refs),
    )
    model: AuthorizationRevoked | AuthorizationWithdrawn
    if revoked_by is None:
        model = AuthorizationWithdrawn(
            **subject_of(command, grant.grant_id, now),
            **lost,
            stage="caf_poster",
            type="AuthorizationWithdrawn",
            event_id=event_id("AuthorizationWithdrawn", command.message_id, grant.grant_id),
        )
    else:
        model = AuthorizationRevoked(
            **subject_of(command, grant.grant_id, now),
            **lost,
            stage="caf_poster",
            type="AuthorizationRevoked",
            revoked_by=revoked_by,
            superseded_by=superseded_by,
            # CN-10: superseded by this form
            channel=command.channel if isinstance(command, PostGrant) else None,
            event_id=event_id("AuthorizationRevoked", command.message_id, grant.grant_id),
        )
    return Output.of(topics.EVENTS, command.taxpayer_ref, model)


def posting_outputs(
    command: PostGrant,
    posting: Posting,
    now: dt.datetime,
    *,
    caf_number_assigned: bool,
    signature_refs: Sequence[SignatureRef] = (),
) -> list[Output]:
    """Revocations (PO-05), the new CAF number (PO-08), then the posted event with where its
    signature evidence is kept (ES-03); or the refusal."""
    if posting.grant is None:
        if posting.rejection is None:
            return []  # already posted: its outcome was recorded when it was
        event = refusal_of(command, posting.rejection, stage="caf_poster", occurred_at=now)
        return [Output.of(topics.EVENTS, command.taxpayer_ref, event)]
    grant = posting.grant
    outputs = [
        _loss_event(command, loss, now, ReasonCode.REV_SUPERSEDED, superseded_by=grant.grant_id)
        for loss in posting.losses
    ]
    if caf_number_assigned and grant.caf_number is not None:
        assigned = CafNumberAssigned(
            **subject_of(command, grant.grant_id, now),
            stage="caf_poster",
            type="CafNumberAssigned",
            event_id=event_id("CafNumberAssigned", command.message_id, grant.grant_id),
            caf_number=grant.caf_number,
            representative_name=grant.representative_name,
        )
        outputs.append(Output.of(topics.EVENTS, command.taxpayer_ref, assigned))
    posted = _posted(command, posting, grant, now, signature_refs)
    outputs.append(Output.of(topics.EVENTS, command.taxpayer_ref, posted))
    return outputs


def _posted(
    command: PostGrant,
    posting: Posting,
    grant: Grant,
    now: dt.datetime,
    signature_refs: Sequence[SignatureRef],
) -> AuthorizationPosted:
    """PO-08: the posted grant as recorded, with the periods it dropped and why (MK-04, PO-06,
    RT-02) and where its signature evidence is kept (ES-03)."""
    return AuthorizationPosted(
        **subject_of(command, grant.grant_id, now),
        stage="caf_poster",
        type="AuthorizationPosted",
        event_id=event_id("AuthorizationPosted", command.message_id, grant.grant_id),
        caf_number=grant.caf_number,
        representative_name=grant.representative_name,
        posted_at=now,
        authorization_id=grant.authorization_id,
        tax_matters=recorded_matters(grant.matters),
        receive_notices=grant.receive_notices,
        dropped_periods=[
            DroppedPeriod(
                tax_type=d.matter.tax_type,
                form_number=d.matter.form_number,
                period=d.matter.period,
                reason_code=d.code,  # type: ignore[arg-type]  # PART-* codes only
            )
            for d in posting.dropped
        ],
        retention=posting.retention,
        channel=command.channel,
        received_at=command.received_at,
        signature_refs=list(signature_refs),
    )


def removal_outputs(
    command: WithdrawGrants | RevokeGrants,
    removal: Removal,
    now: dt.datetime,
    signature_refs: Sequence[SignatureRef] = (),
) -> list[Output]:
    """One withdrawn/revoked event per grant that lost matters (PO-09, PO-10), with where the
    act's signature evidence is kept (ES-04), or the refusal."""
    if removal.rejection is not None:
        event = refusal_of(command, removal.rejection, stage="caf_poster", occurred_at=now)
        return [Output.of(topics.EVENTS, command.taxpayer_ref, event)]
    revoked_by: RevokedBy | None = (
        ReasonCode.REV_BY_TAXPAYER if isinstance(command, RevokeGrants) else None
    )
    return [
        _loss_event(command, loss, now, revoked_by, signature_refs=signature_refs)
        for loss in removal.losses
    ]


EVIDENCE_DELAY = Rejection(
    RuleId.ES_03,
    ReasonCode.DELAY_EVIDENCE_UNSTORED,
    "The signature evidence could not be stored yet; the authorization posts once it is.",
)


def delayed_outputs(
    command: PostGrant, *, since: dt.datetime, attempts: int, now: dt.datetime
) -> list[Output]:
    """ES-03: the grant still waits for its evidence past the retry policy (not terminal)."""
    event = PostingDelayed(
        **subject_of(command, command.grant_id, now),
        stage="caf_poster",
        type="PostingDelayed",
        event_id=event_id("PostingDelayed", command.message_id, command.grant_id),
        caf_number=command.caf_number,
        representative_name=command.representative_name,
        reason_code=EVIDENCE_DELAY.code,
        reason=EVIDENCE_DELAY.reason,
        rule_id=EVIDENCE_DELAY.rule,
        waiting_since=since,
        attempts=attempts,
    )
    return [Output.of(topics.EVENTS, command.taxpayer_ref, event)]


def purge_outputs(removal: Removal, taxpayer: dict[str, str], now: dt.datetime) -> list[Output]:
    """PO-12: the student grant's removal, caused by its purge day (no inbound message)."""
    outputs = []
    for loss in removal.losses:
        grant = loss.grant
        message_id = f"purge:{grant.grant_id}"
        event = AuthorizationRevoked(
            event_id=event_id("AuthorizationRevoked", message_id, grant.grant_id),
            type="AuthorizationRevoked",
            occurred_at=now,
            taxpayer_ref=taxpayer["taxpayer_ref"],
            tin_last4=taxpayer["tin_last4"],
            form=form_type(grant.form),
            message_id=message_id,
            grant_id=grant.grant_id,
            stage="caf_poster",
            authorization_id=grant.authorization_id,
            caf_number=grant.caf_number,
            representative_name=grant.representative_name,
            tax_matters=recorded_matters(loss.matters),
            revoked_by=ReasonCode.REV_STUDENT_PURGE,
        )
        outputs.append(Output.of(topics.EVENTS, taxpayer["taxpayer_ref"], event))
    return outputs
