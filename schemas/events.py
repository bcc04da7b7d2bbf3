"""The outcome stream `caf.events.v1` (docs/contract.md, "Outcome stream"), discriminated by `type`.

Every event carries the common fields of `_Event`; each type adds its own. Terminal events for a
grant: Posted, Rejected, NotProcessed, Declined, Expired. A raw TIN never appears: `taxpayer_ref`
is the keyed pseudonym and `tin_last4` the most of the TIN that is shown.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal, NotRequired, Protocol, TypedDict, TypeVar, Unpack, cast

from pydantic import AwareDatetime, Field

from schemas.base import OutboundModel, described
from schemas.codes import ReasonCode, Rejection, RuleId
from schemas.evidence import SignatureRef
from schemas.ids import TAXPAYER_REF_PATTERN, event_id
from schemas.inbound import FormType

__all__ = [
    "EVENT_TYPES",
    "OFFICIAL_EVENTS",
    "OFFICIAL_ID_PATTERN",
    "TERMINAL_TYPES",
    "AuthorizationDeclined",
    "AuthorizationExpired",
    "AuthorizationHeld",
    "AuthorizationNotProcessed",
    "AuthorizationPendingApproval",
    "AuthorizationPosted",
    "AuthorizationRejected",
    "AuthorizationRevoked",
    "AuthorizationWithdrawn",
    "CafMisuseSuspected",
    "CafNumber",
    "CafNumberAssigned",
    "DesignatedOfficialActivated",
    "DesignatedOfficialDeactivated",
    "DesignatedOfficialPinIssued",
    "DesignatedOfficialRefused",
    "DroppedPeriod",
    "EntityUserAdded",
    "EntityUserRemoved",
    "Event",
    "EventSource",
    "EventSubject",
    "MisuseEvidence",
    "MisuseSignal",
    "OfficialAct",
    "PostingDelayed",
    "Reasoned",
    "RecordedMatter",
    "RevokedBy",
    "SlaAtRisk",
    "SlaBreached",
    "Stage",
    "held_event",
    "refusal_event",
    "subject_of",
]

Stage = Literal["intake", "validator", "caf_poster", "monitor"]
RevokedBy = Literal[
    ReasonCode.REV_SUPERSEDED, ReasonCode.REV_BY_TAXPAYER, ReasonCode.REV_STUDENT_PURGE
]
CafNumber = Annotated[str, Field(pattern=r"^[0-9]{9}$")]


class RecordedMatter(OutboundModel):
    """Tax matters as recorded on the CAF: periods listed as units (MK-02), `YYYY` for an annual
    calendar year, `YYYY-MM` for any other period ending that month."""

    tax_type: str = described("Type of tax.", "Income")
    form_number: str = described("Tax form number.", "1040")
    periods: list[str] = described("Recorded period units.", ["2024", "2025"])


class DroppedPeriod(OutboundModel):
    """A period unit not recorded, and why: beyond the future limit (PO-07/MK-05), or held by a
    later signature or under a revocation floor (MK-04, RT-02)."""

    tax_type: str = described("Type of tax.", "Income")
    form_number: str = described("Tax form number.", "1040")
    period: str = described("The period unit.", "2031")
    reason_code: Literal[ReasonCode.PART_FUTURE_PERIOD_DROPPED, ReasonCode.PART_SUPERSEDED] = (
        described("Why it was dropped.", ReasonCode.PART_FUTURE_PERIOD_DROPPED.value)
    )


class _Event(OutboundModel):
    event_id: str = described(
        "Deterministic id: the same input always yields the same id.",
        "0b6f1d1e-8a53-5f0e-9d56-2f5d0c9a6e11",
    )
    occurred_at: AwareDatetime = described("When it happened.", "2026-11-20T14:05:12+00:00")
    taxpayer_ref: str = described(
        "Keyed pseudonym of the TIN (HMAC-SHA256, hex, 32 chars), prefixed `vN.` from key "
        "version 2 on (docs/contract.md, 'taxpayer_ref').",
        "9f2c4e1a7b3d5f60a1b2c3d4e5f60718",
        pattern=TAXPAYER_REF_PATTERN,
    )
    tin_last4: str = described(
        "Last four TIN digits; empty only when the message's TIN could not be read.",
        "6789",
        pattern=r"^([0-9]{4})?$",
    )
    form: FormType | None = described(
        "2848 or 8821; null only on a REJ-SCHEMA rejection whose form could not be read.", "2848"
    )
    message_id: str = described(
        "The inbound message that caused the event.", "7b0c9a52-3f1e-4c39-9a43-0f3f4f8e2d11"
    )
    grant_id: str = described("The grant concerned.", "7b0c9a52-3f1e-4c39-9a43-0f3f4f8e2d11:0")
    caf_number: CafNumber | None = described(
        "Normalized CAF number, when known.", "030112345", default=None
    )
    stage: Stage = described("Service that emitted it.", "caf_poster")
    representative_name: str | None = described(
        "Name of the representative concerned, when known (additive field).",
        "Avery Smith",
        default=None,
    )


class _WithReason(_Event):
    reason_code: ReasonCode = described("Reason code (docs/rules.md).", "REJ-TP-ID-INVALID")
    reason: str = described("The reason in plain words.", "The taxpayer TIN is not valid.")
    rule_id: RuleId = described("Rule that decided (docs/rules.md).", "IN-04")


class AuthorizationPendingApproval(_Event):
    """A TPA request waits for the taxpayer's decision (not terminal)."""

    type: Literal["AuthorizationPendingApproval"] = described(
        "Event type.", "AuthorizationPendingApproval"
    )
    request_id: str = described("TPA request.", "tpa-2026-000123")
    expires_on: dt.date = described("Day the request expires undecided.", "2026-12-20")


class AuthorizationPosted(_Event):
    """The grant is recorded on the CAF (terminal)."""

    type: Literal["AuthorizationPosted"] = described("Event type.", "AuthorizationPosted")
    authorization_id: str = described(
        "Submission message_id, or TPA group_id (request_id without group).",
        "7b0c9a52-3f1e-4c39-9a43-0f3f4f8e2d11",
    )
    tax_matters: list[RecordedMatter] = described(
        "Matters as recorded.", [{"tax_type": "Income", "form_number": "1040", "periods": ["2024"]}]
    )
    receive_notices: bool = described("The representative receives notice copies.", True)
    dropped_periods: list[DroppedPeriod] = described(
        "Period units not recorded (PO-07/MK-05, MK-04, RT-02).", [], default_factory=list
    )
    channel: Literal["upload", "fax", "mail", "tpa"] | None = described(
        "Channel of the form that caused it: taxpayer alerts for mail and fax go by mail "
        "(CN-10); null when not known (a withdrawal or revocation).",
        "upload",
        default=None,
    )
    retention: Literal["named", "all-legacy"] | None = described(
        "RT-01: prior grants kept in effect: those the form named, or all (a v1 form without "
        "a `retain` list); null when the form keeps none.",
        None,
        default=None,
    )
    received_at: AwareDatetime = described(
        "When the authorization became ready to post.", "2026-11-20T14:03:00-05:00"
    )
    posted_at: AwareDatetime = described("When it was posted.", "2026-11-20T14:05:12+00:00")
    signature_refs: list[SignatureRef] = described(
        "ES-03/ES-04: where the evidence of each electronic signature of the act is kept "
        "(empty for a paper form).",
        [],
        default_factory=list,
    )


class AuthorizationRejected(_WithReason):
    """The grant is rejected (terminal); for a withdrawal or revocation, nothing matched."""

    type: Literal["AuthorizationRejected"] = described("Event type.", "AuthorizationRejected")


class AuthorizationNotProcessed(_WithReason):
    """The grant is not processed (terminal)."""

    type: Literal["AuthorizationNotProcessed"] = described(
        "Event type.", "AuthorizationNotProcessed"
    )


class AuthorizationHeld(_WithReason):
    """The grant is parked (not terminal). `HOLD-VELOCITY` (CN-09): for an operator's review;
    released, it goes on to the poster; refused, it ends `rejected` `REJ-FRAUD-REVIEW`; SLA
    timers keep running. `HOLD-TAXPAYER-CONFIRMATION` (PT-01, PT-02): for the protected
    taxpayer's own confirmation in Online Account by `confirm_by`; confirmed, it goes on to the
    poster (its posting deadlines start then); refused or unanswered, it ends `rejected`."""

    type: Literal["AuthorizationHeld"] = described("Event type.", "AuthorizationHeld")
    confirm_by: dt.date | None = described(
        "For a taxpayer's confirmation: the last day to answer (30 days after the hold, New "
        "York calendar).",
        "2026-12-20",
        default=None,
    )


class AuthorizationDeclined(_Event):
    """The taxpayer declined a TPA request (terminal)."""

    type: Literal["AuthorizationDeclined"] = described("Event type.", "AuthorizationDeclined")
    request_id: str = described("TPA request.", "tpa-2026-000123")


class AuthorizationExpired(_Event):
    """A TPA request was not decided in time (terminal)."""

    type: Literal["AuthorizationExpired"] = described("Event type.", "AuthorizationExpired")
    request_id: str = described("TPA request.", "tpa-2026-000123")
    reason_code: Literal[ReasonCode.EXP_NO_DECISION] = described(
        "Why it expired (IN-23).",
        ReasonCode.EXP_NO_DECISION.value,
        default=ReasonCode.EXP_NO_DECISION,
    )


class AuthorizationRevoked(_Event):
    """An earlier posted grant lost access (its grant_id and authorization_id)."""

    type: Literal["AuthorizationRevoked"] = described("Event type.", "AuthorizationRevoked")
    authorization_id: str = described(
        "Authorization of the revoked grant.", "5e1d2c3b-4a59-4f68-8e77-6d5c4b3a2910"
    )
    tax_matters: list[RecordedMatter] = described(
        "The revoked matters.", [{"tax_type": "Income", "form_number": "1040", "periods": ["2023"]}]
    )
    channel: Literal["upload", "fax", "mail", "tpa"] | None = described(
        "Channel of the form that superseded it: taxpayer alerts for mail and fax go by mail "
        "(CN-10); null when not known (a withdrawal or revocation).",
        "upload",
        default=None,
    )
    remaining_matters: list[RecordedMatter] = described(
        "Units the grant keeps after a partial revocation (MK-03); empty when it ended.",
        [{"tax_type": "Income", "form_number": "1040", "periods": ["2024"]}],
        default_factory=list,
    )
    revoked_by: RevokedBy = described("Why.", ReasonCode.REV_SUPERSEDED.value)
    superseded_by: str | None = described(
        "Grant that superseded it (REV-SUPERSEDED).",
        "7b0c9a52-3f1e-4c39-9a43-0f3f4f8e2d11:0",
        default=None,
    )
    signature_refs: list[SignatureRef] = described(
        "ES-04: where the evidence of each electronic signature of the revocation is kept (empty "
        "for a paper form, and for a grant superseded by a newer form).",
        [],
        default_factory=list,
    )


class AuthorizationWithdrawn(_Event):
    """A representative withdrew from an earlier posted grant."""

    type: Literal["AuthorizationWithdrawn"] = described("Event type.", "AuthorizationWithdrawn")
    authorization_id: str = described(
        "Authorization of the withdrawn grant.", "5e1d2c3b-4a59-4f68-8e77-6d5c4b3a2910"
    )
    tax_matters: list[RecordedMatter] = described(
        "The withdrawn matters.",
        [{"tax_type": "Income", "form_number": "1040", "periods": ["2023"]}],
    )
    remaining_matters: list[RecordedMatter] = described(
        "Units the grant keeps after a partial withdrawal (MK-03); empty when it ended.",
        [],
        default_factory=list,
    )
    signature_refs: list[SignatureRef] = described(
        "ES-03/ES-04: where the evidence of each electronic signature of the withdrawal is kept "
        "(empty for a paper form).",
        [],
        default_factory=list,
    )


class CafNumberAssigned(_Event):
    """A first-time representative got a CAF number (CP547)."""

    type: Literal["CafNumberAssigned"] = described("Event type.", "CafNumberAssigned")
    caf_number: CafNumber = described("The new CAF number.", "030198765")
    representative_name: str = described("Who got it.", "Avery Smith")


MisuseSignal = Literal[
    "burst", "transcript_share", "refusals", "taxpayer_revocations", "first_use_burst"
]


class MisuseEvidence(OutboundModel):
    """What the monitor counted for one CAF number over the signal's window."""

    window_hours: int = described("How far back the counts reach.", 24, ge=1)
    new_grants: int = described("Grants naming the number (posted or held).", 31, ge=0)
    distinct_taxpayers: int = described("Distinct taxpayers among them.", 30, ge=0)
    form_8821: int = described("How many were 8821s.", 29, ge=0)
    refusals: int = described(
        "Refusals for a name that does not match or a number not in good standing.", 0, ge=0
    )
    taxpayer_revocations: int = described(
        "Revocations by the taxpayer of a grant younger than 30 days.", 0, ge=0
    )
    baseline_per_day: float | None = described(
        "The number's own daily average of new grants over the 30 days before today.",
        1.5,
        default=None,
    )
    idle_days: int | None = described(
        "Days without a grant before this one (first use after a long idle period).",
        None,
        default=None,
    )


class CafMisuseSuspected(_Event):
    """MN-01 … MN-05: the monitor suspects misuse of a CAF number (not about the taxpayer of the
    event that tipped it: `taxpayer_ref`, `message_id` and `grant_id` name that event for
    tracing, `tin_last4` is empty). At most one per number, rule and New York day."""

    type: Literal["CafMisuseSuspected"] = described("Event type.", "CafMisuseSuspected")
    caf_number: CafNumber = described("The CAF number.", "030112345")
    rule_id: RuleId = described("The anomaly rule (docs/rules.md §13).", "MN-01")
    signal: MisuseSignal = described("Which kind of anomaly.", "burst")
    observed: float = described("The figure that crossed the threshold.", 30)
    threshold: float = described("The threshold it crossed.", 20)
    evidence: MisuseEvidence = described(
        "The counts behind it.",
        {
            "window_hours": 24,
            "new_grants": 31,
            "distinct_taxpayers": 30,
            "form_8821": 29,
            "refusals": 0,
            "taxpayer_revocations": 0,
        },
    )


class PostingDelayed(_WithReason):
    """ES-03: an electronically signed grant waits for its signature evidence to be stored past
    the retry policy (not terminal): it posts when the object store takes the evidence."""

    type: Literal["PostingDelayed"] = described("Event type.", "PostingDelayed")
    waiting_since: AwareDatetime = described(
        "When the grant first waited for its evidence.", "2026-11-20T14:03:00+00:00"
    )
    attempts: int = described("Attempts to store the evidence so far.", 4, ge=1)


class SlaAtRisk(_Event):
    """A grant ready to post is still unposted 24 h later (PO-11)."""

    type: Literal["SlaAtRisk"] = described("Event type.", "SlaAtRisk")
    ready_at: AwareDatetime = described("When it became ready.", "2026-11-20T14:03:00-05:00")
    age_hours: float = described("Hours since ready.", 24.0, ge=0)


class SlaBreached(_Event):
    """A grant ready to post is still unposted 48 h later (PO-11)."""

    type: Literal["SlaBreached"] = described("Event type.", "SlaBreached")
    ready_at: AwareDatetime = described("When it became ready.", "2026-11-20T14:03:00-05:00")
    age_hours: float = described("Hours since ready.", 48.0, ge=0)


OfficialAct = Literal["pin_request", "pin_redeem", "user_change", "deactivation"]
OFFICIAL_ID_PATTERN = r"^[0-9a-f]{32}$"


def _official_field(what: str) -> Any:
    return described(
        f"{what}: SHA-256 of the identity provider's issuer and subject, 32 hex digits "
        "(docs/contract.md, 'Designated Officials').",
        "5d41402abc4b2a76b9719d911017c592",
        pattern=OFFICIAL_ID_PATTERN,
    )


class DesignatedOfficialPinIssued(_Event):
    """DO-04: a CP311 PIN was mailed to the business's address of record. The PIN is not here:
    only the letter on `caf.notifications.v1` carries it. `taxpayer_ref` is the business's."""

    type: Literal["DesignatedOfficialPinIssued"] = described(
        "Event type.", "DesignatedOfficialPinIssued"
    )
    official_id: str = _official_field("Who asked")
    notice_on: dt.date = described("Date of the CP311 notice.", "2026-11-20")
    expires_on: dt.date = described(
        "Last day the PIN can be used (30 days from the notice).", "2026-12-20"
    )
    attempts_allowed: int = described("Wrong entries before the PIN locks.", 5, ge=1)


class DesignatedOfficialActivated(_Event):
    """DO-05: the requester redeemed the PIN and is now an active Designated Official."""

    type: Literal["DesignatedOfficialActivated"] = described(
        "Event type.", "DesignatedOfficialActivated"
    )
    official_id: str = _official_field("The new Designated Official")


class DesignatedOfficialDeactivated(_Event):
    """DO-07: a Designated Official was deactivated, by another one of the business or by an
    IRS operator (audited)."""

    type: Literal["DesignatedOfficialDeactivated"] = described(
        "Event type.", "DesignatedOfficialDeactivated"
    )
    official_id: str = _official_field("The deactivated Designated Official")
    by: Literal["official", "operator"] = described("Who deactivated them.", "official")
    by_official_id: str | None = described(
        "The Designated Official who did (null when an operator did).",
        "7d793037a0760186574b0282f2f435e7",
        default=None,
        pattern=OFFICIAL_ID_PATTERN,
    )


class _EntityUserEvent(_Event):
    user_id: str = _official_field("The authorized user")
    by_official_id: str = _official_field("The Designated Official who acted")


class EntityUserAdded(_EntityUserEvent):
    """DO-06: an authorized user of the business was added by its Designated Official."""

    type: Literal["EntityUserAdded"] = described("Event type.", "EntityUserAdded")


class EntityUserRemoved(_EntityUserEvent):
    """DO-06: an authorized user of the business was removed by its Designated Official."""

    type: Literal["EntityUserRemoved"] = described("Event type.", "EntityUserRemoved")


class DesignatedOfficialRefused(_WithReason):
    """DO-01 … DO-08: a Designated Official act was refused (the reason code says why: unknown
    business, title, re-request too soon, wrong, locked, expired or used PIN, not an official)."""

    type: Literal["DesignatedOfficialRefused"] = described(
        "Event type.", "DesignatedOfficialRefused"
    )
    act: OfficialAct = described("The act refused.", "pin_redeem")
    official_id: str | None = described(
        "Who acted, when their identity assertion was valid.",
        "5d41402abc4b2a76b9719d911017c592",
        default=None,
        pattern=OFFICIAL_ID_PATTERN,
    )
    attempts_left: int | None = described(
        "After a wrong PIN: wrong entries left before it locks.", 3, default=None, ge=0
    )


OFFICIAL_EVENTS: tuple[type[_Event], ...] = (
    DesignatedOfficialPinIssued,
    DesignatedOfficialActivated,
    DesignatedOfficialDeactivated,
    EntityUserAdded,
    EntityUserRemoved,
    DesignatedOfficialRefused,
)


EVENT_TYPES: tuple[type[_Event], ...] = (
    AuthorizationPendingApproval,
    AuthorizationPosted,
    AuthorizationRejected,
    AuthorizationNotProcessed,
    AuthorizationHeld,
    AuthorizationDeclined,
    AuthorizationExpired,
    AuthorizationRevoked,
    AuthorizationWithdrawn,
    CafNumberAssigned,
    PostingDelayed,
    SlaAtRisk,
    SlaBreached,
    *OFFICIAL_EVENTS,
    CafMisuseSuspected,
)
TERMINAL_TYPES = frozenset(
    {
        "AuthorizationPosted",
        "AuthorizationRejected",
        "AuthorizationNotProcessed",
        "AuthorizationDeclined",
        "AuthorizationExpired",
    }
)

Event = Annotated[
    AuthorizationPendingApproval
    | AuthorizationPosted
    | AuthorizationRejected
    | AuthorizationNotProcessed
    | AuthorizationHeld
    | AuthorizationDeclined
    | AuthorizationExpired
    | AuthorizationRevoked
    | AuthorizationWithdrawn
    | CafNumberAssigned
    | PostingDelayed
    | SlaAtRisk
    | SlaBreached
    | DesignatedOfficialPinIssued
    | DesignatedOfficialActivated
    | DesignatedOfficialDeactivated
    | EntityUserAdded
    | EntityUserRemoved
    | DesignatedOfficialRefused
    | CafMisuseSuspected,
    Field(discriminator="type"),
]


class EventSubject(TypedDict):
    """The common fields of `_Event` a stage fills in for the grant an event is about (its id,
    type and stage are the builder's; `subject_of` takes them from a command)."""

    occurred_at: dt.datetime
    taxpayer_ref: str
    tin_last4: str
    form: FormType | None
    message_id: str
    grant_id: str


class _Subject(EventSubject):
    """`EventSubject` with the number and representative a verdict may name."""

    caf_number: NotRequired[str | None]
    representative_name: NotRequired[str | None]


class EventSource(Protocol):
    """What an event can take its subject from: a command, a timer's payload."""

    @property
    def taxpayer_ref(self) -> str: ...

    @property
    def tin_last4(self) -> str: ...

    @property
    def form(self) -> FormType | None: ...

    @property
    def message_id(self) -> str: ...


def subject_of(source: EventSource, grant_id: str, now: dt.datetime) -> EventSubject:
    """The subject of an event about `grant_id`, taken from `source` (the command or payload
    that caused it), happening `now`."""
    return EventSubject(
        occurred_at=now,
        taxpayer_ref=source.taxpayer_ref,
        tin_last4=source.tin_last4,
        form=source.form,
        message_id=source.message_id,
        grant_id=grant_id,
    )


def held_event(
    rejection: Rejection, *, confirm_by: dt.date | None = None, **subject: Unpack[_Subject]
) -> AuthorizationHeld:
    """CN-09, PT-01, PT-02: the grant is parked with the hold's rule and reason."""
    held = _reasoned(AuthorizationHeld, rejection, stage="validator", **subject)
    return held.model_copy(update={"confirm_by": confirm_by}) if confirm_by else held


def refusal_event(
    rejection: Rejection, *, stage: Stage, **subject: Unpack[_Subject]
) -> AuthorizationRejected | AuthorizationNotProcessed:
    """The terminal event of a refused grant: `NP-*` and `HOLD-*` codes are not processed,
    every other code is rejected. Its id is derived from type, message and grant."""
    not_processed = rejection.code.value.startswith(("NP-", "HOLD-"))
    model = AuthorizationNotProcessed if not_processed else AuthorizationRejected
    event = _reasoned(model, rejection, stage=stage, **subject)
    return cast("AuthorizationRejected | AuthorizationNotProcessed", event)


Reasoned = TypeVar("Reasoned", bound=_WithReason)


def _reasoned(
    model: type[Reasoned], rejection: Rejection, *, stage: Stage, **subject: Unpack[_Subject]
) -> Reasoned:
    """An event carrying a rule's verdict; its id is derived from type, message and grant."""
    event_type = model.__name__
    return model.model_validate(
        {
            "caf_number": None,
            "representative_name": None,
            **subject,
            "event_id": event_id(event_type, subject["message_id"], subject["grant_id"]),
            "type": event_type,
            "stage": stage,
            "reason_code": rejection.code,
            "reason": rejection.reason,
            "rule_id": rejection.rule,
        }
    )
