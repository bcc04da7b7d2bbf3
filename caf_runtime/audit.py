"""Audit records (AU-04): who did what, to what, when and why, kept append-only in the `ops`
table (`AUDIT` / `<time>#<audit id>`, written once) and on `caf.audit.v1` (kept forever).

Written by `cafctl` for operator actions and by the read side for every read of a taxpayer's
records by an employee. Records never hold a TIN, a name or an address.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any


@dataclass
class AuditRecord:
    """One operator action as kept in the audit table and topic."""

    action: str
    target: str
    operator: str
    why: str
    before: Any = None
    after: Any = None
    outcome: str = "done"
    audit_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="milliseconds"))

    def document(self) -> dict[str, Any]:
        return asdict(self)


def audit_item(record: AuditRecord) -> dict[str, Any]:
    """The record as an item of the `ops` table."""
    return {
        "pk": {"S": "AUDIT"},
        "sk": {"S": f"{record.at}#{record.audit_id}"},
        **_attributes(record.document()),
    }


def audit_value(record: AuditRecord) -> bytes:
    """The record as a `caf.audit.v1` value."""
    return json.dumps(record.document(), default=str).encode()


def _attributes(document: Mapping[str, Any]) -> dict[str, Any]:
    """The record as table attributes: the searchable fields, and the whole as JSON."""
    return {
        "action": {"S": str(document["action"])},
        "target": {"S": str(document["target"])},
        "operator": {"S": str(document["operator"])},
        "outcome": {"S": str(document["outcome"])},
        "document": {"S": json.dumps(document, default=str)},
    }
