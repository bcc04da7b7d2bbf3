"""Killing any service at any moment loses nothing and duplicates nothing (the invariant of
docs/contract.md)."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import pytest

from schemas.events import TERMINAL_TYPES
from tests.e2e.conftest import SERVICES, Pipeline, random_ssn, ref_of, submission, unique_caf

pytestmark = pytest.mark.e2e

FORMS = 30
# One CAF number on 30 taxpayers within seconds: past VA-07's default 25, the rest would be held
# for an operator (CN-09). This module is about crashes, not velocity.
SERVICE_ENV = {"VALIDATOR_VELOCITY_LIMIT": "1000"}


@pytest.mark.parametrize("victim", SERVICES)
async def test_a_service_killed_mid_stream_loses_and_duplicates_nothing(
    pipeline: Pipeline, victim: str
) -> None:
    caf = unique_caf()
    await pipeline.register(caf, "Avery Smith")
    taxpayers = [random_ssn() for _ in range(FORMS)]
    forms = [
        submission(ssn, [{"caf_number": caf}, {"caf_number": None, "name": "New Rep"}])
        for ssn in taxpayers
    ]
    for form in forms[: FORMS // 2]:
        await pipeline.send_inbound(form)
    await asyncio.sleep(0.3)
    await pipeline.services.kill(victim)
    for form in forms[FORMS // 2 :]:
        await pipeline.send_inbound(form)
    await asyncio.sleep(0.5)
    await pipeline.services.start(victim)

    refs = [ref_of(ssn) for ssn in taxpayers]
    for ref in refs:
        await pipeline.terminal(ref, 2)
    await asyncio.sleep(1.0)  # room for any duplicate still in flight to show up

    for ref, form in zip(refs, forms, strict=True):
        distinct: dict[str, set[str]] = defaultdict(set)
        for event in pipeline.events(ref):
            if event["type"] in TERMINAL_TYPES:
                distinct[event["grant_id"]].add(event["event_id"])
        assert distinct == {
            f"{form['message_id']}:{i}": distinct[f"{form['message_id']}:{i}"] for i in range(2)
        }
        assert all(len(ids) == 1 for ids in distinct.values())
        posted = {e["grant_id"] for e in pipeline.events(ref) if e["type"] == "AuthorizationPosted"}
        items = await pipeline.caf_items(ref)
        stored = [i["sk"]["S"] for i in items if i["sk"]["S"].startswith("GRANT#")]
        assert sorted(stored) == sorted(f"GRANT#{grant_id}" for grant_id in posted)
    assigned = [e for ref in refs for e in pipeline.events(ref) if e["type"] == "CafNumberAssigned"]
    # a re-published event after a crash carries the same id: count distinct ids
    assert len({e["event_id"] for e in assigned}) == FORMS
    assert len({e["caf_number"] for e in assigned}) == FORMS
    events = {e["event_id"] for ref in refs for e in pipeline.events(ref)}
    notes = pipeline.notifications(events)
    per_recipient = defaultdict(set)
    for note in notes:
        per_recipient[(note["event_id"], note["recipient"])].add(note["notification_id"])
    assert all(len(ids) == 1 for ids in per_recipient.values())
    await pipeline.until(lambda: len(pipeline.notifications(events)) >= FORMS)
