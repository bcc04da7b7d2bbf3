"""The one factory of valid messages (`devstack/messages.py`) that the tests, `make demo` and the
chaos and benchmark workload build theirs with: what it builds is valid, on the wire as in the
model, and its defaults are the examples of docs/contract.md."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from pydantic import BaseModel

from devstack import messages
from devstack.workload import Workload
from schemas.codec import decode_inbound, decode_practitioner
from schemas.entities import EntityRecord
from schemas.errors import ContractError
from schemas.inbound import (
    Channel,
    Revocation,
    SignatureMethod,
    Submission,
    TpaRequest,
    Withdrawal,
)
from tests.contract_examples import contract_examples

pytestmark = pytest.mark.unit

JSON_SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "generated" / "jsonschema"
TODAY = dt.date(2027, 3, 1)
NOW = dt.datetime(2027, 3, 1, 15, 30, tzinfo=dt.UTC)

BUILT: dict[str, BaseModel] = {
    "a 2848": messages.submission(),
    "an 8821": messages.submission(form="8821", representatives=[messages.representative("8821")]),
    "a 2848 by mail": messages.submission(channel="mail"),
    "a form with a first-time representative": messages.submission(
        representatives=messages.representatives(
            "2848", [{"name": "Sam New"}], signed=messages.signature(messages.RECEIVED)
        )
    ),
    "a form sent today": messages.submission(
        received_on=TODAY, signed=TODAY, periods=["2026"], message_id="m-9", sent_at=NOW
    ),
    "a Tax Pro Account request": messages.tpa_request(),
    "a business's Tax Pro Account request": messages.tpa_request(
        taxpayer=messages.business(), form_number="1120"
    ),
    "a group's Tax Pro Account request": messages.tpa_request(group_id="grp-1"),
    "an approval": messages.tpa_decision(),
    "a decline with its assertion": messages.tpa_decision(
        decision="decline", identity_assertion="a.b.c"
    ),
    "a withdrawal": messages.withdrawal(),
    "a withdrawal of one matter": messages.withdrawal(tax_matters=[messages.tax_matter(["2024"])]),
    "a revocation": messages.revocation(),
    "an online revocation": messages.revocation(
        channel="online_account", signed=messages.online_signature(messages.RECEIVED)
    ),
    "a Tax Pro Account request sent now": messages.tpa_request_now(
        messages.business(), "030100104", request_id="tpa-9", form_number="1120", today=TODAY
    ),
    "an approval sent now with its assertion": messages.tpa_decision_now(
        "tpa-9", signed=TODAY, at=NOW, identity_assertion="a.b.c"
    ),
    "a business in the entity feed": messages.entity("ent-1", updated_at=NOW),
    "a practitioner": messages.practitioner(),
    "a practitioner the demo registers": messages.practitioner(
        "030100104",
        status_code="S",
        jurisdiction=None,
        licence_number=None,
        ptin=None,
        ptin_valid_through=None,
        afsp_years=None,
    ),
}


def decoded(document: dict[str, Any]) -> BaseModel:
    raw = json.dumps(document).encode()
    if "kind" in document:
        return decode_inbound(raw)
    if "entity_id" in document:
        return EntityRecord.model_validate_json(raw, strict=True)
    return decode_practitioner(raw)


@pytest.mark.parametrize("built", BUILT.values(), ids=BUILT.keys())
def test_what_the_factory_builds_reads_back_from_its_json_form_unchanged(built: BaseModel) -> None:
    assert decoded(messages.document(built)) == built


@pytest.mark.parametrize("built", BUILT.values(), ids=BUILT.keys())
def test_what_the_factory_builds_is_valid_against_its_committed_json_schema(
    built: BaseModel,
) -> None:
    schema = json.loads((JSON_SCHEMAS / f"{type(built).__name__}.json").read_text())
    errors = list(Draft202012Validator(schema).iter_errors(messages.document(built)))
    assert errors == []


def example(kind: str) -> BaseModel:
    """The contract's example of an inbound `kind`, or of a practitioner `record`."""
    [found] = [
        d
        for d in contract_examples()
        if d.get("kind") == kind or (kind == "record" and "status_code" in d)
    ]
    return decoded(found)


@pytest.mark.parametrize(
    ("kind", "built"),
    [
        ("tpa_decision", messages.tpa_decision()),
        ("withdrawal", messages.withdrawal()),
        ("revocation", messages.revocation()),
        ("record", messages.practitioner()),
    ],
)
def test_a_default_message_is_the_contracts_example_of_its_kind(
    kind: str, built: BaseModel
) -> None:
    assert built == example(kind)


def test_the_default_submission_is_the_contracts_example_without_its_kept_prior_grant() -> None:
    """The contract's example keeps a prior authorization (RT-01) and writes its periods as a
    range; the factory's plain form lists the same years and keeps nothing."""
    contract = example("submission")
    assert isinstance(contract, Submission)
    plain = contract.model_copy(
        update={
            "tax_matters": [messages.tax_matter(["2023", "2024", "2025"])],
            "retain_prior": False,
            "prior_copies_attached": 0,
            "retain": None,
        }
    )
    assert messages.submission() == plain


def test_the_default_tax_pro_account_request_has_the_contracts_professional() -> None:
    contract = example("tpa_request")
    assert isinstance(contract, TpaRequest)
    built = messages.tpa_request()
    mine, theirs = built.representative, contract.representative
    assert (mine.caf_number, mine.name, mine.designation, mine.licence_number) == (
        theirs.caf_number,
        theirs.name,
        theirs.designation,
        theirs.licence_number,
    )
    assert mine.signature == theirs.signature
    assert (built.request_id, built.received_on, built.form) == (
        contract.request_id,
        contract.received_on,
        contract.form,
    )


def test_a_form_is_signed_wet_on_paper_and_electronically_on_an_upload() -> None:
    """IN-06: the taxpayer and the default representative alike."""
    cases: list[tuple[Channel, SignatureMethod]] = [
        ("mail", "wet"),
        ("fax", "wet"),
        ("upload", "electronic"),
    ]
    for channel, method in cases:
        form = messages.submission(channel=channel)
        signatures = [form.taxpayer.signature, form.representatives[0].signature]
        assert [s.method for s in signatures if s is not None] == [method, method]


def test_an_8821_designee_has_no_designation_credentials_or_signature() -> None:
    designee = messages.representative("8821")
    assert (designee.designation, designee.licence_number, designee.signature) == (None,) * 3
    assert messages.representative().designation == "b"


def test_a_field_left_out_is_not_on_the_wire() -> None:
    """Only what the builder was given is published: a portal writes no nulls it never had."""
    [first_time] = messages.representatives(
        "2848", [{"name": "Sam New"}], signed=messages.signature(messages.RECEIVED)
    )
    wire = messages.document(first_time)
    assert "ptin" not in wire
    assert wire["caf_number"] is None
    assert "signer_title" not in messages.document(messages.submission())["taxpayer"]


def test_a_change_on_the_wire_replaces_a_field_of_the_message_or_of_a_part() -> None:
    wire = messages.document(
        messages.submission(),
        channel="fax",
        taxpayer__name="Pat Roe",
        rep__designation="h",
    )
    assert (wire["channel"], wire["taxpayer"]["name"]) == ("fax", "Pat Roe")
    assert wire["representatives"][0]["designation"] == "h"
    request = messages.document(messages.tpa_request(), rep__caf_number="0301-99999R")
    assert request["representative"]["caf_number"] == "0301-99999R"


def test_a_change_on_the_wire_may_break_the_contract() -> None:
    """What a test of a rejection sends: here a TIN in a representative's name."""
    wire = messages.document(messages.submission(), rep__name="Rep 123-45-6789")
    with pytest.raises(ContractError):
        decode_inbound(json.dumps(wire).encode())


def test_a_removal_is_a_withdrawal_of_one_representative_or_a_revocation_of_all() -> None:
    withdrawal = messages.removal("withdrawal", caf_number="0301-54321R")
    assert isinstance(withdrawal, Withdrawal)
    assert withdrawal.caf_number == "0301-54321R"
    revocation = messages.removal("revocation")
    assert isinstance(revocation, Revocation)
    assert (revocation.caf_numbers, revocation.tax_matters) == (None, None)


def test_the_workload_builds_its_messages_with_the_factory_and_they_are_valid() -> None:
    """Every dict of the chaos and benchmark workload reads as a contract message; its
    rejected forms are rejected by intake's rules, not by the schema."""
    workload = Workload(200, seed=7)
    for message in workload:
        if isinstance(message.body, dict):
            decode_inbound(message.value())
    for record in workload.registry:
        decode_practitioner(json.dumps(record).encode())
    assert {m.kind for m in workload} >= {"form", "tpa_request", "withdrawal", "revocation"}
