"""The taxpayer_ref key rotation drill under traffic (docs/operations.md, "Rotating the
taxpayer_ref key"): intake rolls to key version 2 while forms keep arriving, `cafctl rekey`
moves the stored CAF, and afterwards every taxpayer's record is found by `cafctl trace` and a
grant posted before the rotation can still be revoked."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
from collections.abc import Callable

import pytest

from caf_runtime.secrets import key_bytes
from schemas.ids import RefKeys
from tests.e2e.conftest import Pipeline, random_ssn, ref_of, submission, unique_caf
from tests.e2e.test_cafctl import AS_OPERATOR, cafctl
from tests.e2e.test_pipeline import removal

pytestmark = pytest.mark.e2e


def both_refs(ssn: str, layer: str) -> tuple[str, str]:
    base = key_bytes(os.environ["INTAKE_TAXPAYER_REF_KEY"], "base")
    return ref_of(ssn), RefKeys((base, bytes.fromhex(layer))).ref(ssn.replace("-", ""))


def posted_under_either(pipeline: Pipeline, old: str, new: str) -> Callable[[], bool]:
    def posted() -> bool:
        return bool(pipeline.terminal_events(old) or pipeline.terminal_events(new))

    return posted


@pytest.mark.timeout(600)
async def test_rotating_the_ref_key_under_traffic_loses_no_lookup_and_old_grants_stay_revocable(
    pipeline: Pipeline,
) -> None:
    caf = unique_caf()
    await pipeline.register(caf, "Avery Smith")
    layer = secrets.token_hex(32)
    forms = {}
    for _ in range(4):
        ssn = random_ssn()
        forms[ssn] = submission(ssn, [{"caf_number": caf}])
        await pipeline.send_inbound(forms[ssn])
    for ssn in forms:
        await pipeline.terminal(ref_of(ssn), 1)

    during = [random_ssn() for _ in range(8)]

    async def traffic() -> None:
        for ssn in during:
            forms[ssn] = submission(ssn, [{"caf_number": caf}])
            await pipeline.send_inbound(forms[ssn])
            await asyncio.sleep(0.4)

    sending = asyncio.create_task(traffic())
    pipeline.services.env["INTAKE_TAXPAYER_REF_LAYERS"] = json.dumps({"2": layer})
    await pipeline.services.restart("intake")
    pipeline.services.env["CAF_REKEY_LAYER_KEY"] = layer
    try:
        status, first = await cafctl(pipeline, "rekey", "--to-version", "2", *AS_OPERATOR)
        assert status == 0, first
        await sending
        for ssn in during:  # posted under whichever ref intake gave it then
            await pipeline.until(posted_under_either(pipeline, *both_refs(ssn, layer)), 120)
        status, second = await cafctl(pipeline, "rekey", "--to-version", "2", *AS_OPERATOR)
        assert status == 0, second
    finally:
        pipeline.services.env.pop("CAF_REKEY_LAYER_KEY")
    assert first["moved"] + second["moved"] >= 4, "the partitions posted before the rotation"

    for form in forms.values():
        grant_id = f"{form['message_id']}:0"
        status, entries = await cafctl(pipeline, "trace", grant_id)
        assert status == 0
        records = [e["record"] for e in entries if e["topic"] == "caf (table, now)"]
        assert [(r["grant_id"], r["status"]) for r in records] == [(grant_id, "active")]

    first_ssn = next(iter(forms))
    revocation = removal("revocation", first_ssn, caf_numbers=None)
    await pipeline.send_inbound(revocation)
    _, new_ref = both_refs(first_ssn, layer)
    [revoked] = await pipeline.until(
        lambda: [e for e in pipeline.events(new_ref) if e["type"] == "AuthorizationRevoked"]
    )
    assert revoked["grant_id"] == f"{forms[first_ssn]['message_id']}:0"
