"""DynamoDB Local answers like DynamoDB where the stores depend on it."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import ClientError

from caf_runtime.config import ServiceSettings
from caf_runtime.dynamo import DynamoTable
from caf_runtime.group_writer import GroupWriter
from caf_runtime.ledger import Ledger, Recorded, handle_once, transact
from caf_runtime.outputs import Output
from caf_runtime.provision import ensure_tables
from caf_runtime.topology import TABLES
from schemas import topics
from schemas.codes import ReasonCode, Rejection, RuleId
from schemas.grants import refusal_of
from schemas.registry import PractitionerRecord
from services.validator import store as validator_store_module
from services.validator.config import ValidatorSettings
from services.validator.outcomes import pending as validator_pending
from services.validator.store import DynamoValidatorStore, ReviewVerdict, Sighting
from tests.feeds import feed_record, practitioner, registry_view
from tests.integration.conftest import store_settings
from tests.unit.builders import post_grant

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

pytestmark = pytest.mark.integration


async def test_a_second_conditional_write_of_the_same_key_fails(
    settings: ServiceSettings, dynamodb: DynamoDBClient
) -> None:
    await ensure_tables(dynamodb, TABLES, prefix=settings.table_prefix)
    table = settings.table("intake")
    item = {"pk": {"S": "MSG#7b0c9a52"}, "sk": {"S": "DEDUP"}, "outcome": {"S": "accepted"}}

    await dynamodb.put_item(
        TableName=table, Item=item, ConditionExpression="attribute_not_exists(pk)"
    )
    with pytest.raises(ClientError) as refused:
        await dynamodb.put_item(
            TableName=table,
            Item={**item, "outcome": {"S": "something else"}},
            ConditionExpression="attribute_not_exists(pk)",
        )

    assert refused.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    stored = await dynamodb.get_item(TableName=table, Key={"pk": item["pk"], "sk": item["sk"]})
    assert stored["Item"]["outcome"] == {"S": "accepted"}


async def test_a_store_table_reports_ready_only_once_provisioned(
    settings: ServiceSettings, dynamodb: DynamoDBClient
) -> None:
    async with DynamoTable(settings, "caf") as table:
        with pytest.raises(ClientError):
            await table.ping()
        await ensure_tables(dynamodb, TABLES, prefix=settings.table_prefix)
        assert await table.ping()


def batch_writes(table: DynamoTable) -> list[int]:
    """From now on, the items of each BatchWriteItem call of `table`, call by call."""
    batches: list[int] = []
    write = table.client.batch_write_item

    async def counted(**kwargs: Any) -> Any:
        batches.append(len(kwargs["RequestItems"][table.name]))
        return await write(**kwargs)

    table.client.batch_write_item = counted  # type: ignore[method-assign]
    return batches


async def test_concurrent_marks_share_batch_writes_and_every_one_is_stored(
    settings: ServiceSettings, dynamodb: DynamoDBClient
) -> None:
    await ensure_tables(dynamodb, TABLES, prefix=settings.table_prefix)
    async with DynamoTable(settings, "intake") as table:
        batches = batch_writes(table)
        writer = GroupWriter(table)
        keys = [f"EVENT#{n}" for n in range(60)]

        await asyncio.gather(
            *(writer.put({"pk": {"S": key}, "sk": {"S": "MARK"}, "n": {"N": "1"}}) for key in keys),
            writer.put({"pk": {"S": keys[0]}, "sk": {"S": "MARK"}, "n": {"N": "2"}}),
        )

        assert len(batches) < len(keys) / 5  # 60 marks in a handful of calls (25 per call at most)
        for key in keys:
            stored = await dynamodb.get_item(
                TableName=table.name, Key={"pk": {"S": key}, "sk": {"S": "MARK"}}
            )
            assert stored["Item"]["n"] == {"N": "2" if key == keys[0] else "1"}


async def test_a_failing_batch_fails_every_caller_of_that_batch(settings: ServiceSettings) -> None:
    async with DynamoTable(settings, "no-such-table") as table:
        writer = GroupWriter(table)
        results = await asyncio.gather(
            *(writer.put({"pk": {"S": f"K{n}"}, "sk": {"S": "MARK"}}) for n in range(3)),
            return_exceptions=True,
        )
    assert all(isinstance(result, ClientError) for result in results)


async def test_a_published_mark_keeps_the_recorded_outputs_and_the_retention(
    settings: ServiceSettings, dynamodb: DynamoDBClient
) -> None:
    await ensure_tables(dynamodb, TABLES, prefix=settings.table_prefix)
    outputs = [Output("caf.events.v1", "ref", b'{"type":"AuthorizationPosted"}', {"h": "1"})]
    async with DynamoTable(settings, "intake") as table:
        ledger = Ledger(table, "EVENT#", retention=timedelta(days=2), marks_published=True)
        assert await transact(table, [ledger.put("e-1", outputs)]) is None
        assert await ledger.recorded("e-1") == Recorded("pending", outputs)

        await ledger.mark_published("e-1", outputs)

        assert await ledger.recorded("e-1") == Recorded("published", outputs)
        stored = await dynamodb.get_item(
            TableName=table.name, Key={"pk": {"S": "EVENT#e-1"}, "sk": {"S": "MARK"}}
        )
        expires_in = int(stored["Item"]["expires_at"]["N"]) - time.time()
        assert timedelta(days=2) - timedelta(minutes=1) < timedelta(seconds=expires_in)


async def test_a_ledger_that_does_not_mark_writes_nothing_after_publishing_and_keeps_the_record(
    settings: ServiceSettings, dynamodb: DynamoDBClient
) -> None:
    """A redelivered message then publishes its recorded outputs again (the same ids)."""
    await ensure_tables(dynamodb, TABLES, prefix=settings.table_prefix)
    outputs = [Output("caf.events.v1", "ref", b'{"type":"AuthorizationPosted"}', {"h": "1"})]
    async with DynamoTable(settings, "validator") as table:
        batches = batch_writes(table)
        ledger = Ledger(table, "GRANT#")
        key = f"g-{uuid.uuid4()}"
        assert await transact(table, [ledger.put(key, outputs)]) is None
        published: list[list[Output]] = []

        async def publish(batch: list[Output]) -> None:
            published.append(batch)

        async def decided() -> list[Output] | None:
            return None  # already recorded: the condition fails

        assert await handle_once(ledger, key, decided, publish)
        assert await handle_once(ledger, key, decided, publish)

        assert (batches, published) == ([], [outputs, outputs])
        assert await ledger.recorded(key) == Recorded("pending", outputs)


async def test_published_marks_and_a_stores_other_marks_share_one_batch_through_one_writer(
    settings: ServiceSettings, dynamodb: DynamoDBClient
) -> None:
    await ensure_tables(dynamodb, TABLES, prefix=settings.table_prefix)
    async with DynamoTable(settings, "validator") as table:
        batches = batch_writes(table)
        writer = GroupWriter(table)
        ledger = Ledger(table, "GRANT#", writer=writer, marks_published=True)

        await asyncio.gather(
            ledger.mark_published("g-1", []),
            writer.put({"pk": {"S": "ENDED#g-2"}, "sk": {"S": "ENDED"}}),
            writer.put({"pk": {"S": "ENDED#g-3"}, "sk": {"S": "ENDED"}}),
        )

        assert batches == [3]
        assert await ledger.recorded("g-1") == Recorded("published", [])


async def test_a_first_time_representative_keeps_one_number_that_the_registry_view_learns(
    settings: ServiceSettings, dynamodb: DynamoDBClient
) -> None:
    """CN-01, CN-02 on DynamoDB Local: a number is given once per PTIN (the grant that got it
    gets it again), never one the registry holds, is found by PTIN at once, and a record from
    the feed for that number replaces the given one."""
    store = await validator_store(settings, dynamodb)
    async with store.table:
        taken = {"caf_number": "780000001", "name": "Someone Else", "status_code": ""}
        await store.apply_registry("780000001", json.dumps(taken).encode(), 0, 5)
        template = PractitionerRecord.model_validate(
            {
                "caf_number": "000000000",
                "name": "Avery Smith",
                "status_code": "",
                "ptin": "P09999999",
            },
            strict=False,
        )
        first = await store.number_for("P09999999", "m-1:0", template)
        assert (first.caf_number, first.new) == ("780000002", True)
        assert await store.number_for("P09999999", "m-1:0", template) == first
        again = await store.number_for("P09999999", "m-2:0", template)
        assert (again.caf_number, again.new) == ("780000002", False)
        learned = await store.practitioner_by_ptin("p09999999")
        assert learned is not None
        assert (learned.caf_number, learned.name) == ("780000002", "Avery Smith")
        feed = {"caf_number": "780000002", "name": "Avery Smith", "status_code": "S"}
        assert await store.apply_registry("780000002", json.dumps(feed).encode(), 0, 6)
        record = await store.practitioner("780000002")
        assert record is not None
        assert record.status_code == "S"
        assert await store.practitioner_by_ptin("P09999999") is None  # the feed has no PTIN


async def test_with_the_registry_view_the_feed_is_read_from_memory_and_a_lagging_copy_ignored(
    settings: ServiceSettings, dynamodb: DynamoDBClient
) -> None:
    """Issue 16, CN-02, CN-03, PT-02: the store answers a number the feed named from the view,
    even when the table copy still holds a record the feed has since deleted, finds a feed
    record by PTIN before the table copy has its entry, and still finds a number it gave."""
    await ensure_tables(dynamodb, TABLES, prefix=settings.table_prefix)
    registry = registry_view()
    store = DynamoValidatorStore(store_settings(ValidatorSettings, settings), registry)
    async with store.table:
        stale = {"caf_number": "012345679", "name": "Someone Else", "status_code": ""}
        assert await store.apply_registry("012345679", json.dumps(stale).encode(), 0, 5)
        await registry.apply(feed_record("012345679", None))  # deleted on the feed since
        await registry.apply(feed_record("012345678", practitioner("012345678", "P01234567")))
        assert await store.practitioner("012345679") is None
        assert not await store.from_feed("012345679")
        found = await store.practitioner_by_ptin("p01234567")
        assert found is not None
        assert found.caf_number == "012345678"
        assert await store.from_feed("012345678")
        given = await store.number_for("P09999999", "m-1:0", practitioner("000000000", "P09999999"))
        record = await store.practitioner(given.caf_number)
        assert record is not None
        assert record.ptin == "P09999999"
        assert not await store.from_feed(given.caf_number)  # given here, not from the feed


async def test_two_replicas_give_first_time_representatives_distinct_numbers_a_block_at_a_time(
    settings: ServiceSettings, dynamodb: DynamoDBClient
) -> None:
    """CN-02 on DynamoDB Local: two stores on one table (two replicas) give 30 first-time
    representatives 30 different numbers, each store taking the sequence 20 numbers at a time
    (one UpdateItem per block, not per number)."""
    first = await validator_store(settings, dynamodb)
    second = DynamoValidatorStore(store_settings(ValidatorSettings, settings))
    async with first.table, second.table:
        updates: list[str] = []
        for store in (first, second):
            update = store.table.client.update_item

            async def counted(update: Any = update, **kwargs: Any) -> Any:
                updates.append(kwargs["Key"]["sk"]["S"])
                return await update(**kwargs)

            store.table.client.update_item = counted  # type: ignore[method-assign]
        given = await asyncio.gather(
            *(
                (first if n % 2 else second).number_for(
                    f"P{n:08d}", f"m-{n}:0", practitioner("000000000", f"P{n:08d}")
                )
                for n in range(30)
            )
        )
        numbers = {number.caf_number for number in given}
        assert len(numbers) == 30
        assert all(number.caf_number.startswith("78") and number.new for number in given)
        assert updates == ["CAF", "CAF"]  # 15 numbers each: one block each


async def validator_store(
    settings: ServiceSettings, dynamodb: DynamoDBClient
) -> DynamoValidatorStore:
    await ensure_tables(dynamodb, TABLES, prefix=settings.table_prefix)
    return DynamoValidatorStore(store_settings(ValidatorSettings, settings))


def scanned_counts(store: DynamoValidatorStore) -> list[int]:
    """From now on, the items each Query of `store` reads, call by call."""
    reads: list[int] = []
    query = store.table.client.query

    async def counted(**kwargs: Any) -> Any:
        response = await query(**kwargs)
        reads.append(response["ScannedCount"])
        return response

    store.table.client.query = counted  # type: ignore[method-assign]
    return reads


async def test_the_velocity_window_reads_only_its_own_hour_whatever_the_history(
    settings: ServiceSettings, dynamodb: DynamoDBClient
) -> None:
    """VA-07 on DynamoDB Local: distinct other taxpayers within the window are counted (the
    taxpayer's own and older sightings are not), from the window's two hour buckets read with
    the other reads (no Query), and every bucket expires."""
    store = await validator_store(settings, dynamodb)
    # the present: sightings carry a TTL from their time, and DynamoDB Local's sweeper deletes
    # those whose time has passed (a fixed day made this test fail from the day after it)
    now = datetime.now(UTC).replace(microsecond=0)
    async with store.table:
        history = [Sighting("781234567", f"old-{n}", now - timedelta(days=3)) for n in range(40)]
        recent = [
            Sighting("781234567", ref, now - timedelta(minutes=minutes))
            for ref, minutes in (("a", 50), ("b", 10), ("a", 5), ("own", 1), ("c", 70))
        ]
        for n, sighting in enumerate([*history, *recent]):
            assert await store.record(f"g-{n}", [], sighting)
        queries = scanned_counts(store)

        assert await store.other_taxpayers("781234567", "own", now - timedelta(hours=1)) == 2
        assert queries == []
        stored = await dynamodb.query(
            TableName=store.table.name,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": "VEL#781234567"}},
        )
        assert 2 <= len(stored["Items"]) <= 4  # one item per hour, not one per sighting
        assert all("expires_at" in item for item in stored["Items"])  # TTL: the table forgets


async def test_a_busy_numbers_hour_is_one_item_that_stops_growing_at_its_cap(
    settings: ServiceSettings, dynamodb: DynamoDBClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """VA-07: 120 taxpayers in the hour are counted from one item; past the cap (here 50) the
    bucket takes no more (the number is far past any limit), so it never nears 400 KB."""
    store = await validator_store(settings, dynamodb)
    now = datetime.now(UTC).replace(minute=30, second=0, microsecond=0)
    since = now - timedelta(minutes=10)
    async with store.table:
        for n in range(120):
            seen = Sighting("781234568", f"tp-{n}", now - timedelta(seconds=n))
            assert await store.record(f"busy-{n}", [], seen)
        assert await store.other_taxpayers("781234568", "tp-0", since) == 119

        monkeypatch.setattr(validator_store_module, "VELOCITY_BUCKET_CAP", 50)
        for n in range(120, 130):
            others = await store.other_taxpayers("781234568", f"tp-{n}", since)
            seen = Sighting("781234568", f"tp-{n}", now)
            assert await store.record(f"busy-{n}", [], seen)
            assert others == 120  # the bucket is full: no more taxpayers in it
        item = await dynamodb.get_item(
            TableName=store.table.name,
            Key={"pk": {"S": "VEL#781234568"}, "sk": {"S": now.strftime("H#%Y-%m-%dT%H")}},
        )
        assert len([name for name in item["Item"] if name.startswith("seen#")]) == 120


async def test_in_22_a_reviews_verdict_is_kept_and_a_review_of_the_previous_version_is_read(
    settings: ServiceSettings, dynamodb: DynamoDBClient
) -> None:
    """IN-22: a review decided now leaves its verdict; one decided by version 0.2 (no verdict)
    is read from its recorded events: a refusal refuses, the pending announcement does not."""
    store = await validator_store(settings, dynamodb)
    pending = post_grant(
        request_id="tpa-p", grant_id="tpa-p", review=True, expires_on=date(2026, 12, 31)
    )
    announced = Output.of(topics.EVENTS, "tp", validator_pending(pending, datetime.now(UTC)))
    refusal = refusal_of(
        pending.model_copy(update={"request_id": "tpa-r", "grant_id": "tpa-r"}),
        Rejection(RuleId.VA_01, ReasonCode.REJ_REP_NOT_GOOD_STANDING, "suspended"),
        stage="validator",
        occurred_at=datetime.now(UTC),
    )
    async with store.table:
        assert await store.record("review#tpa-1", [], verdict=ReviewVerdict("tpa-1", refused=True))
        assert await store.record("review#tpa-2", [], verdict=ReviewVerdict("tpa-2", refused=False))
        assert await store.record("review#tpa-r", [Output.of(topics.EVENTS, "tp", refusal)])
        assert await store.record("review#tpa-p", [announced])

        assert await store.request_refused("tpa-1")
        assert not await store.request_refused("tpa-2")
        assert await store.request_refused("tpa-r")
        assert not await store.request_refused("tpa-p")
        assert not await store.request_refused("tpa-never-reviewed")
