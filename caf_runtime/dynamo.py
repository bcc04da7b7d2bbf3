"""DynamoDB client factory: one aioboto3 session per process, clients opened at start-up."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

import aioboto3
from botocore.config import Config

from caf_runtime.config import ServiceSettings
from caf_runtime.group_reader import GroupReader
from caf_runtime.group_transactions import GroupTransactions
from caf_runtime.metrics import count_dynamodb_request

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient
    from types_aiobotocore_dynamodb.type_defs import TransactWriteItemTypeDef

# Standard retry mode backs off on throttling and transient errors with a bounded attempt count.
# Client-side parameter validation is off: every request is built by our stores from fixed
# shapes (typed by types-aiobotocore and covered by tests against DynamoDB Local), the server
# validates each request again, and the client-side walk costs CPU on every call (issue 16).
_CLIENT_CONFIG = Config(
    retries={"max_attempts": 5, "mode": "standard"},
    parameter_validation=False,
    connect_timeout=3,
    read_timeout=10,
)


def dynamodb_client(settings: ServiceSettings) -> AbstractAsyncContextManager[DynamoDBClient]:
    """An async context manager yielding a DynamoDB client for the configured endpoint."""
    session = aioboto3.Session()
    return session.client(  # type: ignore[no-any-return]
        "dynamodb",
        endpoint_url=settings.dynamodb_endpoint,
        region_name=settings.aws_region,
        config=_CLIENT_CONFIG,
    )


class DynamoTable:
    """One table of a service's store: holds the client while the service runs.

    Service stores compose it; only `store.py` modules touch their tables through it.
    """

    def __init__(self, settings: ServiceSettings, logical_name: str) -> None:
        self.name = settings.table(logical_name)
        self._client_factory = dynamodb_client(settings)
        self._client: DynamoDBClient | None = None
        self._transactions: GroupTransactions | None = None
        self._reader: GroupReader | None = None

    @property
    def client(self) -> DynamoDBClient:
        if self._client is None:
            msg = f"table {self.name} used before its store was opened"
            raise RuntimeError(msg)
        return self._client

    async def __aenter__(self) -> DynamoTable:
        self._client = await self._client_factory.__aenter__()
        self._client.meta.events.register("before-parameter-build.dynamodb", count_dynamodb_request)
        self._transactions = GroupTransactions(self._client)
        self._reader = GroupReader(self._client, self.name)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        client, self._client = self._client, None
        self._transactions = self._reader = None
        if client is not None:
            await self._client_factory.__aexit__(None, None, None)

    async def get(self, pk: str, sk: str) -> dict[str, Any] | None:
        """The item at (`pk`, `sk`), strongly consistent, read together with the concurrent
        callers' (one BatchGetItem); None if there is none."""
        if self._reader is None:
            msg = f"table {self.name} used before its store was opened"
            raise RuntimeError(msg)
        return await self._reader.get(pk, sk)

    async def transact(self, items: list[TransactWriteItemTypeDef]) -> list[str] | None:
        """Write `items` in one transaction, shared with the concurrent callers' (group
        commit). None on success; on a failed condition, the cancellation code of each item
        (`ConditionalCheckFailed` or `None`). Other errors raise."""
        if self._transactions is None:
            msg = f"table {self.name} used before its store was opened"
            raise RuntimeError(msg)
        return await self._transactions.transact(items)

    async def ping(self) -> bool:
        """True when the table exists and is active."""
        description = await self.client.describe_table(TableName=self.name)
        return description["Table"].get("TableStatus") == "ACTIVE"

    async def next_in_sequence(self, name: str, step: int = 1) -> int:
        """The next value of the atomic counter `SEQ` / `name` (1 first), never given twice;
        with `step`, the last of the next `step` values, all of them the caller's."""
        response = await self.client.update_item(
            TableName=self.name,
            Key={"pk": {"S": "SEQ"}, "sk": {"S": name}},
            UpdateExpression="ADD #next :step",
            ExpressionAttributeNames={"#next": "next"},
            ExpressionAttributeValues={":step": {"N": str(step)}},
            ReturnValues="UPDATED_NEW",
        )
        return int(str(response["Attributes"]["next"].get("N")))
