"""The monitor's outcomes as pure builders: a suspicion as the event it publishes (MN-01 …
MN-06). The annual statements are built in `statements.py`."""

from __future__ import annotations

from schemas.events import CafMisuseSuspected, Event, MisuseEvidence
from schemas.ids import event_id
from services.monitor.rules import Counts, Suspicion


def misuse_event(
    trigger: Event, caf_number: str, found: Suspicion, day: str, counts: Counts
) -> CafMisuseSuspected:
    """The suspicion as an event: named by the number, rule and day (at most one each)."""
    window = found.window
    baseline = counts.baseline_per_day
    return CafMisuseSuspected(
        event_id=event_id("CafMisuseSuspected", caf_number, str(found.rule), day),
        type="CafMisuseSuspected",
        occurred_at=trigger.occurred_at,
        taxpayer_ref=trigger.taxpayer_ref,
        tin_last4="",
        form=trigger.form,
        message_id=trigger.message_id,
        grant_id=trigger.grant_id,
        caf_number=caf_number,
        stage="monitor",
        rule_id=found.rule,
        signal=found.signal,
        observed=found.observed,
        threshold=found.threshold,
        evidence=MisuseEvidence(
            window_hours=window.hours,
            new_grants=window.new_grants,
            distinct_taxpayers=window.distinct_taxpayers,
            form_8821=window.form_8821,
            refusals=window.refusals,
            taxpayer_revocations=window.taxpayer_revocations,
            baseline_per_day=round(baseline, 2) if baseline is not None else None,
            idle_days=counts.idle_days_before,
        ),
    )
