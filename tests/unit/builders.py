"""Small builders of valid messages for unit tests; each test changes only what it is about.
And `SteppedClock`, a monotonic clock that a test moves by hand.

What a valid message holds is said once, in `devstack/messages.py`; these pin the ids and
instants the unit tests compare against and decode the result the way intake does.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from devstack import messages
from devstack.messages import RECEIVED, decoded
from schemas.grants import MatterSpec, PostGrant
from schemas.inbound import Revocation, Submission, Withdrawal

__all__ = ["NOW", "RECEIVED", "SteppedClock", "decode", "post_grant", "removal", "submission"]

NOW = dt.datetime(2026, 11, 20, 19, 0, tzinfo=dt.UTC)
_REMOVAL_SENT_AT = dt.datetime(2026, 11, 21, 9, tzinfo=dt.timezone(dt.timedelta(hours=-5)))

decode = decoded


class SteppedClock:
    """A monotonic clock (seconds) that stands still until a test moves `now`."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def submission(**changes: Any) -> Submission:
    """A clean upload of a 2848 with one representative (`messages.submission`, id `m-1`);
    `changes` replace top-level fields, `taxpayer__x` / `rep__x` replace a field of the
    taxpayer / first representative."""
    message = decode(messages.document(messages.submission(message_id="m-1"), **changes))
    assert isinstance(message, Submission)
    return message


def removal(kind: str, **changes: Any) -> Withdrawal | Revocation:
    """A withdrawal of CAF 0301-12345R, or the taxpayer's revocation of all, signed with a
    checkbox on the day of `RECEIVED` (id `m-2`); `changes` replace top-level fields."""
    built = messages.removal(
        kind,
        signed=messages.signature(RECEIVED, "checkbox"),
        message_id="m-2",
        sent_at=_REMOVAL_SENT_AT,
    )
    message = decode(messages.document(built, **changes))
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
