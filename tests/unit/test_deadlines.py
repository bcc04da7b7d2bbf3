"""Time-driven outcomes as pure functions: PO-11 deadlines and IN-23 expiry."""

from __future__ import annotations

import datetime as dt

import pytest

from caf_runtime.outputs import Output
from caf_runtime.timers import Timer
from schemas import topics
from schemas.codec import decode_command
from schemas.grants import CloseRequest
from services.intake.outcomes import expiry_outputs
from services.validator.handlers import Decided, sla_timers
from services.validator.outcomes import next_deadline, sla_event, sla_start
from services.validator.store import PostingDeadline
from tests.unit.builders import NOW, post_grant

pytestmark = pytest.mark.unit


def deadline_of(timer: Timer) -> PostingDeadline:
    assert isinstance(timer.payload, PostingDeadline)
    return timer.payload


def forwarded(grant: object) -> Decided:
    return Decided([Output(topics.GRANTS_VALIDATED, "k", b"{}")])


def test_po_11_a_grant_sent_to_the_poster_gets_deadlines_at_24_and_48_hours() -> None:
    """PO-11: one timer at 24 h; firing it schedules the one at 48 h, and that one no other."""
    grant = post_grant()
    [first] = sla_timers(grant, forwarded(grant))
    second = next_deadline(deadline_of(first))
    assert second is not None
    assert [t.due - grant.received_at for t in (first, second)] == [
        dt.timedelta(hours=24),
        dt.timedelta(hours=48),
    ]
    assert first.timer_id != second.timer_id
    assert next_deadline(deadline_of(second)) is None


def test_po_11_a_refused_grant_has_no_deadline() -> None:
    """PO-11: only grants ready to post."""
    assert sla_timers(post_grant(), Decided([Output(topics.EVENTS, "k", b"{}")])) == ()


def test_pt_01_a_grant_held_for_its_taxpayer_has_no_deadline_until_confirmed() -> None:
    """PO-11 with PT-01: held for the taxpayer is not ready to post; confirmed, it is."""
    grant = post_grant()
    held = Decided([Output(topics.EVENTS, "k", b"{}")], taxpayer_hold=None, timers=())
    assert sla_timers(grant, held) == ()
    confirmed_at = NOW + dt.timedelta(days=3)
    first = sla_start(grant, confirmed_at)
    assert first.due == confirmed_at + dt.timedelta(hours=24)


def test_cn_09_a_grant_held_for_an_operator_keeps_its_deadlines() -> None:
    """PO-11 with CN-09: SLA timers keep running from receipt."""
    grant = post_grant()
    [first] = sla_timers(grant, Decided([Output(topics.EVENTS, "k", b"{}")], hold=grant))
    assert first.due == grant.received_at + dt.timedelta(hours=24)


def test_po_11_the_deadline_events_say_at_risk_then_breached_with_the_age() -> None:
    """PO-11, NO-07."""
    grant = post_grant()
    [at_risk] = sla_timers(grant, forwarded(grant))
    breached = next_deadline(deadline_of(at_risk))
    assert breached is not None
    first = sla_event(deadline_of(at_risk), NOW + dt.timedelta(hours=25))
    second = sla_event(deadline_of(breached), NOW + dt.timedelta(hours=48))
    assert (first.type, first.age_hours) == ("SlaAtRisk", 25.0)
    assert (second.type, second.age_hours) == ("SlaBreached", 48.0)
    assert first.event_id != second.event_id
    assert first.event_id == sla_event(deadline_of(at_risk), NOW).event_id  # deterministic


def test_in_23_an_expired_request_closes_through_the_validator() -> None:
    """IN-23: the expiry is a CloseRequest, so a request refused earlier gets no second outcome."""
    request = post_grant(grant_id="tpa-1", request_id="tpa-1", channel="tpa", review=False)
    [output] = expiry_outputs(request, NOW)
    command = decode_command(output.value)
    assert isinstance(command, CloseRequest)
    assert (command.outcome, command.request_id, output.topic) == (
        "expired",
        "tpa-1",
        topics.GRANTS_ACCEPTED,
    )
