"""An in-memory evidence store for unit and service tests (the real one: EvidenceBucket)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from caf_runtime.evidence_bucket import EvidenceStore, EvidenceUnavailable
from schemas.evidence import SignatureEvidence
from services.caf_poster.rules import EvidenceRetry

RETRY = EvidenceRetry(
    retention=dt.timedelta(days=2557),
    delays=(dt.timedelta(seconds=5), dt.timedelta(seconds=30)),
    every=dt.timedelta(minutes=5),
)


@dataclass
class MemoryEvidence:
    """Objects by key with their retain-until; `down` makes every write fail, like an
    unreachable object store."""

    objects: dict[str, tuple[bytes, dt.datetime]] = field(default_factory=dict)
    down: bool = False
    writes: int = 0

    async def store(self, evidence: Sequence[SignatureEvidence], retain_until: dt.datetime) -> None:
        if self.down:
            raise EvidenceUnavailable("ServiceUnavailable")
        for item in evidence:
            self.writes += 1
            data, held = self.objects.get(item.key, (item.payload(), retain_until))
            self.objects[item.key] = (data, max(held, retain_until))  # a lock only lengthens


def _conforms(store: MemoryEvidence) -> EvidenceStore:
    return store  # mypy checks that the fake implements the Protocol
