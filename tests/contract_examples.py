"""The JSON examples of the project's own wire contract, `docs/contract.md`, read from the file."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

CONTRACT = Path(__file__).resolve().parents[1] / "docs" / "contract.md"


def contract_examples() -> list[dict[str, Any]]:
    """Every ```json block of the contract as a document."""
    blocks = re.findall(r"```json\n(.*?)```", CONTRACT.read_text(), re.DOTALL)
    return [json.loads(block) for block in blocks]
