"""Time-driven rules with a moved clock, and timers that fire once across replicas."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from tests.e2e.conftest import Pipeline, random_ssn, ref_of, unique_caf
from tests.e2e.test_tax_pro_account import decision, of_type, send, tpa_request

pytestmark = pytest.mark.e2e


async def test_an_undecided_request_expires_once_even_with_two_intake_replicas(
    pipeline: Pipeline,
) -> None:
    """IN-23 after 30 days; the timer fires once with two replicas; IN-24 afterwards."""
    ssn, caf = random_ssn(), unique_caf()
    await pipeline.register(caf, "Avery Smith")
    request = tpa_request(ssn, caf)
    await send(pipeline, request)
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
