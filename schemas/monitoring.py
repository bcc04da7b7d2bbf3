"""The misuse monitor's internal command (`caf.statements.v1`): send the annual review
statements now (MN-07). Written by `cafctl statements send` (audited) and by the monitor's own
yearly timer; only the operator's and the monitor's principals may write the topic."""

from __future__ import annotations

from pydantic import AwareDatetime

from schemas.base import OutboundModel, described
from schemas.inbound import MessageId

__all__ = [
    "StatementRun",
]


class StatementRun(OutboundModel):
    """Send each practitioner with active grants (or the ones named) the statement of them."""

    command_id: MessageId = described(
        "Unique per run: statements of one run are sent once.", "annual-2027"
    )
    requested_at: AwareDatetime = described("When.", "2027-01-15T05:00:00+00:00")
    requested_by: str = described(
        "The operator (audited), or `monitor` for the yearly run.", "jdoe", max_length=128
    )
    caf_numbers: list[str] | None = described(
        "Only these CAF numbers; null: every practitioner with active grants.", None, default=None
    )
