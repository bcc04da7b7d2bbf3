"""Signature evidence (ESSAR, ES-01 … ES-05) through the running services and the real object
store (SeaweedFS with Object Lock): what an e-signed act leaves, how it is read back and verified,
and what happens to e-signed grants while the store is down."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from caf_runtime.config import EvidenceSettings
from caf_runtime.evidence_bucket import EvidenceBucket
from cafctl.cli import main as cafctl
from tests.conftest import Infrastructure
from tests.e2e.conftest import SERVICES as PIPELINE
from tests.e2e.conftest import Pipeline, random_ssn, ref_of, submission, unique_caf
from tests.e2e.test_tax_pro_account import decision, requested, send
from tests.signing import keys

pytestmark = pytest.mark.e2e

SERVICES = (*PIPELINE, "caf_query")
# ES-03's retry policy, short: 1 s, then 2 s, then every 2 s; PostingDelayed on the third failure
SERVICE_ENV = {"CAF_POSTER_EVIDENCE_RETRY_S": "[1, 2]", "CAF_POSTER_EVIDENCE_RETRY_EVERY_S": "2"}


@pytest.fixture
async def api(pipeline: Pipeline) -> AsyncIterator[httpx.AsyncClient]:
    port = pipeline.services.api_port
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        yield client


def employee() -> str:
    return keys().access_token(role="employee", subject="employee-e2e", issued_at=datetime.now(UTC))


async def signatures(api: httpx.AsyncClient, grant_id: str) -> dict[str, Any]:
    """The API's answer once the read side has projected the grant."""
    for _ in range(100):
        answer = await api.post(
            "/v1/employee/grant-signatures",
            headers={"authorization": f"Bearer {employee()}"},
            json={"grant_id": grant_id, "reason": "dispute e2e"},
        )
        if answer.status_code == 200 and answer.json()["signatures"]:
            return dict(answer.json())
        await asyncio.sleep(0.2)
    raise AssertionError(f"no signature evidence for {grant_id}: {answer.text}")


async def test_a_tpa_request_and_approval_post_with_two_evidence_objects_that_verify_es_01_es_05(
    pipeline: Pipeline, api: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    ssn, _, request = await requested(pipeline)
    await pipeline.until(
        lambda: [e for e in pipeline.events(ref_of(ssn)) if e["type"].endswith("PendingApproval")]
    )
    await send(pipeline, decision(request))
    [posted] = await pipeline.terminal(ref_of(ssn), 1)

    assert posted["type"] == "AuthorizationPosted"
    refs = {(r["role"], r["act"]): r for r in posted["signature_refs"]}
    assert set(refs) == {("representative", "tpa_request"), ("taxpayer", "tpa_approval")}
    found = await signatures(api, posted["grant_id"])
    assert {s["sha256"] for s in found["signatures"]} == {r["sha256"] for r in refs.values()}
    assert all(s["verified"] and s["lock_mode"] == "COMPLIANCE" for s in found["signatures"])

    env = {"CAFCTL_API_URL": str(api.base_url).rstrip("/")}
    code = await asyncio.to_thread(
        _cafctl,
        env,
        [
            "signatures",
            "show",
            posted["grant_id"],
            "--operator",
            "jdoe",
            "--why",
            "case 7",
            "--json",
        ],
    )
    printed = capsys.readouterr()
    assert code == 0, printed.err
    shown = json.loads(printed.out)
    assert [s["verified"] for s in shown["signatures"]] == [True, True]


def _cafctl(env: dict[str, str], argv: list[str]) -> int:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        return cafctl(argv)


async def test_an_uploaded_e_signed_2848_posts_with_the_evidence_of_each_e_signature_es_01(
    pipeline: Pipeline, api: httpx.AsyncClient
) -> None:
    ssn, caf = random_ssn(), unique_caf()
    await pipeline.register(caf, "Avery Smith")
    await pipeline.send_inbound(submission(ssn, [{"caf_number": caf}]))
    [posted] = await pipeline.terminal(ref_of(ssn), 1)
    assert {(r["role"], r["act"]) for r in posted["signature_refs"]} == {
        ("taxpayer", "submission"),
        ("representative", "submission"),
    }
    found = await signatures(api, posted["grant_id"])
    assert all(s["verified"] for s in found["signatures"])
    digits = ssn.replace("-", "")
    assert digits not in json.dumps(posted)
    stored = await _stored_bytes(pipeline, [r["key"] for r in posted["signature_refs"]])
    assert all(digits.encode() not in data for data in stored)  # the content is sealed (ES-02)


async def _stored_bytes(pipeline: Pipeline, keys_: list[str]) -> list[bytes]:
    identity = pipeline.services.identity("caf_query")
    async with EvidenceBucket(EvidenceSettings.model_validate(identity)) as bucket:
        found = [await bucket.read(key) for key in keys_]
    return [f.data for f in found if f is not None and f.data is not None]


async def test_a_paper_form_posts_without_evidence_es_01(pipeline: Pipeline) -> None:
    ssn, caf = random_ssn(), unique_caf()
    await pipeline.register(caf, "Avery Smith")
    await pipeline.send_inbound(submission(ssn, [{"caf_number": caf}], channel="mail"))
    [posted] = await pipeline.terminal(ref_of(ssn), 1)
    assert posted["signature_refs"] == []


async def test_while_the_object_store_is_down_e_signed_grants_wait_and_post_once_after_es_03(
    pipeline: Pipeline, infra: Infrastructure, api: httpx.AsyncClient
) -> None:
    """Under traffic: the store stops; paper forms post, e-signed ones wait (PostingDelayed past
    the retry policy); the store starts again; every e-signed grant posts exactly once, with
    evidence that verifies."""
    store = infra.objectstore
    if store is None:
        pytest.skip("the object store is external to this session (S3_ENDPOINT)")
    caf = unique_caf()
    await pipeline.register(caf, "Avery Smith")
    signed = [random_ssn() for _ in range(6)]
    paper = [random_ssn() for _ in range(3)]
    store.stop()
    try:
        for ssn in signed:
            await pipeline.send_inbound(submission(ssn, [{"caf_number": caf}]))
        for ssn in paper:
            await pipeline.send_inbound(submission(ssn, [{"caf_number": caf}], channel="fax"))
        for ssn in paper:
            await pipeline.terminal(ref_of(ssn), 1)
        for ssn in signed:
            await pipeline.until(
                lambda ssn=ssn: [  # type: ignore[misc]
                    e for e in pipeline.events(ref_of(ssn)) if e["type"] == "PostingDelayed"
                ]
            )
        assert all(pipeline.terminal_events(ref_of(ssn)) == [] for ssn in signed)
    finally:
        await asyncio.to_thread(store.start)
    for ssn in signed:  # the timers try every 2 s; a restarted store may take a while to write
        await pipeline.until(lambda ssn=ssn: pipeline.terminal_events(ref_of(ssn)), limit_s=90)  # type: ignore[misc]
        [posted] = pipeline.terminal_events(ref_of(ssn))
        assert posted["type"] == "AuthorizationPosted"
        [delayed] = [e for e in pipeline.events(ref_of(ssn)) if e["type"] == "PostingDelayed"]
        assert delayed["reason_code"] == "DELAY-EVIDENCE-UNSTORED"
        assert delayed["rule_id"] == "ES-03"
    await asyncio.sleep(3)  # a duplicate would have arrived by now
    for ssn in signed:
        assert len(pipeline.terminal_events(ref_of(ssn))) == 1
        grant = pipeline.terminal_events(ref_of(ssn))[0]["grant_id"]
        found = await signatures(api, grant)
        assert all(s["verified"] for s in found["signatures"])
