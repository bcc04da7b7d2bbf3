"""The Tax Pro Account flow through the four services: request, pending, decision, posting."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

import pytest

from devstack import messages
from tests.e2e.conftest import Pipeline, business_today, random_ssn, ref_of, unique_caf
from tests.signing import assertion

pytestmark = pytest.mark.e2e

# PO-03's reorder window: long enough that the last of four approvals reaches the poster within
# it even on a loaded two-core CI machine (3 s, the suite's default, was not always). Only the
# group test waits it out.
SERVICE_ENV = {"CAF_POSTER_REORDER_WINDOW_S": "15"}


def tpa_request(
    ssn: str,
    caf: str,
    *,
    name: str = "Avery Smith",
    group_id: str | None = None,
    notices: bool = False,
) -> dict[str, Any]:
    """A Tax Pro Account request of professional `caf` for taxpayer `ssn`, received today."""
    request = messages.tpa_request_now(
        messages.individual(ssn),
        caf,
        name=name,
        receive_notices=notices,
        request_id=f"tpa-{uuid.uuid4().hex[:10]}",
        group_id=group_id,
    )
    return messages.document(request)


def decision(
    request: dict[str, Any],
    kind: Literal["approve", "decline"] = "approve",
    signed: date | None = None,
    at: datetime | None = None,
) -> dict[str, Any]:
    """The taxpayer's decision on `request`, signed today (or `signed`) at `at` (or now), with
    their identity assertion."""
    decided = messages.tpa_decision_now(
        request["request_id"],
        kind,
        signed=signed,
        at=at,
        identity_assertion=assertion(
            tin=request.get("taxpayer", {}).get("tin") or random_ssn(),
            nonce=request["request_id"],
        ),
    )
    return messages.document(decided)


async def send(pipeline: Pipeline, message: dict[str, Any]) -> None:
    await pipeline.send_inbound(message, key=message["request_id"])


async def requested(pipeline: Pipeline) -> tuple[str, str, dict[str, Any]]:
    """A registered professional's Tax Pro Account request for a new taxpayer, sent:
    (the taxpayer's SSN, the professional's CAF number, the request)."""
    ssn, caf = random_ssn(), unique_caf()
    await pipeline.register(caf, "Avery Smith")
    request = tpa_request(ssn, caf)
    await send(pipeline, request)
    return ssn, caf, request


def of_type(pipeline: Pipeline, ssn: str, type_: str) -> list[dict[str, Any]]:
    return [e for e in pipeline.events(ref_of(ssn)) if e["type"] == type_]


async def test_a_request_waits_for_the_taxpayer_then_posts_on_approval(pipeline: Pipeline) -> None:
    """NO-01, IN-22 (approve), R-TPA-02 recheck, PO-05 for TPA."""
    ssn, _, request = await requested(pipeline)
    [pending] = await pipeline.until(lambda: of_type(pipeline, ssn, "AuthorizationPendingApproval"))
    assert pending["request_id"] == request["request_id"]
    assert pending["expires_on"] == str(business_today() + timedelta(days=30))
    [note] = await pipeline.until(lambda: pipeline.notifications({pending["event_id"]}))
    assert note["template"] == "authorization_pending_approval"

    await send(pipeline, decision(request))
    [posted] = await pipeline.terminal(ref_of(ssn), 1)
    assert (posted["type"], posted["grant_id"], posted["authorization_id"]) == (
        "AuthorizationPosted",
        request["request_id"],
        request["request_id"],
    )


async def test_a_declined_request_ends_declined(pipeline: Pipeline) -> None:
    """IN-22."""
    ssn, _, request = await requested(pipeline)
    await send(pipeline, decision(request, "decline"))
    [declined] = await pipeline.terminal(ref_of(ssn), 1)
    assert (declined["type"], declined["request_id"]) == (
        "AuthorizationDeclined",
        request["request_id"],
    )
    await send(pipeline, decision(request))  # IN-24: a later decision changes nothing
    await pipeline.until(lambda: len(of_type(pipeline, ssn, "AuthorizationDeclined")) == 1)


async def test_a_decision_before_its_request_waits_for_it(pipeline: Pipeline) -> None:
    """IN-21: retried within the window, not rejected at once."""
    ssn, caf = random_ssn(), unique_caf()
    await pipeline.register(caf, "Avery Smith")
    request = tpa_request(ssn, caf)
    await send(pipeline, decision(request))
    await send(pipeline, request)
    [posted] = await pipeline.terminal(ref_of(ssn), 1)
    assert posted["type"] == "AuthorizationPosted"


async def test_a_decision_for_a_request_that_never_comes_is_rejected(pipeline: Pipeline) -> None:
    """IN-21 after the window (8 s in these tests)."""
    ghost = {"request_id": f"tpa-{uuid.uuid4().hex[:10]}"}
    late = decision(ghost)
    await pipeline.send_inbound(late, key=ghost["request_id"])
    [rejected] = await pipeline.until(
        lambda: [
            e
            for e in pipeline.seen["caf.events.v1"].json()
            if e["message_id"] == late["message_id"]
        ],
        limit_s=40,
    )
    assert (rejected["reason_code"], rejected["grant_id"]) == (
        "REJ-UNKNOWN-REQUEST",
        ghost["request_id"],
    )


async def test_a_representative_suspended_before_the_approval_is_rejected(
    pipeline: Pipeline,
) -> None:
    """VA-01 on the recheck after the taxpayer signs (R-TPA-02)."""
    ssn, caf, request = await requested(pipeline)
    await pipeline.until(lambda: of_type(pipeline, ssn, "AuthorizationPendingApproval"))
    await pipeline.register(caf, "Avery Smith", status="S")
    await send(pipeline, decision(request))
    [rejected] = await pipeline.terminal(ref_of(ssn), 1)
    assert (rejected["reason_code"], rejected["stage"]) == (
        "REJ-REP-NOT-GOOD-STANDING",
        "validator",
    )


async def test_a_refused_request_gets_no_second_outcome_from_its_approval(
    pipeline: Pipeline,
) -> None:
    """VA-04 on the request; the approval that follows adds nothing."""
    ssn = random_ssn()
    request = tpa_request(ssn, unique_caf())  # never registered
    await send(pipeline, request)
    [refused] = await pipeline.terminal(ref_of(ssn), 1)
    assert refused["reason_code"] == "REJ-CAF-UNKNOWN"
    approval = decision(request)
    await send(pipeline, approval)
    declined = decision(request, "decline")
    await send(pipeline, declined)
    probe_ssn, probe_caf = random_ssn(), unique_caf()  # a later message on the same path
    await pipeline.register(probe_caf, "Avery Smith")
    await send(pipeline, tpa_request(probe_ssn, probe_caf))
    await pipeline.until(lambda: of_type(pipeline, probe_ssn, "AuthorizationPendingApproval"))
    assert len(pipeline.terminal_events(ref_of(ssn))) == 1


async def test_a_group_is_decided_in_approval_order_whatever_the_arrival_order(
    pipeline: Pipeline,
) -> None:
    """PO-03 in approval order within the reorder window; PO-02 same-day signatures."""
    ssn, group = random_ssn(), f"grp-{uuid.uuid4().hex[:8]}"
    cafs = [unique_caf() for _ in range(4)]
    names = ["Avery Smith", "Blake Doe", "Casey Roe", "Drew Stone"]
    for caf, name in zip(cafs, names, strict=True):
        await pipeline.register(caf, name)
    requests = [
        tpa_request(ssn, caf, name=name, group_id=group, notices=True)
        for caf, name in zip(cafs, names, strict=True)
    ]
    for request in requests:
        await send(pipeline, request)
    await pipeline.until(lambda: len(of_type(pipeline, ssn, "AuthorizationPendingApproval")) == 4)
    # given before any is sent: an approval time still in the future when it reaches the poster
    # counts as its arrival (TB-02), and arrival order is what this test reverses
    start = datetime.now(UTC) - timedelta(seconds=2)
    approvals = [
        decision(r, at=start + timedelta(milliseconds=300 * i)) for i, r in enumerate(requests[:3])
    ]
    approvals.append(
        decision(
            requests[3],
            signed=business_today() - timedelta(days=1),
            at=start + timedelta(milliseconds=900),
        )
    )
    for approval in reversed(approvals):  # they reach us last-approved first
        await send(pipeline, approval)
    terminal = {e["grant_id"]: e for e in await pipeline.terminal(ref_of(ssn), 4)}
    outcomes = [
        (terminal[r["request_id"]]["type"], terminal[r["request_id"]].get("reason_code"))
        for r in requests
    ]
    assert outcomes == [
        ("AuthorizationPosted", None),
        ("AuthorizationPosted", None),
        ("AuthorizationNotProcessed", "NP-NOTICE-LIMIT-EXCEEDED"),
        ("AuthorizationRejected", "REJ-SIGNATURE-DAY-MISMATCH"),
    ]
