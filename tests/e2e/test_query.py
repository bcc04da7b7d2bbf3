"""The authorization API (issue 17) through the running services: forms go in at intake, the read
side's process projects the outcome stream, and its HTTP API answers the check and the histories
with the development identity provider's tokens."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from caf_runtime.broker import client_options
from caf_runtime.dynamo import dynamodb_client
from cafctl.read_side import ReadSideApi, ReadSideRead
from cafctl.status import status, trace
from devstack.keys import ISSUER
from tests.e2e.conftest import (
    DEADLINE_S,
    Pipeline,
    business_today,
    older_then_newer,
    random_ssn,
    ref_of,
    submission,
    submitted,
    two_representatives,
    unique_caf,
)
from tests.e2e.conftest import SERVICES as PIPELINE
from tests.e2e.test_pipeline import removal
from tests.e2e.test_tax_pro_account import requested
from tests.signing import keys

pytestmark = pytest.mark.e2e

SERVICES = (*PIPELINE, "caf_query")  # the pipeline fixture starts these
YEAR = business_today().year - 1


class Api:
    """The read side's API as each kind of caller uses it."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    @staticmethod
    def token(role: str, **claims: Any) -> str:
        return keys().access_token(
            role=role, subject=f"{role}-e2e", issued_at=datetime.now(UTC), **claims
        )

    async def check(self, ssn: str, caf: str, period: str) -> dict[str, Any]:
        response = await self.client.post(
            "/v1/authorization-checks",
            headers={"authorization": f"Bearer {self.token('system')}"},
            json={
                "taxpayer_tin": ssn,
                "caf_number": caf,
                "tax_type": "Income",
                "form_number": "1040",
                "period": period,
            },
        )
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    async def history(self, ssn: str) -> dict[str, dict[str, Any]]:
        token = self.token("taxpayer", tin=ssn)
        return await self._grants("/v1/taxpayers/me/authorizations", token)

    async def practitioner(self, caf: str) -> dict[str, dict[str, Any]]:
        token = self.token("practitioner", caf_number=caf)
        return await self._grants("/v1/practitioners/me/authorizations", token)

    async def _grants(self, path: str, token: str) -> dict[str, dict[str, Any]]:
        """The grants the caller of `token` sees at `path`, by grant id."""
        response = await self.client.get(path, headers={"authorization": f"Bearer {token}"})
        assert response.status_code == 200, response.text
        return {g["grant_id"]: g for g in response.json()["grants"]}


@pytest.fixture(scope="module")
async def api(pipeline: Pipeline) -> AsyncIterator[Api]:
    base = f"http://127.0.0.1:{pipeline.services.api_port}"
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        yield Api(client)


async def until(probe: Callable[[], Awaitable[Any]], wanted: Callable[[Any], bool]) -> Any:
    """Ask `probe()` until `wanted` holds of its answer (the read side follows the stream)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE_S
    while True:
        answer = await probe()
        if wanted(answer):
            return answer
        if loop.time() > deadline:
            raise AssertionError(f"not as wanted within {DEADLINE_S}s: {answer}")
        await asyncio.sleep(0.2)


async def test_a_posted_grant_answers_the_check_for_its_units_only_and_shows_in_both_histories(
    pipeline: Pipeline, api: Api
) -> None:
    """PO-05 posted; MK-05 a future year dropped is `none`; the taxpayer and the practitioner
    both see the grant, each only their own."""
    ssn, caf, form = await submitted(pipeline, periods=[str(YEAR), f"{YEAR + 7}"])
    other = unique_caf()
    [posted] = await pipeline.terminal(ref_of(ssn), 1)
    assert posted["type"] == "AuthorizationPosted"
    grant = f"{form['message_id']}:0"
    answer = await until(lambda: api.check(ssn, caf, str(YEAR)), _authorized)
    assert (answer["authorized"], answer["grant_id"]) == ("POA", grant)
    assert (await api.check(ssn, caf, f"{YEAR + 7}"))["authorized"] == "none"  # dropped
    assert (await api.check(ssn, other, str(YEAR)))["authorized"] == "none"
    history = await api.history(ssn)
    assert history[grant]["status"] == "active"
    assert history[grant]["tin_last4"] == ssn[-4:]
    assert ssn.replace("-", "") not in json.dumps(history)
    assert grant in await api.practitioner(caf)
    assert grant not in await api.practitioner(other)  # another practitioner sees nothing
    assert grant not in await api.history(random_ssn())  # nor does another taxpayer


async def test_a_newer_poa_takes_its_units_and_leaves_the_older_grant_partly_revoked(
    pipeline: Pipeline, api: Api
) -> None:
    """MK-03 (units taken by a later form) and PO-06 (an older signature is superseded)."""
    today = business_today()
    ssn, first, second, old, new = await older_then_newer(
        pipeline,
        [f"{YEAR - 2} thru {YEAR}"],
        [str(YEAR)],
        older_signed=today - dt.timedelta(days=9),
    )
    taken = await until(
        lambda: api.check(ssn, first, str(YEAR)), lambda a: a["authorized"] == "none"
    )
    assert taken["grant_id"] is None
    assert (await api.check(ssn, first, str(YEAR - 1)))["authorized"] == "POA"
    assert (await api.check(ssn, second, str(YEAR)))["grant_id"] == f"{new['message_id']}:0"
    history = await until(
        lambda: api.history(ssn),
        lambda h: h.get(f"{old['message_id']}:0", {}).get("status") == "partly_revoked",
    )
    assert history[f"{old['message_id']}:0"]["matters"][0]["periods"] == [
        str(YEAR - 2),
        str(YEAR - 1),
    ]
    older = submission(
        ssn, [{"caf_number": first}], periods=[str(YEAR)], signed=today - dt.timedelta(days=20)
    )
    await pipeline.send_inbound(older)
    await pipeline.terminal(ref_of(ssn), 3)
    superseded = await until(
        lambda: api.history(ssn),
        lambda h: f"{older['message_id']}:0" in h,
    )
    assert superseded[f"{older['message_id']}:0"]["status"] == "not_processed"
    assert superseded[f"{older['message_id']}:0"]["story"][-1]["reason_code"] == "NP-SUPERSEDED"
    assert (await api.check(ssn, first, str(YEAR)))["authorized"] == "none"


async def test_a_withdrawn_and_a_revoked_grant_no_longer_authorize(
    pipeline: Pipeline, api: Api
) -> None:
    """PO-09 withdrawal and PO-10 taxpayer revocation, as the check sees them."""
    ssn, first, second, _ = await two_representatives(pipeline)
    await until(lambda: api.check(ssn, second, str(YEAR)), _authorized)
    await pipeline.send_inbound(removal("withdrawal", ssn, caf_number=first))
    await until(lambda: api.check(ssn, first, str(YEAR)), lambda a: a["authorized"] == "none")
    assert (await api.check(ssn, second, str(YEAR)))["authorized"] == "POA"
    await pipeline.send_inbound(removal("revocation", ssn, caf_numbers=None))
    await until(lambda: api.check(ssn, second, str(YEAR)), lambda a: a["authorized"] == "none")
    history = await api.history(ssn)
    assert {g["status"] for g in history.values()} == {"withdrawn", "revoked"}


async def test_a_pending_request_shows_to_the_taxpayer_as_approvable_and_to_the_practitioner(
    pipeline: Pipeline, api: Api
) -> None:
    """NO-01: a Tax Pro Account request waits for the taxpayer; it authorizes nothing yet."""
    ssn, caf, request = await requested(pipeline)
    history = await until(lambda: api.history(ssn), lambda h: request["request_id"] in h)
    pending = history[request["request_id"]]
    assert (pending["status"], pending["can_approve"]) == ("pending", True)
    assert pending["expires_on"] == str(business_today() + timedelta(days=30))
    mine = await api.practitioner(caf)
    assert mine[request["request_id"]]["status"] == "pending"
    assert (await api.check(ssn, caf, str(YEAR)))["authorized"] == "none"


async def test_an_employee_read_without_a_reason_is_refused_and_with_one_is_audited(
    pipeline: Pipeline, api: Api
) -> None:
    ssn, caf, _ = await submitted(pipeline)
    await pipeline.terminal(ref_of(ssn), 1)
    await until(lambda: api.check(ssn, caf, str(YEAR)), _authorized)
    employee = {"authorization": f"Bearer {api.token('employee')}"}
    refused = await api.client.post(
        "/v1/employee/taxpayer-authorizations", headers=employee, json={"taxpayer_tin": ssn}
    )
    assert refused.status_code == 422
    assert await _audited(pipeline, ref_of(ssn)) == []
    answered = await api.client.post(
        "/v1/employee/taxpayer-authorizations",
        headers=employee,
        json={"taxpayer_tin": ssn, "reason": "case 2026-0107"},
    )
    assert answered.status_code == 200
    assert len(answered.json()["grants"]) == 1
    [record] = await _audited(pipeline, ref_of(ssn))
    assert (record["why"], record["operator"]) == ("case 2026-0107", f"employee-e2e@{ISSUER}")
    assert ssn.replace("-", "") not in json.dumps(record)


def _authorized(answer: dict[str, Any]) -> bool:
    return bool(answer["authorized"] != "none")


async def _audited(pipeline: Pipeline, ref: str) -> list[dict[str, Any]]:
    async with dynamodb_client(pipeline.settings) as client:
        response = await client.query(
            TableName=pipeline.settings.table("ops"),
            KeyConditionExpression="pk = :audit",
            ExpressionAttributeValues={":audit": {"S": "AUDIT"}},
            ConsistentRead=True,
        )
    records = [json.loads(item["document"]["S"]) for item in response["Items"]]
    return [r for r in records if r["target"] == f"taxpayer_ref:{ref}"]


async def test_cafctl_trace_adds_what_the_api_answers_and_status_reports_the_read_side(
    pipeline: Pipeline, api: Api
) -> None:
    """`cafctl trace --why`: the API's view of the grant after the topics' records, read as an
    audited employee; `cafctl status`: the read side's readiness and its consumer group."""
    ssn, caf, _ = await submitted(pipeline)
    [posted] = await pipeline.terminal(ref_of(ssn), 1)
    await until(lambda: api.check(ssn, caf, str(YEAR)), _authorized)
    base = ReadSideApi(str(api.client.base_url).rstrip("/"))
    read = ReadSideRead(base, lambda: api.token("employee"), "case 2026-0311")
    settings = pipeline.settings
    entries = await trace(settings, client_options(settings), posted["grant_id"], read)
    assert [e["topic"] for e in entries][-2:] == ["caf (table, now)", "read side (API, now)"]
    assert entries[-1]["record"]["status"] == "active"
    assert ssn.replace("-", "") not in json.dumps(entries)
    [audited] = await _audited(pipeline, ref_of(ssn))
    assert audited["why"] == "case 2026-0311"
    summary = await status(settings, client_options(settings), base)
    assert summary["services"]["caf_query"] == "ready"
    assert {g["group"] for g in summary["groups"]} >= {"caf-query", "caf-query-redelivery"}
