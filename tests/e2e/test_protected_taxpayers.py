"""Protected taxpayers (IP PIN program, issue 20 part 1) through the running services: the
program feed, paper forms held for the taxpayer's own answer (confirmed and posted, refused,
unanswered for 30 days with a moved clock), a Tax Pro Account approval that is not held, a
message carrying an IP PIN refused, and no IP PIN on any topic, in any table or log. The last
test moves the module's clock."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from caf_runtime.dynamo import dynamodb_client
from caf_runtime.topology import TABLES
from schemas import topics
from schemas.ip_pin import IP_PIN_TEXT
from tests.e2e.conftest import (
    Pipeline,
    business_today,
    random_ssn,
    ref_of,
    submission,
    topics_holding,
    unique_caf,
)
from tests.e2e.test_tax_pro_account import decision, send, tpa_request
from tests.signing import assertion

pytestmark = pytest.mark.e2e

IP_PIN_WARNING = re.compile(r"never ask you for your IP PIN", re.IGNORECASE)


async def protect(pipeline: Pipeline, ssn: str) -> None:
    """The IP PIN program names the taxpayer for this year (year and basis, never a PIN)."""
    ref = ref_of(ssn)
    record = {"taxpayer_ref": ref, "year": business_today().year, "basis": "identity_theft_victim"}
    await pipeline.publish(topics.PROTECTED, ref, record, "protection")


def of_grant(pipeline: Pipeline, ssn: str, grant_id: str, type_: str) -> list[dict[str, Any]]:
    return [
        e for e in pipeline.events(ref_of(ssn)) if e["type"] == type_ and e["grant_id"] == grant_id
    ]


async def paper_form(pipeline: Pipeline, ssn: str, caf: str) -> tuple[str, dict[str, Any]]:
    """A mailed 2848 for the protected taxpayer: its grant id and the hold it got."""
    form = submission(ssn, [{"caf_number": caf}], channel="mail")
    await pipeline.send_inbound(form)
    grant_id = f"{form['message_id']}:0"
    [held] = await pipeline.until(lambda: of_grant(pipeline, ssn, grant_id, "AuthorizationHeld"))
    return grant_id, held


def answer(ssn: str, grant_id: str, decision_: str) -> dict[str, Any]:
    return {
        "kind": "protected_confirmation",
        "schema_version": 1,
        "message_id": f"pc-{uuid.uuid4().hex[:12]}",
        "sent_at": datetime.now(UTC).isoformat(),
        "grant_id": grant_id,
        "taxpayer": {"tin": ssn, "tin_type": "SSN"},
        "decision": decision_,
        "identity_assertion": assertion(tin=ssn, nonce=grant_id),
    }


async def test_a_protected_taxpayers_paper_form_is_held_confirmed_online_and_posted(
    pipeline: Pipeline,
) -> None:
    """PT-01, PT-03: held with a notice by mail and in Online Account; confirmed with the
    taxpayer's identity assertion; posted. Another taxpayer's answer changes nothing."""
    ssn, caf = random_ssn(), unique_caf()
    await pipeline.register(caf, "Avery Smith")
    await protect(pipeline, ssn)
    grant_id, held = await paper_form(pipeline, ssn, caf)
    assert (held["rule_id"], held["reason_code"]) == ("PT-01", "HOLD-TAXPAYER-CONFIRMATION")
    assert held["confirm_by"] == str(business_today() + timedelta(days=30))
    notices = await pipeline.until(
        lambda: [
            n for n in pipeline.notifications({held["event_id"]}) if n["recipient"] == "taxpayer"
        ]
    )
    assert {n["channel"] for n in notices} >= {"mail", "online_account"}
    assert all(IP_PIN_WARNING.search(n["body"]) for n in notices)

    stranger = random_ssn()
    await pipeline.send_inbound(answer(stranger, grant_id, "confirm"))
    await pipeline.send_inbound(answer(ssn, grant_id, "confirm"))
    [posted] = await pipeline.until(
        lambda: of_grant(pipeline, ssn, grant_id, "AuthorizationPosted"), limit_s=60
    )
    assert posted["caf_number"] == caf
    [refused] = await pipeline.until(
        lambda: [
            e for e in pipeline.events(ref_of(stranger)) if e["type"] == "AuthorizationRejected"
        ]
    )
    assert refused["reason_code"] == "REJ-PT-NOT-HELD"


async def test_a_protected_taxpayer_refuses_a_form_and_a_tpa_approval_is_not_held(
    pipeline: Pipeline,
) -> None:
    """PT-03 refusal (the practitioner and the SREs alerted); PT-01: the taxpayer's own
    identity-bound approval in Tax Pro Account posts without a hold."""
    ssn, caf = random_ssn(), unique_caf()
    await pipeline.register(caf, "Avery Smith")
    await protect(pipeline, ssn)
    grant_id, _ = await paper_form(pipeline, ssn, caf)
    await pipeline.send_inbound(answer(ssn, grant_id, "refuse"))
    [rejected] = await pipeline.until(
        lambda: of_grant(pipeline, ssn, grant_id, "AuthorizationRejected")
    )
    assert (rejected["rule_id"], rejected["reason_code"]) == ("PT-03", "REJ-PT-REFUSED")
    alerted = await pipeline.until(
        lambda: (
            {n["recipient"] for n in pipeline.notifications({rejected["event_id"]})}
            >= {"representative", "sre"}
        )
    )
    assert alerted

    request = tpa_request(ssn, caf)
    await send(pipeline, request)
    await pipeline.until(
        lambda: of_grant(pipeline, ssn, request["request_id"], "AuthorizationPendingApproval")
    )
    await send(pipeline, decision(request))
    await pipeline.until(
        lambda: of_grant(pipeline, ssn, request["request_id"], "AuthorizationPosted"), limit_s=60
    )
    assert not of_grant(pipeline, ssn, request["request_id"], "AuthorizationHeld")


async def test_a_message_carrying_an_ip_pin_is_refused_and_no_ip_pin_is_anywhere(
    pipeline: Pipeline,
) -> None:
    """PT-05: refused REJ-IP-PIN-COLLECTED; then every record of every topic, every item of
    every table and every service log is scanned for six digits next to "IP PIN"."""
    ssn, caf = random_ssn(), unique_caf()
    form = submission(ssn, [{"caf_number": caf}], channel="mail", ip_pin="493817")
    await pipeline.send_inbound(form)
    [refused] = await pipeline.until(
        lambda: [e for e in pipeline.events(ref_of(ssn)) if e["message_id"] == form["message_id"]]
    )
    assert (refused["rule_id"], refused["reason_code"]) == ("PT-05", "REJ-IP-PIN-COLLECTED")
    noted = {k: v for k, v in form.items() if k != "ip_pin"} | {"message_id": str(uuid.uuid4())}
    noted["taxpayer"] = dict(form["taxpayer"], name="Jordan Public IP PIN 493817")
    await pipeline.send_inbound(noted)
    await pipeline.until(
        lambda: [e for e in pipeline.events(ref_of(ssn)) if e["message_id"] == noted["message_id"]]
    )

    holding = await topics_holding(
        pipeline,
        lambda text: "493817" in text or bool(IP_PIN_TEXT.search(text)),
        skip=frozenset({topics.INBOUND}),
    )
    assert holding == {}, holding  # (the inbound topic holds what the portal sent: not ours)

    async with dynamodb_client(pipeline.settings) as client:
        for spec in TABLES:
            paginator = client.get_paginator("scan")
            async for page in paginator.paginate(TableName=pipeline.settings.table(spec.name)):
                text = json.dumps(page.get("Items", []))
                assert "493817" not in text, spec.name
                assert not IP_PIN_TEXT.search(text), spec.name
    for log in pipeline.services.logs.glob("*.log"):
        assert "493817" not in log.read_text(errors="replace"), log.name


async def test_an_unanswered_hold_ends_after_thirty_days(pipeline: Pipeline) -> None:
    """PT-04 with a moved clock (last in the module: it moves every service's clock)."""
    ssn, caf = random_ssn(), unique_caf()
    await pipeline.register(caf, "Avery Smith")
    await protect(pipeline, ssn)
    grant_id, held = await paper_form(pipeline, ssn, caf)
    pipeline.services.move_clock(timedelta(days=31))
    [ended] = await pipeline.until(
        lambda: of_grant(pipeline, ssn, grant_id, "AuthorizationRejected"), limit_s=60
    )
    assert (ended["rule_id"], ended["reason_code"]) == ("PT-04", "REJ-PT-NOT-CONFIRMED")
    assert not of_grant(pipeline, ssn, grant_id, "AuthorizationPosted")
    assert held["confirm_by"] < ended["occurred_at"][:10]
