"""No TIN, taxpayer name or address leaves intake's input: a mixed workload with malformed,
oversized and hostile messages goes through the four services, then every topic (but the inbound
topic itself), every table item, every header and every log line is searched for the TINs (with
and without dashes), names and addresses it used. Intake's sealed copies are searched too: they
are ciphertext."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from caf_runtime.broker import client_options
from caf_runtime.dynamo import dynamodb_client
from caf_runtime.topology import TABLES, TOPICS
from cafctl.topics import read_topic
from schemas import topics
from tests.e2e.conftest import Pipeline, random_ssn, ref_of, submission, unique_caf
from tests.e2e.test_pipeline import removal
from tests.e2e.test_tax_pro_account import decision, tpa_request

pytestmark = pytest.mark.e2e


class Secrets:
    """Everything the workload says about taxpayers that must not come out."""

    def __init__(self) -> None:
        self.texts: set[str] = set()

    def tin(self) -> str:
        ssn = random_ssn()
        self.texts |= {ssn, ssn.replace("-", "")}
        return ssn

    def person(self, form: dict[str, Any]) -> dict[str, Any]:
        """The form with a taxpayer name and address nobody else uses."""
        tag = uuid.uuid4().hex[:8]
        name, street, city = f"Quillon {tag} Farthing", f"{tag} Lantern Way", f"Osric{tag}ville"
        self.texts |= {name, street, city}
        form["taxpayer"]["name"] = name
        form["taxpayer"]["address"] = {"line1": street, "city": city, "state": "TN"}
        return form

    def found_in(self, text: str) -> list[str]:
        return [secret for secret in self.texts if secret in text]


async def everything_on_topics(pipeline: Pipeline) -> list[tuple[str, str]]:
    """(where, text) of every record of every topic but the inbound one: key, value, headers."""
    options = client_options(pipeline.settings)
    found = []
    for spec in TOPICS:
        if spec.name == topics.INBOUND:
            continue
        for record in await read_topic(options, pipeline.settings.topic(spec.name)):
            headers = {k: v.decode(errors="replace") for k, v in record.headers}
            text = json.dumps(
                {
                    "key": (record.key or b"").decode(errors="replace"),
                    "value": (record.value or b"").decode(errors="replace"),
                    "headers": headers,
                }
            )
            found.append((f"{spec.name}@{record.partition}/{record.offset}", text))
    return found


async def everything_in_tables(pipeline: Pipeline) -> list[tuple[str, str]]:
    found = []
    async with dynamodb_client(pipeline.settings) as client:
        for spec in TABLES:
            paginator = client.get_paginator("scan")
            async for page in paginator.paginate(TableName=pipeline.settings.table(spec.name)):
                for item in page.get("Items", []):
                    found.append((f"table {spec.name}", json.dumps(item, default=str)))
    return found


def everything_logged(logs: Path) -> list[tuple[str, str]]:
    return [
        (f"{path.name}:{number}", line)
        for path in sorted(logs.glob("*.log"))
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
    ]


@pytest.mark.timeout(300)
async def test_no_tin_name_or_address_is_anywhere_but_the_inbound_topic(
    pipeline: Pipeline,
) -> None:
    secrets = Secrets()
    caf = unique_caf()
    await pipeline.register(caf, "Avery Smith")
    valid = [secrets.person(submission(secrets.tin(), [{"caf_number": caf}])) for _ in range(3)]
    first = valid[0]["taxpayer"]["tin"]
    request = secrets.person(tpa_request(secrets.tin(), caf))
    declined = secrets.person(tpa_request(secrets.tin(), caf))
    hostile_rep = secrets.person(
        submission(secrets.tin(), [{"caf_number": caf, "name": f"Rep {secrets.tin()}"}])
    )
    hostile_period = secrets.person(submission(secrets.tin(), [{"caf_number": caf}]))
    hostile_period["tax_matters"][0]["periods"] = [secrets.tin()]
    unreadable_tin = secrets.person(submission(secrets.tin(), [{"caf_number": caf}]))
    unreadable_tin["taxpayer"]["tin_type"] = "NOPE"  # REJ-SCHEMA, message id readable
    tin_as_id = secrets.person(submission(secrets.tin(), [{"caf_number": caf}]))
    tin_as_id["message_id"] = secrets.tin()  # refused as an id: dead letter only
    oversized = secrets.person(submission(secrets.tin(), [{"caf_number": caf}]))
    oversized["taxpayer"]["signer_title"] = "x" * 900_000
    malformed = json.dumps(secrets.person(submission(secrets.tin(), [])))[:-9].encode()
    unsigned = secrets.person(submission(secrets.tin(), [{"caf_number": caf}]))
    early = decision(secrets.person(tpa_request(secrets.tin(), caf)))  # its request never comes

    for message in [*valid, request, declined, hostile_rep, hostile_period, unreadable_tin]:
        await pipeline.send_inbound(message)
    await pipeline.send_inbound(tin_as_id, key="tin-as-id")
    await pipeline.send_inbound(oversized)
    await pipeline.send_inbound(malformed, key="malformed")
    await pipeline.send_inbound(unsigned, headers=[])
    await pipeline.send_inbound(early, key=early["request_id"])
    await pipeline.send_inbound(decision(request), key=request["request_id"])
    await pipeline.send_inbound(decision(declined, "decline"), key=declined["request_id"])
    await pipeline.send_inbound(removal("withdrawal", first, caf_number=caf))

    rejected = {m["message_id"] for m in (hostile_rep, hostile_period, unreadable_tin, oversized)}
    await pipeline.until(
        lambda: (
            rejected <= {e.get("message_id") for e in pipeline.seen[topics.EVENTS].json()}
            and any(
                e["type"] == "AuthorizationRejected" and e["grant_id"] == early["request_id"]
                for e in pipeline.seen[topics.EVENTS].json()
            )
            and any(e["type"] == "AuthorizationWithdrawn" for e in pipeline.events(ref_of(first)))
        ),
        limit_s=90,
    )
    await pipeline.until(lambda: len(pipeline.seen[topics.INBOUND_DLQ].records) >= 7)
    await asyncio.sleep(3)  # the notifier's alerts of the last events

    places = [
        *await everything_on_topics(pipeline),
        *await everything_in_tables(pipeline),
        *everything_logged(pipeline.services.logs),
    ]
    assert len(places) > 100, "the scan saw the workload's traces"
    leaks = [(where, secrets.found_in(text)) for where, text in places if secrets.found_in(text)]
    assert leaks == []
