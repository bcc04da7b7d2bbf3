"""The read side (issue 17) on DynamoDB Local: the projector's views, the check, and who may see
what through the API (in process, with the development identity provider's tokens)."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import TYPE_CHECKING, Any

import pytest

from caf_runtime.config import EvidenceSettings
from caf_runtime.evidence_bucket import EvidenceBucket
from caf_runtime.provision import ensure_tables
from caf_runtime.topology import TABLES
from services.caf_query.projector import Projector
from services.caf_query.store import DynamoQueryStore
from tests.conftest import Infrastructure, unique
from tests.evidence_objects import taxpayer_evidence
from tests.integration.conftest import (
    MINE,
    NOW,
    REF,
    STREAM,
    THEIRS,
    TIN,
    ReadSide,
    check_body,
    record_at,
    token,
)

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

pytestmark = pytest.mark.integration


async def test_the_check_answers_for_units_posted_and_not_for_units_revoked(
    read_side: ReadSide,
) -> None:
    system = token("system")
    kept = await read_side.call(
        "POST",
        "/v1/authorization-checks",
        system,
        check_body(MINE, "2024", taxpayer_tin="123-45-6789"),
    )
    assert kept.status_code == 200
    assert kept.json() | {"as_of": None} == {
        "authorized": "POA",
        "receives_notices": True,
        "grant_id": "m-1:0",
        "authorization_id": "m-1",
        "as_of": None,
    }
    revoked = await read_side.call(
        "POST", "/v1/authorization-checks", system, check_body(MINE, "2023", taxpayer_ref=REF)
    )
    assert revoked.json()["authorized"] == "none"
    other = await read_side.call(
        "POST", "/v1/authorization-checks", system, check_body(THEIRS, "2024", taxpayer_ref=REF)
    )
    assert other.json()["authorized"] == "none"


async def test_a_taxpayer_sees_their_history_with_the_request_they_can_still_approve(
    read_side: ReadSide,
) -> None:
    response = await read_side.call(
        "GET", "/v1/taxpayers/me/authorizations", token("taxpayer", tin="123-45-6789")
    )
    assert response.status_code == 200
    grants = {g["grant_id"]: g for g in response.json()["grants"]}
    assert set(grants) == {"m-1:0", "tpa-1"}  # not the other taxpayer's; no SLA alert
    assert grants["m-1:0"]["status"] == "partly_revoked"
    assert grants["m-1:0"]["matters"][0]["periods"] == ["2024", "2025"]
    assert grants["tpa-1"]["can_approve"] is True
    assert TIN not in response.text  # last four digits only
    assert REF not in response.text  # nor the pseudonym
    assert grants["m-1:0"]["tin_last4"] == "6789"


async def test_a_practitioner_sees_only_grants_under_their_caf_number(read_side: ReadSide) -> None:
    mine = await read_side.call(
        "GET", "/v1/practitioners/me/authorizations", token("practitioner", caf_number=MINE)
    )
    theirs = await read_side.call(
        "GET", "/v1/practitioners/me/authorizations", token("practitioner", caf_number=THEIRS)
    )
    assert [g["grant_id"] for g in mine.json()["grants"]] == ["m-1:0", "tpa-1"]
    assert [g["grant_id"] for g in theirs.json()["grants"]] == ["m-2:0"]
    pending = await read_side.call(
        "GET",
        "/v1/practitioners/me/authorizations?status=pending&limit=1",
        token("practitioner", caf_number=MINE),
    )
    assert [g["grant_id"] for g in pending.json()["grants"]] == ["tpa-1"]


async def test_an_employee_read_needs_a_reason_and_is_audited_before_it_is_answered(
    read_side: ReadSide,
) -> None:
    employee = token("employee")
    refused = await read_side.call(
        "POST", "/v1/employee/taxpayer-authorizations", employee, {"taxpayer_tin": TIN}
    )
    assert refused.status_code == 422
    assert read_side.audited == []
    answered = await read_side.call(
        "POST",
        "/v1/employee/taxpayer-authorizations",
        employee,
        {"taxpayer_tin": TIN, "reason": "case 2026-0042"},
    )
    assert answered.status_code == 200
    [record] = [json.loads(o.value) for o in read_side.audited]
    assert (record["target"], record["why"]) == (f"taxpayer_ref:{REF}", "case 2026-0042")
    assert TIN not in json.dumps(record)
    stored = await read_side.ops.client.query(
        TableName=read_side.ops.name,
        KeyConditionExpression="pk = :audit",
        ExpressionAttributeValues={":audit": {"S": "AUDIT"}},
    )
    assert [json.loads(i["document"]["S"])["audit_id"] for i in stored["Items"]] == [
        record["audit_id"]
    ]


async def test_tokens_of_the_wrong_role_or_none_are_refused_alike(read_side: ReadSide) -> None:
    nobody = await read_side.call("GET", "/v1/taxpayers/me/authorizations", None)
    forged = await read_side.call("GET", "/v1/taxpayers/me/authorizations", "a.b.c")
    wrong = await read_side.call(
        "GET", "/v1/taxpayers/me/authorizations", token("practitioner", caf_number=MINE)
    )
    checker = await read_side.call(
        "POST",
        "/v1/authorization-checks",
        token("taxpayer", tin=TIN),
        check_body(MINE, "2024", taxpayer_ref=REF),
    )
    assert (nobody.status_code, forged.status_code) == (401, 401)
    assert nobody.json() == forged.json()
    assert (wrong.status_code, checker.status_code) == (403, 403)
    assert wrong.json() == checker.json()


async def test_redelivery_and_a_rebuild_from_the_earliest_offset_give_the_same_views(
    read_side: ReadSide, dynamodb: DynamoDBClient
) -> None:
    def by_id(views: list[Any]) -> list[Any]:
        return sorted(views, key=lambda view: view.grant_id)

    before = by_id(await read_side.store.of_taxpayer(REF))
    await read_side.project(STREAM)  # redelivered, every one
    assert by_id(await read_side.store.of_taxpayer(REF)) == before
    rebuilt_settings = read_side.settings.model_copy(update={"table_prefix": unique("rebuilt-")})
    await ensure_tables(dynamodb, TABLES, prefix=rebuilt_settings.table_prefix)
    rebuilt = DynamoQueryStore(rebuilt_settings)
    async with rebuilt.table:
        projector = Projector(rebuilt)
        for offset, event in enumerate(STREAM):
            await projector.on_event(record_at(offset, event))
        assert by_id(await rebuilt.of_taxpayer(REF)) == before
        assert by_id(await rebuilt.of_practitioner(MINE)) == by_id(
            await read_side.store.of_practitioner(MINE)
        )


async def test_the_api_says_it_is_live_ready_and_exports_metrics(read_side: ReadSide) -> None:
    assert (await read_side.call("GET", "/healthz", None)).status_code == 200
    assert (await read_side.call("GET", "/readyz", None)).json() == {"ready": True}
    metrics = await read_side.call("GET", "/metrics", None)
    assert "caf_dynamodb_requests_total" in metrics.text
    served = await read_side.call("GET", "/openapi.json", None)
    assert served.json()["paths"].keys() == {
        "/v1/authorization-checks",
        "/v1/taxpayers/me/authorizations",
        "/v1/practitioners/me/authorizations",
        "/v1/practitioners/me/withdrawals",
        "/v1/officials/me/businesses",
        "/v1/officials/me/businesses/{business_ref}/authorizations",
        "/v1/employee/taxpayer-authorizations",
        "/v1/employee/grant-signatures",
    }


async def test_an_invalid_request_is_told_where_it_is_wrong_without_echoing_the_tin(
    read_side: ReadSide,
) -> None:
    response = await read_side.client.post(
        "/v1/authorization-checks",
        json={**check_body(MINE, "2024"), "taxpayer_tin": 123456789},
        headers={"authorization": f"Bearer {token('system')}"},
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "taxpayer_tin"]
    assert "123456789" not in response.text


async def test_an_employee_reads_a_grants_signature_evidence_hashed_again_and_audited_es_05(
    infra: Infrastructure, read_side: ReadSide
) -> None:
    evidence = taxpayer_evidence(offset=int(uuid.uuid4().int % 1_000_000))
    retain_until = NOW + dt.timedelta(days=2557)
    poster = EvidenceSettings.model_validate(infra.s3_identity("poster"))
    async with EvidenceBucket(poster) as bucket:
        await bucket.store([evidence], retain_until)
    ref = evidence.ref(retain_until).model_dump(mode="json")
    grant = f"e-{uuid.uuid4().hex[:8]}:0"
    posted = STREAM[0] | {"grant_id": grant, "signature_refs": [ref]}
    await read_side.projector.on_event(record_at(1000, posted))
    body = {"grant_id": grant, "reason": "dispute 2026-77"}

    refused = await read_side.call(
        "POST", "/v1/employee/grant-signatures", token("taxpayer", tin=TIN), body
    )
    answered = await read_side.call(
        "POST", "/v1/employee/grant-signatures", token("employee"), body
    )
    unknown = await read_side.call(
        "POST", "/v1/employee/grant-signatures", token("employee"), body | {"grant_id": "none"}
    )
    mine = await read_side.call(
        "GET", "/v1/taxpayers/me/authorizations", token("taxpayer", tin=TIN)
    )

    assert refused.status_code == 403
    assert unknown.status_code == 404
    assert answered.status_code == 200
    [signature] = answered.json()["signatures"]
    assert signature["verified"] is True
    assert signature["original_kept"] is True
    assert signature["lock_mode"] == "COMPLIANCE"
    assert (signature["role"], signature["act"], signature["sha256"]) == (
        "taxpayer",
        "submission",
        evidence.sha256,
    )
    assert dt.datetime.fromisoformat(signature["retain_until"]) > NOW + dt.timedelta(days=2500)
    [record] = [json.loads(o.value) for o in read_side.audited]
    assert (record["action"], record["why"]) == ("read:grant-signatures", "dispute 2026-77")
    assert "signatures" not in json.dumps(mine.json())  # a taxpayer's history shows no evidence
