"""`python -m services.caf_query.openapi`: the API's OpenAPI document, as committed in
`docs/openapi.json` (a test fails when the two differ)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any, cast

from caf_runtime.evidence_bucket import EvidenceReader
from caf_runtime.tokens import TrustedIssuers
from services.caf_query.access import AccessTokens
from services.caf_query.api import create_api
from services.caf_query.store import QueryStore

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def document() -> dict[str, Any]:
    """The document the running API serves at /openapi.json (routes and models only: nothing
    is called to make it)."""

    async def no_audit(*_: object) -> None:
        return None

    api = create_api(
        cast("QueryStore", None),
        AccessTokens(TrustedIssuers({})),
        lambda _tin: (),
        no_audit,
        lambda: dt.datetime.now(dt.UTC),
        evidence=cast("EvidenceReader", None),
    )
    return api.openapi()


def rendered() -> str:
    return json.dumps(document(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    COMMITTED.write_text(rendered())
    print(f"wrote {COMMITTED}")
