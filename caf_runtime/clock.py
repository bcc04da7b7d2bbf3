"""The one clock interface: rules never read the time themselves; handlers pass `now` in."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Protocol
from zoneinfo import ZoneInfo

# RULES.md vocabulary: business days are calendar dates in this zone [choice].
BUSINESS_ZONE = ZoneInfo("America/New_York")


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


def business_day(instant: datetime) -> date:
    """The calendar date of `instant` in the business zone (America/New_York)."""
    return instant.astimezone(BUSINESS_ZONE).date()
