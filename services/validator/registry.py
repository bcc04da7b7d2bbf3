"""The practitioner registry in memory (issue 16: state where it belongs).

Every validator replica reads the whole compacted `caf.practitioners.v1` (`FeedView`) and keeps
the newest record of each CAF number, tombstones included, with an index by PTIN. A grant reads
its practitioner here instead of from the table: no read per grant, and the registry barrier
asks this view's positions rather than the consumer group's offsets.

Only a record the registry feed signed counts (AU-01), exactly as the consumer group that copies
the feed into the table (`PRAC#…`) checks it; a record that fails is skipped here and
dead-lettered there. The table copy stays: it holds the numbers this validator gives first-time
representatives (CN-02, registry offset -1) until the feed has them, and serves the operator's
tools. A number the feed has named (a record or a tombstone) is answered by this view alone, so
a table copy that lags the feed can never bring back a deleted record.

Memory: one decoded record per CAF number (1.7 KB each measured for a 290-byte record: a million
practitioners are about 1.7 GB per replica); `caf_registry_view_records` says how many.
"""

from __future__ import annotations

import logging

from aiokafka import ConsumerRecord
from pydantic import ValidationError

from caf_runtime.authenticity import RecordVerifier, SignatureInvalid
from caf_runtime.metrics import REGISTRY_VIEW_RECORDS
from schemas.codec import decode_practitioner
from schemas.errors import ContractError
from schemas.registry import PractitionerRecord
from schemas.values import normalize_caf_number

log = logging.getLogger(__name__)


class RegistryView:
    """The registry feed's newest record per CAF number (None: a tombstone), by PTIN too."""

    def __init__(self, verifier: RecordVerifier) -> None:
        self._verifier = verifier
        self._records: dict[str, PractitionerRecord | None] = {}
        self._by_ptin: dict[str, set[str]] = {}

    async def apply(self, record: ConsumerRecord[bytes, bytes]) -> None:
        """Keep `record` if the registry feed signed it and it reads as a practitioner under
        its own number; skip it otherwise (the consumer group dead-letters it)."""
        try:
            await self._verifier.verify(record)
            key = normalize_caf_number((record.key or b"").decode(errors="replace"))
            practitioner = decode_practitioner(record.value) if record.value is not None else None
        except (SignatureInvalid, ContractError, ValidationError) as error:
            log.info(
                "registry record not taken into the view",
                extra={
                    "partition": record.partition,
                    "offset": record.offset,
                    "error": type(error).__name__,
                },
            )
            return
        if practitioner is not None and practitioner.caf_number != key:
            log.info(
                "registry record under another number not taken into the view",
                extra={"partition": record.partition, "offset": record.offset},
            )
            return
        self._set(key, practitioner)

    def _set(self, caf_number: str, practitioner: PractitionerRecord | None) -> None:
        old = self._records.get(caf_number)
        if old is not None and old.ptin:
            numbers = self._by_ptin.get(old.ptin.upper(), set())
            numbers.discard(caf_number)
            if not numbers:
                self._by_ptin.pop(old.ptin.upper(), None)
        self._records[caf_number] = practitioner
        if practitioner is not None and practitioner.ptin:
            self._by_ptin.setdefault(practitioner.ptin.upper(), set()).add(caf_number)
        REGISTRY_VIEW_RECORDS.set(len(self._records))

    def named(self, caf_number: str) -> bool:
        """The feed has named this number (a record or a tombstone)."""
        return caf_number in self._records

    def get(self, caf_number: str) -> PractitionerRecord | None:
        """The feed's record of the number; None for a tombstone or a number it never named."""
        return self._records.get(caf_number)

    def with_ptin(self, ptin: str) -> list[PractitionerRecord]:
        """The feed's records carrying `ptin`, lowest CAF number first."""
        numbers = sorted(self._by_ptin.get(ptin.upper(), ()))
        return [record for n in numbers if (record := self._records.get(n)) is not None]
