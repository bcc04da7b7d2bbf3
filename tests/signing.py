"""Sign test inputs with the session's development keys (made in `tests/conftest.py`)."""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

from caf_client.signing import SIGNATURE_HEADER
from devstack.keys import DevKeys


@cache
def keys() -> DevKeys:
    return DevKeys(Path(os.environ["CAF_TEST_KEYS"]))


def kind_of(value: bytes | None) -> str:
    try:
        document = json.loads(value or b"")
    except ValueError:
        return "submission"
    kind = document.get("kind") if isinstance(document, dict) else None
    return kind if isinstance(kind, str) else "submission"


def signature(value: bytes | None, kind: str | None = None, kid: str | None = None) -> str:
    """The `caf-signature` of `value` by the development publisher of its kind (or `kid`)."""
    signer = keys().signer(kid) if kid else keys().signer_for(kind or kind_of(value))
    return signer.sign(value or b"")


def signed(value: bytes | None, kind: str | None = None, kid: str | None = None) -> dict[str, str]:
    """Headers (as FastStream's `publish(headers=...)` takes them) that sign `value`."""
    return {SIGNATURE_HEADER: signature(value, kind, kid)}


def signed_headers(
    value: bytes | None, kind: str | None = None, kid: str | None = None
) -> list[tuple[str, bytes]]:
    """The same as aiokafka record headers."""
    return [(SIGNATURE_HEADER, signature(value, kind, kid).encode())]


def assertion(*, tin: str, nonce: str, **claims: Any) -> str:
    """An identity assertion of the development provider for taxpayer `tin`."""
    return keys().assertion(tin=tin, nonce=nonce, **claims)
