"""The JSON examples of shared/spec/CONTRACT.md, read from the file itself.

Some examples elide values with "…" (and `{…}` for an object); those placeholders are filled here
with realistic values, one per field name, and nothing else is changed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

CONTRACT = Path(__file__).resolve().parents[2] / "shared" / "spec" / "CONTRACT.md"

PLACEHOLDER_VALUES: dict[str, Any] = {
    "message_id": "3d1f7a7e-5a0b-4f0e-9c3e-0c8f2f5a9b21",
    "sent_at": "2026-11-20T14:03:00-05:00",
    "tin": "123-45-6789",
    "name": "Jordan Q Public",
    "caf_number": "0301-12345R",
    "updated_at": "2026-11-01T08:00:00+00:00",
    "notification_id": "c7a1f3e2-0d5b-5e4f-8a9b-1c2d3e4f5a6b",
    "event_id": "0b6f1d1e-8a53-5f0e-9d56-2f5d0c9a6e11",
    "recipient_ref": "9f2c4e1a7b3d5f60a1b2c3d4e5f60718",
    "created_at": "2026-11-20T14:05:13+00:00",
    "subject": "A tax professional now has access to your tax information",
    "body": "Avery Smith can now act for you (TIN ending 6789).",
}
ELIDED_OBJECTS = {
    '"address": {…}': '"address": {"line1": "9 Elm St", "city": "Nashville", "state": "TN", '
    '"postal_code": "37201", "country": "US"}',
    '"P0…"': '"P07654321"',
}


def contract_examples() -> list[dict[str, Any]]:
    """Every ```json block of CONTRACT.md as a document, placeholders filled."""
    blocks = re.findall(r"```json\n(.*?)```", CONTRACT.read_text(), re.DOTALL)
    documents = []
    for block in blocks:
        text = block
        for elided, value in ELIDED_OBJECTS.items():
            text = text.replace(elided, value)
        documents.append(_fill(json.loads(text)))
    return documents


def _fill(node: Any, key: str = "") -> Any:
    if isinstance(node, dict):
        return {k: _fill(v, k) for k, v in node.items()}
    if isinstance(node, list):
        return [_fill(item, key) for item in node]
    if isinstance(node, str) and "…" in node:
        return PLACEHOLDER_VALUES[key]
    return node
