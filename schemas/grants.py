"""Internal commands on `caf.grants.accepted.v1` (intake → validator) and
`caf.grants.validated.v1` (validator → caf_poster), keyed by `taxpayer_ref`.

They are ours to shape (docs/contract.md) and follow the same conventions: JSON, deterministic ids,
no raw TIN. A command is one of: post a grant, withdraw (a representative), revoke (the taxpayer).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, Field

from schemas.base import InboundModel, described
from schemas.codes import ReasonCode, Rejection, RuleId
from schemas.events import (
    AuthorizationNotProcessed,
    AuthorizationRejected,
    Stage,
    refusal_event,
    subject_of,
)
from schemas.evidence import SignatureEvidence
from schemas.inbound import Channel, FormType
from schemas.matters import Entry, Matter, Unit, expand_entries

__all__ = [
    "CloseRequest",
    "ConfirmHeld",
    "GrantCommand",
    "MatterSpec",
    "PostGrant",
    "Retention",
    "ReviewHold",
    "RevokeGrants",
    "WithdrawGrants",
    "matters_of",
    "refusal_of",
    "units_of",
]


class MatterSpec(InboundModel):
    """Tax matters of a grant, periods as received (already checked well formed by intake)."""

    tax_type: str = described("Type of tax.", "Income")
    form_number: str = described("Tax form number.", "1040")
    periods: list[str] = described("Periods.", ["2024", "2025"])


class Retention(InboundModel):
    """RT-01: the prior grants a new grant leaves in effect, by representative or authorization."""

    caf_numbers: list[str] = described("Normalized CAF numbers.", ["030112345"], default=[])
    authorization_ids: list[str] = described("Authorization ids.", [], default=[])


def units_of(specs: list[MatterSpec]) -> tuple[Unit, ...]:
    """MK-01/MK-02: the period units the specs name, each once, in order."""
    return tuple(m.unit for m in matters_of(specs))


def matters_of(specs: list[MatterSpec]) -> tuple[Matter, ...]:
    """MK-01/MK-02: one matter per unit the specs name (the first spec naming it gives its
    words)."""
    return expand_entries(Entry(s.tax_type, s.form_number, tuple(s.periods)) for s in specs)


def _signature_evidence() -> Any:
    """The same field on every command carrying a signed act."""
    return described(
        "ES-01: the evidence object of each electronic signature of the act; the poster stores "
        "them under Object Lock (ES-03, ES-04).",
        [],
        default_factory=list,
        max_length=60,
    )


class _Command(InboundModel):
    message_id: str = described("Inbound message that caused the command.", "7b0c9a52")
    taxpayer_ref: str = described("Keyed TIN pseudonym.", "9f2c4e1a7b3d5f60a1b2c3d4e5f60718")
    previous_taxpayer_ref: str | None = described(
        "While a taxpayer_ref key rotation is under way: the same taxpayer's ref of the previous "
        "key version, under which the CAF may still keep their records (the poster moves them).",
        None,
        default=None,
    )
    tin_last4: str = described("Last four TIN digits.", "6789")
    form: FormType = described("2848 or 8821.", "2848")
    received_at: AwareDatetime = described(
        "When intake accepted it: ready-to-post time, and the clock of time-based rules.",
        "2026-11-20T19:03:00+00:00",
    )


class PostGrant(_Command):
    """Post one representative's grant of an authorization to the CAF."""

    action: Literal["post"] = described("Command.", "post")
    grant_id: str = described("The grant.", "7b0c9a52:0")
    authorization_id: str = described("Submission message_id or TPA group/request id.", "7b0c9a52")
    group_position: int = described("Listed order of the grant within its group.", 0, ge=0)
    channel: Channel | Literal["tpa"] = described("Where it came from.", "upload")
    received_on: dt.date = described("Day the IRS received the form.", "2026-11-20")
    taxpayer_signature_date: dt.date = described("Taxpayer signature day.", "2026-11-18")
    caf_number: str | None = described("Normalized CAF number; null if first-time.", "030112345")
    representative_name: str = described("Representative name.", "Avery Smith")
    designation: str | None = described("2848 designation.", "b")
    receive_notices: bool = described("Elects notice copies.", True)
    tax_matters: list[MatterSpec] = described(
        "Matters.", [{"tax_type": "Income", "form_number": "1040", "periods": ["2024"]}]
    )
    specific_use: bool = described("Specific use (PO-01).", False)
    retain_prior: bool = described("Keep prior authorizations (PO-05).", False)
    retain: Retention | None = described(
        "With retain_prior: only these prior grants stay (RT-01); null = all (v1 meaning).",
        None,
        default=None,
    )
    first_time: bool = described("No CAF number yet (VA-08); set by the validator.", False)
    ptin: str | None = described(
        "The representative's PTIN as on the form (upper case): who a first-time "
        "representative is (CN-02, CN-03).",
        "P01234567",
        default=None,
    )
    licence_key: str | None = described(
        "Licence or enrollment number and jurisdiction, for a first-time representative "
        "without a PTIN (CN-02).",
        "TN/CPA-55102",
        default=None,
    )
    caf_number_assigned: bool = described(
        "The validator gave this first-time representative a new CAF number (PO-08, CN-02): "
        "the poster announces it when the grant posts.",
        False,
        default=False,
    )
    request_id: str | None = described(
        "Tax Pro Account request this grant comes from.", "tpa-2026-000123", default=None
    )
    review: bool = described(
        "A Tax Pro Account request awaiting the taxpayer: judge standing and announce it "
        "pending (nothing to post yet).",
        False,
        default=False,
    )
    expires_on: dt.date | None = described(
        "Day an undecided request expires (IN-23).", "2026-12-20", default=None
    )
    approved_at: AwareDatetime | None = described(
        "Instant the taxpayer approved (orders notice elections, PO-03).",
        "2026-11-21T09:12:44-05:00",
        default=None,
    )
    approved_by_assertion: bool = described(
        "Set by intake: the taxpayer (or the business's Designated Official) approved it with a "
        "verified identity assertion (AU-02): their own say, for PT-01.",
        False,
        default=False,
    )
    signature_evidence: list[SignatureEvidence] = _signature_evidence()


class WithdrawGrants(_Command):
    """A representative withdraws from the taxpayer's grants of one form type."""

    action: Literal["withdraw"] = described("Command.", "withdraw")
    caf_number: str = described("Normalized CAF number of the representative.", "030112345")
    tax_matters: list[MatterSpec] | None = described("Matters; null = all.", None)
    signature_date: dt.date | None = described(
        "Day the representative signed it: its revocation floor (RT-02).",
        "2026-11-21",
        default=None,
    )
    signature_evidence: list[SignatureEvidence] = _signature_evidence()


class RevokeGrants(_Command):
    """The taxpayer revokes grants of one form type."""

    action: Literal["revoke"] = described("Command.", "revoke")
    caf_numbers: list[str] | None = described("Normalized CAF numbers; null = all.", None)
    tax_matters: list[MatterSpec] | None = described("Matters; null = all.", None)
    signature_date: dt.date | None = described(
        "Day the taxpayer signed it: its revocation floor (RT-02).", "2026-11-21", default=None
    )
    signature_evidence: list[SignatureEvidence] = _signature_evidence()


class CloseRequest(_Command):
    """A Tax Pro Account request ends without posting: declined by the taxpayer (IN-22), its
    decision refused (IN-05, IN-26), or not decided in time (IN-23). The validator emits the
    outcome unless the request itself was already refused, so a grant never gets two terminal
    events."""

    action: Literal["close"] = described("Command.", "close")
    request_id: str = described("The request.", "tpa-2026-000123")
    outcome: Literal["declined", "rejected", "expired"] = described("How it ends.", "declined")
    rule_id: RuleId | None = described("Rule that refused the decision.", "IN-26", default=None)
    reason_code: ReasonCode | None = described(
        "Reason code of a refused decision.", "REJ-IDENTITY-ASSURANCE", default=None
    )
    reason: str | None = described(
        "The reason in plain words.", "The login did not meet IAL2/AAL2.", default=None
    )
    caf_number: str | None = described("CAF number of the requester.", "030112345", default=None)


class ReviewHold(_Command):
    """An operator's decision on a grant parked by VA-07 (CN-09), published by `cafctl holds`:
    `release` sends it on to the poster, `refuse` ends it `REJ-FRAUD-REVIEW`. `message_id` is
    the decision's own id (its ledger key)."""

    action: Literal["review"] = described("Command.", "review")
    grant_id: str = described("The held grant.", "7b0c9a52:0")
    decision: Literal["release", "refuse"] = described("The operator's decision.", "release")
    operator: str = described("Who decided (audited).", "jdoe", min_length=1, max_length=128)
    why: str = described(
        "Why, in the operator's words (audited).",
        "Known firm; batch confirmed by phone.",
        min_length=1,
        max_length=1000,
    )


class ConfirmHeld(InboundModel):
    """A protected taxpayer's answer to an authorization held for their confirmation (PT-03),
    from intake once their identity assertion verified (its TIN is the held grant's taxpayer's:
    the validator checks the `taxpayer_ref`). Keyed by `taxpayer_ref`, like the held grant."""

    action: Literal["confirm"] = described("Command.", "confirm")
    message_id: str = described("The taxpayer's `protected_confirmation` message.", "pc-0001")
    taxpayer_ref: str = described("Keyed TIN pseudonym.", "9f2c4e1a7b3d5f60a1b2c3d4e5f60718")
    previous_taxpayer_ref: str | None = described(
        "During a taxpayer_ref key rotation: the same taxpayer's ref of the previous version.",
        None,
        default=None,
    )
    tin_last4: str = described("Last four TIN digits.", "6789")
    grant_id: str = described("The held grant.", "7b0c9a52:0")
    decision: Literal["confirm", "refuse"] = described("The taxpayer's answer.", "confirm")
    answered_at: AwareDatetime = described(
        "When intake accepted the answer.", "2026-11-22T15:00:00+00:00"
    )
    assertion_jti: str | None = described(
        "The verified identity assertion's `jti` (signature evidence of the answer).",
        "b8e1f0c2",
        default=None,
    )


GrantCommand = Annotated[
    PostGrant | WithdrawGrants | RevokeGrants | CloseRequest | ReviewHold | ConfirmHeld,
    Field(discriminator="action"),
]


def refusal_of(
    command: PostGrant | WithdrawGrants | RevokeGrants | CloseRequest,
    rejection: Rejection,
    *,
    stage: Stage,
    occurred_at: dt.datetime,
) -> AuthorizationRejected | AuthorizationNotProcessed:
    """The terminal event refusing a command: its grant (a withdrawal or revocation is its own
    grant, named by its message id), with the representative when the command names one."""
    if isinstance(command, PostGrant):
        grant_id, caf_number, name = (
            command.grant_id,
            command.caf_number,
            command.representative_name,
        )
    elif isinstance(command, CloseRequest):
        grant_id, caf_number, name = command.request_id, command.caf_number, None
    else:
        caf_number = command.caf_number if isinstance(command, WithdrawGrants) else None
        grant_id, name = command.message_id, None
    return refusal_event(
        rejection,
        stage=stage,
        **subject_of(command, grant_id, occurred_at),
        caf_number=caf_number,
        representative_name=name,
    )
