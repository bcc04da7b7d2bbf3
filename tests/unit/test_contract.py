"""The wire contract: the examples of docs/contract.md and the committed documents."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from pydantic import BaseModel

from schemas.codec import (
    decode_entity,
    decode_inbound,
    decode_notification,
    decode_practitioner,
    decode_protection,
    encode,
)
from schemas.documents import PUBLIC_MODELS, REGENERATE, rendered
from schemas.inbound import Submission, TpaRequest
from tests.contract_examples import CONTRACT, contract_examples

pytestmark = pytest.mark.unit

GENERATED = Path(__file__).resolve().parents[2] / "schemas" / "generated"


def decode_example(document: dict[str, Any]) -> BaseModel:
    raw = json.dumps(document).encode()
    if "kind" in document:
        return decode_inbound(raw)
    if "status_code" in document:
        return decode_practitioner(raw)
    if "ein" in document:
        return decode_entity(raw)
    if "basis" in document:
        return decode_protection(raw)
    return decode_notification(raw)


def schema_for(model: BaseModel) -> dict[str, Any]:
    path = GENERATED / "jsonschema" / f"{type(model).__name__}.json"
    return dict(json.loads(path.read_text()))


EXAMPLES = contract_examples()


def test_the_contract_has_the_fourteen_examples_this_suite_expects() -> None:
    """Seven of the form flow, the entity record and four Designated Official messages."""
    assert len(EXAMPLES) == 14


@pytest.mark.parametrize("document", EXAMPLES, ids=lambda d: d.get("kind", "record"))
def test_every_contract_example_parses_and_round_trips(document: dict[str, Any]) -> None:
    model = decode_example(document)
    again = decode_example(json.loads(encode(model)))
    assert again == model


@pytest.mark.parametrize("document", EXAMPLES, ids=lambda d: d.get("kind", "record"))
def test_every_contract_example_is_valid_against_its_committed_json_schema(
    document: dict[str, Any],
) -> None:
    schema = schema_for(decode_example(document))
    Draft202012Validator.check_schema(schema)
    errors = list(Draft202012Validator(schema).iter_errors(document))
    assert errors == []


def test_the_submission_example_keeps_its_values() -> None:
    model = decode_example(EXAMPLES[0])
    assert isinstance(model, Submission)
    assert model.representatives[0].caf_number == "0301-12345R"
    assert model.taxpayer.signature is not None
    assert str(model.taxpayer.signature.date) == "2026-11-18"
    assert model.tax_matters[0].periods == ["2023 thru 2025"]
    assert model.retain is not None
    assert model.retain[0].caf_number == "0301-54321R"


def test_the_tpa_request_example_keeps_its_assurance_levels() -> None:
    model = decode_example(EXAMPLES[1])
    assert isinstance(model, TpaRequest)
    assert model.representative.signature is not None
    assert (model.representative.signature.ial, model.representative.signature.aal) == (2, 2)
    assert model.group_id == "grp-88f1"


def test_an_inbound_message_with_unknown_fields_is_read_tolerantly() -> None:
    document = {**EXAMPLES[2], "portal_trace": {"hop": 3}}
    assert decode_example(document) == decode_example(EXAMPLES[2])


def test_an_outbound_schema_refuses_unknown_fields() -> None:
    schema = json.loads((GENERATED / "jsonschema" / "AuthorizationPosted.json").read_text())
    assert schema["additionalProperties"] is False


def test_committed_documents_match_what_the_models_generate() -> None:
    expected = rendered()
    committed = {path: path.read_text() for path in GENERATED.rglob("*.json")}
    stale = sorted(str(p) for p in committed.keys() - expected.keys())
    missing = sorted(str(p) for p in expected.keys() - committed.keys())
    changed = sorted(str(p) for p in expected if p in committed and committed[p] != expected[p])
    assert (stale, missing, changed) == ([], [], []), (
        f"the committed contract documents are out of date; regenerate with `{REGENERATE}`"
    )


def test_the_asyncapi_document_names_every_contract_topic_with_its_key() -> None:
    document = json.loads((GENERATED / "asyncapi.json").read_text())
    public_rows = [line for line in CONTRACT.read_text().splitlines() if "internal" not in line]
    contract_topics = {
        match.group(1)
        for line in public_rows
        if (match := re.match(r"^\| `(caf\.[a-z.]+\.v1)`", line))
    }
    assert set(document["channels"]) == contract_topics
    for channel in document["channels"].values():
        assert "Key:" in channel["description"]
        for reference in channel["messages"].values():
            name = reference["$ref"].rsplit("/", 1)[-1]
            assert name in document["components"]["messages"]


def _all_models(model: type[BaseModel], seen: set[type[BaseModel]]) -> set[type[BaseModel]]:
    if model in seen:
        return seen
    seen.add(model)
    for field in model.model_fields.values():
        for candidate in _nested(field.annotation):
            _all_models(candidate, seen)
    return seen


def _nested(annotation: object) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [found for arg in getattr(annotation, "__args__", ()) for found in _nested(arg)]


def test_every_field_of_every_public_model_has_a_description_and_an_example() -> None:
    models: set[type[BaseModel]] = set()
    for model in PUBLIC_MODELS:
        _all_models(model, models)
    undocumented = [
        f"{model.__name__}.{name}"
        for model in models
        for name, field in model.model_fields.items()
        if not field.description or not field.examples
    ]
    assert undocumented == []
