"""CAF-number misuse monitoring and the annual review (issue 20, part 2) through the running
services and the monitor: a burst of grants under one CAF number across many taxpayers raises
`CafMisuseSuspected`, alerts the practitioner and the SREs and counts in the monitor's metric;
`cafctl misuse list|show` shows the case; `cafctl misuse hold` makes the number's next grant
`REJ-REP-PENDING-REVIEW`; the annual statement lists exactly a practitioner's active grants, and
after a withdrawal through the authorization API one less."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import SERVICES as PIPELINE
from tests.e2e.conftest import Pipeline, random_ssn, ref_of, submission, unique_caf
from tests.e2e.test_cafctl import AS_OPERATOR, cafctl
from tests.signing import keys

pytestmark = pytest.mark.e2e

SERVICES = (*PIPELINE, "monitor", "caf_query")
BURST = 6
SERVICE_ENV = {
    "MONITOR_BURST_CEILING": str(BURST),
    "MONITOR_FIRST_USE_CEILING": "1000",  # only MN-01 here
    "VALIDATOR_VELOCITY_LIMIT": "1000",
}


def posted(pipeline: Pipeline, ssn: str) -> list[dict[str, Any]]:
    return [e for e in pipeline.events(ref_of(ssn)) if e["type"] == "AuthorizationPosted"]


async def post_for(pipeline: Pipeline, caf: str, count: int) -> list[tuple[str, str]]:
    """`count` forms for as many taxpayers naming `caf`; (ssn, grant id) of each, posted."""
    forms = [(random_ssn(), caf) for _ in range(count)]
    sent = []
    for ssn, number in forms:
        form = submission(ssn, [{"caf_number": number}], channel="mail")
        await pipeline.send_inbound(form)
        sent.append((ssn, f"{form['message_id']}:0"))
    await pipeline.until(lambda: all(posted(pipeline, ssn) for ssn, _ in sent), limit_s=60)
    return sent


def suspicions(pipeline: Pipeline, caf: str) -> list[dict[str, Any]]:
    return [
        e
        for e in pipeline.seen["caf.events.v1"].json()
        if e["type"] == "CafMisuseSuspected" and e["caf_number"] == caf
    ]


async def metric(pipeline: Pipeline, rule: str) -> float:
    port = pipeline.services.ports["monitor"]
    async with httpx.AsyncClient(timeout=5) as client:
        text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
    found = re.search(rf'^caf_misuse_suspected_total{{rule="{rule}"}} (\S+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


async def test_a_burst_under_one_caf_number_is_suspected_alerted_listed_and_held(
    pipeline: Pipeline,
) -> None:
    """MN-01, NO-06, MN-06 (with VA-02)."""
    caf = unique_caf()
    await pipeline.register(caf, "Avery Smith")
    await post_for(pipeline, caf, BURST - 1)
    assert suspicions(pipeline, caf) == []
    assert await metric(pipeline, "MN-01") == 0.0
    await post_for(pipeline, caf, 1)
    [suspected] = await pipeline.until(lambda: suspicions(pipeline, caf))
    assert (suspected["rule_id"], suspected["signal"], suspected["stage"]) == (
        "MN-01",
        "burst",
        "monitor",
    )
    assert suspected["evidence"]["distinct_taxpayers"] == BURST
    assert suspected["tin_last4"] == ""
    alerts = await pipeline.until(
        lambda: (
            {
                (n["recipient"], n["template"])
                for n in pipeline.notifications({suspected["event_id"]})
            }
            >= {("representative", "caf_misuse_suspected"), ("sre", "caf_misuse_suspected")}
        )
    )
    assert alerts
    assert all(
        n["recipient"] != "taxpayer" for n in pipeline.notifications({suspected["event_id"]})
    )
    assert await metric(pipeline, "MN-01") == 1.0

    await post_for(pipeline, caf, 1)  # the same day: no second suspicion for MN-01
    await asyncio.sleep(2)
    assert len(suspicions(pipeline, caf)) == 1

    status, cases = await cafctl(pipeline, "misuse", "list")
    assert status == 0
    [case] = [c for c in cases if c["caf_number"] == caf]
    assert (case["rule"], case["status"]) == ("MN-01", "open")
    status, held = await cafctl(pipeline, "misuse", "hold", caf, *AS_OPERATOR)
    assert (status, held["status_code"]) == (0, "P")
    status, shown = await cafctl(pipeline, "misuse", "show", caf)
    assert (status, shown[0]["status"], shown[0]["held_by"]) == (0, "pending_review", "dana")
    assert shown[0]["evidence"]["distinct_taxpayers"] == BURST

    ssn = random_ssn()
    form = submission(ssn, [{"caf_number": caf}], channel="mail")
    await pipeline.send_inbound(form)
    [refused] = await pipeline.until(
        lambda: [e for e in pipeline.events(ref_of(ssn)) if e["type"] == "AuthorizationRejected"]
    )
    assert (refused["rule_id"], refused["reason_code"]) == ("VA-02", "REJ-REP-PENDING-REVIEW")
    status, trail = await cafctl(pipeline, "audit", "--limit", "20")
    assert ("misuse hold", caf, "done") in {(r["action"], r["target"], r["outcome"]) for r in trail}


async def test_the_annual_statement_lists_exactly_the_active_grants_of_a_practitioner(
    pipeline: Pipeline,
) -> None:
    """MN-07: on demand through cafctl (audited); after the practitioner withdraws from one
    through the authorization API (it goes through intake like any other), one grant less."""
    caf = unique_caf()
    await pipeline.register(caf, "Avery Smith")
    grants = await post_for(pipeline, caf, 3)

    def statement(run: str) -> list[dict[str, Any]]:
        return [
            n
            for n in pipeline.seen["caf.notifications.v1"].json()
            if n["template"] == "annual_review_statement"
            and n["recipient_ref"] == caf
            and n["event_id"].startswith(f"statement:{run}:")
        ]

    def listed(notes: list[dict[str, Any]]) -> set[str]:
        return {
            line.rsplit("(", 1)[-1].rstrip(")")
            for note in notes
            for line in note["body"].splitlines()
            if line.startswith("- ")
        }

    status, first = await cafctl(pipeline, "statements", "send", "--caf", caf, *AS_OPERATOR)
    assert status == 0
    notes = await pipeline.until(lambda: statement(first["command_id"]))
    assert listed(notes) == {grant_id for _, grant_id in grants}
    assert all(f"...{ssn[-4:]}" in " ".join(n["body"] for n in notes) for ssn, _ in grants)

    ssn, gone = grants[0]
    token = keys().access_token(role="practitioner", subject="avery", caf_number=caf)
    other = keys().access_token(role="practitioner", subject="eve", caf_number=unique_caf())
    base = f"http://127.0.0.1:{pipeline.services.api_port}"
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        for _ in range(100):  # the read side has the grant once it has its posting
            mine = await client.get(
                "/v1/practitioners/me/authorizations", headers={"authorization": f"Bearer {token}"}
            )
            if any(g["grant_id"] == gone for g in mine.json()["grants"]):
                break
            await asyncio.sleep(0.2)
        not_theirs = await client.post(
            "/v1/practitioners/me/withdrawals",
            json={"grant_id": gone},
            headers={"authorization": f"Bearer {other}"},
        )
        assert not_theirs.status_code == 404
        accepted = await client.post(
            "/v1/practitioners/me/withdrawals",
            json={"grant_id": gone},
            headers={"authorization": f"Bearer {token}"},
        )
    assert accepted.status_code == 202, accepted.text
    message_id = accepted.json()["message_id"]
    [withdrawn] = await pipeline.until(
        lambda: [
            e
            for e in pipeline.events(ref_of(ssn))
            if e["type"] == "AuthorizationWithdrawn" and e["message_id"] == message_id
        ]
    )
    assert (withdrawn["grant_id"], withdrawn["remaining_matters"]) == (gone, [])
    await asyncio.sleep(1)  # the monitor follows the same outcome stream
    status, second = await cafctl(pipeline, "statements", "send", "--caf", caf, *AS_OPERATOR)
    assert status == 0
    notes = await pipeline.until(lambda: statement(second["command_id"]))
    assert listed(notes) == {grant_id for _, grant_id in grants} - {gone}
