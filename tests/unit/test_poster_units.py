"""The poster on period units (docs/rules.md §5, §6: MK-03 … MK-06, RT-01, RT-02), and properties of
random sequences against a naive per-unit reference model."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.codes import ReasonCode, RuleId
from schemas.grants import MatterSpec, PostGrant, Retention, RevokeGrants, WithdrawGrants
from services.caf_poster.domain import TaxpayerCaf
from services.caf_poster.rules import (
    MAX_NOTICE_RECIPIENTS,
    Posting,
    Removal,
    apply,
    decide_posting,
    decide_revocation,
    decide_withdrawal,
    hold_until,
)
from tests.unit.builders import NOW, RECEIVED, post_grant

pytestmark = pytest.mark.unit

DAY = dt.date(2026, 11, 18)


def spec(*periods: str, tax_type: str = "Income", form_number: str = "1040") -> MatterSpec:
    return MatterSpec(tax_type=tax_type, form_number=form_number, periods=list(periods))


def grant(n: int, *specs: MatterSpec, signed: dt.date = DAY, **changes: Any) -> PostGrant:
    values: dict[str, Any] = {
        "grant_id": f"m-{n}:0",
        "message_id": f"m-{n}",
        "authorization_id": f"m-{n}",
        "caf_number": f"0301{n:05d}",
        "taxpayer_signature_date": signed,
        "tax_matters": list(specs) or [spec("2024")],
    }
    values.update(changes)
    return post_grant(**values)


def revoke(
    *specs: MatterSpec, signed: dt.date = DAY, caf_numbers: list[str] | None = None, n: int = 1
) -> RevokeGrants:
    return RevokeGrants.model_validate(
        {
            "action": "revoke",
            "message_id": f"r-{n}",
            "taxpayer_ref": "a" * 32,
            "tin_last4": "6789",
            "form": "2848",
            "received_at": NOW,
            "caf_numbers": caf_numbers,
            "tax_matters": list(specs) or None,
            "signature_date": signed,
        },
        strict=False,
    )


def withdraw(caf_number: str, *specs: MatterSpec, signed: dt.date = DAY, n: int = 1) -> Any:
    return WithdrawGrants.model_validate(
        {
            "action": "withdraw",
            "message_id": f"w-{n}",
            "taxpayer_ref": "a" * 32,
            "tin_last4": "6789",
            "form": "2848",
            "received_at": NOW,
            "caf_number": caf_number,
            "tax_matters": list(specs) or None,
            "signature_date": signed,
        },
        strict=False,
    )


def post(caf: TaxpayerCaf, command: PostGrant) -> tuple[TaxpayerCaf, Posting]:
    decision = decide_posting(caf, command, command.caf_number)
    return apply(caf, decision), decision


def periods_of(caf: TaxpayerCaf, grant_id: str) -> list[str]:
    [found] = [g for g in caf.grants if g.grant_id == grant_id]
    return [m.period for m in found.matters]


def code(decision: Posting | Removal) -> tuple[RuleId, ReasonCode] | None:
    return (decision.rejection.rule, decision.rejection.code) if decision.rejection else None


def test_mk_03_a_new_poa_for_one_year_revokes_only_that_year_of_a_range() -> None:
    """MK-03 / PO-05: a prior 2020 thru 2025 keeps 2020-2023 and 2025 when a 2024 POA posts."""
    caf, _ = post(TaxpayerCaf(), grant(1, spec("2020 thru 2025"), signed=DAY))
    caf, decision = post(caf, grant(2, spec("2024"), signed=DAY + dt.timedelta(days=1)))
    [loss] = decision.losses
    assert [m.period for m in loss.matters] == ["2024"]
    assert [m.period for m in loss.remaining] == ["2020", "2021", "2022", "2023", "2025"]
    assert periods_of(caf, "m-1:0") == ["2020", "2021", "2022", "2023", "2025"]
    assert [g.grant_id for g in caf.active("2848")] == ["m-1:0", "m-2:0"]


def test_mk_03_revoking_one_year_ends_only_that_year_and_the_last_unit_ends_the_grant() -> None:
    """MK-03 / PO-10."""
    caf, _ = post(TaxpayerCaf(), grant(1, spec("2021 thru 2023")))
    decision = decide_revocation(caf, revoke(spec("2022")))
    [loss] = decision.losses
    assert ([m.period for m in loss.matters], [m.period for m in loss.remaining]) == (
        ["2022"],
        ["2021", "2023"],
    )
    caf = apply(caf, decision)
    caf = apply(caf, decide_revocation(caf, revoke(spec("2021", "2023"), n=2)))
    assert caf.active("2848") == ()


def test_mk_03_a_withdrawal_of_one_quarter_leaves_the_other_three() -> None:
    """MK-03 / PO-09 on a quarterly family."""
    caf, _ = post(TaxpayerCaf(), grant(1, spec("2024", tax_type="Employment", form_number="941")))
    caf = apply(
        caf,
        decide_withdrawal(
            caf, withdraw("030100001", spec("2024-06", tax_type="Employment", form_number="941"))
        ),
    )
    assert periods_of(caf, "m-1:0") == ["2024-03", "2024-09", "2024-12"]


def test_mk_01_a_941_quarter_revokes_that_quarter_of_a_941_year_only() -> None:
    """MK-01 / MK-02: `2024-12` of Form 941 is one quarter, not the whole year."""
    employment = {"tax_type": "Employment Tax", "form_number": "Form 941"}
    caf, _ = post(TaxpayerCaf(), grant(1, spec("2024", **employment)))
    caf, decision = post(
        caf,
        grant(
            2,
            spec("2024-12", tax_type="Employment", form_number="941-X"),
            signed=DAY + dt.timedelta(days=1),
        ),
    )
    assert [m.period for m in decision.losses[0].matters] == ["2024-12"]
    assert periods_of(caf, "m-1:0") == ["2024-03", "2024-06", "2024-09"]


def test_mk_01_synonyms_overlap_so_the_older_poa_is_revoked_and_the_notice_cap_holds() -> None:
    """MK-01 / PO-05 / PO-04: "Income Tax"/"Form 1040" and "Income"/"1040-SR" are one key."""
    caf, _ = post(
        TaxpayerCaf(), grant(1, spec("2024", tax_type="Income Tax", form_number="Form 1040"))
    )
    _, decision = post(
        caf,
        grant(2, spec("2024", form_number="1040-SR"), signed=DAY + dt.timedelta(days=1)),
    )
    assert [loss.grant.grant_id for loss in decision.losses] == ["m-1:0"]
    caf = TaxpayerCaf()
    for n, words in enumerate(
        [("Income Tax", "Form 1040"), ("Income", "1040-SR"), ("income", "1040 NR")], start=1
    ):
        caf, decision = post(
            caf,
            grant(
                n,
                spec("2024", tax_type=words[0], form_number=words[1]),
                receive_notices=True,
                retain_prior=True,
            ),
        )
    assert code(decision) == (RuleId.PO_04, ReasonCode.NP_NOTICE_LIMIT_EXCEEDED)


def test_mk_04_units_held_by_a_later_signature_are_dropped_and_the_rest_posts() -> None:
    """MK-04: one overlapping unit no longer refuses the whole grant."""
    caf, _ = post(TaxpayerCaf(), grant(1, spec("2024"), signed=DAY))
    caf, decision = post(caf, grant(2, spec("2023 thru 2025"), signed=DAY - dt.timedelta(days=3)))
    assert decision.grant is not None
    assert [m.period for m in decision.grant.matters] == ["2023", "2025"]
    assert [(d.matter.period, d.code) for d in decision.dropped] == [
        ("2024", ReasonCode.PART_SUPERSEDED)
    ]
    assert periods_of(caf, "m-1:0") == ["2024"]
    _, refused = post(caf, grant(3, spec("2024"), signed=DAY - dt.timedelta(days=5)))
    assert code(refused) == (RuleId.PO_06, ReasonCode.NP_SUPERSEDED)


def test_mk_05_a_range_into_the_future_keeps_its_recordable_years() -> None:
    """MK-05 / PO-07: 2024 thru 2035 received in 2026 records 2024-2029."""
    _, decision = post(TaxpayerCaf(), grant(1, spec("2024 thru 2035")))
    assert decision.grant is not None
    assert RECEIVED.year == 2026
    assert [m.period for m in decision.grant.matters] == [str(y) for y in range(2024, 2030)]
    assert [d.matter.period for d in decision.dropped] == [str(y) for y in range(2030, 2036)]
    assert {d.code for d in decision.dropped} == {ReasonCode.PART_FUTURE_PERIOD_DROPPED}


def test_rt_01_retain_names_the_one_prior_representative_that_stays() -> None:
    """RT-01: only the named prior grants remain; every other overlapping one is revoked."""
    caf, _ = post(TaxpayerCaf(), grant(1, spec("2024")))
    caf, _ = post(caf, grant(2, spec("2024"), authorization_id="m-1", grant_id="m-1:1"))
    newer = grant(
        3,
        spec("2024"),
        signed=DAY + dt.timedelta(days=2),
        retain_prior=True,
        retain=Retention(caf_numbers=["030100001"]),
    )
    caf, decision = post(caf, newer)
    assert decision.retention == "named"
    assert [loss.grant.grant_id for loss in decision.losses] == ["m-1:1"]
    assert {g.grant_id for g in caf.active("2848")} == {"m-1:0", "m-3:0"}


def test_rt_01_retain_by_authorization_id_and_the_v1_meaning_without_a_list() -> None:
    """RT-01: `retain` may name an authorization; `retain_prior` alone keeps all (all-legacy);
    a Tax Pro Account grant never retains."""
    caf, _ = post(TaxpayerCaf(), grant(1, spec("2024")))
    later = DAY + dt.timedelta(days=1)
    _, by_id = post(
        caf,
        grant(2, signed=later, retain_prior=True, retain=Retention(authorization_ids=["m-1"])),
    )
    assert (by_id.retention, by_id.losses) == ("named", ())
    _, legacy = post(caf, grant(2, signed=later, retain_prior=True))
    assert (legacy.retention, legacy.losses) == ("all-legacy", ())
    _, tpa = post(caf, grant(2, signed=later, retain_prior=True, channel="tpa"))
    assert tpa.retention is None
    assert len(tpa.losses) == 1


def test_rt_02_a_form_signed_before_a_revocation_does_not_bring_its_units_back() -> None:
    """RT-02: the revocation floor, per unit; units outside it still post."""
    caf, _ = post(TaxpayerCaf(), grant(1, spec("2023", "2024")))
    caf = apply(
        caf, decide_revocation(caf, revoke(spec("2024"), signed=DAY + dt.timedelta(days=5)))
    )
    old = grant(2, spec("2024", "2025"), signed=DAY + dt.timedelta(days=4))
    caf, decision = post(caf, old)
    assert decision.grant is not None
    assert [m.period for m in decision.grant.matters] == ["2025"]
    assert [(d.matter.period, d.code) for d in decision.dropped] == [
        ("2024", ReasonCode.PART_SUPERSEDED)
    ]
    _, only_floored = post(caf, grant(3, spec("2024"), signed=DAY + dt.timedelta(days=5)))
    assert code(only_floored) == (RuleId.RT_02, ReasonCode.NP_SUPERSEDED)
    _, after_floor = post(caf, grant(4, spec("2024"), signed=DAY + dt.timedelta(days=6)))
    assert after_floor.grant is not None


def test_rt_02_a_withdrawal_floor_binds_only_the_representative_who_withdrew() -> None:
    """RT-02: per representative for a withdrawal."""
    caf, _ = post(TaxpayerCaf(), grant(1, spec("2024")))
    caf = apply(
        caf, decide_withdrawal(caf, withdraw("030100001", signed=DAY + dt.timedelta(days=3)))
    )
    _, same_rep = post(
        caf, grant(2, spec("2024"), caf_number="030100001", signed=DAY + dt.timedelta(days=1))
    )
    assert code(same_rep) == (RuleId.RT_02, ReasonCode.NP_SUPERSEDED)
    _, other_rep = post(caf, grant(3, spec("2024"), signed=DAY + dt.timedelta(days=1)))
    assert other_rep.grant is not None


def test_a_v1_removal_without_a_signature_day_leaves_no_floor() -> None:
    caf, _ = post(TaxpayerCaf(), grant(1, spec("2024")))
    command = revoke().model_copy(update={"signature_date": None})
    after = apply(caf, decide_revocation(caf, command))
    assert after.floors == ()


# Properties: random sequences for one taxpayer against a naive per-unit reference model.

YEARS = (2022, 2023, 2024, 2025)
PERIOD_TEXTS = ["2022", "2023", "2024", "2025", "2022 thru 2024", "2023-2025", "2029 thru 2031"]
WORDS = [("Income", "1040"), ("Income Tax", "Form 1040-SR"), ("Employment", "941")]


def naive_units(tax_type: str, form_number: str, text: str) -> set[tuple[str, int, int]]:
    """Deliberately simple: only the shapes the strategy draws."""
    family = "941" if "941" in form_number else "1040"
    if "thru" in text or text.count("-") == 1:
        first, last = (int(p) for p in text.replace("thru", "-").replace(" ", "").split("-"))
    else:
        first = last = int(text)
    months = (3, 6, 9, 12) if family == "941" else (12,)
    return {(family, y, m) for y in range(first, last + 1) for m in months}


@dataclass
class Model:
    """Per unit: which grant holds it, with that grant's facts; floors as plain lists."""

    holders: dict[tuple[str, int, int], dict[str, PostGrant]] = field(default_factory=dict)
    posted: set[str] = field(default_factory=set)
    floors: list[tuple[dt.date, set[str] | None, set[tuple[str, int, int]] | None]] = field(
        default_factory=list
    )
    electors_by_group: dict[str, int] = field(default_factory=dict)

    def post(self, command: PostGrant) -> None:
        if command.grant_id in self.posted:
            return
        units = set().union(
            *(
                naive_units(s.tax_type, s.form_number, p)
                for s in command.tax_matters
                for p in s.periods
            )
        )
        units = {u for u in units if u[1] <= RECEIVED.year + 3}
        signed = command.taxpayer_signature_date
        kept = set()
        for unit in units:
            holders = self.holders.get(unit, {}).values()
            if any(
                h.taxpayer_signature_date > signed
                and h.authorization_id != command.authorization_id
                for h in holders
            ):
                continue
            if any(
                signed <= day
                and (numbers is None or command.caf_number in numbers)
                and (covered is None or unit in covered)
                for day, numbers, covered in self.floors
            ):
                continue
            kept.add(unit)
        if not kept:
            return
        retain_all = command.retain_prior and command.retain is None
        losers = {
            (unit, h.grant_id)
            for unit in kept
            for h in self.holders.get(unit, {}).values()
            if h.taxpayer_signature_date < signed
            and h.authorization_id != command.authorization_id
            and not retain_all
            and not (
                command.retain_prior
                and command.retain
                and h.caf_number in command.retain.caf_numbers
            )
        }
        if command.receive_notices:
            if self.electors_by_group.get(command.authorization_id, 0) >= MAX_NOTICE_RECIPIENTS:
                return
            for unit in kept:
                electors = [
                    h
                    for h in self.holders.get(unit, {}).values()
                    if h.receive_notices and (unit, h.grant_id) not in losers
                ]
                if len(electors) + 1 > MAX_NOTICE_RECIPIENTS:
                    return
        for unit, grant_id in losers:
            del self.holders[unit][grant_id]
        for unit in kept:
            self.holders.setdefault(unit, {})[command.grant_id] = command
        self.posted.add(command.grant_id)
        self.electors_by_group[command.authorization_id] = self.electors_by_group.get(
            command.authorization_id, 0
        ) + int(command.receive_notices)

    def remove(
        self, numbers: set[str] | None, specs: list[MatterSpec] | None, signed: dt.date
    ) -> None:
        wanted = (
            None
            if specs is None
            else set().union(
                *(naive_units(s.tax_type, s.form_number, p) for s in specs for p in s.periods)
            )
        )
        removed = False
        for unit, holders in self.holders.items():
            if wanted is not None and unit not in wanted:
                continue
            for grant_id in [
                g
                for g, h in holders.items()
                if (numbers is None or h.caf_number in numbers)
                and h.taxpayer_signature_date <= signed
            ]:
                del holders[grant_id]
                removed = True
        if removed:
            self.floors.append((signed, numbers, wanted))

    def active(self) -> set[tuple[str, tuple[str, int, int]]]:
        return {(g, unit) for unit, holders in self.holders.items() for g in holders}


def _post(
    *, n: int, sign: int, notices: bool, periods: list[str], words: int, retain: int, caf: int
) -> tuple[str, Any]:
    tax_type, form_number = WORDS[words]
    retention = (
        {"retain_prior": True, "retain": Retention(caf_numbers=[f"03010000{retain}"])}
        if retain >= 0
        else {}
    )
    return (
        "post",
        grant(
            n,
            spec(*periods, tax_type=tax_type, form_number=form_number),
            signed=DAY - dt.timedelta(days=sign),
            receive_notices=notices,
            caf_number=f"03010000{caf}",
            **retention,
        ),
    )


commands = st.one_of(
    st.builds(
        _post,
        n=st.integers(0, 10_000),
        sign=st.integers(0, 30),
        notices=st.booleans(),
        periods=st.lists(st.sampled_from(PERIOD_TEXTS), min_size=1, max_size=3, unique=True),
        words=st.integers(0, len(WORDS) - 1),
        retain=st.integers(-3, 4),
        caf=st.integers(0, 4),
    ),
    st.builds(
        lambda caf, periods, sign, n: (
            "withdraw",
            withdraw(
                f"03010000{caf}",
                *([spec(*periods)] if periods else []),
                signed=DAY - dt.timedelta(days=sign),
                n=n,
            ),
        ),
        st.integers(0, 4),
        st.lists(st.sampled_from(PERIOD_TEXTS[:6]), max_size=2, unique=True),
        st.integers(0, 30),
        st.integers(0, 10_000),
    ),
    st.builds(
        lambda cafs, periods, sign, n: (
            "revoke",
            revoke(
                *([spec(*periods)] if periods else []),
                signed=DAY - dt.timedelta(days=sign),
                caf_numbers=cafs,
                n=n,
            ),
        ),
        st.none() | st.lists(st.integers(0, 4).map(lambda c: f"03010000{c}"), max_size=2),
        st.lists(st.sampled_from(PERIOD_TEXTS[:6]), max_size=2, unique=True),
        st.integers(0, 30),
        st.integers(0, 10_000),
    ),
)


def run(caf: TaxpayerCaf, kind: str, command: Any) -> tuple[TaxpayerCaf, Posting | Removal]:
    if kind == "post":
        return post(caf, command)
    decision = (decide_withdrawal if kind == "withdraw" else decide_revocation)(caf, command)
    return apply(caf, decision), decision


def active_units(caf: TaxpayerCaf) -> set[tuple[str, tuple[str, int, int]]]:
    return {
        (g.grant_id, (m.unit.key, m.unit.year, m.unit.month))
        for g in caf.active("2848")
        for m in g.matters
    }


@settings(max_examples=300, deadline=None)
@given(st.lists(commands, max_size=14))
def test_the_active_units_are_exactly_what_the_per_unit_reference_model_says(
    sequence: list[tuple[str, Any]],
) -> None:
    """MK-03, MK-04, MK-05, PO-03/04/05, RT-01, RT-02 together, against the naive model."""
    caf, model = TaxpayerCaf(), Model()
    for kind, command in sequence:
        caf, _ = run(caf, kind, command)
        if kind == "post":
            model.post(command)
        else:
            numbers = (
                {command.caf_number}
                if kind == "withdraw"
                else (set(command.caf_numbers) if command.caf_numbers is not None else None)
            )
            model.remove(numbers, command.tax_matters, command.signature_date)
        assert active_units(caf) == model.active()


@settings(max_examples=200, deadline=None)
@given(st.lists(commands, max_size=14))
def test_no_unit_ever_has_more_than_two_notice_recipients(
    sequence: list[tuple[str, Any]],
) -> None:
    """PO-03 / PO-04 invariant, per unit."""
    caf = TaxpayerCaf()
    for kind, command in sequence:
        caf, _ = run(caf, kind, command)
        electors: dict[Any, int] = {}
        for g in caf.active("2848"):
            if g.receive_notices:
                for m in g.matters:
                    electors[m.unit] = electors.get(m.unit, 0) + 1
        assert all(count <= MAX_NOTICE_RECIPIENTS for count in electors.values())


@settings(max_examples=150, deadline=None)
@given(st.lists(commands, min_size=1, max_size=12), st.data())
def test_replaying_any_message_changes_nothing(
    sequence: list[tuple[str, Any]], data: st.DataObject
) -> None:
    """A redelivered post of a grant already on the CAF is a no-op; a redelivered removal can
    only remove what its first delivery already removed."""
    caf = TaxpayerCaf()
    for kind, command in sequence:
        caf, _ = run(caf, kind, command)
    kind, command = data.draw(st.sampled_from(sequence))
    if kind == "post":
        if not any(g.grant_id == command.grant_id for g in caf.grants):
            return  # refused the first time: the ledger re-emits that refusal instead
        again, decision = post(caf, command)
        assert decision == Posting()
        assert (again.grants, again.groups, again.floors) == (caf.grants, caf.groups, caf.floors)


@settings(max_examples=200, deadline=None)
@given(st.lists(commands, max_size=14))
def test_a_revoked_unit_never_comes_back_through_a_form_signed_before_the_revocation(
    sequence: list[tuple[str, Any]],
) -> None:
    """RT-02: after a removal signed on D covering a unit, no grant signed on or before D holds
    that unit unless it held it already and the removal did not name it for that grant."""
    caf = TaxpayerCaf()
    for kind, command in sequence:
        before = {g.grant_id for g in caf.grants}
        caf, decision = run(caf, kind, command)
        if kind != "post" or not isinstance(decision, Posting) or decision.grant is None:
            continue
        assert decision.grant.grant_id not in before
        for matter in decision.grant.matters:
            for floor in caf.floors:
                if floor.covers(matter.unit, decision.grant.caf_number):
                    assert decision.grant.signature_date > floor.signed_on


def test_tb_02_an_approval_is_held_at_most_the_reorder_window_after_it_arrived() -> None:
    """PO-03 / TB-02."""
    window = dt.timedelta(minutes=2)
    member = grant(1, grant_id="g-1:req-2", authorization_id="g-1")
    late = member.model_copy(update={"approved_at": NOW - dt.timedelta(minutes=1)})
    assert hold_until(late, NOW, window) == NOW + dt.timedelta(minutes=1)
    old = member.model_copy(update={"approved_at": NOW - dt.timedelta(minutes=3)})
    assert hold_until(old, NOW, window) is None
    future = member.model_copy(update={"approved_at": NOW + dt.timedelta(days=3)})
    assert hold_until(future, NOW, window) == NOW + window
    alone = grant(2).model_copy(update={"approved_at": NOW})
    assert hold_until(alone.model_copy(update={"authorization_id": "m-2:0"}), NOW, window) is None


def test_a_removal_never_takes_a_grant_signed_after_it_whatever_arrives_first() -> None:
    """PO-10 / RT-02: a revocation signed on the 5th that arrives after a form signed on the
    10th leaves that form alone, as it would have if it had arrived first."""
    caf, _ = post(TaxpayerCaf(), grant(1, spec("2024"), signed=DAY + dt.timedelta(days=10)))
    late = decide_revocation(caf, revoke(spec("2024"), signed=DAY + dt.timedelta(days=5)))
    assert code(late) == (RuleId.PO_10, ReasonCode.REJ_NOTHING_TO_REVOKE)
    older, _ = post(TaxpayerCaf(), grant(2, spec("2024"), signed=DAY))
    older, _ = post(
        older, grant(1, spec("2024"), signed=DAY + dt.timedelta(days=10), retain_prior=True)
    )
    [loss] = decide_revocation(
        older, revoke(spec("2024"), signed=DAY + dt.timedelta(days=5))
    ).losses
    assert loss.grant.grant_id == "m-2:0"
