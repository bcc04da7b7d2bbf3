"""IP PIN program membership on the compacted topic `caf.protected.v1` (protected taxpayers,
PT-01).

Keyed by `taxpayer_ref` (the IP PIN system pseudonymizes with the same keyed HMAC as intake: no
TIN on the topic); the latest record per key wins and a tombstone (null value) ends the
protection. Published only by the `ip-pin-feed` publisher, signed like every inbound record
(AU-01). It says that the taxpayer is in the program, for which calendar year and why, and
**never the IP PIN itself**: the processor never receives, stores or prints one (PT-05).
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import AwareDatetime

from schemas.base import InboundModel, described
from schemas.ids import TAXPAYER_REF_PATTERN

__all__ = [
    "ProtectionBasis",
    "ProtectionRecord",
]

ProtectionBasis = Literal["identity_theft_victim", "opt_in"]


class ProtectionRecord(InboundModel):
    """One taxpayer's membership of the IP PIN program."""

    taxpayer_ref: str = described(
        "Keyed pseudonym of the taxpayer's TIN: the record's key.",
        "9f2c4e1a7b3d5f60a1b2c3d4e5f60718",
        pattern=TAXPAYER_REF_PATTERN,
    )
    year: int = described(
        "Calendar year of the taxpayer's current IP PIN (a new one each year); the taxpayer is "
        "protected through the end of that year (New York calendar).",
        2026,
        ge=2011,
        le=2100,
    )
    basis: ProtectionBasis = described(
        "Why: a confirmed identity-theft victim (notice CP01A) or an opt-in after identity "
        "proofing.",
        "identity_theft_victim",
    )
    updated_at: AwareDatetime | None = described(
        "When the IP PIN system last changed this record.",
        "2026-01-10T08:00:00+00:00",
        default=None,
    )

    def protects_on(self, day: dt.date) -> bool:
        """PT-01: in the program on `day` (a membership of an earlier year has lapsed)."""
        return self.year >= day.year
