"""The poster's pure decisions for one taxpayer's CAF: PO-01 … PO-10 (docs/rules.md §3) as
amended by §5 and §6 (MK-03 … MK-06, RT-01, RT-02): every decision is a set operation on period
units.

`decide_posting`, `decide_withdrawal` and `decide_revocation` read a `TaxpayerCaf` and a command
and return a decision; `apply` turns a decision into the next `TaxpayerCaf`. No I/O, no clock.
Each decision intersects the hash sets of units of the grants involved (`Grant.units`) instead
of comparing matters pairwise, so its cost is linear in the units of the taxpayer's CAF and of
the command (`python -m devstack.decision_bench`).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, replace
from typing import Literal

from schemas.codes import ReasonCode, Rejection, RuleId
from schemas.grants import (
    MatterSpec,
    PostGrant,
    RevokeGrants,
    WithdrawGrants,
    matters_of,
    units_of,
)
from schemas.matters import (
    MAX_PERIOD_ENTRIES,
    MAX_UNITS_PER_GRANT,
    Entry,
    Matter,
    Unit,
    count_units,
)
from services.caf_poster.domain import (
    Dropped,
    Floor,
    Grant,
    Group,
    Loss,
    TaxpayerCaf,
)

MAX_NOTICE_RECIPIENTS = 2
STUDENT_PURGE_AFTER = dt.timedelta(days=130)  # PO-12, from the taxpayer signature [choice]
FUTURE_YEARS = 3

Retention = Literal["named", "all-legacy"]


@dataclass(frozen=True)
class EvidenceRetry:
    """ES-03, ES-04: how long evidence is kept, and how a store that refuses it is tried again."""

    retention: dt.timedelta
    delays: tuple[dt.timedelta, ...]
    every: dt.timedelta

    def retain_until(self, posted_at: dt.datetime) -> dt.datetime:
        """ES-03: posting + the retention, rounded up to the next midnight UTC, so that every
        reference made on one day asks the same lock: an object the grants of one form share
        is locked once, not lengthened by seconds for each of them."""
        until = (posted_at + self.retention).astimezone(dt.UTC)
        midnight = dt.datetime.combine(until.date(), dt.time(), dt.UTC)
        return until if until == midnight else midnight + dt.timedelta(days=1)

    def next_try(self, now: dt.datetime, attempt: int) -> dt.datetime:
        """When to try again after the `attempt`-th failed attempt (1-based)."""
        return now + (self.delays[attempt - 1] if attempt <= len(self.delays) else self.every)

    def announces_delay(self, attempt: int) -> bool:
        """ES-03: `PostingDelayed` once, when the attempt after the last listed delay fails."""
        return attempt == len(self.delays) + 1


@dataclass(frozen=True)
class Posting:
    """The decision on one grant: posted (`grant` set), refused (`rejection` set), or neither
    when the grant is already on the CAF."""

    rejection: Rejection | None = None
    grant: Grant | None = None
    dropped: tuple[Dropped, ...] = ()
    losses: tuple[Loss, ...] = ()
    retention: Retention | None = None


@dataclass(frozen=True)
class Removal:
    """The decision on a withdrawal or revocation: the grants that lose units and the floor it
    leaves (RT-02), or why nothing changes."""

    losses: tuple[Loss, ...] = ()
    rejection: Rejection | None = None
    floor: Floor | None = None


def split_future(
    matters: tuple[Matter, ...], received_on: dt.date
) -> tuple[tuple[Matter, ...], tuple[Matter, ...]]:
    """PO-07/MK-05: (recorded, dropped): units ending after 31 Dec of receipt year + 3 are
    dropped, unit by unit (a range keeps its recordable years)."""
    limit = dt.date(received_on.year + FUTURE_YEARS, 12, 31)
    kept = tuple(m for m in matters if m.unit.ends_on <= limit)
    return kept, tuple(m for m in matters if m.unit.ends_on > limit)


def hold_until(command: PostGrant, now: dt.datetime, window: dt.timedelta) -> dt.datetime | None:
    """PO-03: an approval of a Tax Pro Account group waits until the reorder window after the
    approval has passed, so an earlier approval that arrives late is decided first. TB-02: never
    longer than the window after it arrived (an `approved_at` in the future holds no longer).
    None: decide now."""
    if command.approved_at is None or command.authorization_id == command.grant_id:
        return None
    due = min(command.approved_at, now) + window
    return due if due > now else None


def _refuse(rule: RuleId, code: ReasonCode, reason: str) -> Posting:
    return Posting(rejection=Rejection(rule, code, reason))


def too_many(specs: list[MatterSpec] | None, *, removal: bool) -> Rejection | None:
    """MK-06 again at the CAF (intake checks it first; a command that bypassed intake is bounded
    here too): at most 400 period entries, counted before any is parsed, and a grant at most
    200 units, counted no further than just past the bound. So a huge command costs no more
    than a legal one."""
    if not specs:
        return None
    entries = sum(len(spec.periods) for spec in specs)
    if entries > MAX_PERIOD_ENTRIES:
        limit = f"{MAX_PERIOD_ENTRIES} period entries"
    elif (
        not removal
        and count_units(Entry(s.tax_type, s.form_number, tuple(s.periods)) for s in specs)
        > MAX_UNITS_PER_GRANT
    ):
        limit = f"{MAX_UNITS_PER_GRANT} units"
    else:
        return None
    return Rejection(RuleId.MK_06, ReasonCode.REJ_MATTER_TOO_MANY, f"More than {limit}.")


def decide_posting(caf: TaxpayerCaf, command: PostGrant, caf_number: str | None) -> Posting:
    """MK-06, PO-01, PO-02, PO-07/MK-05, MK-04, RT-02, PO-05/RT-01, PO-03, PO-04 in that order.

    A grant already on the CAF is never posted twice: deciding it again changes nothing.
    """
    if any(g.grant_id == command.grant_id for g in caf.grants):
        return Posting()
    refused = _form_refusal(caf, command)
    if refused is not None:
        return refused
    named, future = split_future(matters_of(command.tax_matters), command.received_on)
    if not named:
        return _refuse(
            RuleId.PO_07,
            ReasonCode.REJ_MATTER_FUTURE_ONLY,
            "Every period ends more than three years after the year the form was received.",
        )
    units = _sort_units(caf, command, caf_number, named)
    kept = units.kept
    if not kept:
        if units.floored and not units.superseded:
            return _refuse(
                RuleId.RT_02,
                ReasonCode.NP_SUPERSEDED,
                "These tax matters were revoked or withdrawn after this form was signed.",
            )
        return _refuse(
            RuleId.PO_06,
            ReasonCode.NP_SUPERSEDED,
            "A more recently signed authorization already covers these tax matters.",
        )
    retention = _retention(command)
    active = caf.active(command.form)
    losses = _superseded_losses(active, command, kept, retention)
    if command.receive_notices:
        refused = _notice_refusal(caf.groups.get(command.authorization_id), active, kept, losses)
        if refused is not None:
            return refused
    dropped = (
        *(Dropped(m, ReasonCode.PART_FUTURE_PERIOD_DROPPED) for m in future),
        *(Dropped(m, ReasonCode.PART_SUPERSEDED) for m in (*units.superseded, *units.floored)),
    )
    grant = _grant(command, caf_number, kept)
    return Posting(grant=grant, dropped=dropped, losses=losses, retention=retention)


def _form_refusal(caf: TaxpayerCaf, command: PostGrant) -> Posting | None:
    """MK-06, PO-01, PO-02: what refuses the grant whatever its matters."""
    bounded = too_many(command.tax_matters, removal=False)
    if bounded is not None:
        return Posting(rejection=bounded)
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
    return None


def _notice_refusal(
    group: Group | None,
    active: tuple[Grant, ...],
    kept: tuple[Matter, ...],
    losses: tuple[Loss, ...],
) -> Posting | None:
    """PO-03, PO-04: a grant that elects notice copies when two already receive them."""
    if group is not None and group.notice_electors >= MAX_NOTICE_RECIPIENTS:
        return _refuse(
            RuleId.PO_03,
            ReasonCode.NP_NOTICE_LIMIT_EXCEEDED,
            "Two representatives of this authorization already receive notice copies.",
        )
    if _notice_recipients_after(active, kept, losses) > MAX_NOTICE_RECIPIENTS:
        return _refuse(
            RuleId.PO_04,
            ReasonCode.NP_NOTICE_LIMIT_EXCEEDED,
            "Two representatives already receive notice copies for these tax matters.",
        )
    return None


def _grant(command: PostGrant, caf_number: str | None, kept: tuple[Matter, ...]) -> Grant:
    """The grant as posted: the units it keeps; a student's is purged after 130 days (PO-12)."""
    signed = command.taxpayer_signature_date
    return Grant(
        grant_id=command.grant_id,
        authorization_id=command.authorization_id,
        form=command.form,
        caf_number=caf_number,
        representative_name=command.representative_name,
        receive_notices=command.receive_notices,
        signature_date=signed,
        matters=kept,
        message_id=command.message_id,
        purge_on=signed + STUDENT_PURGE_AFTER if command.designation == "k" else None,
    )


@dataclass(frozen=True)
class SortedUnits:
    """A new grant's units within the future limit: those it records, those a later signature
    holds (MK-04) and those under a revocation floor (RT-02)."""

    kept: tuple[Matter, ...]
    superseded: tuple[Matter, ...]
    floored: tuple[Matter, ...]


def _sort_units(
    caf: TaxpayerCaf, command: PostGrant, caf_number: str | None, named: tuple[Matter, ...]
) -> SortedUnits:
    """MK-04 and RT-02 by set intersection: the units later-signed grants of other
    authorizations hold, then those under a floor signed on or after this grant."""
    signed = command.taxpayer_signature_date
    wanted = frozenset(m.unit for m in named)
    later: set[Unit] = set()
    for grant in caf.active(command.form):
        if grant.signature_date > signed and grant.authorization_id != command.authorization_id:
            later |= grant.units & wanted
    under_floor: set[Unit] = set()
    for floor in caf.floors:
        if floor.form == command.form and signed <= floor.signed_on and floor.binds(caf_number):
            under_floor |= wanted if floor.units is None else floor.units & wanted
    under_floor -= later
    return SortedUnits(
        kept=tuple(m for m in named if m.unit not in later and m.unit not in under_floor),
        superseded=tuple(m for m in named if m.unit in later),
        floored=tuple(m for m in named if m.unit in under_floor),
    )


def _retention(command: PostGrant) -> Retention | None:
    """RT-01: paper forms may keep prior authorizations (a Tax Pro Account grant never does);
    a v1 form without a `retain` list keeps all of them."""
    if not command.retain_prior or command.channel == "tpa":
        return None
    return "all-legacy" if command.retain is None else "named"


def _superseded_losses(
    active: tuple[Grant, ...],
    command: PostGrant,
    kept: tuple[Matter, ...],
    retention: Retention | None,
) -> tuple[Loss, ...]:
    """PO-05/RT-01: what earlier-signed grants of other authorizations lose to this one, unit by
    unit (one set intersection per grant); retained grants lose nothing."""
    if retention == "all-legacy":
        return ()
    retained_numbers = set(command.retain.caf_numbers) if command.retain else set()
    retained_ids = set(command.retain.authorization_ids) if command.retain else set()
    wanted = frozenset(m.unit for m in kept)
    losses = []
    for holder in active:
        if (
            holder.signature_date >= command.taxpayer_signature_date
            or holder.authorization_id == command.authorization_id
            or holder.caf_number in retained_numbers
            or holder.authorization_id in retained_ids
        ):
            continue
        if lost := holder.units & wanted:
            losses.append(Loss(holder, holder.covering(lost)))
    return tuple(losses)


def _notice_recipients_after(
    active: tuple[Grant, ...], kept: tuple[Matter, ...], losses: tuple[Loss, ...]
) -> int:
    """PO-04: the most notice recipients any unit of the new grant would have after the
    revocations, counting the new grant."""
    wanted = frozenset(m.unit for m in kept)
    lost = {loss.grant.grant_id: loss.units for loss in losses}
    recipients: Counter[Unit] = Counter()
    for grant in active:
        if grant.receive_notices:
            recipients.update((grant.units & wanted) - lost.get(grant.grant_id, frozenset()))
    return 1 + max(recipients.values(), default=0)


def _matching(
    caf: TaxpayerCaf,
    command: WithdrawGrants | RevokeGrants,
    units: frozenset[Unit] | None,
    caf_numbers: set[str] | None,
) -> tuple[Loss, ...]:
    """The units of active grants a removal takes: of the named representatives and units, and
    only of grants signed on or before it (a later signature wins, whatever arrives first)."""
    signed = command.signature_date
    losses = []
    for grant in caf.active(command.form):
        if caf_numbers is not None and grant.caf_number not in caf_numbers:
            continue
        if signed is not None and grant.signature_date > signed:
            continue
        lost = grant.covering(units)
        if lost:
            losses.append(Loss(grant, lost))
    return tuple(losses)


def _units(specs: list[MatterSpec] | None) -> frozenset[Unit] | None:
    return None if specs is None else frozenset(units_of(specs))


def _floor(
    command: WithdrawGrants | RevokeGrants,
    units: frozenset[Unit] | None,
    caf_numbers: set[str] | None,
) -> Floor | None:
    if command.signature_date is None:
        return None  # a v1 command in flight: no floor to record
    return Floor(
        floor_id=command.message_id,
        form=command.form,
        signed_on=command.signature_date,
        caf_numbers=frozenset(caf_numbers) if caf_numbers is not None else None,
        units=units,
    )


def decide_withdrawal(caf: TaxpayerCaf, command: WithdrawGrants) -> Removal:
    """PO-09/MK-03: the representative's active grants lose the named units (all units when
    none are named); RT-02: the withdrawal's signature day becomes the floor for them."""
    bounded = too_many(command.tax_matters, removal=True)
    if bounded is not None:
        return Removal(rejection=bounded)
    units, numbers = _units(command.tax_matters), {command.caf_number}
    losses = _matching(caf, command, units, numbers)
    if not losses:
        return Removal(
            rejection=Rejection(
                RuleId.PO_09,
                ReasonCode.REJ_NOTHING_TO_WITHDRAW,
                "No active authorization of this representative matches the withdrawal.",
            )
        )
    return Removal(losses=losses, floor=_floor(command, units, numbers))


def decide_revocation(caf: TaxpayerCaf, command: RevokeGrants) -> Removal:
    """PO-10/MK-03: every matching active grant (listed representatives or all) loses the named
    units (all when none are named); RT-02: the revocation's signature day becomes the floor."""
    bounded = too_many(command.tax_matters, removal=True)
    if bounded is not None:
        return Removal(rejection=bounded)
    numbers = set(command.caf_numbers) if command.caf_numbers is not None else None
    units = _units(command.tax_matters)
    losses = _matching(caf, command, units, numbers)
    if not losses:
        return Removal(
            rejection=Rejection(
                RuleId.PO_10,
                ReasonCode.REJ_NOTHING_TO_REVOKE,
                "No active authorization matches the revocation.",
            )
        )
    return Removal(losses=losses, floor=_floor(command, units, numbers))


def decide_purge(caf: TaxpayerCaf, grant_id: str) -> Removal:
    """PO-12: a student representative's grant is removed on its purge day (nothing left to
    remove: no change)."""
    grant = next((g for g in caf.grants if g.grant_id == grant_id and g.matters), None)
    return Removal(losses=(Loss(grant, grant.matters),) if grant else ())


def apply(caf: TaxpayerCaf, decision: Posting | Removal) -> TaxpayerCaf:
    """The CAF after a decision: units lost, the new grant added, its group counted, the
    removal's floor recorded."""
    lost = {
        loss.grant.grant_id: frozenset(m.unit for m in loss.matters) for loss in decision.losses
    }
    grants = [g.without(lost[g.grant_id]) if g.grant_id in lost else g for g in caf.grants]
    groups = dict(caf.groups)
    floors = caf.floors
    if isinstance(decision, Posting) and decision.grant is not None:
        new = decision.grant
        grants.append(new)
        group = groups.get(new.authorization_id) or Group(new.authorization_id, new.signature_date)
        groups[new.authorization_id] = replace(
            group, notice_electors=group.notice_electors + int(new.receive_notices)
        )
    if isinstance(decision, Removal) and decision.floor is not None:
        floors = (*floors, decision.floor)
    return TaxpayerCaf(version=caf.version + 1, grants=tuple(grants), groups=groups, floors=floors)
