"""The one clock interface: rules never read the time themselves; handlers pass `now` in."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

# docs/rules.md vocabulary: business days are calendar dates in this zone [choice].
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


class OffsetClock:
    """System time moved forward by the number of seconds in a file, read at every call.

    For drills and end-to-end tests of time-driven rules across processes: writing `2592000` to
    the file moves every service using it 30 days ahead. Configured with `CAF_CLOCK_OFFSET_FILE`;
    never set in production.
    """

    def __init__(self, path: Path) -> None:
        self._path = path

    def now(self) -> datetime:
        try:
            offset = float(self._path.read_text().strip() or 0)
        except (OSError, ValueError):
            offset = 0.0
        return datetime.now(UTC) + timedelta(seconds=offset)


def make_clock(offset_file: str | None) -> Clock:
    return OffsetClock(Path(offset_file)) if offset_file else SystemClock()
