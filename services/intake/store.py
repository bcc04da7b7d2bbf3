"""The intake service's own state: dedup marks and pending TPA requests (table `intake`)."""

from __future__ import annotations

from caf_runtime.dynamo import DynamoTable
from services.intake.config import IntakeSettings


class IntakeStore:
    """The only place that talks to the intake table."""

    def __init__(self, settings: IntakeSettings) -> None:
        self.table = DynamoTable(settings, "intake")

    async def ping(self) -> bool:
        return await self.table.ping()
