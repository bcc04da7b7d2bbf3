"""Records of the registry feed as a consumer reads them, signed with the session's development
keys, and the validator's in-memory view of them (issue 16)."""

from __future__ import annotations

import datetime as dt
import itertools

from aiokafka import ConsumerRecord

from caf_runtime.authenticity import DEFAULT_ALLOW, JwksSource, RecordVerifier
from schemas import topics
from schemas.registry import PractitionerRecord
from services.validator.registry import RegistryView
from tests.signing import keys, signed_headers

_offsets = itertools.count()


def practitioner(caf_number: str, ptin: str | None = "P01234567") -> PractitionerRecord:
    return PractitionerRecord(
        caf_number=caf_number,
        name="Avery Smith",
        status_code="",
        designations=["a"],
        ptin=ptin,
        updated_at=dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC),
    )


def feed_record(
    key: str, value: PractitionerRecord | None, *, kind: str = "registry"
) -> ConsumerRecord[bytes, bytes]:
    """A record of `caf.practitioners.v1` signed by the publisher of `kind` (a tombstone is
    signed over its key, AU-01)."""
    body = value.model_dump_json().encode() if value is not None else None
    headers = signed_headers(body if body is not None else key.encode(), kind)
    return ConsumerRecord(
        topics.PRACTITIONERS, 0, next(_offsets), 0, 0, key.encode(), body, None, 1, 1, headers
    )


def registry_view() -> RegistryView:
    return RegistryView(RecordVerifier(JwksSource(str(keys().publishers_jwks)), DEFAULT_ALLOW))
