"""The DynamoDB floor of `make bench`: the pipeline's own DynamoDB work per grant, done by a
minimal batched client, so the pipeline can be read against what DynamoDB Local alone costs.

The mix is the one the pipeline measured in the same run (requests and items per grant, by
operation, from the services' `caf_dynamodb_*_total`). Each kind of work is done in the largest
calls DynamoDB takes: transaction items in transactions of 100 conditional puts, batch writes
of 25, batch reads of 100 keys; what cannot be batched (a Query, a GetItem, a PutItem, ...) is one
call each, as in the pipeline. Items are the size of a recorded decision. A handful of calls run
at once, as the services' do. The figures: how fast the mix of `grants` grants goes through, and
DynamoDB Local's CPU per 1,000 grants.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from caf_runtime.config import ServiceSettings
from caf_runtime.dynamo import dynamodb_client
from caf_runtime.provision import ensure_tables
from caf_runtime.topology import TableSpec

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

BATCHED = {"TransactWriteItems": 100, "BatchWriteItem": 25, "BatchGetItem": 100}
CONCURRENCY = 8
ITEM_BYTES = 1200  # a recorded decision with its outputs
FLOOR_TABLE = "floor"


@dataclass(frozen=True)
class FloorFigures:
    """The floor: grants per second and DynamoDB Local CPU per 1,000 grants, with the calls."""

    grants: int
    grants_per_s: float
    dynamodb_cpu_per_1000: float
    calls_per_grant: float


async def measure_floor(
    settings: ServiceSettings,
    items_per_grant: dict[str, float],
    requests_per_grant: dict[str, float],
    grants: int,
    cpu_seconds: Callable[[], float],
) -> FloorFigures:
    """Do `grants` grants' DynamoDB work in the fewest calls; `cpu_seconds` reads DynamoDB
    Local's CPU time."""
    spec = TableSpec(FLOOR_TABLE)
    async with dynamodb_client(settings) as client:
        await ensure_tables(client, (spec,), prefix=settings.table_prefix)
        table = settings.table(FLOOR_TABLE)
        try:
            calls = _calls(client, table, items_per_grant, requests_per_grant, grants)
            await _run(calls[: len(calls) // 20])  # warm-up: the JIT, the connection pool
            calls = _calls(client, table, items_per_grant, requests_per_grant, grants)
            cpu_before, started = cpu_seconds(), time.monotonic()
            await _run(calls)
            elapsed, cpu = time.monotonic() - started, cpu_seconds() - cpu_before
        finally:
            with contextlib.suppress(client.exceptions.ResourceNotFoundException):
                await client.update_table(TableName=table, DeletionProtectionEnabled=False)
                await client.delete_table(TableName=table)
    return FloorFigures(
        grants=grants,
        grants_per_s=round(grants / max(elapsed, 1e-3), 1),
        dynamodb_cpu_per_1000=round(cpu * 1000 / grants, 2),
        calls_per_grant=round(len(calls) / grants, 3),
    )


Call = Callable[[], Awaitable[Any]]


def _calls(
    client: DynamoDBClient,
    table: str,
    items_per_grant: dict[str, float],
    requests_per_grant: dict[str, float],
    grants: int,
) -> list[Call]:
    """The calls doing `grants` grants' mix, interleaved as the pipeline's come."""
    run = uuid.uuid4().hex[:8]
    payload = {"S": "x" * ITEM_BYTES}
    written: list[dict[str, Any]] = []
    kinds: list[list[Call]] = []
    for operation, per_grant in sorted(items_per_grant.items()):
        size = BATCHED.get(operation)
        if size is None:
            continue
        items = math.ceil(per_grant * grants)
        keys = [
            {"pk": {"S": f"F#{run}#{operation}#{n // 4}"}, "sk": {"S": str(n)}}
            for n in range(items)
        ]
        chunks = [keys[start : start + size] for start in range(0, len(keys), size)]
        if operation == "BatchGetItem":
            reads = written or keys
            chunks = [reads[(i * size) % len(reads) :][:size] for i in range(len(chunks))]
        else:
            written.extend(keys)
        kinds.append([_batched(client, table, operation, chunk, payload) for chunk in chunks])
    for operation, per_grant in sorted(requests_per_grant.items()):
        if operation in BATCHED:
            continue
        count = math.ceil(per_grant * grants)
        keys = [
            {"pk": {"S": f"F#{run}#single#{n // 4}"}, "sk": {"S": f"{operation}#{n}"}}
            for n in range(count)
        ]
        kinds.append([_single(client, table, operation, key, payload) for key in keys])
    return _interleave(kinds)


def _interleave(kinds: list[list[Call]]) -> list[Call]:
    longest = max((len(calls) for calls in kinds), default=0)
    mixed: list[Call] = []
    for position in range(longest):
        for calls in kinds:
            # spread each kind evenly over the run
            start = position * len(calls) // longest
            end = (position + 1) * len(calls) // longest
            mixed.extend(calls[start:end])
    return mixed


def _batched(
    client: DynamoDBClient,
    table: str,
    operation: str,
    keys: list[dict[str, Any]],
    payload: dict[str, str],
) -> Call:
    async def call() -> Any:
        if operation == "TransactWriteItems":
            return await client.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": table,
                            "Item": {**key, "v": payload},
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    }
                    for key in keys
                ]
            )
        if operation == "BatchWriteItem":
            return await client.batch_write_item(
                RequestItems={
                    table: [{"PutRequest": {"Item": {**key, "v": payload}}} for key in keys]
                }
            )
        unique = list({(k["pk"]["S"], k["sk"]["S"]): k for k in keys}.values())
        return await client.batch_get_item(
            RequestItems={table: {"Keys": unique, "ConsistentRead": True}}
        )

    return call


def _single(
    client: DynamoDBClient, table: str, operation: str, key: dict[str, Any], payload: dict[str, str]
) -> Call:

    async def call() -> Any:
        if operation == "Query":
            return await client.query(
                TableName=table,
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": key["pk"]},
                ConsistentRead=True,
            )
        if operation == "GetItem":
            return await client.get_item(TableName=table, Key=key, ConsistentRead=True)
        if operation == "DeleteItem":
            return await client.delete_item(TableName=table, Key=key)
        if operation == "UpdateItem":
            return await client.update_item(
                TableName=table,
                Key=key,
                UpdateExpression="ADD n :one",
                ExpressionAttributeValues={":one": {"N": "1"}},
            )
        if operation == "DescribeTable":
            return await client.describe_table(TableName=table)
        return await client.put_item(TableName=table, Item={**key, "v": payload})

    return call


async def _run(calls: list[Call]) -> None:
    queue = iter(calls)

    async def worker() -> None:
        for call in queue:
            await call()

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
