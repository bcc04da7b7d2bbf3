"""Validator, poster and notifier under TestKafkaBroker with fake stores: each handler path and a
bad message."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, cast

import pytest
from faststream.kafka import TestKafkaBroker

from caf_runtime.broker import make_broker
from caf_runtime.outputs import Output
from schemas import topics
from schemas.registry import PractitionerRecord
from services.caf_poster.config import CafPosterSettings
from services.caf_poster.domain import TaxpayerCaf
from services.caf_poster.handlers import register as register_poster
from services.caf_poster.store import CafStore, SaveResult
from services.notifier.config import NotifierSettings
from services.notifier.handlers import register as register_notifier
from services.notifier.store import NotifierStore
from services.validator.barrier import RegistryBarrier
from services.validator.config import ValidatorSettings
from services.validator.handlers import register as register_validator
from services.validator.store import ValidatorStore
from tests.service.fakes import FakeLedger, FixedClock, probe
from tests.unit.builders import post_grant

pytestmark = pytest.mark.service


class FakeValidatorStore:
    async def ping(self) -> bool:
        return True

    def __init__(self) -> None:
        self.ledger = FakeLedger()
        self.registry: dict[str, bytes | None] = {}
        self.ended_grants: set[str] = set()

    async def practitioner(self, caf_number: str) -> PractitionerRecord | None:
        raw = self.registry.get(caf_number)
        return PractitionerRecord.model_validate_json(raw) if raw else None

    async def apply_registry(
        self, caf: str, record: bytes | None, partition: int, offset: int
    ) -> bool:
        self.registry[caf] = record
        return True

    async def other_taxpayers(self, caf: str, ref: str, since: dt.datetime) -> int:
        return 0

    async def record(
        self, key: str, outputs: list[Output], velocity: Any = None, timers: Any = ()
    ) -> bool:
        return self.ledger.claim(key, outputs)

    async def mark_ended(self, grant_id: str) -> None:
        self.ended_grants.add(grant_id)

    async def ended(self, grant_id: str) -> bool:
        return grant_id in self.ended_grants


class NoWaitBarrier:
    async def wait_until_applied(self, published_before_ms: int) -> bool:
        return True


def validator() -> tuple[Any, FakeValidatorStore, Any]:
    settings = ValidatorSettings()
    broker = make_broker(settings, client_id="test")
    store = FakeValidatorStore()
    register_validator(
        broker,
        settings,
        cast("ValidatorStore", store),
        FixedClock(),
        cast("RegistryBarrier", NoWaitBarrier()),
    )
    seen = probe(broker, topics.GRANTS_VALIDATED, topics.EVENTS, topics.VALIDATOR_DLQ)
    return broker, store, seen


async def test_the_validator_passes_a_grant_in_good_standing_and_rejects_a_suspended_one() -> None:
    """VA-01 through the handler, with the registry fed from its topic."""
    broker, _, seen = validator()
    record = {"caf_number": "030112345", "name": "Avery Smith", "status_code": ""}
    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish(
            json.dumps(record).encode(), topic=topics.PRACTITIONERS, key=b"030112345"
        )
        await test_broker.publish(
            post_grant().model_dump_json().encode(), topic=topics.GRANTS_ACCEPTED
        )
        suspended = record | {"status_code": "S"}
        await test_broker.publish(
            json.dumps(suspended).encode(), topic=topics.PRACTITIONERS, key=b"030112345"
        )
        await test_broker.publish(
            post_grant(grant_id="m-1:1").model_dump_json().encode(), topic=topics.GRANTS_ACCEPTED
        )
    [(passed, _)] = seen[topics.GRANTS_VALIDATED]
    assert json.loads(passed)["grant_id"] == "m-1:0"
    [(rejected, _)] = seen[topics.EVENTS]
    assert json.loads(rejected)["reason_code"] == "REJ-REP-NOT-GOOD-STANDING"
    assert topics.VALIDATOR_DLQ not in seen


async def test_the_validator_dead_letters_a_command_it_cannot_read() -> None:
    broker, _, seen = validator()
    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish(b'{"action": "teleport"}', topic=topics.GRANTS_ACCEPTED)
    [(_, headers)] = seen[topics.VALIDATOR_DLQ]
    assert headers["error-class"] == "ContractError"


class FakeCafStore:
    async def ping(self) -> bool:
        return True

    def __init__(self) -> None:
        self.ledger = FakeLedger()
        self.cafs: dict[str, TaxpayerCaf] = {}
        self.numbers = 0

    async def load(self, ref: str) -> TaxpayerCaf:
        return self.cafs.get(ref, TaxpayerCaf())

    async def next_caf_number(self) -> str:
        self.numbers += 1
        return f"90{self.numbers:07d}"

    async def save(
        self,
        ref: str,
        before: TaxpayerCaf,
        after: TaxpayerCaf,
        key: str,
        outputs: list[Output],
        *,
        timers: Any = (),
    ) -> SaveResult:
        if not self.ledger.claim(key, outputs):
            return SaveResult.ALREADY_RECORDED
        self.cafs[ref] = after
        return SaveResult.SAVED


async def test_the_poster_posts_assigns_a_caf_number_and_ignores_a_redelivery() -> None:
    """PO-08 through the handler; a redelivered grant emits nothing new."""
    settings = CafPosterSettings()
    broker = make_broker(settings, client_id="test")
    store = FakeCafStore()
    register_poster(broker, settings, cast("CafStore", store), FixedClock())
    seen = probe(broker, topics.EVENTS, topics.POSTER_DLQ)
    grant = post_grant(caf_number=None, first_time=True).model_dump_json().encode()
    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish(grant, topic=topics.GRANTS_VALIDATED)
        await test_broker.publish(grant, topic=topics.GRANTS_VALIDATED)
        await test_broker.publish(b"\x00", topic=topics.GRANTS_VALIDATED)
    assert [json.loads(v)["type"] for v, _ in seen[topics.EVENTS]] == [
        "CafNumberAssigned",
        "AuthorizationPosted",
    ]
    assert len(seen[topics.POSTER_DLQ]) == 1


class FakeNotifierStore:
    async def ping(self) -> bool:
        return True

    def __init__(self) -> None:
        self.ledger = FakeLedger()

    async def record(self, event_id: str, outputs: list[Output]) -> bool:
        return self.ledger.claim(event_id, outputs)


async def test_the_notifier_sends_once_per_event_and_recipient() -> None:
    """NO-02, NO-08 through the handler."""
    settings = NotifierSettings()
    broker = make_broker(settings, client_id="test")
    register_notifier(broker, settings, cast("NotifierStore", FakeNotifierStore()), FixedClock())
    seen = probe(broker, topics.NOTIFICATIONS, topics.NOTIFIER_DLQ)
    event = {
        "event_id": "e1",
        "type": "AuthorizationPosted",
        "occurred_at": "2026-11-20T19:00:00Z",
        "taxpayer_ref": "a" * 32,
        "tin_last4": "6789",
        "form": "2848",
        "message_id": "m-1",
        "grant_id": "m-1:0",
        "caf_number": "030112345",
        "stage": "caf_poster",
        "authorization_id": "m-1",
        "receive_notices": True,
        "received_at": "2026-11-20T19:00:00Z",
        "posted_at": "2026-11-20T19:00:00Z",
        "tax_matters": [{"tax_type": "Income", "form_number": "1040", "periods": ["2024"]}],
    }
    async with TestKafkaBroker(broker) as test_broker:
        for _ in range(2):
            await test_broker.publish(json.dumps(event).encode(), topic=topics.EVENTS)
        await test_broker.publish(b"not an event", topic=topics.EVENTS)
    [(note, _)] = seen[topics.NOTIFICATIONS]
    assert json.loads(note)["template"] == "authorization_posted"
    assert len(seen[topics.NOTIFIER_DLQ]) == 1
