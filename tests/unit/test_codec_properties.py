"""Property-based checks of the codec: valid messages round-trip; broken ones yield ContractError.

Covers IN-01 (what cannot be decoded is a contract error, never another exception).
"""

from __future__ import annotations

import json
import string
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from schemas.base import MAX_TEXT
from schemas.codec import MAX_MESSAGE_BYTES, decode_inbound, encode, readable_message_id
from schemas.errors import ContractError
from schemas.inbound import INBOUND_KINDS, identifier
from schemas.matters import expand
from schemas.values import has_tin_like_number, normalize_caf_number, normalize_tin

pytestmark = pytest.mark.unit

T = TypeVar("T")

# free text that a valid message may carry: never a TIN-shaped number (DP-02 refuses it)
text = st.text(
    alphabet=string.ascii_letters + string.digits + " -.'", min_size=1, max_size=40
).filter(lambda value: not has_tin_like_number(value))
maybe_text = st.none() | text
days = st.dates(min_value=date(2000, 1, 1), max_value=date(2040, 12, 31)).map(str)
offsets = st.sampled_from(
    [UTC, timezone(timedelta(hours=-5)), timezone(timedelta(hours=5, minutes=30))]
)
instants = st.builds(
    lambda moment, tz: moment.replace(tzinfo=tz).isoformat(),
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1)),
    offsets,
)
signatures = st.none() | st.fixed_dictionaries(
    {
        "date": st.none() | days,
        "method": st.none() | st.sampled_from(["wet", "electronic", "checkbox"]),
    },
    optional={"ial": st.integers(0, 3), "aal": st.integers(0, 3), "at": instants},
)
address = st.fixed_dictionaries(
    {
        "line1": maybe_text,
        "city": maybe_text,
        "state": maybe_text,
        "postal_code": maybe_text,
        "country": st.sampled_from(["US", "CA", "MX", None]),
    }
)
taxpayers = st.fixed_dictionaries(
    {
        "tin": maybe_text,
        "tin_type": st.none() | st.sampled_from(["SSN", "ITIN", "EIN"]),
        "name": maybe_text,
        "entity_type": st.none() | st.sampled_from(["individual", "corporation", "trust"]),
        "signer_title": maybe_text,
        "address": st.none() | address,
        "signature": signatures,
    }
)
identities = st.fixed_dictionaries(
    {"tin": maybe_text, "tin_type": st.none() | st.sampled_from(["SSN", "ITIN", "EIN"])}
)
representatives = st.fixed_dictionaries(
    {
        "caf_number": maybe_text,
        "name": maybe_text,
        "designation": st.none() | st.sampled_from(list("abcdefghkrz")),
        "jurisdiction": maybe_text,
        "licence_number": maybe_text,
        "ptin": maybe_text,
        "receive_notices": st.booleans(),
        "student_letter_attached": st.booleans(),
        "signature": signatures,
    }
)
periods = st.lists(
    st.sampled_from(["2024", "2023-06", "2020 thru 2022", "All years", "19x"]), max_size=4
)
matter = st.fixed_dictionaries(
    {"tax_type": maybe_text, "form_number": maybe_text, "periods": st.none() | periods}
)
matters = st.lists(matter, min_size=1, max_size=4)
common = {
    "schema_version": st.just(1),
    "message_id": st.uuids().map(str),
    "sent_at": instants,
}
forms = st.sampled_from(["2848", "8821"])

submissions = st.fixed_dictionaries(
    {
        **common,
        "kind": st.just("submission"),
        "channel": st.sampled_from(["upload", "fax", "mail"]),
        "received_on": days,
        "form": forms,
        "taxpayer": taxpayers,
        "representatives": st.lists(representatives, min_size=1, max_size=5),
        "tax_matters": matters,
        "specific_use": st.booleans(),
        "retain_prior": st.booleans(),
        "prior_copies_attached": st.integers(0, 3),
    }
)
ids = st.from_regex(r"\A[A-Za-z][A-Za-z0-9._:-]{0,40}\Z")
tpa_requests = st.fixed_dictionaries(
    {
        **common,
        "kind": st.just("tpa_request"),
        "request_id": ids,
        "group_id": st.none() | ids,
        "received_on": days,
        "form": forms,
        "taxpayer": taxpayers,
        "representative": representatives,
        "tax_matters": matters,
    }
)
tpa_decisions = st.fixed_dictionaries(
    {
        **common,
        "kind": st.just("tpa_decision"),
        "request_id": ids,
        "decision": st.sampled_from(["approve", "decline"]),
        "taxpayer_signature": signatures,
    }
)
withdrawals = st.fixed_dictionaries(
    {
        **common,
        "kind": st.just("withdrawal"),
        "caf_number": text,
        "taxpayer": identities,
        "form": forms,
        "tax_matters": st.none() | matters,
        "signature": signatures,
    }
)
revocations = st.fixed_dictionaries(
    {
        **common,
        "kind": st.just("revocation"),
        "taxpayer": identities,
        "form": forms,
        "caf_numbers": st.none() | st.lists(text, max_size=3),
        "tax_matters": st.none() | matters,
        "signature": signatures,
    }
)
inbound_documents = submissions | tpa_requests | tpa_decisions | withdrawals | revocations

REQUIRED = {
    "submission": [
        "kind",
        "schema_version",
        "message_id",
        "sent_at",
        "channel",
        "received_on",
        "form",
        "taxpayer",
        "representatives",
        "tax_matters",
    ],
    "tpa_request": [
        "kind",
        "message_id",
        "sent_at",
        "request_id",
        "received_on",
        "form",
        "taxpayer",
        "representative",
        "tax_matters",
    ],
    "tpa_decision": ["kind", "message_id", "sent_at", "request_id", "decision"],
    "withdrawal": ["kind", "message_id", "sent_at", "caf_number", "taxpayer", "form"],
    "revocation": ["kind", "message_id", "sent_at", "taxpayer", "form"],
}


def encoded(document: dict[str, Any]) -> bytes:
    return json.dumps(document).encode()


@given(inbound_documents)
def test_a_valid_inbound_message_round_trips(document: dict[str, Any]) -> None:
    message = decode_inbound(encoded(document))
    assert message.kind == document["kind"]
    assert decode_inbound(encode(message)) == message


@given(inbound_documents, st.data())
def test_a_message_missing_a_required_field_is_a_contract_error(
    document: dict[str, Any], data: st.DataObject
) -> None:
    """IN-01: fails the schema."""
    field = data.draw(st.sampled_from(REQUIRED[document["kind"]]))
    del document[field]
    with pytest.raises(ContractError) as error:
        decode_inbound(encoded(document))
    expected = "kind_unknown" if field == "kind" else "missing"
    assert expected in error.value.codes


WRONG_TYPES = st.sampled_from([12345, 1.5, True, [], {}, "not-a-value"])


@given(inbound_documents, st.data(), WRONG_TYPES)
def test_a_field_of_the_wrong_type_is_a_contract_error(
    document: dict[str, Any], data: st.DataObject, wrong: object
) -> None:
    """IN-01: fails the schema."""
    field = data.draw(st.sampled_from(sorted(set(REQUIRED[document["kind"]]) - {"kind"})))
    original = document[field]
    if isinstance(wrong, str):
        assume(field not in {"message_id", "request_id", "caf_number"})
    else:
        assume(type(wrong) is not type(original))
    document[field] = wrong
    with pytest.raises(ContractError):
        decode_inbound(encoded(document))


@given(inbound_documents, st.text(min_size=0, max_size=20))
def test_an_unknown_kind_is_a_contract_error(document: dict[str, Any], kind: str) -> None:
    """IN-01: kind is unknown."""
    assume(kind not in INBOUND_KINDS)
    document["kind"] = kind
    with pytest.raises(ContractError) as error:
        decode_inbound(encoded(document))
    assert error.value.codes == ("kind_unknown",)


@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise_anything_but_a_contract_error(raw: bytes) -> None:
    """IN-01: cannot be decoded as JSON."""
    with pytest.raises(ContractError):
        decode_inbound(raw)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=5),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
        ),
        max_leaves=20,
    )
)
def test_arbitrary_json_never_raises_anything_but_a_contract_error(value: object) -> None:
    """IN-01: any JSON that is not a message of a known kind."""
    with pytest.raises(ContractError):
        decode_inbound(json.dumps(value).encode())


@settings(max_examples=20, suppress_health_check=[HealthCheck.too_slow])
@given(submissions, st.integers(MAX_TEXT + 1, MAX_TEXT * 50))
def test_a_huge_string_is_a_contract_error(document: dict[str, Any], size: int) -> None:
    document["taxpayer"]["name"] = "x" * size
    with pytest.raises(ContractError) as error:
        decode_inbound(encoded(document))
    assert "string_too_long" in error.value.codes


def test_a_message_over_the_size_limit_is_refused_before_parsing() -> None:
    with pytest.raises(ContractError) as error:
        decode_inbound(b" " * (MAX_MESSAGE_BYTES + 1))
    assert error.value.codes == ("too_large",)


def test_deeply_nested_json_is_a_contract_error() -> None:
    with pytest.raises(ContractError):
        decode_inbound(b"[" * 100_000 + b"]" * 100_000)


def test_not_json_is_a_contract_error_whose_message_id_cannot_be_read() -> None:
    """IN-01: raw bytes go to the DLQ; no rejection without a readable message_id."""
    with pytest.raises(ContractError) as error:
        decode_inbound(b"{this is not json")
    assert error.value.codes == ("json_invalid",)
    assert readable_message_id(b"{this is not json") is None


def test_a_schema_failure_still_yields_its_readable_message_id() -> None:
    """IN-01: a readable message_id also gets a REJ-SCHEMA rejection."""
    raw = b'{"kind": "submission", "message_id": "m-1", "schema_version": 7}'
    with pytest.raises(ContractError):
        decode_inbound(raw)
    assert readable_message_id(raw) == "m-1"


def outcome(parse: Callable[..., T], *args: Any) -> T | ContractError:
    """What a value parser gives: its result, or the ContractError it raised (nothing else)."""
    try:
        return parse(*args)
    except ContractError as error:
        return error


def assert_nine_digits_or(result: str | ContractError, code: str) -> None:
    """`result` is a ContractError of `code` alone, or nine ASCII digits."""
    if isinstance(result, ContractError):
        assert result.codes == (code,)
    else:
        assert len(result) == 9
        assert result.isascii()
        assert result.isdigit()


@given(st.text(max_size=30), st.sampled_from(["SSN", "ITIN", "EIN"]))
def test_any_tin_text_normalizes_or_is_a_contract_error(tin: str, tin_type: str) -> None:
    """IN-04: a bad TIN yields the documented error, never another exception."""
    assert_nine_digits_or(outcome(normalize_tin, tin, tin_type), "tin_invalid")


@given(st.text(max_size=30))
def test_any_caf_number_text_normalizes_or_is_a_contract_error(value: str) -> None:
    """IN-16: a bad CAF number yields the documented error, never another exception."""
    assert_nine_digits_or(outcome(normalize_caf_number, value), "caf_number_invalid")


@given(
    st.sampled_from(["1040", "941"]),
    st.text(max_size=30) | st.from_regex(r"\A[0-9]{4}(-[0-9]{2})?( thru |-)[0-9]{4}(-[0-9]{2})?\Z"),
)
def test_any_period_text_expands_or_is_a_contract_error(key: str, value: str) -> None:
    """IN-13 / IN-14 / MK-02: a bad period yields the documented error, never another
    exception; a good one expands to units in order."""
    result = outcome(lambda text: expand(key, text), value)
    if isinstance(result, ContractError):
        assert result.codes in {("period_invalid",), ("period_general",)}
    else:
        assert result
        assert list(result) == sorted(result)


@pytest.mark.parametrize(
    "message_id",
    [
        "123-45-6789",
        "123456789",
        "x-123456789",
        "msg_12-3456789",
        "a:123.45.6789",
        "has space",
        "",
        "-leading",
        "é",
        "x" * 129,
    ],
)
def test_an_id_shaped_like_a_tin_or_free_text_is_refused_and_never_repeated(
    message_id: str,
) -> None:
    """IN-01: such a message is a dead letter only; its id is not readable for REJ-SCHEMA."""
    with pytest.raises(ValueError, match="id"):
        identifier(message_id)
    assert readable_message_id(json.dumps({"message_id": message_id}).encode()) is None


@given(st.uuids())
def test_every_uuid_is_a_valid_id(value: uuid.UUID) -> None:
    assert identifier(str(value)) == str(value)
    assert identifier(f"tpa-{value.hex[:10]}") == f"tpa-{value.hex[:10]}"
