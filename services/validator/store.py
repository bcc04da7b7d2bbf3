"""The validator service's own state: registry view and velocity counters (table `validator`)."""

from __future__ import annotations

from caf_runtime.dynamo import DynamoTable
from services.validator.config import ValidatorSettings


class ValidatorStore:
    """The only place that talks to the validator table."""

    def __init__(self, settings: ValidatorSettings) -> None:
        self.table = DynamoTable(settings, "validator")

    async def ping(self) -> bool:
        return await self.table.ping()
