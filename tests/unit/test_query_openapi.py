"""The committed OpenAPI document (docs/openapi.json) is the one the API serves (issue 17)."""

from __future__ import annotations

from services.caf_query.openapi import COMMITTED, rendered


def test_the_committed_openapi_document_matches_the_api() -> None:
    assert COMMITTED.read_text() == rendered(), (
        "the API changed: run `python -m services.caf_query.openapi` and commit docs/openapi.json"
    )
