"""The notifier's own state (table `notifier`): per event, the notifications it caused and
whether they were sent (`EVENT#<event_id>` / `MARK`), so each goes out once (NO-08)."""

from __future__ import annotations

from datetime import timedelta

from caf_runtime.clock import Clock
from caf_runtime.dynamo import DynamoTable
from caf_runtime.ledger import Ledger, transact
from caf_runtime.outputs import Output
from services.notifier.config import NotifierSettings

RETENTION = timedelta(days=400)


class NotifierStore:
    """The only place that talks to the notifier table."""

    def __init__(self, settings: NotifierSettings, clock: Clock) -> None:
        self.table = DynamoTable(settings, "notifier")
        self.ledger = Ledger(self.table, "EVENT#", retention=RETENTION, clock=clock)

    async def ping(self) -> bool:
        return await self.table.ping()

    async def record(self, event_id: str, outputs: list[Output]) -> bool:
        """Record the notifications of an event; False if they were already recorded."""
        return await transact(self.table, [self.ledger.put(event_id, outputs)]) is None
