"""Pure: from what the store holds of a CAF number and what one event adds, the counts the rules
look at (`rules.Counts`) and the number's spells of use afterwards (MN-05)."""

from __future__ import annotations

from datetime import timedelta

from services.monitor.rules import Counts, Window
from services.monitor.store import Bucket, Delta, Meta, Snapshot, day_key, hour_key

BASELINE_DAYS = 30


def _window(hours: int, buckets: list[Bucket], delta: Delta, refs: set[str] | None) -> Window:
    return Window(
        hours=hours,
        new_grants=sum(b.grants for b in buckets) + delta.grants,
        distinct_taxpayers=len(refs) if refs is not None else 0,
        form_8821=sum(b.form_8821 for b in buckets) + delta.form_8821,
        refusals=sum(b.refusals for b in buckets) + delta.refusals,
        taxpayer_revocations=sum(b.taxpayer_revocations for b in buckets)
        + delta.taxpayer_revocations,
    )


def spell_after(meta: Meta, delta: Delta) -> Meta:
    """MN-05: a grant naming the number ends an idle period of a day or more (a new spell
    begins, with the idle days before it) or continues the current spell."""
    if not delta.grants:
        return meta
    last = meta.last_grant_at
    if last is None:
        return Meta(delta.at, delta.at, None, meta.assigned_at)
    if delta.at - last >= timedelta(days=1):
        return Meta(delta.at, delta.at, (delta.at - last).days, meta.assigned_at)
    started = meta.spell_started_at or delta.at
    return Meta(max(last, delta.at), started, meta.idle_days_before, meta.assigned_at)


def counts_of(snapshot: Snapshot, delta: Delta, meta: Meta) -> Counts:
    """The counts as of `delta.at`, the event included; `meta` is the spell after it."""
    at = delta.at
    day_hours = [b for b in snapshot.hours if b.key >= hour_key(at - timedelta(hours=23))]
    refs = {ref for b in day_hours for ref in b.taxpayers}
    if delta.taxpayer_ref:
        refs.add(delta.taxpayer_ref)
    this_day = day_key(at)
    week = [b for b in snapshot.days if day_key(at - timedelta(days=6)) <= b.key <= this_day]
    month = [b for b in snapshot.days if day_key(at - timedelta(days=29)) <= b.key <= this_day]
    # the baseline: the 30 whole days before today's (UTC) day
    before = [
        b for b in snapshot.days if day_key(at - timedelta(days=BASELINE_DAYS)) <= b.key < this_day
    ]
    history = sum(b.grants for b in before)
    spell_started = meta.spell_started_at or at
    assigned = meta.assigned_at
    return Counts(
        day=_window(24, day_hours, delta, refs),
        week=_window(24 * 7, week, delta, None),
        month=_window(24 * 30, month, delta, None),
        baseline_per_day=history / BASELINE_DAYS if history else None,
        spell_hours=(at - spell_started).total_seconds() / 3600,
        idle_days_before=meta.idle_days_before,
        assigned_days_before=(spell_started - assigned).days if assigned is not None else None,
    )
