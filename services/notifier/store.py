"""The notifier service's own state: sent marks (table `notifier`)."""

from __future__ import annotations

from caf_runtime.dynamo import DynamoTable
from services.notifier.config import NotifierSettings


class NotifierStore:
    """The only place that talks to the notifier table."""

    def __init__(self, settings: NotifierSettings) -> None:
        self.table = DynamoTable(settings, "notifier")

    async def ping(self) -> bool:
        return await self.table.ping()
