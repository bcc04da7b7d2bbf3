"""Hand-written fakes of the services' stores, for the service-layer tests (not mocks)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from faststream.kafka import KafkaBroker, KafkaMessage

from caf_runtime.broker import record_of
from caf_runtime.ledger import Recorded
from caf_runtime.outputs import Output
from caf_runtime.timers import Timer
from services.caf_poster.domain import TaxpayerCaf
from services.caf_poster.store import Located, SaveResult
from services.intake.identity import Asserted
from services.intake.officials import EntityView, Official, PinRecord
from services.intake.store import FeedPosition, KnownRequest, RecordResult, RequestChange
from tests.unit.builders import NOW


class FakeLedger:
    """`caf_runtime.ledger.Ledger` in memory; it marks what was published only when asked to,
    as the real one does (intake's)."""

    def __init__(self, *, marks_published: bool = False) -> None:
        self.items: dict[str, Recorded] = {}
        self._marks_published = marks_published

    async def recorded(self, key: str) -> Recorded | None:
        return self.items.get(key)

    async def mark_published(self, key: str, outputs: list[Output]) -> None:
        if self._marks_published:
            self.items[key] = Recorded("published", self.items[key].outputs)

    def claim(self, key: str, outputs: list[Output]) -> bool:
        if key in self.items:
            return False
        self.items[key] = Recorded("pending", outputs)
        return True


@dataclass
class FakeTimers:
    """A store's timers as a fake schedules them (in the real store: items of the same
    transaction as the decision)."""

    timers: list[Timer] = field(default_factory=list)

    def schedule(self, timer: Timer, *, once: bool = True) -> Any:
        self.timers.append(timer)
        return {"Put": {"TableName": "fake", "Item": {"timer_id": {"S": timer.timer_id}}}}


@dataclass(frozen=True)
class FakeWrite:
    """A change a fake store's `record` applies with the rest, like a transaction item."""

    apply: Callable[[], None]


class FakeIntakeStore:
    """`services.intake.store.IntakeStore` in memory (mypy checks it against the Protocol
    wherever a test passes it to `register`)."""

    def __init__(self) -> None:
        self.ledger = FakeLedger(marks_published=True)
        self.fingerprints: dict[str, str] = {}
        self.requests: dict[str, KnownRequest] = {}
        self.assertions: dict[tuple[str, str], str] = {}
        self.entities: dict[str, EntityView] = {}
        self.digests: dict[str, str] = {}
        self.pins: dict[tuple[str, str], PinRecord] = {}
        self.officials: dict[tuple[str, str], Official] = {}
        self.users: dict[str, set[str]] = {}
        self.timers: list[Timer] = []

    async def ping(self) -> bool:
        return True

    async def fingerprint_owner(self, fingerprint: str) -> str | None:
        return self.fingerprints.get(fingerprint)

    async def claim_assertion(self, asserted: Asserted, message_id: str, now: dt.datetime) -> bool:
        owner = self.assertions.setdefault((asserted.issuer, asserted.jti), message_id)
        return owner == message_id

    async def request(self, request_id: str) -> KnownRequest | None:
        return self.requests.get(request_id)

    async def record(
        self,
        message_id: str,
        outputs: list[Output],
        now: dt.datetime,
        *,
        fingerprint: str | None = None,
        request: RequestChange | None = None,
        timer: Timer | None = None,
        writes: tuple[Any, ...] = (),
    ) -> RecordResult:
        # one transaction, like the real store: nothing is written when a condition fails
        if message_id in self.ledger.items:
            return RecordResult.ALREADY_RECORDED
        if fingerprint is not None and fingerprint in self.fingerprints:
            return RecordResult.FINGERPRINT_TAKEN
        self.ledger.claim(message_id, outputs)
        if fingerprint is not None:
            self.fingerprints[fingerprint] = message_id
        if request is not None:
            self._change(request)
        if timer is not None:
            self.timers.append(timer)
        for write in writes:
            write.apply()
        return RecordResult.RECORDED

    def _change(self, request: RequestChange) -> None:
        known = self.requests.get(request.request_id)
        grant = request.grant or (known.grant if known else None)
        entity_id = request.entity_id or (known.entity_id if known else None)
        self.requests[request.request_id] = KnownRequest(request.state, grant, entity_id)

    def request_put(self, change: RequestChange, now: dt.datetime) -> Any:
        return FakeWrite(lambda: self._change(change))

    async def apply_entity(
        self, entity_id: str, known: EntityView | None, digest: str | None, at: FeedPosition
    ) -> bool:
        if known is None:
            self.entities.pop(entity_id, None)
        else:
            self.entities[entity_id] = known
        if digest is not None:
            self.digests[digest] = entity_id
        return True

    async def entity(self, digest: str) -> EntityView | None:
        entity_id = self.digests.get(digest)
        return self.entities.get(entity_id) if entity_id is not None else None

    async def entity_by_id(self, entity_id: str) -> EntityView | None:
        return self.entities.get(entity_id)

    async def pin(self, entity_id: str, official: str) -> PinRecord | None:
        return self.pins.get((entity_id, official))

    def pin_put(self, entity_id: str, pin: PinRecord) -> Any:
        return FakeWrite(lambda: self.pins.__setitem__((entity_id, pin.official_id), pin))

    async def official(self, entity_id: str, official: str) -> Official | None:
        return self.officials.get((entity_id, official))

    async def has_active_official(self, entity_id: str) -> bool:
        return any(o.active for (e, _), o in self.officials.items() if e == entity_id)

    def official_put(
        self, entity_id: str, official: Official, *, by: str | None = None, at: dt.datetime
    ) -> Any:
        key = (entity_id, official.official_id)
        return FakeWrite(lambda: self.officials.__setitem__(key, official))

    def user_write(
        self, entity_id: str, user_id: str, *, add: bool, by: str, at: dt.datetime
    ) -> Any:
        users = self.users.setdefault(entity_id, set())
        return FakeWrite(lambda: users.add(user_id) if add else users.discard(user_id))


class FakeCafStore:
    """`services.caf_poster.store.CafStore` in memory: the CAF of each taxpayer, the grants
    waiting (`held`), the timers scheduled, and the `delta` a firing writes (applied at once:
    the fake's firings always win their claim)."""

    def __init__(self) -> None:
        self.ledger = FakeLedger()
        self.cafs: dict[str, TaxpayerCaf] = {}
        self.numbers = 0
        self.timers = FakeTimers()
        self.held: list[str] = []

    async def ping(self) -> bool:
        return True

    async def load(self, ref: str) -> TaxpayerCaf:
        return self.cafs.get(ref, TaxpayerCaf())

    async def locate(
        self, taxpayer_ref: str, previous_ref: str | None = None, *, remembered: bool = False
    ) -> Located:
        if taxpayer_ref not in self.cafs and previous_ref in self.cafs:
            self.cafs[taxpayer_ref] = self.cafs.pop(previous_ref)
        return Located(taxpayer_ref, await self.load(taxpayer_ref))

    async def next_caf_number(self) -> str:
        self.numbers += 1
        return f"90{self.numbers:07d}"

    async def save(
        self,
        taxpayer_ref: str,
        before: TaxpayerCaf,
        after: TaxpayerCaf,
        key: str,
        outputs: list[Output],
        *,
        timers: tuple[Timer, ...] = (),
    ) -> SaveResult:
        if not self.ledger.claim(key, outputs):
            return SaveResult.ALREADY_RECORDED
        self.cafs[taxpayer_ref] = after
        for timer in timers:
            self.timers.schedule(timer)
        return SaveResult.SAVED

    async def hold(self, key: str, timer: Timer) -> bool:
        if not self.ledger.claim(key, []):
            return False
        self.held.append(key)
        self.timers.schedule(timer)
        return True

    def delta(self, taxpayer_ref: str, before: TaxpayerCaf, after: TaxpayerCaf) -> list[Any]:
        self.cafs[taxpayer_ref] = after
        return []


class FixedClock:
    def now(self) -> dt.datetime:
        return NOW


Seen = dict[str, list[tuple[bytes, dict[str, str]]]]


def probe(broker: KafkaBroker, *topics: str) -> Seen:
    """Collect what the service publishes to `topics` (values and headers)."""
    seen: Seen = {}
    for topic in topics:

        def collect(name: str) -> Any:
            async def on_message(message: KafkaMessage) -> None:
                record = record_of(message)
                headers = {k: v.decode() for k, v in record.headers}
                seen.setdefault(name, []).append((record.value or b"", headers))

            return on_message

        broker.subscriber(topic, group_id=f"probe-{topic}")(collect(topic))
    return seen
