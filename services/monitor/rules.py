"""The monitor's pure decisions (docs/rules.md §13): when the counts of one CAF number look like
misuse ("using stolen CAF numbers to try to obtain tax transcripts is the latest ID theft trend").

In: the number's counts over the last 24 hours, 7 days and 30 days (grants naming it, posted or
held; distinct taxpayers; 8821s; refusals for a name mismatch or a number not in good standing;
revocations by taxpayers of grants younger than 30 days), its own baseline (daily average of the
30 days before the last 24 hours) and how long it was idle before its current spell of use or
since it was assigned. Out: the anomalies, each against a fixed ceiling and, where it makes
sense, against the number's own baseline.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.codes import RuleId
from schemas.events import MisuseSignal


@dataclass(frozen=True)
class Limits:
    """The thresholds (configuration: `MONITOR_*`)."""

    burst_ceiling: int = 20  # MN-01: distinct taxpayers in 24 hours, whatever the baseline
    burst_factor: float = 4.0  # MN-01: ... or this many times the number's own daily average
    share_min_grants: int = 20  # MN-02: at least this many grants in 7 days
    share_8821: float = 0.8  # MN-02: ... of which at least this share are 8821s
    refusals: int = 5  # MN-03: in 7 days
    revocations: int = 3  # MN-04: in 30 days
    first_use_ceiling: int = 10  # MN-05: distinct taxpayers in the first 24 hours of a spell
    idle_days: int = 180  # MN-05: a spell that follows this long without a grant
    fresh_days: int = 7  # MN-05: ... or that starts this soon after the number was assigned


@dataclass(frozen=True)
class Window:
    """Counts of one CAF number over a window."""

    hours: int
    new_grants: int = 0
    distinct_taxpayers: int = 0
    form_8821: int = 0
    refusals: int = 0
    taxpayer_revocations: int = 0


@dataclass(frozen=True)
class Counts:
    """Everything the rules look at, as of the event being handled (included)."""

    day: Window
    week: Window
    month: Window
    baseline_per_day: float | None  # None: no history in the 30 days before
    spell_hours: float  # how long the number's current spell of use has lasted
    idle_days_before: int | None  # idle days before the spell (None: no earlier grant)
    assigned_days_before: int | None  # days from assignment to the spell (None: not ours)


@dataclass(frozen=True)
class Suspicion:
    """One anomaly: the rule, what kind, the figure and the threshold it crossed."""

    rule: RuleId
    signal: MisuseSignal
    observed: float
    threshold: float
    window: Window


def _burst(counts: Counts, limits: Limits) -> Suspicion | None:
    """MN-01: many taxpayers in a day, beyond a ceiling and the number's own habit."""
    threshold = float(limits.burst_ceiling)
    if counts.baseline_per_day is not None:
        threshold = max(threshold, limits.burst_factor * counts.baseline_per_day)
    observed = counts.day.distinct_taxpayers
    if observed < threshold:
        return None
    return Suspicion(RuleId.MN_01, "burst", observed, threshold, counts.day)


def _transcript_share(counts: Counts, limits: Limits) -> Suspicion | None:
    """MN-02: a number used mostly for 8821s (transcripts) in volume."""
    week = counts.week
    if week.new_grants < limits.share_min_grants:
        return None
    share = week.form_8821 / week.new_grants
    if share < limits.share_8821:
        return None
    return Suspicion(RuleId.MN_02, "transcript_share", round(share, 3), limits.share_8821, week)


def _refusals(counts: Counts, limits: Limits) -> Suspicion | None:
    """MN-03: forms with a name that does not match the number, or for a number not in good
    standing, keep coming."""
    if counts.week.refusals < limits.refusals:
        return None
    return Suspicion(RuleId.MN_03, "refusals", counts.week.refusals, limits.refusals, counts.week)


def _revocations(counts: Counts, limits: Limits) -> Suspicion | None:
    """MN-04: taxpayers revoke what the number was just given."""
    observed = counts.month.taxpayer_revocations
    if observed < limits.revocations:
        return None
    return Suspicion(
        RuleId.MN_04, "taxpayer_revocations", observed, limits.revocations, counts.month
    )


def _first_use(counts: Counts, limits: Limits) -> Suspicion | None:
    """MN-05: a number that was idle for long, or was just assigned, suddenly serves many
    taxpayers in the first day of its use."""
    if counts.spell_hours > 24:
        return None
    idle = counts.idle_days_before is not None and counts.idle_days_before >= limits.idle_days
    fresh = (
        counts.assigned_days_before is not None and counts.assigned_days_before <= limits.fresh_days
    )
    observed = counts.day.distinct_taxpayers
    if not (idle or fresh) or observed < limits.first_use_ceiling:
        return None
    return Suspicion(
        RuleId.MN_05, "first_use_burst", observed, limits.first_use_ceiling, counts.day
    )


def suspicions(counts: Counts, limits: Limits) -> list[Suspicion]:
    """MN-01 … MN-05: every anomaly the counts show, in rule order."""
    found = (
        check(counts, limits)
        for check in (_burst, _transcript_share, _refusals, _revocations, _first_use)
    )
    return [suspicion for suspicion in found if suspicion is not None]
