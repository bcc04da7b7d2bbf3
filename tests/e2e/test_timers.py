"""Time-driven rules with a moved clock, and timers that fire once across replicas."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta

import pytest

from caf_runtime.broker import client_options
from cafctl.lag_exporter import lag_page
from tests.e2e.conftest import Pipeline, random_ssn, ref_of, submission, unique_caf
from tests.e2e.test_tax_pro_account import decision, of_type, requested, send

pytestmark = pytest.mark.e2e


async def test_an_undecided_request_expires_once_even_with_two_intake_replicas(
    pipeline: Pipeline,
) -> None:
    """IN-23 after 30 days; the timer fires once with two replicas; IN-24 afterwards."""
    ssn, _, request = await requested(pipeline)
    await pipeline.until(lambda: of_type(pipeline, ssn, "AuthorizationPendingApproval"))
    await pipeline.services.start_replica("intake", "b")

    pipeline.services.move_clock(timedelta(days=29))
    await asyncio.sleep(2.0)
    assert of_type(pipeline, ssn, "AuthorizationExpired") == []
    pipeline.services.move_clock(timedelta(days=2))
    [expired] = await pipeline.until(lambda: of_type(pipeline, ssn, "AuthorizationExpired"))
    assert (expired["request_id"], expired["reason_code"]) == (
        request["request_id"],
        "EXP-NO-DECISION",
    )

    await send(pipeline, decision(request))  # IN-24: an expired request stays expired
    await asyncio.sleep(3.0)
    terminal = pipeline.terminal_events(ref_of(ssn))
    assert len({e["event_id"] for e in terminal}) == 1
    assert len({e["event_id"] for e in of_type(pipeline, ssn, "AuthorizationExpired")}) == 1


async def test_a_grant_held_unposted_raises_sla_at_risk_then_breached(pipeline: Pipeline) -> None:
    """PO-11 with the poster down and a moved clock; NO-07 alerts SREs; posting ends it."""
    ssn, caf = random_ssn(), unique_caf()
    await pipeline.register(caf, "Avery Smith")
    await pipeline.services.kill("caf_poster")
    form = submission(ssn, [{"caf_number": caf}])
    await pipeline.send_inbound(form)
    grant_id = f"{form['message_id']}:0"
    await pipeline.until(
        lambda: [
            r
            for r in pipeline.seen["caf.grants.validated.v1"].json()
            if r.get("grant_id") == grant_id
        ]
    )

    page = (await lag_page(pipeline.settings, client_options(pipeline.settings))).decode()
    lags = {
        partition: float(value)
        for partition, value in re.findall(
            r'caf_consumer_lag_messages\{group="caf-poster",partition="(\d+)"[^}]*\} (\S+)', page
        )
    }
    ages = {
        partition: float(value)
        for partition, value in re.findall(
            r'caf_consumer_lag_seconds\{group="caf-poster",partition="(\d+)"[^}]*\} (\S+)', page
        )
    }
    behind = [p for p, lag in lags.items() if lag >= 1]
    assert behind  # the grant waits for the stopped poster
    assert all(ages[p] > 0 for p in behind)

    pipeline.services.move_clock(timedelta(hours=25))
    [at_risk] = await pipeline.until(lambda: of_type(pipeline, ssn, "SlaAtRisk"))
    assert at_risk["grant_id"] == grant_id
    assert at_risk["age_hours"] >= 24
    assert of_type(pipeline, ssn, "SlaBreached") == []
    pipeline.services.move_clock(timedelta(hours=24))
    [breached] = await pipeline.until(lambda: of_type(pipeline, ssn, "SlaBreached"))
    notes = await pipeline.until(lambda: pipeline.notifications({breached["event_id"]}))
    assert [(n["recipient"], n["template"]) for n in notes] == [("sre", "sla_breached")]

    await pipeline.services.start("caf_poster")
    [posted] = await pipeline.terminal(ref_of(ssn), 1)
    assert posted["type"] == "AuthorizationPosted"


async def test_a_grant_posted_in_time_raises_no_sla_event(pipeline: Pipeline) -> None:
    """PO-11: the deadlines of a posted grant stay silent."""
    ssn, caf = random_ssn(), unique_caf()
    await pipeline.register(caf, "Avery Smith")
    await pipeline.send_inbound(submission(ssn, [{"caf_number": caf}]))
    await pipeline.terminal(ref_of(ssn), 1)
    await asyncio.sleep(1.0)  # the validator sees the posted event
    pipeline.services.move_clock(timedelta(hours=49))
    await asyncio.sleep(3.0)
    assert of_type(pipeline, ssn, "SlaAtRisk") == of_type(pipeline, ssn, "SlaBreached") == []


async def test_a_student_grant_is_purged_130_days_after_the_taxpayer_signed(
    pipeline: Pipeline,
) -> None:
    """PO-12: removed on its purge day with REV-STUDENT-PURGE, and the CAF updated."""
    ssn, caf = random_ssn(), unique_caf()
    await pipeline.register(caf, "Avery Smith")
    student = {
        "caf_number": caf,
        "designation": "k",
        "jurisdiction": "LITC",
        "student_letter_attached": True,
    }
    form = submission(ssn, [student])
    await pipeline.send_inbound(form)
    [posted] = await pipeline.terminal(ref_of(ssn), 1)
    assert posted["type"] == "AuthorizationPosted"

    pipeline.services.move_clock(timedelta(days=131))
    [purged] = await pipeline.until(lambda: of_type(pipeline, ssn, "AuthorizationRevoked"))
    assert (purged["grant_id"], purged["revoked_by"]) == (posted["grant_id"], "REV-STUDENT-PURGE")
    items = await pipeline.caf_items(ref_of(ssn))
    [stored] = [i for i in items if i["sk"]["S"].startswith("GRANT#")]
    assert stored["status"]["S"] == "inactive"
