"""Business entity records on the compacted topic `caf.entities.v1` (Designated Officials, DO-01).

Keyed by `entity_id`, the entity system's own pseudonym of the EIN (never the EIN); the latest
record per key wins and a tombstone (null value) closes the entity. Published only by the
`entity-feed` publisher, signed like every inbound record (AU-01). The EIN, legal name and address
of record stay on this topic: intake keeps only a keyed digest of the EIN, the entity type and
whether the entity is open (docs/contract.md, "Entity records").
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime

from schemas.base import InboundModel, OutboundModel, described
from schemas.inbound import Address, MessageId

__all__ = [
    "BusinessType",
    "DeactivateOfficial",
    "EntityRecord",
]

BusinessType = Literal[
    "corporation", "s_corporation", "partnership", "llc", "trust", "estate", "sole_proprietor"
]


class EntityRecord(InboundModel):
    """One business as the entity system knows it."""

    entity_id: MessageId = described(
        "The entity system's pseudonym of the EIN: the record's key.", "ent-4f2a9c81"
    )
    ein: str = described("Employer identification number.", "12-3456789", pattern=r"^\d{2}-?\d{7}$")
    legal_name: str = described("Legal name.", "Bluegrass Tooling LLC")
    entity_type: BusinessType = described("Kind of entity (DO-02's title table).", "corporation")
    address: Address = described(
        "Address of record: where the CP311 letter is mailed.",
        {"line1": "200 Commerce St", "city": "Nashville", "state": "TN", "country": "US"},
    )
    status: Literal["active", "closed"] = described(
        "A closed entity takes no PIN request and no online authorization.", "active"
    )
    updated_at: AwareDatetime | None = described(
        "When the entity system last changed this record.",
        "2026-11-01T08:00:00+00:00",
        default=None,
    )


class DeactivateOfficial(OutboundModel):
    """An operator's deactivation of a Designated Official (DO-07) on the internal topic
    `caf.officials.v1`, which only cafctl's principal writes; intake applies it once."""

    action: Literal["deactivate_official"] = described("Command kind.", "deactivate_official")
    command_id: MessageId = described("Unique per operator action: the dedup key.", "ops-1f2e")
    entity_id: MessageId = described("The business (entity record id).", "ent-4f2a9c81")
    official_id: str = described(
        "The Designated Official.", "5d41402abc4b2a76b9719d911017c592", pattern=r"^[0-9a-f]{32}$"
    )
    operator: str = described("Who decided (audited).", "jdoe", max_length=128)
    requested_at: AwareDatetime = described("When.", "2026-11-20T14:05:12+00:00")
