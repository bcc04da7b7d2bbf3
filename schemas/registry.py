"""Practitioner registry records on the compacted topic `caf.practitioners.v1`.

Keyed by the normalized 9-digit CAF number; the latest record per key wins and a tombstone (null
value) removes the practitioner.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import AwareDatetime

from schemas.base import InboundModel, described

__all__ = [
    "PractitionerRecord",
    "StatusCode",
]

StatusCode = Literal["", "D", "S", "E", "R", "I", "P"]


class PractitionerRecord(InboundModel):
    """One practitioner as the registry feed knows them."""

    caf_number: str = described(
        "Normalized 9-digit CAF number.", "030112345", pattern=r"^[0-9]{9}$"
    )
    name: str = described("Name as registered.", "Avery Smith")
    status_code: StatusCode = described(
        '"" good standing, D disbarred, S suspended, E deceased, R retired, I inactive, '
        "P pending review.",
        "",
    )
    designations: list[str] = described("2848 designations held.", ["b"], default_factory=list)
    jurisdiction: str | None = described("Licensing jurisdiction.", "TN", default=None)
    licence_number: str | None = described("Licence number.", "CPA-55102", default=None)
    ptin: str | None = described("PTIN.", "P01234567", default=None)
    ptin_valid_through: dt.date | None = described(
        "Last day the PTIN is valid.", "2026-12-31", default=None
    )
    afsp_years: list[int] = described(
        "Years with an Annual Filing Season Program record.", [2025, 2026], default_factory=list
    )
    updated_at: AwareDatetime | None = described(
        "When the registry last changed this record.", "2026-11-01T08:00:00+00:00", default=None
    )
