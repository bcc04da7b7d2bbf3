"""What `cafctl holds` does, apart from printing (CN-09).

- `list_holds`: the grants VA-07 parked for review, from the validator's table (the held ones, or
  every one ever parked with what became of it).
- `decide`: an operator releases or refuses one held grant. The decision travels to the
  validator as a `ReviewHold` command on `caf.reviews.v1` (keyed by the taxpayer; only the
  operator's principal may write that topic, and it may write no grant command); the validator
  applies it once (it refuses a hold already decided) and records who,
  when and why on the hold. cafctl waits until the validator has applied it; the command line
  writes the audit record (`cafctl.audit`, AU-04) when the decision ends.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from caf_runtime.config import ServiceSettings
from cafctl.topics import Outgoing, publish
from schemas import topics
from schemas.codec import encode
from schemas.grants import ReviewHold
from services.validator.store import DynamoValidatorStore, Hold

Decision = Literal["release", "refuse"]


def row(hold: Hold) -> dict[str, Any]:
    command = hold.command
    return {
        "grant_id": hold.grant_id,
        "status": hold.status,
        "held_at": hold.held_at,
        "caf_number": command.caf_number,
        "representative": command.representative_name,
        "form": command.form,
        "tin_last4": command.tin_last4,
        "decided_by": hold.decided_by or "",
        "decided_at": hold.decided_at or "",
        "why": hold.why or "",
    }


async def list_holds(settings: ServiceSettings, *, everything: bool = False) -> list[Hold]:
    store = DynamoValidatorStore(settings)
    async with store.table:
        found = await store.holds()
    return found if everything else [h for h in found if h.status == "held"]


@dataclass(frozen=True)
class Outcome:
    """What became of an operator's decision."""

    grant_id: str
    decision: Decision
    operator: str
    decision_id: str
    status: str  # the hold's status afterwards: released, refused, or held if not applied yet


async def decide(
    settings: ServiceSettings,
    grant_id: str,
    decision: Decision,
    *,
    operator: str,
    why: str,
    wait_s: float = 30.0,
) -> Outcome:
    """Release or refuse a held grant; raises `ValueError` if it is not held (any more)."""
    store = DynamoValidatorStore(settings)
    async with store.table:
        hold = await store.held(grant_id)
        if hold is None:
            msg = f"no grant {grant_id!r} is held for review"
            raise ValueError(msg)
        if hold.status != "held":
            msg = f"grant {grant_id!r} was already {hold.status} by {hold.decided_by}"
            raise ValueError(msg)
        parked = hold.command
        now = datetime.now(UTC)
        command = ReviewHold(
            action="review",
            message_id=f"review:{grant_id}:{uuid.uuid4()}",
            taxpayer_ref=parked.taxpayer_ref,
            tin_last4=parked.tin_last4,
            form=parked.form,
            received_at=now,
            grant_id=grant_id,
            decision=decision,
            operator=operator,
            why=why,
        )
        key = parked.taxpayer_ref.encode()
        await publish(settings, topics.REVIEWS, [Outgoing(key, encode(command))])
        status = "held"
        deadline = asyncio.get_running_loop().time() + wait_s
        while status == "held" and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.25)
            applied = await store.held(grant_id)
            status = applied.status if applied else status
    return Outcome(grant_id, decision, operator, command.message_id, status)
