"""The poster on real DynamoDB: a redelivered grant re-emits exactly the recorded events and
changes nothing in the CAF, also after a crash between recording and publishing; the CAF the
store remembers after writing it is what a read gives back, and a write by anyone else makes
the next decision read again."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import pytest
from aiokafka import ConsumerRecord

from caf_runtime.config import ServiceSettings
from caf_runtime.dynamo import DynamoTable
from caf_runtime.outputs import Output
from caf_runtime.provision import ensure_tables
from caf_runtime.topology import TABLES
from schemas.codec import encode
from services.caf_poster.config import CafPosterSettings
from services.caf_poster.handlers import PosterHandler
from services.caf_poster.store import DynamoCafStore
from tests.evidence import RETRY, MemoryEvidence
from tests.unit.builders import NOW, post_grant

pytestmark = pytest.mark.integration


class FixedClock:
    def __init__(self, now: dt.datetime) -> None:
        self.current = now

    def now(self) -> dt.datetime:
        return self.current


class CrashingPublisher:
    """Records what is published; fails the first `failures` calls like a process dying."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.published: list[list[Output]] = []

    async def __call__(self, outputs: list[Output]) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("process died before the broker acked")
        self.published.append(outputs)


def record_of(command: Any, offset: int = 0) -> ConsumerRecord[bytes, bytes]:
    value = encode(command)
    return ConsumerRecord(
        "caf.grants.validated.v1", 0, offset, 0, 0, None, value, None, 0, len(value), []
    )


async def caf_items(table: DynamoTable, ref: str) -> list[dict[str, Any]]:
    response = await table.client.query(
        TableName=table.name,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"TP#{ref}"}},
        ConsistentRead=True,
    )
    return sorted(response["Items"], key=lambda item: str(item["sk"]))


def store_settings(settings: ServiceSettings) -> CafPosterSettings:
    return CafPosterSettings.model_validate(
        {
            "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
            "DYNAMODB_ENDPOINT": settings.dynamodb_endpoint,
            "CAF_TABLE_PREFIX": settings.table_prefix,
        }
    )


@pytest.fixture
async def store(settings: ServiceSettings) -> Any:
    caf_store = DynamoCafStore(store_settings(settings))
    async with caf_store.table:
        await ensure_tables(caf_store.table.client, TABLES, prefix=settings.table_prefix)
        yield caf_store


def poster(store: DynamoCafStore, publisher: Any, clock: FixedClock) -> PosterHandler:
    """The poster's handler with a 2-minute reorder window and an evidence store that works."""
    return PosterHandler(
        store,
        publisher,
        clock,
        dt.timedelta(minutes=2),
        evidence=MemoryEvidence(),
        evidence_retry=RETRY,
    )


async def test_a_redelivered_grant_re_emits_the_recorded_events_and_changes_nothing(
    store: DynamoCafStore,
) -> None:
    """PO-08 first-time grant: the CAF number is assigned once even when delivered twice."""
    publisher = CrashingPublisher()
    clock = FixedClock(NOW)
    handler = poster(store, publisher, clock)
    grant = post_grant(caf_number=None, first_time=True, taxpayer_ref="b" * 32)

    await handler.on_command(record_of(grant))
    before = await caf_items(store.table, "b" * 32)
    clock.current = NOW + dt.timedelta(minutes=5)
    await handler.on_command(record_of(grant))

    first, again = publisher.published
    assert again == first  # the recorded events, the same ids: not a second decision
    assert [o.value for o in first][-1].find(b"AuthorizationPosted") > 0
    assert await caf_items(store.table, "b" * 32) == before


async def test_a_crash_between_recording_and_publishing_republishes_the_same_events(
    store: DynamoCafStore,
) -> None:
    publisher = CrashingPublisher()
    clock = FixedClock(NOW)
    handler = poster(store, publisher, clock)
    ref = "c" * 32
    first = post_grant(
        grant_id="old:0",
        authorization_id="old",
        message_id="old",
        taxpayer_ref=ref,
        taxpayer_signature_date=dt.date(2026, 11, 1),
    )
    await handler.on_command(record_of(first))
    later = post_grant(
        grant_id="new:0",
        authorization_id="new",
        message_id="new",
        taxpayer_ref=ref,
        caf_number="030199999",
    )
    publisher.failures = 1
    with pytest.raises(ConnectionError):
        await handler.on_command(record_of(later))
    state_after_crash = await caf_items(store.table, ref)

    clock.current = NOW + dt.timedelta(hours=1)
    await handler.on_command(record_of(later))

    revoked_then_posted = publisher.published[-1]
    assert [b"AuthorizationRevoked" in o.value for o in revoked_then_posted] == [True, False]
    assert b"AuthorizationPosted" in revoked_then_posted[1].value
    assert NOW.isoformat().encode()[:16] in revoked_then_posted[1].value  # recorded time, not now
    assert await caf_items(store.table, ref) == state_after_crash
    grants = [i for i in state_after_crash if str(i["sk"]["S"]).startswith("GRANT#")]
    assert len(grants) == 2


async def test_a_stale_version_is_refused_so_a_zombie_cannot_overwrite(
    store: DynamoCafStore,
) -> None:
    ref = "d" * 32
    publisher = CrashingPublisher()
    handler = poster(store, publisher, FixedClock(NOW))
    await handler.on_command(record_of(post_grant(taxpayer_ref=ref)))
    current = await store.load(ref)
    zombie_view = type(current)(version=current.version - 1, grants=(), groups={})
    result = await store.save(ref, zombie_view, current, "zombie-key", [])
    assert result.value == "conflict"


async def test_a_caf_written_before_period_units_reads_in_units_and_revokes_unit_by_unit(
    store: DynamoCafStore,
) -> None:
    """MK-03 on stored data: a grant item exactly as the first-wave code wrote it (one matter per
    period as received: a range, a 941 month that is not a quarter end) reads as units; a POA for
    2024 then takes only 2024 and the item is rewritten in units."""
    ref = "e" * 32
    legacy = {
        "authorization_id": "old-1",
        "caf_number": "030100001",
        "form": "2848",
        "grant_id": "old-1:0",
        "matters": [
            {"form_number": "1040", "period": "2020 thru 2025", "tax_type": "Income"},
            {"form_number": "941", "period": "2024-11", "tax_type": "Employment"},
        ],
        "message_id": "old-1",
        "posted_at": "2025-01-02T10:00:00+00:00",
        "purge_on": None,
        "receive_notices": False,
        "representative_name": "Avery Smith",
        "signature_date": "2025-01-01",
    }
    pk = {"S": f"TP#{ref}"}
    await store.table.client.put_item(
        TableName=store.table.name,
        Item={"pk": pk, "sk": {"S": "VERSION"}, "version": {"N": "1"}},
    )
    await store.table.client.put_item(
        TableName=store.table.name,
        Item={
            "pk": pk,
            "sk": {"S": "GRANT#old-1:0"},
            "grant": {"S": json.dumps(legacy, sort_keys=True)},
            "status": {"S": "active"},
        },
    )
    [grant] = (await store.load(ref)).grants
    assert [m.period for m in grant.matters] == [
        "2020",
        "2021",
        "2022",
        "2023",
        "2024",
        "2025",
        "2024-12",
    ]
    publisher = CrashingPublisher()
    handler = poster(store, publisher, FixedClock(NOW))
    newer = post_grant(taxpayer_ref=ref, taxpayer_signature_date=dt.date(2026, 11, 18))
    await handler.on_command(record_of(newer))
    [events] = publisher.published
    revoked = next(o for o in events if b"AuthorizationRevoked" in o.value)
    body = json.loads(revoked.value)
    assert body["tax_matters"] == [
        {"tax_type": "Income", "form_number": "1040", "periods": ["2024"]}
    ]
    assert body["remaining_matters"] == [
        {
            "tax_type": "Income",
            "form_number": "1040",
            "periods": ["2020", "2021", "2022", "2023", "2025"],
        },
        {"tax_type": "Employment", "form_number": "941", "periods": ["2024-12"]},
    ]
    items = {str(item["sk"]["S"]): item for item in await caf_items(store.table, ref)}
    stored = json.loads(str(items["GRANT#old-1:0"]["grant"]["S"]))
    assert [m["period"] for m in stored["matters"]] == [
        "2020",
        "2021",
        "2022",
        "2023",
        "2025",
        "2024-12",
    ]
    assert items["GRANT#old-1:0"]["status"] == {"S": "active"}


def numbered_grant(ref: str, n: int, **fields: Any) -> Any:
    return post_grant(
        grant_id=f"m{n}:0",
        authorization_id=f"m{n}",
        message_id=f"m{n}",
        taxpayer_ref=ref,
        caf_number=f"0301{n:05d}",
        **fields,
    )


async def test_the_caf_remembered_after_a_write_is_what_a_read_gives_back_and_saves_a_read(
    store: DynamoCafStore, settings: ServiceSettings
) -> None:
    """PO-02 and PO-04 decided on the remembered CAF: a later 2848 for 2024 revokes the earlier
    one's 2024 unit exactly as on a fresh read, and only the first command read the partition."""
    ref = uuid.uuid4().hex
    reads = 0
    partition = store.partition

    async def counted(taxpayer_ref: str) -> Any:
        nonlocal reads
        reads += 1
        return await partition(taxpayer_ref)

    store.partition = counted  # type: ignore[method-assign]
    publisher = CrashingPublisher()
    handler = poster(store, publisher, FixedClock(NOW))
    await handler.on_command(
        record_of(numbered_grant(ref, 1, taxpayer_signature_date=dt.date(2026, 11, 1)))
    )
    await handler.on_command(
        record_of(numbered_grant(ref, 2, taxpayer_signature_date=dt.date(2026, 11, 18)))
    )
    await handler.on_command(record_of(numbered_grant(ref, 3, form="8821")))

    assert reads == 1
    remembered = (await store.locate(ref, remembered=True)).caf
    assert reads == 1
    fresh = DynamoCafStore(store_settings(settings))
    async with fresh.table:
        assert remembered == await fresh.load(ref)
    assert [g.grant_id for g in remembered.grants] == ["m1:0", "m2:0", "m3:0"]
    revoked = [o for batch in publisher.published for o in batch if b"Revoked" in o.value]
    assert [json.loads(o.value)["grant_id"] for o in revoked] == ["m1:0"]


async def test_a_write_by_another_replica_makes_the_next_decision_read_again_and_keeps_both(
    store: DynamoCafStore, settings: ServiceSettings
) -> None:
    """No lost update: the partition moved on under this store (another replica after a
    rebalance); its remembered version fails the condition, it reads again and keeps both."""
    ref = uuid.uuid4().hex
    publisher = CrashingPublisher()
    handler = poster(store, publisher, FixedClock(NOW))
    await handler.on_command(record_of(numbered_grant(ref, 1)))
    other = DynamoCafStore(store_settings(settings))
    async with other.table:
        elsewhere = poster(other, CrashingPublisher(), FixedClock(NOW))
        await elsewhere.on_command(record_of(numbered_grant(ref, 2, form="8821")))

        await handler.on_command(record_of(numbered_grant(ref, 3, form="8821")))

        stored = await other.load(ref)
    assert [g.grant_id for g in stored.grants] == ["m1:0", "m2:0", "m3:0"]
    assert stored.version == 3
    assert (await store.locate(ref, remembered=True)).caf == stored
