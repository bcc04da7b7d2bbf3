"""Small builders of valid messages for unit tests; each test changes only what it is about."""

from __future__ import annotations

import datetime as dt
from typing import Any

from schemas.codec import decode_inbound
from schemas.grants import MatterSpec, PostGrant
from schemas.inbound import Revocation, Submission, Withdrawal

RECEIVED = dt.date(2026, 11, 20)
NOW = dt.datetime(2026, 11, 20, 19, 0, tzinfo=dt.UTC)


def submission(**changes: Any) -> Submission:
    """A clean upload of a 2848 with one representative; `changes` replace top-level fields,
    `taxpayer__x` / `rep__x` replace a field of the taxpayer / first representative."""
    taxpayer: dict[str, Any] = {
        "tin": "123-45-6789",
        "tin_type": "SSN",
        "name": "Jordan Q Public",
        "entity_type": "individual",
        "signer_title": None,
        "address": {
            "line1": "1 Main St",
            "city": "Memphis",
            "state": "TN",
            "postal_code": "38103",
            "country": "US",
        },
        "signature": {"date": "2026-11-18", "method": "electronic"},
    }
    rep: dict[str, Any] = {
        "caf_number": "0301-12345R",
        "name": "Avery Smith",
        "designation": "b",
        "jurisdiction": "TN",
        "licence_number": "CPA-55102",
        "ptin": "P01234567",
        "receive_notices": True,
        "student_letter_attached": False,
        "signature": {"date": "2026-11-19", "method": "electronic"},
    }
    document: dict[str, Any] = {
        "kind": "submission",
        "schema_version": 1,
        "message_id": "m-1",
        "sent_at": "2026-11-20T14:03:00-05:00",
        "channel": "upload",
        "received_on": str(RECEIVED),
        "form": "2848",
        "taxpayer": taxpayer,
        "representatives": [rep],
        "tax_matters": [
            {"tax_type": "Income", "form_number": "1040", "periods": ["2023", "2024", "2025"]}
        ],
        "specific_use": False,
        "retain_prior": False,
        "prior_copies_attached": 0,
    }
    for key, value in changes.items():
        if key.startswith("taxpayer__"):
            taxpayer[key.removeprefix("taxpayer__")] = value
        elif key.startswith("rep__"):
            rep[key.removeprefix("rep__")] = value
        else:
            document[key] = value
    message = decode(document)
    assert isinstance(message, Submission)
    return message


def decode(document: dict[str, Any]) -> Any:
    import json  # noqa: PLC0415

    return decode_inbound(json.dumps(document).encode())


def removal(kind: str, **changes: Any) -> Withdrawal | Revocation:
    document: dict[str, Any] = {
        "kind": kind,
        "schema_version": 1,
        "message_id": "m-2",
        "sent_at": "2026-11-21T09:00:00-05:00",
        "taxpayer": {"tin": "123-45-6789", "tin_type": "SSN"},
        "form": "2848",
        "tax_matters": None,
        "signature": {"date": "2026-11-20", "method": "checkbox"},
    }
    if kind == "withdrawal":
        document["caf_number"] = "0301-12345R"
    else:
        document["caf_numbers"] = None
    document.update(changes)
    message = decode(document)
    assert isinstance(message, Withdrawal | Revocation)
    return message


def post_grant(**changes: Any) -> PostGrant:
    """A grant as the poster and validator receive it."""
    values: dict[str, Any] = {
        "action": "post",
        "message_id": "m-1",
        "taxpayer_ref": "a" * 32,
        "tin_last4": "6789",
        "form": "2848",
        "received_at": NOW,
        "grant_id": "m-1:0",
        "authorization_id": "m-1",
        "group_position": 0,
        "channel": "upload",
        "received_on": RECEIVED,
        "taxpayer_signature_date": dt.date(2026, 11, 18),
        "caf_number": "030112345",
        "representative_name": "Avery Smith",
        "designation": "b",
        "receive_notices": False,
        "tax_matters": [MatterSpec(tax_type="Income", form_number="1040", periods=["2024"])],
        "specific_use": False,
        "retain_prior": False,
        "first_time": False,
    }
    values.update(changes)
    return PostGrant.model_validate(values, strict=False)
