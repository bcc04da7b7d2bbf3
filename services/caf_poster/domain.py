"""The CAF as the poster's rules see one taxpayer: active grants, authorization groups and
revocation floors.

Values only; `rules.py` decides, `store.py` loads and saves. A grant covers a set of **units**
(`schemas.matters.Unit`: a canonical kind of return and one tax period); two grants overlap
exactly where they share units (MK-02). Form type is compared at the grant level. Each grant's
units are a hash set (`Grant.units`), so a decision intersects sets instead of comparing matters
pairwise: its cost is linear in the units involved (MK-06).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from functools import cached_property

from schemas.codes import ReasonCode
from schemas.matters import Matter, Unit


@dataclass(frozen=True)
class Grant:
    """A grant on the CAF, with the units it still covers (one `Matter` per unit)."""

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

    @cached_property
    def units(self) -> frozenset[Unit]:
        """The units it covers: a hash index, so overlap with another set is one intersection."""
        return frozenset(m.unit for m in self.matters)

    def covering(self, units: frozenset[Unit] | None) -> tuple[Matter, ...]:
        """Those of this grant's matters whose unit is in `units` (None: all of them)."""
        if units is None:
            return self.matters
        return tuple(m for m in self.matters if m.unit in units)

    def without(self, units: frozenset[Unit]) -> Grant:
        return replace(self, matters=tuple(m for m in self.matters if m.unit not in units))


@dataclass(frozen=True)
class Group:
    """An authorization's grants posted so far: the first taxpayer signature day, and how many
    of its grants elected notice copies."""

    authorization_id: str
    signature_date: dt.date
    notice_electors: int = 0


@dataclass(frozen=True)
class Floor:
    """RT-02: a revocation or withdrawal signed on `signed_on`. A grant of `form` signed on or
    before it does not record a unit it covers, for a representative it names (None: every
    representative; `units` None: every unit)."""

    floor_id: str
    form: str
    signed_on: dt.date
    caf_numbers: frozenset[str] | None
    units: frozenset[Unit] | None

    def binds(self, caf_number: str | None) -> bool:
        """The floor holds for grants of this representative."""
        return self.caf_numbers is None or caf_number in self.caf_numbers

    def covers(self, unit: Unit, caf_number: str | None) -> bool:
        return (self.units is None or unit in self.units) and self.binds(caf_number)


@dataclass(frozen=True)
class TaxpayerCaf:
    """Everything the rules read about one taxpayer; `version` guards concurrent writers."""

    version: int = 0
    grants: tuple[Grant, ...] = ()
    groups: dict[str, Group] = field(default_factory=dict)
    floors: tuple[Floor, ...] = ()

    def active(self, form: str) -> tuple[Grant, ...]:
        return tuple(g for g in self.grants if g.form == form and g.matters)


@dataclass(frozen=True)
class Loss:
    """Units an earlier grant loses (revoked or withdrawn): `matters` go, `remaining` stay."""

    grant: Grant
    matters: tuple[Matter, ...]

    @property
    def units(self) -> frozenset[Unit]:
        return frozenset(m.unit for m in self.matters)

    @property
    def remaining(self) -> tuple[Matter, ...]:
        lost = self.units
        return tuple(m for m in self.grant.matters if m.unit not in lost)


@dataclass(frozen=True)
class Dropped:
    """A unit of a new grant that is not recorded, and why (PO-07/MK-05, MK-04, RT-02)."""

    matter: Matter
    code: ReasonCode
