"""Intake's outputs, built purely from a message, its assessment and the given ids and time.

Every grant of a message gets exactly one output: a terminal event on `caf.events.v1` (rejected
or not processed) or a command on `caf.grants.accepted.v1`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, TypedDict

from caf_runtime.clock import business_day
from caf_runtime.outputs import Output
from schemas import topics
from schemas.codes import ReasonCode, Rejection, RuleId
from schemas.events import refusal_event
from schemas.evidence import SignatureEvidence
from schemas.grants import CloseRequest, MatterSpec, PostGrant, RevokeGrants, WithdrawGrants
from schemas.ids import submission_grant_id
from schemas.inbound import (
    FormType,
    Revocation,
    Submission,
    TaxMatter,
    TpaDecision,
    TpaRequest,
    Withdrawal,
)
from services.intake.rules import Assessment, retention

DUPLICATE = Rejection(
    RuleId.IN_03,
    ReasonCode.NP_DUPLICATE,
    "The same form was already received through another channel or message.",
)
UNKNOWN_REQUEST = Rejection(
    RuleId.IN_21, ReasonCode.REJ_UNKNOWN_REQUEST, "The decision names a request that is not known."
)
SCHEMA = Rejection(
    RuleId.IN_01, ReasonCode.REJ_SCHEMA, "The message does not follow the published format."
)
IP_PIN_COLLECTED = Rejection(
    RuleId.PT_05,
    ReasonCode.REJ_IP_PIN_COLLECTED,
    "The message carries an IP PIN. The IRS never asks for one: a portal must not collect it. "
    "Nothing of the message was kept.",
)


@dataclass(frozen=True)
class Subject:
    """Who and what the outputs are about: the taxpayer's pseudonym and the message."""

    taxpayer_ref: str
    tin_last4: str
    message_id: str
    form: FormType | None
    now: dt.datetime
    previous_ref: str | None = None  # during a key rotation: the ref of the previous version


def rejection_event(
    subject: Subject,
    grant_id: str,
    rejection: Rejection,
    *,
    caf_number: str | None = None,
    representative_name: str | None = None,
) -> Output:
    """A terminal rejected or not-processed event for one grant, from the intake stage."""
    event = refusal_event(
        rejection,
        stage="intake",
        occurred_at=subject.now,
        taxpayer_ref=subject.taxpayer_ref,
        tin_last4=subject.tin_last4,
        form=subject.form,
        message_id=subject.message_id,
        grant_id=grant_id,
        caf_number=caf_number,
        representative_name=representative_name,
    )
    return Output.of(topics.EVENTS, subject.taxpayer_ref, event)


def _matters(matters: list[TaxMatter]) -> list[MatterSpec]:
    return [
        MatterSpec(
            tax_type=m.tax_type or "",
            form_number=m.form_number or "",
            periods=[" ".join(p.split()) for p in m.periods or ()],
        )
        for m in matters
    ]


def _ptin(value: str | None) -> str | None:
    """A PTIN as the registry compares it: upper case, no spaces."""
    return "".join((value or "").split()).upper() or None


def _licence_key(licence: str | None, jurisdiction: str | None) -> str | None:
    """CN-02: licence or enrollment number with its jurisdiction, when there is a number."""
    number = "".join((licence or "").split()).upper()
    return f"{(jurisdiction or '').strip().upper()}/{number}" if number else None


def _optional_matters(matters: list[TaxMatter] | None) -> list[MatterSpec] | None:
    """Matters named by a withdrawal or revocation; None means all of them."""
    return _matters(matters) if matters is not None else None


class _Header(TypedDict):
    """What every grant command intake sends carries about its message and taxpayer."""

    message_id: str
    taxpayer_ref: str
    previous_taxpayer_ref: str | None
    tin_last4: str
    form: FormType
    received_at: dt.datetime


def _header(
    message: Submission | Withdrawal | Revocation | TpaRequest, subject: Subject
) -> _Header:
    return _Header(
        message_id=message.message_id,
        taxpayer_ref=subject.taxpayer_ref,
        previous_taxpayer_ref=subject.previous_ref,
        tin_last4=subject.tin_last4,
        form=message.form,
        received_at=subject.now,
    )


class _Removal(TypedDict):
    """What a withdrawal or a revocation carries of its message: the matters it names (None:
    all), its signature's date and evidence."""

    tax_matters: list[MatterSpec] | None
    signature_date: dt.date | None
    signature_evidence: list[SignatureEvidence]


def _removal(message: Withdrawal | Revocation, evidence: Sequence[SignatureEvidence]) -> _Removal:
    return _Removal(
        tax_matters=_optional_matters(message.tax_matters),
        signature_date=message.signature.date if message.signature else None,
        signature_evidence=list(evidence),
    )


def submission_outputs(
    message: Submission,
    assessment: Assessment,
    subject: Subject,
    *,
    duplicate: bool,
    evidence: Callable[[int], list[SignatureEvidence]] = lambda _: [],
) -> list[Output]:
    """One output per representative: rejected, not processed (IN-03) or accepted; an accepted
    grant carries the evidence of the taxpayer's and its representative's e-signatures
    (`evidence(index)`, asked only for accepted grants: ES-01)."""
    outputs: list[Output] = []
    taxpayer_date = message.taxpayer.signature.date if message.taxpayer.signature else None
    for index, rep in enumerate(message.representatives):
        grant_id = submission_grant_id(message.message_id, index)
        caf_number = assessment.caf_numbers[index] if assessment.caf_numbers else None
        verdict = assessment.rejection or (
            assessment.grant_rejections[index] if assessment.grant_rejections else None
        )
        if verdict is None and duplicate:
            verdict = DUPLICATE
        if verdict is not None or taxpayer_date is None:
            outputs.append(
                rejection_event(
                    subject,
                    grant_id,
                    verdict or DUPLICATE,
                    caf_number=caf_number,
                    representative_name=rep.name,
                )
            )
            continue
        grant = _accepted_grant(
            message,
            subject,
            index,
            caf_number=caf_number,
            signed_on=taxpayer_date,
            evidence=evidence(index),
        )
        outputs.append(Output.of(topics.GRANTS_ACCEPTED, subject.taxpayer_ref, grant))
    return outputs


def _accepted_grant(
    message: Submission,
    subject: Subject,
    index: int,
    *,
    caf_number: str | None,
    signed_on: dt.date,
    evidence: list[SignatureEvidence],
) -> PostGrant:
    """The grant of the `index`-th representative of an accepted form, with the evidence of
    its e-signatures (ES-01)."""
    rep = message.representatives[index]
    return PostGrant(
        action="post",
        **_header(message, subject),
        grant_id=submission_grant_id(message.message_id, index),
        authorization_id=message.message_id,
        group_position=index,
        channel=message.channel,
        received_on=message.received_on,
        taxpayer_signature_date=signed_on,
        caf_number=caf_number,
        representative_name=rep.name or "",
        designation=(rep.designation or "").lower() or None,
        receive_notices=rep.receive_notices,
        tax_matters=_matters(message.tax_matters),
        specific_use=message.specific_use,
        retain_prior=message.retain_prior,
        retain=retention(message),
        first_time=caf_number is None,
        ptin=_ptin(rep.ptin),
        licence_key=_licence_key(rep.licence_number, rep.jurisdiction),
        signature_evidence=evidence,
    )


def withdrawal_outputs(
    message: Withdrawal,
    assessment: Assessment,
    subject: Subject,
    evidence: Sequence[SignatureEvidence] = (),
) -> list[Output]:
    if assessment.rejection is not None or assessment.caf_numbers[0] is None:
        return [rejection_event(subject, message.message_id, assessment.rejection or SCHEMA)]
    return [
        Output.of(
            topics.GRANTS_ACCEPTED,
            subject.taxpayer_ref,
            WithdrawGrants(
                action="withdraw",
                **_header(message, subject),
                caf_number=assessment.caf_numbers[0],
                **_removal(message, evidence),
            ),
        )
    ]


def revocation_outputs(
    message: Revocation,
    assessment: Assessment,
    subject: Subject,
    evidence: Sequence[SignatureEvidence] = (),
) -> list[Output]:
    if assessment.rejection is not None:
        return [rejection_event(subject, message.message_id, assessment.rejection)]
    return [
        Output.of(
            topics.GRANTS_ACCEPTED,
            subject.taxpayer_ref,
            RevokeGrants(
                action="revoke",
                **_header(message, subject),
                caf_numbers=[n for n in assessment.caf_numbers if n is not None]
                if message.caf_numbers is not None
                else None,
                **_removal(message, evidence),
            ),
        )
    ]


def tpa_request_outputs(
    message: TpaRequest,
    assessment: Assessment,
    subject: Subject,
    expires_on: dt.date,
    evidence: Callable[[], SignatureEvidence],
) -> tuple[list[Output], PostGrant | None]:
    """A rejected request ends here; an accepted one goes to the validator for review (its
    pending announcement) and leaves the grant its approval will post."""
    caf_number = assessment.caf_numbers[0] if assessment.caf_numbers else None
    rep = message.representative
    if assessment.rejection is not None:
        event = rejection_event(
            subject,
            message.request_id,
            assessment.rejection,
            caf_number=caf_number,
            representative_name=rep.name,
        )
        return [event], None
    grant = PostGrant(
        action="post",
        **_header(message, subject),
        grant_id=message.request_id,
        authorization_id=message.group_id or message.request_id,
        group_position=0,
        channel="tpa",
        received_on=message.received_on,
        taxpayer_signature_date=message.received_on,  # not signed yet: replaced on approval
        caf_number=caf_number,
        representative_name=rep.name or "",
        designation=(rep.designation or "").lower() or None,
        receive_notices=rep.receive_notices,
        tax_matters=_matters(message.tax_matters),
        specific_use=False,
        retain_prior=False,
        first_time=False,
        request_id=message.request_id,
        review=True,
        expires_on=expires_on,
        signature_evidence=[evidence()],  # ES-01: the professional's checkbox signature
    )
    return [Output.of(topics.GRANTS_ACCEPTED, subject.taxpayer_ref, grant)], grant


def approval_outputs(
    request: PostGrant, decision: TpaDecision, now: dt.datetime, evidence: SignatureEvidence
) -> list[Output]:
    """The request's grant, signed by the taxpayer, on its way to the good-standing recheck,
    with the evidence of both signatures (ES-01)."""
    signature = decision.taxpayer_signature
    grant = request.model_copy(
        update={
            "signature_evidence": [*request.signature_evidence, evidence],
            "review": False,
            "message_id": decision.message_id,
            "received_at": now,
            # an online approval without a signature day is signed the day it is processed
            "taxpayer_signature_date": signature.date
            if signature and signature.date
            else business_day(now),
            "approved_at": signature.at if signature else None,
            "approved_by_assertion": True,  # approval_outputs only follows a verified one
        }
    )
    return [Output.of(topics.GRANTS_ACCEPTED, request.taxpayer_ref, grant)]


def closing_outputs(
    request: PostGrant, decision: TpaDecision, now: dt.datetime, rejection: Rejection | None
) -> list[Output]:
    """A declined request (IN-22), or one whose decision is refused: the validator emits the
    outcome unless it already refused the request."""
    outcome: Literal["rejected", "declined"] = "rejected" if rejection else "declined"
    return _close(request, decision.message_id, now, outcome, rejection)


def expiry_outputs(request: PostGrant, now: dt.datetime) -> list[Output]:
    """IN-23: a request not decided in time ends expired (through the validator, which knows
    whether the request itself was already refused)."""
    return _close(request, f"expiry:{request.request_id}", now, "expired")


def _close(
    request: PostGrant,
    message_id: str,
    now: dt.datetime,
    outcome: Literal["declined", "rejected", "expired"],
    rejection: Rejection | None = None,
) -> list[Output]:
    close = CloseRequest(
        action="close",
        message_id=message_id,
        taxpayer_ref=request.taxpayer_ref,
        tin_last4=request.tin_last4,
        form=request.form,
        received_at=now,
        request_id=request.request_id or request.grant_id,
        outcome=outcome,
        rule_id=rejection.rule if rejection else None,
        reason_code=rejection.code if rejection else None,
        reason=rejection.reason if rejection else None,
        caf_number=request.caf_number,
    )
    return [Output.of(topics.GRANTS_ACCEPTED, request.taxpayer_ref, close)]
