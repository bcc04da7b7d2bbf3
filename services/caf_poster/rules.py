"""The poster's pure decisions: PO-01, PO-03 … PO-10 (RULES.md §3) for one taxpayer's CAF.

`decide_posting`, `decide_withdrawal` and `decide_revocation` read a `TaxpayerCaf` and a command
and return a decision; `apply` turns a decision into the next `TaxpayerCaf`. No I/O, no clock.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from schemas.codes import ReasonCode, Rejection, RuleId
from schemas.grants import MatterSpec, PostGrant, RevokeGrants, WithdrawGrants
from schemas.values import parse_period
from services.caf_poster.domain import Grant, Group, Loss, Matter, TaxpayerCaf

MAX_NOTICE_RECIPIENTS = 2
STUDENT_PURGE_AFTER = dt.timedelta(days=130)  # PO-12, from the taxpayer signature [choice]
FUTURE_YEARS = 3


@dataclass(frozen=True)
class Posting:
    """The decision on one grant: posted (`grant` set), refused (`rejection` set), or neither
    when the grant is already on the CAF."""

    rejection: Rejection | None = None
    grant: Grant | None = None
    dropped: tuple[Matter, ...] = ()
    losses: tuple[Loss, ...] = ()


@dataclass(frozen=True)
class Removal:
    """The decision on a withdrawal or revocation: the grants that lose matters, or why none."""

    losses: tuple[Loss, ...] = ()
    rejection: Rejection | None = None


def matters_of(specs: list[MatterSpec]) -> tuple[Matter, ...]:
    return tuple(
        Matter(spec.tax_type, spec.form_number, period) for spec in specs for period in spec.periods
    )


def split_future(
    matters: tuple[Matter, ...], received_on: dt.date
) -> tuple[tuple[Matter, ...], tuple[Matter, ...]]:
    """PO-07: (recorded, dropped) — periods ending after 31 Dec of receipt year + 3 are dropped."""
    limit = dt.date(received_on.year + FUTURE_YEARS, 12, 31)
    kept = tuple(m for m in matters if parse_period(m.period).ends_on <= limit)
    return kept, tuple(m for m in matters if m not in kept)


def _refuse(rule: RuleId, code: ReasonCode, reason: str) -> Posting:
    return Posting(rejection=Rejection(rule, code, reason))


def decide_posting(caf: TaxpayerCaf, command: PostGrant, caf_number: str | None) -> Posting:
    """PO-01, PO-02, PO-07, PO-06, PO-05, PO-03, PO-04 in that order, for one grant.

    A grant already on the CAF is never posted twice: deciding it again changes nothing.
    """
    if any(g.grant_id == command.grant_id for g in caf.grants):
        return Posting()
    if command.specific_use:
        return _refuse(
            RuleId.PO_01,
            ReasonCode.NP_SPECIFIC_USE,
            "A specific-use authorization is not recorded on the CAF.",
        )
    group = caf.groups.get(command.authorization_id)
    if group is not None and group.signature_date != command.taxpayer_signature_date:
        return _refuse(
            RuleId.PO_02,
            ReasonCode.REJ_SIGNATURE_DAY_MISMATCH,
            "The taxpayer signed this grant on another day than the rest of the authorization.",
        )
    kept, dropped = split_future(matters_of(command.tax_matters), command.received_on)
    if not kept:
        return _refuse(
            RuleId.PO_07,
            ReasonCode.REJ_MATTER_FUTURE_ONLY,
            "Every period ends more than three years after the year the form was received.",
        )
    others = [g for g in caf.active(command.form) if g.authorization_id != command.authorization_id]
    overlapping = [(g, g.overlapping(kept)) for g in others]
    overlapping = [(g, lost) for g, lost in overlapping if lost]
    if any(g.signature_date > command.taxpayer_signature_date for g, _ in overlapping):
        return _refuse(
            RuleId.PO_06,
            ReasonCode.NP_SUPERSEDED,
            "A more recently signed authorization already covers these tax matters.",
        )
    retain = command.retain_prior and command.channel != "tpa"
    losses = tuple(
        Loss(g, lost)
        for g, lost in overlapping
        if g.signature_date < command.taxpayer_signature_date and not retain
    )
    if command.receive_notices:
        if group is not None and group.notice_electors >= MAX_NOTICE_RECIPIENTS:
            return _refuse(
                RuleId.PO_03,
                ReasonCode.NP_NOTICE_LIMIT_EXCEEDED,
                "Two representatives of this authorization already receive notice copies.",
            )
        if _notice_recipients_after(caf, command, kept, losses) > MAX_NOTICE_RECIPIENTS:
            return _refuse(
                RuleId.PO_04,
                ReasonCode.NP_NOTICE_LIMIT_EXCEEDED,
                "Two representatives already receive notice copies for these tax matters.",
            )
    grant = Grant(
        grant_id=command.grant_id,
        authorization_id=command.authorization_id,
        form=command.form,
        caf_number=caf_number,
        representative_name=command.representative_name,
        receive_notices=command.receive_notices,
        signature_date=command.taxpayer_signature_date,
        matters=kept,
        message_id=command.message_id,
        purge_on=(
            command.taxpayer_signature_date + STUDENT_PURGE_AFTER
            if command.designation == "k"
            else None
        ),
    )
    return Posting(grant=grant, dropped=dropped, losses=losses)


def _notice_recipients_after(
    caf: TaxpayerCaf, command: PostGrant, kept: tuple[Matter, ...], losses: tuple[Loss, ...]
) -> int:
    """PO-04: the most notice recipients any of the new grant's matters would have."""
    after = apply(caf, Posting(losses=losses))
    electors = [g for g in after.active(command.form) if g.receive_notices]
    return 1 + max(
        (sum(1 for g in electors if any(m.overlaps(k) for m in g.matters)) for k in kept),
        default=0,
    )


def _matching(
    caf: TaxpayerCaf, form: str, specs: list[MatterSpec] | None, caf_numbers: set[str] | None
) -> tuple[Loss, ...]:
    wanted = matters_of(specs) if specs is not None else None
    losses = []
    for grant in caf.active(form):
        if caf_numbers is not None and grant.caf_number not in caf_numbers:
            continue
        lost = grant.matters if wanted is None else grant.overlapping(wanted)
        if lost:
            losses.append(Loss(grant, lost))
    return tuple(losses)


def decide_withdrawal(caf: TaxpayerCaf, command: WithdrawGrants) -> Removal:
    """PO-09: every matching active grant of the representative is withdrawn."""
    losses = _matching(caf, command.form, command.tax_matters, {command.caf_number})
    if not losses:
        return Removal(
            rejection=Rejection(
                RuleId.PO_09,
                ReasonCode.REJ_NOTHING_TO_WITHDRAW,
                "No active authorization of this representative matches the withdrawal.",
            )
        )
    return Removal(losses=losses)


def decide_revocation(caf: TaxpayerCaf, command: RevokeGrants) -> Removal:
    """PO-10: every matching active grant (listed representatives or all) is revoked."""
    numbers = set(command.caf_numbers) if command.caf_numbers is not None else None
    losses = _matching(caf, command.form, command.tax_matters, numbers)
    if not losses:
        return Removal(
            rejection=Rejection(
                RuleId.PO_10,
                ReasonCode.REJ_NOTHING_TO_REVOKE,
                "No active authorization matches the revocation.",
            )
        )
    return Removal(losses=losses)


def decide_purge(caf: TaxpayerCaf, grant_id: str) -> Removal:
    """PO-12: a student representative's grant is removed on its purge day (nothing left to
    remove: no change)."""
    grant = next((g for g in caf.grants if g.grant_id == grant_id and g.matters), None)
    return Removal(losses=(Loss(grant, grant.matters),) if grant else ())


def apply(caf: TaxpayerCaf, decision: Posting | Removal) -> TaxpayerCaf:
    """The CAF after a decision: matters lost, the new grant added, its group counted."""
    lost = {loss.grant.grant_id: loss.matters for loss in decision.losses}
    grants = [g.without(lost[g.grant_id]) if g.grant_id in lost else g for g in caf.grants]
    groups = dict(caf.groups)
    if isinstance(decision, Posting) and decision.grant is not None:
        new = decision.grant
        grants.append(new)
        group = groups.get(new.authorization_id) or Group(new.authorization_id, new.signature_date)
        groups[new.authorization_id] = replace(
            group, notice_electors=group.notice_electors + int(new.receive_notices)
        )
    return TaxpayerCaf(version=caf.version + 1, grants=tuple(grants), groups=groups)
