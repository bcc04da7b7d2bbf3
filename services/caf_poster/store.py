"""The caf_poster service's own state: the CAF (table `caf`)."""

from __future__ import annotations

from caf_runtime.dynamo import DynamoTable
from services.caf_poster.config import CafPosterSettings


class CafPosterStore:
    """The only place that talks to the caf_poster table."""

    def __init__(self, settings: CafPosterSettings) -> None:
        self.table = DynamoTable(settings, "caf")

    async def ping(self) -> bool:
        return await self.table.ping()
