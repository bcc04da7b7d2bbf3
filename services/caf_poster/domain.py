"""The CAF as the poster's rules see one taxpayer: active grants and authorization groups.

Values only; `rules.py` decides, `store.py` loads and saves. A matter is one (tax type, tax form
number, period) of one grant; two matters overlap when type and form number are equal (ignoring
case and spacing) and their periods share a month. Form type is compared at the grant level.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace

from schemas.values import parse_period


@dataclass(frozen=True, order=True)
class Matter:
    """One recorded (tax type, tax form number, period)."""

    tax_type: str
    form_number: str
    period: str

    def overlaps(self, other: Matter) -> bool:
        return (
            _fold(self.tax_type) == _fold(other.tax_type)
            and _fold(self.form_number) == _fold(other.form_number)
            and parse_period(self.period).overlaps(parse_period(other.period))
        )


def _fold(text: str) -> str:
    return " ".join(text.lower().split())


@dataclass(frozen=True)
class Grant:
    """A grant on the CAF, with the matters it still covers."""

    grant_id: str
    authorization_id: str
    form: str
    caf_number: str | None
    representative_name: str
    receive_notices: bool
    signature_date: dt.date
    matters: tuple[Matter, ...]
    message_id: str = ""
    posted_at: str = ""
    purge_on: dt.date | None = None

    def overlapping(self, matters: tuple[Matter, ...]) -> tuple[Matter, ...]:
        """Those of this grant's matters that overlap any of `matters`."""
        return tuple(m for m in self.matters if any(m.overlaps(o) for o in matters))

    def without(self, removed: tuple[Matter, ...]) -> Grant:
        return replace(self, matters=tuple(m for m in self.matters if m not in removed))


@dataclass(frozen=True)
class Group:
    """An authorization's grants posted so far: the first taxpayer signature day, and how many
    of its grants elected notice copies."""

    authorization_id: str
    signature_date: dt.date
    notice_electors: int = 0


@dataclass(frozen=True)
class TaxpayerCaf:
    """Everything the rules read about one taxpayer; `version` guards concurrent writers."""

    version: int = 0
    grants: tuple[Grant, ...] = ()
    groups: dict[str, Group] = field(default_factory=dict)

    def active(self, form: str) -> tuple[Grant, ...]:
        return tuple(g for g in self.grants if g.form == form and g.matters)


@dataclass(frozen=True)
class Loss:
    """Matters an earlier grant loses (revoked or withdrawn)."""

    grant: Grant
    matters: tuple[Matter, ...]
