"""The projector: folds `caf.events.v1` into the read model, one grant's story at a time.

Every record is read for what it says about a grant (`views.apply`); an event that is not part
of a grant's story (an SLA alert, a CAF number assignment) changes nothing, except that a
Designated Official's activation or deactivation is kept as whom the API shows the business's
grants (DO-08). Events of one
taxpayer share a partition, so they arrive in order; a redelivered one is recognised by its
offset and changes nothing. A value that is not an event is dead-lettered by the guard.
"""

from __future__ import annotations

import json
import logging

from aiokafka import ConsumerRecord

from services.caf_query.store import QueryStore, Represented
from services.caf_query.views import STORY, Position, apply

log = logging.getLogger(__name__)


class NotAnEventError(ValueError):
    """A record of the outcome stream that is not an event: a permanent failure."""


OFFICIAL_CHANGES = frozenset({"DesignatedOfficialActivated", "DesignatedOfficialDeactivated"})


class Projector:
    """Applies outcome events to the stored views."""

    def __init__(self, store: QueryStore) -> None:
        self._store = store

    async def on_event(self, record: ConsumerRecord[bytes, bytes]) -> None:
        try:
            event = json.loads(record.value or b"")
        except ValueError as error:
            raise NotAnEventError("the record is not JSON") from error
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            raise NotAnEventError("the record is not an event")
        if event["type"] in OFFICIAL_CHANGES:
            await self._official(event, Position(record.partition, record.offset))
            return
        if event["type"] not in STORY:
            return
        if not isinstance(event.get("grant_id"), str) or not isinstance(
            event.get("taxpayer_ref"), str
        ):
            raise NotAnEventError("the event names no grant or taxpayer")
        at = Position(record.partition, record.offset)
        before = await self._store.grant(event["taxpayer_ref"], event["grant_id"])
        after = apply(before, event, at)
        if after is None or after is before:
            return
        if not await self._store.save(after, before):
            log.info("a later event is stored already", extra={"grant_id": event["grant_id"]})

    async def _official(self, event: dict[str, object], at: Position) -> None:
        official, ref = event.get("official_id"), event.get("taxpayer_ref")
        last4, since = event.get("tin_last4"), event.get("occurred_at")
        if not all(isinstance(v, str) for v in (official, ref, last4, since)):
            raise NotAnEventError("a Designated Official event without its official or business")
        active = event["type"] == "DesignatedOfficialActivated"
        business = Represented(str(ref), str(last4), active, str(since))
        await self._store.save_official(str(official), business, at)
