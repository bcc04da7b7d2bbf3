"""What `cafctl officials` does, apart from printing (DO-07, docs/rules.md §11).

- `entity_file`: one business's Designated Officials, the PIN requests of its requesters (as
  `pin_summary` shows them: never the PIN or its hash) and its authorized users, with the
  entity's type and status, from intake's table. Nothing about the business beyond its record
  id: no EIN, name, address or pseudonym.
- `deactivate`: an operator deactivates an active Designated Official. The deactivation travels
  to intake as a `DeactivateOfficial` command on `caf.officials.v1` (keyed by the entity; only
  the operator's principal may write that topic); intake applies it once (its `command_id` is
  its ledger key), marks the official `inactive` with `deactivated_by: operator:<name>` and
  publishes `DesignatedOfficialDeactivated` (`by: operator`). cafctl waits until intake has
  applied it; the command line writes the audit record (`cafctl.audit`, AU-04).

cafctl reads the table through `DynamoTable` and intake's item parsers, not `DynamoIntakeStore`,
whose settings need intake's secrets.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from caf_runtime.config import ServiceSettings
from caf_runtime.dynamo import DynamoTable
from cafctl.topics import Outgoing, publish
from schemas import topics
from schemas.codec import encode
from schemas.entities import DeactivateOfficial
from services.intake.officials import Official
from services.intake.store import entity_from_item, official_from_item, read_entity_file

POLL_S = 0.25
# the table's columns of a PIN request: whose it is and `pin_summary` (never the PIN or its hash)
PIN_COLUMNS = (
    "official_id",
    "message_id",
    "requested_at",
    "notice_on",
    "expires_on",
    "attempts",
    "state",
)


def official_row(official: Official) -> dict[str, Any]:
    """A Designated Official as cafctl shows it."""
    row: dict[str, Any] = {
        "official_id": official.official_id,
        "active": official.active,
        "activated_at": official.activated_at.isoformat(),
    }
    if not official.active:
        at = official.deactivated_at
        row |= {
            "deactivated_at": at.isoformat() if at else "",
            "deactivated_by": official.deactivated_by or "",
        }
    return row


async def entity_file(settings: ServiceSettings, entity_id: str) -> dict[str, Any] | None:
    """The business's Designated Officials, PIN history and users; None if intake does not
    know the entity (the feed never named it)."""
    async with DynamoTable(settings, "intake") as table:
        item = await table.get(f"EID#{entity_id}", "ENTITY")
        if item is None:
            return None
        entity = entity_from_item(item)
        found = await read_entity_file(table, entity_id)
    return {
        "entity_id": entity.entity_id,
        "entity_type": entity.entity_type,
        "status": "active" if entity.active else "closed",
        "officials": [official_row(o) for o in found.officials],
        "pins": sorted(found.pins, key=lambda pin: (pin["official_id"], pin["requested_at"])),
        "users": found.users,
    }


@dataclass(frozen=True)
class Outcome:
    """What became of an operator's deactivation."""

    entity_id: str
    official_id: str
    operator: str
    command_id: str
    state: str  # the official's state afterwards: inactive, or active if not applied yet
    deactivated_by: str  # who intake records (`operator:<name>`, or another official first)


async def _official(table: DynamoTable, entity_id: str, official_id: str) -> Official | None:
    item = await table.get(f"DOE#{entity_id}", f"DO#{official_id}")
    return official_from_item(item) if item else None


async def deactivate(
    settings: ServiceSettings,
    entity_id: str,
    official_id: str,
    *,
    operator: str,
    why: str,
    wait_s: float = 30.0,
) -> Outcome:
    """DO-07 by an operator: deactivate an active Designated Official of the business; raises
    `ValueError` if the entity is unknown or the official is not (any more) active in it.
    `why` is kept in the audit record (the command carries only who)."""
    del why  # audited by the caller; intake's command has no field for it
    async with DynamoTable(settings, "intake") as table:
        if await table.get(f"EID#{entity_id}", "ENTITY") is None:
            msg = f"no business {entity_id!r} is known to intake"
            raise ValueError(msg)
        official = await _official(table, entity_id, official_id)
        if official is None:
            msg = f"{official_id!r} is not a Designated Official of business {entity_id!r}"
            raise ValueError(msg)
        if not official.active:
            msg = (
                f"Designated Official {official_id!r} of business {entity_id!r} was already "
                f"deactivated by {official.deactivated_by}"
            )
            raise ValueError(msg)
        command = DeactivateOfficial(
            action="deactivate_official",
            command_id=f"ops-{uuid.uuid4()}",
            entity_id=entity_id,
            official_id=official_id,
            operator=operator,
            requested_at=datetime.now(UTC),
        )
        await publish(settings, topics.OFFICIALS, [Outgoing(entity_id.encode(), encode(command))])
        applied = official
        deadline = asyncio.get_running_loop().time() + wait_s
        while applied.active and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(POLL_S)
            applied = await _official(table, entity_id, official_id) or applied
    return Outcome(
        entity_id,
        official_id,
        operator,
        command.command_id,
        "active" if applied.active else "inactive",
        applied.deactivated_by or "",
    )
