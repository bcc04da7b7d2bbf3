"""The misuse monitor's pure parts: the anomaly rules MN-01 … MN-05, the counts they read, the
spells of use and the annual review statement (MN-07)."""

from __future__ import annotations

import datetime as dt

import pytest

from schemas.base import MAX_TEXT
from schemas.codes import RuleId
from services.monitor.counting import counts_of, spell_after
from services.monitor.rules import Counts, Limits, Window, suspicions
from services.monitor.statements import PER_PAGE, reminder, statement_pages
from services.monitor.store import ActiveGrant, Bucket, Delta, Meta, Snapshot, day_key, hour_key

pytestmark = pytest.mark.unit

AT = dt.datetime(2026, 11, 20, 15, 30, tzinfo=dt.UTC)
LIMITS = Limits()


def counts(**changes: object) -> Counts:
    values: dict[str, object] = {
        "day": Window(24),
        "week": Window(168),
        "month": Window(720),
        "baseline_per_day": None,
        "spell_hours": 100.0,
        "idle_days_before": None,
        "assigned_days_before": None,
    }
    values.update(changes)
    return Counts(**values)  # type: ignore[arg-type]


def rules(found: Counts) -> list[RuleId]:
    return [s.rule for s in suspicions(found, LIMITS)]


# MN-01: a burst of taxpayers ------------------------------------------------------------------


def test_mn_01_twenty_taxpayers_in_a_day_is_a_burst_for_a_number_without_history() -> None:
    assert rules(counts(day=Window(24, 19, 19))) == []
    assert rules(counts(day=Window(24, 20, 20))) == [RuleId.MN_01]


def test_mn_01_a_busy_numbers_own_baseline_raises_its_threshold() -> None:
    busy = counts(day=Window(24, 30, 30), baseline_per_day=10.0)  # 4 x 10 = 40
    assert rules(busy) == []
    [found] = suspicions(counts(day=Window(24, 40, 40), baseline_per_day=10.0), LIMITS)
    assert (found.rule, found.observed, found.threshold) == (RuleId.MN_01, 40, 40.0)


def test_mn_01_a_quiet_numbers_baseline_never_lowers_the_ceiling() -> None:
    assert rules(counts(day=Window(24, 12, 12), baseline_per_day=0.5)) == []


# MN-02: transcript fishing --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("grants", "form_8821", "raised"),
    [(19, 19, False), (20, 15, False), (20, 16, True), (50, 50, True)],
)
def test_mn_02_mostly_8821s_in_volume_over_a_week_is_suspect(
    grants: int, form_8821: int, raised: bool
) -> None:
    found = counts(week=Window(168, grants, grants, form_8821))
    assert (RuleId.MN_02 in rules(found)) is raised


# MN-03, MN-04 ---------------------------------------------------------------------------------


def test_mn_03_five_refusals_for_a_wrong_name_or_standing_in_a_week() -> None:
    assert rules(counts(week=Window(168, refusals=4))) == []
    assert rules(counts(week=Window(168, refusals=5))) == [RuleId.MN_03]


def test_mn_04_three_taxpayer_revocations_of_young_grants_in_thirty_days() -> None:
    assert rules(counts(month=Window(720, taxpayer_revocations=2))) == []
    assert rules(counts(month=Window(720, taxpayer_revocations=3))) == [RuleId.MN_04]


# MN-05: first use after idle or assignment ----------------------------------------------------


@pytest.mark.parametrize(
    ("idle", "assigned", "spell_hours", "taxpayers", "raised"),
    [
        (180, None, 2.0, 10, True),  # a long idle, then ten taxpayers the first day
        (179, None, 2.0, 10, False),  # not idle long enough
        (None, 7, 2.0, 10, True),  # right after assignment
        (None, 8, 2.0, 10, False),
        (200, None, 2.0, 9, False),  # not enough taxpayers
        (200, None, 25.0, 10, False),  # no longer the first day of the spell
    ],
)
def test_mn_05_first_use_after_a_long_idle_or_right_after_assignment(
    idle: int | None, assigned: int | None, spell_hours: float, taxpayers: int, raised: bool
) -> None:
    found = counts(
        day=Window(24, taxpayers, taxpayers),
        spell_hours=spell_hours,
        idle_days_before=idle,
        assigned_days_before=assigned,
    )
    assert (RuleId.MN_05 in rules(found)) is raised


# the counts and spells ------------------------------------------------------------------------


def bucket(key: str, grants: int = 0, refs: tuple[str, ...] = (), **more: int) -> Bucket:
    return Bucket(
        key,
        grants,
        more.get("form_8821", 0),
        more.get("refusals", 0),
        more.get("revocations", 0),
        frozenset(refs),
    )


def test_the_day_counts_distinct_taxpayers_of_the_last_24_hours_with_the_event() -> None:
    snapshot = Snapshot(
        hours=[
            bucket(hour_key(AT - dt.timedelta(hours=24)), 5, ("old",)),  # outside the 24 hours
            bucket(hour_key(AT - dt.timedelta(hours=3)), 2, ("a", "b")),
            bucket(hour_key(AT), 2, ("b", "c")),
        ],
        days=[],
        meta=Meta(),
    )
    delta = Delta(AT, grants=1, taxpayer_ref="d")
    found = counts_of(snapshot, delta, spell_after(snapshot.meta, delta))
    assert (found.day.new_grants, found.day.distinct_taxpayers) == (5, 4)


def test_the_week_month_and_baseline_come_from_the_days() -> None:
    days = [
        bucket(day_key(AT - dt.timedelta(days=n)), 3, refusals=1, form_8821=1) for n in range(35)
    ]
    snapshot = Snapshot([], days, Meta())
    found = counts_of(snapshot, Delta(AT, refusals=1), Meta())
    assert found.week.new_grants == 7 * 3
    assert found.week.refusals == 7 + 1
    assert found.month.form_8821 == 30
    assert found.baseline_per_day == 3.0  # the 30 whole days before today


def test_a_grant_after_a_day_or_more_begins_a_spell_with_its_idle_days() -> None:
    before = Meta(
        last_grant_at=AT - dt.timedelta(days=200), spell_started_at=AT - dt.timedelta(days=400)
    )
    after = spell_after(before, Delta(AT, grants=1))
    assert (after.spell_started_at, after.idle_days_before) == (AT, 200)
    later = spell_after(after, Delta(AT + dt.timedelta(hours=2), grants=1))
    assert (later.spell_started_at, later.idle_days_before) == (AT, 200)
    assert spell_after(later, Delta(AT, refusals=1)) == later  # only grants move spells


def test_the_days_from_assignment_to_the_spell_are_counted() -> None:
    meta = spell_after(Meta(assigned_at=AT - dt.timedelta(days=3)), Delta(AT, grants=1))
    found = counts_of(Snapshot([], [], meta), Delta(AT, grants=1, taxpayer_ref="a"), meta)
    assert found.assigned_days_before == 3
    assert found.idle_days_before is None


# MN-07: the annual review statement -----------------------------------------------------------


def grant(n: int, since: dt.datetime = AT) -> ActiveGrant:
    return ActiveGrant(
        "030112345",
        f"m-{n}:0",
        f"{n:04d}",
        "2848",
        [{"tax_type": "Income", "form_number": "1040", "periods": ["2024", "2025"]}],
        since,
    )


def test_mn_07_a_statement_lists_every_active_grant_in_pages_that_fit() -> None:
    grants = [grant(n) for n in range(PER_PAGE * 2 + 1)]
    pages = statement_pages("annual-2027", "030112345", grants, AT)
    assert len(pages) == 3
    listed = [line for page in pages for line in page.body.splitlines() if line.startswith("- ")]
    assert len(listed) == len(grants)
    assert all(len(page.body) <= MAX_TEXT for page in pages)
    assert len({page.notification_id for page in pages}) == 3
    assert len({page.event_id for page in pages}) == 3  # one notice per (event, recipient)
    assert all("withdraw" in page.body.lower() for page in pages)
    assert "...0001 Form 2848 1040 2024, 2025 since 2026-11-20" in pages[0].body


def test_mn_07_the_same_run_makes_the_same_notices() -> None:
    grants = [grant(1)]
    assert statement_pages("r", "030112345", grants, AT) == statement_pages(
        "r", "030112345", grants, AT
    )


def test_mn_07_old_grants_and_no_new_one_for_years_bring_a_reminder() -> None:
    old = [grant(1, AT - dt.timedelta(days=1200))]
    after = dt.timedelta(days=1095)
    quiet = AT - dt.timedelta(days=1100)
    assert reminder("r", "030112345", old, last_grant_at=quiet, now=AT, remind_after=after)
    busy = AT - dt.timedelta(days=10)
    assert not reminder("r", "030112345", old, last_grant_at=busy, now=AT, remind_after=after)
    young = [grant(1, AT - dt.timedelta(days=100))]
    assert not reminder("r", "030112345", young, last_grant_at=quiet, now=AT, remind_after=after)


def test_mn_07_the_monitor_may_write_the_statement_runs_it_starts_itself() -> None:
    """Its yearly timer publishes a StatementRun to `caf.statements.v1`: its principal must be
    allowed to (else the run is claimed and never published)."""
    from caf_runtime.topology import SERVICE_ROLES  # noqa: PLC0415 - one test's concern
    from schemas import topics  # noqa: PLC0415

    [monitor] = [role for role in SERVICE_ROLES if role.principal == "monitor"]
    assert topics.STATEMENTS in monitor.writes
    assert {topics.EVENTS, topics.NOTIFICATIONS} <= set(monitor.writes)
