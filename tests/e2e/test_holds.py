"""CN-09 through the four services and cafctl: grants over the velocity limit are held, an
operator releases one (it posts) and refuses another (REJ-FRAUD-REVIEW), both audited."""

from __future__ import annotations

import functools
from typing import Any

import pytest

from caf_runtime.dynamo import dynamodb_client
from tests.e2e.conftest import Pipeline, random_ssn, ref_of, submission, unique_caf
from tests.e2e.test_cafctl import cafctl

pytestmark = pytest.mark.e2e

SERVICE_ENV = {"VALIDATOR_VELOCITY_LIMIT": "2"}  # VA-07: the third taxpayer in an hour is held


def of_type(pipeline: Pipeline, ssn: str, kind: str) -> list[dict[str, Any]]:
    return [e for e in pipeline.events(ref_of(ssn)) if e["type"] == kind]


async def test_cn_09_held_grants_are_released_or_refused_by_an_operator_with_an_audit_trail(
    pipeline: Pipeline,
) -> None:
    caf = unique_caf()
    await pipeline.register(caf, "Avery Smith")
    taxpayers = [random_ssn() for _ in range(4)]
    forms = [submission(ssn, [{"caf_number": caf}]) for ssn in taxpayers]
    for ssn, form in zip(taxpayers[:2], forms[:2], strict=True):
        await pipeline.send_inbound(form)
        [posted] = await pipeline.terminal(ref_of(ssn), 1)
        assert posted["type"] == "AuthorizationPosted"
    for ssn, form in zip(taxpayers[2:], forms[2:], strict=True):
        await pipeline.send_inbound(form)
        [held] = await pipeline.until(
            functools.partial(of_type, pipeline, ssn, "AuthorizationHeld")
        )
        assert (held["reason_code"], held["rule_id"]) == ("HOLD-VELOCITY", "VA-07")
        assert pipeline.terminal_events(ref_of(ssn)) == []
    released, refused = (f"{form['message_id']}:0" for form in forms[2:])

    status, listed = await cafctl(pipeline, "holds", "list")
    assert status == 0
    assert {row["grant_id"] for row in listed} == {released, refused}
    assert all(row["status"] == "held" and row["caf_number"] == caf for row in listed)

    status, outcome = await cafctl(
        pipeline, "holds", "release", released, "--why", "firm confirmed", "--operator", "alice"
    )
    assert (status, outcome["status"], outcome["operator"]) == (0, "released", "alice")
    status, outcome = await cafctl(
        pipeline, "holds", "refuse", refused, "--why", "no such client", "--operator", "bob"
    )
    assert (status, outcome["status"]) == (0, "refused")
    status, _ = await cafctl(
        pipeline, "holds", "release", refused, "--why", "again", "--operator", "carol"
    )
    assert status == 1  # already decided: nothing published (the attempt is audited)

    [posted] = await pipeline.terminal(ref_of(taxpayers[2]), 1)
    assert (posted["type"], posted["grant_id"]) == ("AuthorizationPosted", released)
    [rejected] = await pipeline.terminal(ref_of(taxpayers[3]), 1)
    assert (rejected["type"], rejected["reason_code"], rejected["rule_id"]) == (
        "AuthorizationRejected",
        "REJ-FRAUD-REVIEW",
        "CN-09",
    )

    status, everything = await cafctl(pipeline, "holds", "list", "--all")
    decided = {
        row["grant_id"]: (row["status"], row["decided_by"], row["why"]) for row in everything
    }
    assert decided == {
        released: ("released", "alice", "firm confirmed"),
        refused: ("refused", "bob", "no such client"),
    }
    async with dynamodb_client(pipeline.settings) as client:
        audit = await client.query(
            TableName=pipeline.settings.table("ops"),
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": "AUDIT"}},
        )
    trail = {
        (i["target"]["S"], i["action"]["S"], i["operator"]["S"], i["outcome"]["S"])
        for i in audit["Items"]
    }
    assert trail == {
        (released, "holds release", "alice", "done"),
        (refused, "holds refuse", "bob", "done"),
        (refused, "holds release", "carol", "failed: ValueError"),
    }
