"""Read the outcome stream `caf.events.v1` as typed events.

```python
async with EventStream(connection, group_id="my-system") as events:
    async for event in events:
        if event.type == "AuthorizationPosted": ...
```
Offsets are committed after each batch has been handed out; a value that is not a valid event
(a newer contract version, say) is skipped and counted in `skipped`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiokafka import AIOKafkaConsumer

from caf_client.connection import ClientScope, KafkaConnection
from schemas import topics
from schemas.codec import decode_event
from schemas.errors import ContractError
from schemas.events import Event

__all__ = [
    "EventStream",
]


class EventStream(ClientScope[AIOKafkaConsumer]):
    """An async iterator over `caf.events.v1` in one consumer group."""

    def __init__(
        self,
        connection: KafkaConnection,
        *,
        group_id: str,
        topic_prefix: str = "",
        from_beginning: bool = True,
    ) -> None:
        super().__init__(
            AIOKafkaConsumer(
                topic_prefix + topics.EVENTS,
                **connection.options(),
                group_id=group_id,
                enable_auto_commit=False,
                auto_offset_reset="earliest" if from_beginning else "latest",
            )
        )
        self.skipped = 0

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._events()

    async def _events(self) -> AsyncIterator[Event]:
        while True:
            batches = await self._client.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    try:
                        yield decode_event(record.value or b"")
                    except ContractError:
                        self.skipped += 1
            if batches:
                await self._client.commit()
