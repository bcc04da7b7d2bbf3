"""Designated Officials (CP311, issue 19) through the running services: the entity feed, a PIN
request, the CP311 letter, its redemption, a business's Tax Pro Account request approved by its
Designated Official and posted, the read side's view for the official, and the PIN's absence
from every other topic, table and log. The last test moves the module's clock (DO-03, DO-05)."""

from __future__ import annotations

import asyncio
import json
import random
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from caf_client.pins import seal_pin
from caf_runtime.dynamo import dynamodb_client
from caf_runtime.topology import TABLES
from devstack import messages
from devstack.keys import ISSUER
from schemas import topics
from schemas.entities import BusinessType
from schemas.ids import official_id
from schemas.values import EIN_PREFIXES
from tests.conftest import unique
from tests.e2e.conftest import SERVICES as PIPELINE
from tests.e2e.conftest import (
    Pipeline,
    business_today,
    random_ssn,
    ref_of,
    topics_holding,
    unique_caf,
)
from tests.e2e.test_cafctl import AS_OPERATOR, cafctl
from tests.e2e.test_tax_pro_account import decision, send
from tests.signing import keys

pytestmark = pytest.mark.e2e

SERVICES = (*PIPELINE, "caf_query")
PIN_IN_LETTER = re.compile(r"PIN is ([2-9A-Z]{5}-[2-9A-Z]{5})")


def random_ein() -> str:
    """An EIN with a prefix the IRS assigns (others are refused as invalid TINs)."""
    prefix = random.choice(sorted(p for p in EIN_PREFIXES if p >= 10))
    return f"{prefix}-{random.randint(1000000, 9999999)}"


def business_ref(ein: str) -> str:
    return ref_of(ein)  # the same keyed pseudonym as any TIN's (9 digits)


class Person:
    """Someone signed in at the development identity provider (issuer and subject)."""

    def __init__(self) -> None:
        self.subject = f"sa-{uuid.uuid4().hex[:12]}"
        self.ssn = random_ssn()

    @property
    def official_id(self) -> str:
        return official_id(ISSUER, self.subject)

    def assertion(self, nonce: str, pipeline: Pipeline) -> str:
        return keys().assertion(
            tin=self.ssn, nonce=nonce, subject=self.subject, issued_at=services_now(pipeline)
        )

    def as_user(self) -> dict[str, str]:
        return {"issuer": ISSUER, "subject": self.subject}


def services_now(pipeline: Pipeline) -> datetime:
    """The services' clock (moved by `move_clock`): what an identity provider's clock reads in
    a world where that much time has passed."""
    offset = float(Path(pipeline.services.env["CAF_CLOCK_OFFSET_FILE"]).read_text() or 0)
    return datetime.now(UTC) + timedelta(seconds=offset)


async def publish_entity(
    pipeline: Pipeline, ein: str, entity_type: BusinessType = "corporation"
) -> str:
    entity_id = unique("ent-")
    record = messages.document(messages.entity(entity_id, ein, entity_type=entity_type))
    await pipeline.publish(topics.ENTITIES, entity_id, record, "entity")
    return entity_id


def act(kind: str, ein: str, **fields: Any) -> dict[str, Any]:
    return {
        "kind": kind,
        "schema_version": 1,
        "message_id": f"{kind}-{uuid.uuid4().hex[:12]}",
        "sent_at": datetime.now(UTC).isoformat(),
        "entity": {"tin": ein, "tin_type": "EIN"},
        **fields,
    }


async def send_act(
    pipeline: Pipeline, kind: str, ein: str, person: Person, **fields: Any
) -> dict[str, Any]:
    message = act(kind, ein, **fields)
    message["identity_assertion"] = person.assertion(message["message_id"], pipeline)
    await pipeline.send_inbound(message)
    return message


async def outcome(pipeline: Pipeline, ein: str, message: dict[str, Any]) -> dict[str, Any]:
    """The one event an act ended in."""
    [event] = await pipeline.until(
        lambda: [
            e
            for e in pipeline.events(business_ref(ein))
            if e["message_id"] == message["message_id"]
        ]
    )
    return dict(event)


async def request_pin(pipeline: Pipeline, ein: str, person: Person) -> tuple[dict[str, Any], str]:
    """A PIN request accepted: its event and the PIN read from the CP311 letter."""
    message = await send_act(
        pipeline, "do_pin_request", ein, person, title="President", attests_authority=True
    )
    issued = await outcome(pipeline, ein, message)
    assert issued["type"] == "DesignatedOfficialPinIssued", issued
    [letter] = await pipeline.until(lambda: pipeline.notifications({issued["event_id"]}))
    found = PIN_IN_LETTER.search(letter["body"])
    assert found is not None
    return issued, found.group(1)


async def redeem(pipeline: Pipeline, ein: str, person: Person, pin: str) -> dict[str, Any]:
    sealed = seal_pin(pin, keys().pin_keys())
    message = await send_act(pipeline, "do_pin_redeem", ein, person, sealed_pin=sealed)
    return await outcome(pipeline, ein, message)


def business_request(ein: str, caf: str) -> dict[str, Any]:
    """A Tax Pro Account request of professional `caf` for corporation `ein`'s Form 1120."""
    today = business_today()
    request = messages.tpa_request(
        taxpayer=messages.business(ein),
        representative=messages.tax_professional(
            caf_number=caf, receive_notices=None, signed=messages.online_signature(today)
        ),
        message_id=str(uuid.uuid4()),
        sent_at=datetime.now(UTC),
        request_id=f"tpa-{uuid.uuid4().hex[:10]}",
        received_on=today,
        periods=[str(today.year - 1)],
        form_number="1120",
    )
    return messages.document(request)


def approval(pipeline: Pipeline, request: dict[str, Any], person: Person) -> dict[str, Any]:
    message = decision(request)
    message["identity_assertion"] = person.assertion(request["request_id"], pipeline)
    return message


def of_request(pipeline: Pipeline, ein: str, request: dict[str, Any], type_: str) -> list[Any]:
    return [
        e
        for e in pipeline.events(business_ref(ein))
        if e["type"] == type_ and e["grant_id"] == request["request_id"]
    ]


async def test_a_business_gets_a_designated_official_who_approves_its_tax_pro_request(
    pipeline: Pipeline,
) -> None:
    """DO-01 … DO-06, DO-08: request → CP311 by mail → redeem → active → business TPA request →
    a stranger's approval refused, the official's posted; the read side shows it to them."""
    ein, official, stranger = random_ein(), Person(), Person()
    caf = unique_caf()
    await pipeline.register(caf, "Avery Smith")
    unknown = await send_act(
        pipeline, "do_pin_request", ein, official, title="President", attests_authority=True
    )
    assert (await outcome(pipeline, ein, unknown))["reason_code"] == "REJ-ENTITY-UNKNOWN"
    await publish_entity(pipeline, ein)
    early = business_request(ein, caf)  # IN-19 as amended: no official yet
    await send(pipeline, early)
    [ineligible] = await pipeline.until(
        lambda: of_request(pipeline, ein, early, "AuthorizationRejected")
    )
    assert (ineligible["rule_id"], ineligible["reason_code"]) == ("IN-19", "REJ-TPA-TP-INELIGIBLE")

    issued, pin = await request_pin(pipeline, ein, official)
    assert issued["official_id"] == official.official_id
    assert pin not in json.dumps(issued)  # the event carries no PIN
    [letter] = pipeline.notifications({issued["event_id"]})
    assert (letter["template"], letter["channel"], letter["recipient_ref"]) == (
        "cp311_designated_official_pin",
        "mail",
        business_ref(ein),
    )
    assert issued["expires_on"] == str(business_today() + timedelta(days=30))

    wrong_person = await redeem(pipeline, ein, stranger, pin)
    assert wrong_person["reason_code"] == "REJ-DO-PIN-NOT-ISSUED"
    wrong_pin = await redeem(
        pipeline, ein, official, "22222-22222" if pin[0] != "2" else "33333-33333"
    )
    assert (wrong_pin["reason_code"], wrong_pin["attempts_left"]) == ("REJ-DO-PIN-WRONG", 4)
    activated = await redeem(pipeline, ein, official, pin.lower().replace("-", " "))
    assert (activated["type"], activated["official_id"]) == (
        "DesignatedOfficialActivated",
        official.official_id,
    )
    reused = await redeem(pipeline, ein, official, pin)
    assert reused["reason_code"] == "REJ-DO-PIN-USED"

    first, second = business_request(ein, caf), business_request(ein, caf)
    await send(pipeline, first)
    await send(pipeline, second)
    await pipeline.until(
        lambda: all(
            of_request(pipeline, ein, r, "AuthorizationPendingApproval") for r in (first, second)
        )
    )
    await send(pipeline, approval(pipeline, first, stranger))
    [rejected] = await pipeline.until(
        lambda: of_request(pipeline, ein, first, "AuthorizationRejected")
    )
    assert (rejected["rule_id"], rejected["reason_code"]) == ("DO-08", "REJ-DO-NOT-OFFICIAL")
    await send(pipeline, approval(pipeline, second, official))
    [posted] = await pipeline.until(
        lambda: of_request(pipeline, ein, second, "AuthorizationPosted"), limit_s=60
    )
    assert posted["caf_number"] == caf
    assert len(posted["signature_refs"]) == 2  # the professional's and the official's

    user = Person()
    added = await send_act(
        pipeline, "entity_user", ein, official, action="add", user=user.as_user()
    )
    assert (await outcome(pipeline, ein, added))["type"] == "EntityUserAdded"
    not_official = await send_act(
        pipeline, "entity_user", ein, stranger, action="add", user=user.as_user()
    )
    assert (await outcome(pipeline, ein, not_official))["reason_code"] == "REJ-DO-NOT-OFFICIAL"

    await the_read_side_shows_the_business_to_its_official(
        pipeline, official, stranger, ein, second
    )


async def the_read_side_shows_the_business_to_its_official(
    pipeline: Pipeline,
    official: Person,
    stranger: Person,
    ein: str,
    request: dict[str, Any],
) -> None:
    """DO-08 on the read side: the official sees the business's grants; a stranger does not."""

    def bearer(person: Person) -> dict[str, str]:
        token = keys().access_token(role="taxpayer", subject=person.subject, tin=person.ssn)
        return {"authorization": f"Bearer {token}"}

    base = f"http://127.0.0.1:{pipeline.services.api_port}"
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:

        async def listed() -> list[dict[str, Any]]:
            response = await client.get("/v1/officials/me/businesses", headers=bearer(official))
            return list(response.json()["businesses"])

        businesses: list[dict[str, Any]] = []
        for _ in range(100):
            businesses = await listed()
            if businesses:
                break
            await asyncio.sleep(0.2)
        [business] = businesses
        assert business["tin_last4"] == ein[-4:]
        page = f"/v1/officials/me/businesses/{business['business_ref']}/authorizations"
        for _ in range(100):
            grants = (await client.get(page, headers=bearer(official))).json()["grants"]
            if any(
                g["grant_id"] == request["request_id"] and g["status"] == "active" for g in grants
            ):
                break
            await asyncio.sleep(0.2)
        else:
            raise AssertionError("the business's posted grant is not shown to its official")
        assert (await client.get(page, headers=bearer(stranger))).status_code == 404


async def test_an_operator_sees_a_business_file_without_its_pin_and_deactivates_an_official(
    pipeline: Pipeline,
) -> None:
    """DO-07 and AU-04 through cafctl: `officials show` lists the official and the PIN request
    (never the PIN or its hash); `officials deactivate` is applied by intake, announced with
    `by: operator`, audited, and refused the second time."""
    ein, person = random_ein(), Person()
    entity_id = await publish_entity(pipeline, ein)
    _, pin = await request_pin(pipeline, ein, person)
    assert (await redeem(pipeline, ein, person, pin))["type"] == "DesignatedOfficialActivated"

    status, shown = await cafctl(pipeline, "officials", "show", entity_id)
    assert status == 0, shown
    assert (shown["entity_id"], shown["entity_type"], shown["status"]) == (
        entity_id,
        "corporation",
        "active",
    )
    [official] = shown["officials"]
    assert (official["official_id"], official["active"]) == (person.official_id, True)
    [requested] = shown["pins"]
    assert (requested["official_id"], requested["state"]) == (person.official_id, "redeemed")
    text = json.dumps(shown)
    for secret in (pin, pin.replace("-", ""), "argon2", ein, ein.replace("-", "")):
        assert secret not in text

    status, unknown = await cafctl(pipeline, "officials", "show", "ent-nobody")
    assert (status, unknown) == (1, None)

    status, outcome_ = await cafctl(
        pipeline, "officials", "deactivate", entity_id, person.official_id, *AS_OPERATOR
    )
    assert status == 0, outcome_
    assert (outcome_["state"], outcome_["deactivated_by"]) == ("inactive", "operator:dana")
    [announced] = await pipeline.until(
        lambda: [
            e
            for e in pipeline.events(business_ref(ein))
            if e["type"] == "DesignatedOfficialDeactivated"
        ]
    )
    assert (announced["official_id"], announced["by"], announced["by_official_id"]) == (
        person.official_id,
        "operator",
        None,
    )
    status, again = await cafctl(
        pipeline, "officials", "deactivate", entity_id, person.official_id, *AS_OPERATOR
    )
    assert (status, again) == (1, None)  # already inactive: refused before anything is sent

    status, trail = await cafctl(pipeline, "audit", "--limit", "20")
    assert status == 0
    mine = [r for r in trail if r["target"] == f"{entity_id}/{person.official_id}"]
    assert [(r["action"], r["operator"], r["outcome"]) for r in mine] == [
        ("officials deactivate", "dana", "failed: ValueError"),
        ("officials deactivate", "dana", "done"),
    ]
    assert mine[1]["after"]["command_id"] == outcome_["command_id"]


async def test_a_pin_is_on_no_topic_but_its_letter_and_in_no_table_or_log(
    pipeline: Pipeline,
) -> None:
    """DO-04: after the flows of this module, every record of every topic, every item of every
    table and every service log is scanned for each PIN issued so far."""
    ein, person = random_ein(), Person()
    await publish_entity(pipeline, ein)
    _, pin = await request_pin(pipeline, ein, person)
    pins = {
        found.group(1)
        for n in pipeline.seen[topics.NOTIFICATIONS].json()
        if (found := PIN_IN_LETTER.search(n["body"]))
    }
    assert pin in pins
    shapes = {p for pin in pins for p in (pin, pin.replace("-", ""))}

    holding = await topics_holding(pipeline, lambda text: any(s in text for s in shapes))
    assert set(holding) == {topics.NOTIFICATIONS}, holding

    async with dynamodb_client(pipeline.settings) as client:
        for spec in TABLES:
            paginator = client.get_paginator("scan")
            async for page in paginator.paginate(TableName=pipeline.settings.table(spec.name)):
                text = json.dumps(page.get("Items", []))
                assert not any(shape in text for shape in shapes), spec.name
    for log in pipeline.services.logs.glob("*.log"):
        text = log.read_text(errors="replace")
        assert not any(shape in text for shape in shapes), log.name


async def test_a_pin_expires_after_thirty_days_and_a_new_one_may_be_asked_after_fourteen(
    pipeline: Pipeline,
) -> None:
    """DO-03, DO-05 with a moved clock: a second request the same day is too soon; on day 31
    the PIN is expired; a new request is then accepted. (Last in the module: it moves the
    clock of every service.)"""
    ein, person = random_ein(), Person()
    await publish_entity(pipeline, ein)
    _, pin = await request_pin(pipeline, ein, person)
    again = await send_act(
        pipeline, "do_pin_request", ein, person, title="Treasurer", attests_authority=True
    )
    assert (await outcome(pipeline, ein, again))["reason_code"] == "REJ-DO-PIN-TOO-SOON"

    pipeline.services.move_clock(timedelta(days=31))
    expired = await redeem(pipeline, ein, person, pin)
    assert (expired["rule_id"], expired["reason_code"]) == ("DO-05", "REJ-DO-PIN-EXPIRED")
    issued, new_pin = await request_pin(pipeline, ein, person)
    assert new_pin != pin
    activated = await redeem(pipeline, ein, person, new_pin)
    assert activated["type"] == "DesignatedOfficialActivated"
    assert issued["notice_on"] > str(business_today())
