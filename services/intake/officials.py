"""Intake's pure decisions for Designated Officials (CP311): DO-01 … DO-08 (docs/rules.md §11).

A person who can legally bind a business asks, in Business Tax Account, to be its Designated
Official; a one-time PIN is mailed to the business's address of record (notice CP311); redeeming
it makes them an active Designated Official, who manages the business's other authorized users
and approves Tax Pro Account requests for it. What these functions need of state (the entity
record, the latest PIN of this requester, whether the entered PIN matches its hash) is given.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum, StrEnum
from types import MappingProxyType
from typing import Any

from schemas.codes import ReasonCode, Rejection, RuleId
from schemas.entities import BusinessType

RE_REQUEST_DAYS = 14  # DO-03
PIN_VALID_DAYS = 30  # DO-04: the PIN expires 30 days from the notice date
MAX_ATTEMPTS = 5  # DO-05: the fifth wrong entry locks the PIN

_CORPORATE_OFFICERS = frozenset(
    {
        "president",
        "vice president",
        "secretary",
        "treasurer",
        "chief executive officer",
        "ceo",
        "chief financial officer",
        "cfo",
        "chief operating officer",
        "coo",
        "corporate officer",
        "assistant secretary",
        "assistant treasurer",
    }
)
# DO-02: the titles that can legally bind each kind of business (docs/rules.md, DO-02's table).
BINDING_TITLES: Mapping[BusinessType, frozenset[str]] = MappingProxyType(
    {
        "corporation": _CORPORATE_OFFICERS,
        "s_corporation": _CORPORATE_OFFICERS,
        "partnership": frozenset({"general partner", "managing partner", "partner"}),
        "llc": frozenset({"member", "managing member", "manager", "sole member"}),
        "trust": frozenset({"trustee"}),
        "estate": frozenset({"executor", "executrix", "administrator", "personal representative"}),
        "sole_proprietor": frozenset({"owner", "sole proprietor"}),
    }
)


def normalized_title(title: str | None) -> str:
    """A title as the table compares it: lower case, words only ("Vice-President" ==
    "vice president", "C.E.O." == "ceo")."""
    text = re.sub(r"[.'\u2019]", "", (title or "").lower())
    return " ".join(re.sub(r"[^a-z ]", " ", text).split())


def _reject(rule: RuleId, code: ReasonCode, reason: str) -> Rejection:
    return Rejection(rule, code, reason)


UNKNOWN_ENTITY = _reject(
    RuleId.DO_01,
    ReasonCode.REJ_ENTITY_UNKNOWN,
    "The business is not known to the entity records, or it is closed.",
)
NOT_OFFICIAL = _reject(
    RuleId.DO_06,
    ReasonCode.REJ_DO_NOT_OFFICIAL,
    "Only an active Designated Official of the business may do this.",
)
NOT_OFFICIAL_APPROVAL = _reject(
    RuleId.DO_08,
    ReasonCode.REJ_DO_NOT_OFFICIAL,
    "A business's request is approved only by an active Designated Official of the business.",
)


@dataclass(frozen=True)
class EntityView:
    """What intake keeps of an entity record (DO-01): no EIN, name or address; the business's
    pseudonym and the last four digits of its EIN, as its events carry them."""

    entity_id: str
    entity_type: BusinessType
    active: bool
    taxpayer_ref: str
    tin_last4: str


class PinState(StrEnum):
    ISSUED = "issued"
    REDEEMED = "redeemed"
    LOCKED = "locked"


@dataclass(frozen=True)
class PinRecord:
    """The latest PIN of one requester for one business: its slow hash, never the PIN."""

    official_id: str
    pin_hash: str
    requested_at: dt.datetime
    notice_on: dt.date
    expires_on: dt.date
    attempts: int
    state: PinState
    version: int
    message_id: str
    history: tuple[Mapping[str, Any], ...] = ()  # the requester's earlier requests, no hash

    def replaced_by(
        self, *, pin_hash: str, requested_at: dt.datetime, notice_on: dt.date, message_id: str
    ) -> PinRecord:
        """A new PIN for the same requester and business; this one goes to the history."""
        return PinRecord(
            official_id=self.official_id,
            pin_hash=pin_hash,
            requested_at=requested_at,
            notice_on=notice_on,
            expires_on=pin_expires_on(notice_on),
            attempts=0,
            state=PinState.ISSUED,
            version=self.version + 1,
            message_id=message_id,
            history=(*self.history, pin_summary(self)),
        )


def pin_summary(pin: PinRecord) -> dict[str, Any]:
    """A PIN request as cafctl shows it: never the PIN, never its hash."""
    return {
        "message_id": pin.message_id,
        "requested_at": pin.requested_at.isoformat(),
        "notice_on": pin.notice_on.isoformat(),
        "expires_on": pin.expires_on.isoformat(),
        "attempts": pin.attempts,
        "state": pin.state.value,
    }


def pin_expires_on(notice_on: dt.date) -> dt.date:
    """DO-04: the last day the PIN can be used, 30 days from the notice date."""
    return notice_on + dt.timedelta(days=PIN_VALID_DAYS)


def next_request_on(previous: PinRecord) -> dt.date:
    """DO-03: the first day a new PIN may be requested."""
    return previous.notice_on + dt.timedelta(days=RE_REQUEST_DAYS)


def assess_pin_request(
    entity: EntityView | None,
    *,
    title: str | None,
    attests_authority: bool,
    previous: PinRecord | None,
    today: dt.date,
) -> Rejection | None:
    """DO-01 … DO-03: a PIN request is refused for an unknown or closed business, a title that
    cannot bind it (or no attestation), or within 14 days of this requester's last request."""
    if entity is None or not entity.active:
        return UNKNOWN_ENTITY
    if not attests_authority or normalized_title(title) not in BINDING_TITLES[entity.entity_type]:
        return _reject(
            RuleId.DO_02,
            ReasonCode.REJ_DO_AUTHORITY,
            "The requester's title cannot legally bind this kind of business, or the "
            "requester did not attest to that authority.",
        )
    if previous is not None and today < next_request_on(previous):
        return _reject(
            RuleId.DO_03,
            ReasonCode.REJ_DO_PIN_TOO_SOON,
            f"A new PIN may be requested from {next_request_on(previous)}, 14 days after the "
            "last request.",
        )
    return None


class Redemption(Enum):
    """What entering a PIN does (DO-05)."""

    ACTIVATE = "activate"
    WRONG = "wrong"  # counted; attempts left
    LOCK = "lock"  # the wrong entry that reaches the limit


@dataclass(frozen=True)
class RedeemVerdict:
    """A PIN entry's outcome: the refusal (if any), the PIN's new state and attempts."""

    outcome: Redemption
    rejection: Rejection | None
    state: PinState
    attempts: int

    @property
    def attempts_left(self) -> int:
        return max(MAX_ATTEMPTS - self.attempts, 0)


def redeemable(
    entity: EntityView | None, pin: PinRecord | None, today: dt.date
) -> Rejection | None:
    """DO-05 before the PIN is compared: the business, a PIN for this requester and business,
    not used, not locked, not expired (the New York day after its last day)."""
    if entity is None or not entity.active:
        return UNKNOWN_ENTITY
    if pin is None:
        return _reject(
            RuleId.DO_05,
            ReasonCode.REJ_DO_PIN_NOT_ISSUED,
            "No PIN was issued to this person for this business.",
        )
    if pin.state is PinState.REDEEMED:
        return _reject(RuleId.DO_05, ReasonCode.REJ_DO_PIN_USED, "The PIN was already used.")
    if pin.state is PinState.LOCKED:
        return LOCKED
    if today > pin.expires_on:
        return _reject(
            RuleId.DO_05,
            ReasonCode.REJ_DO_PIN_EXPIRED,
            f"The PIN expired after {pin.expires_on}; request a new one.",
        )
    return None


LOCKED = _reject(
    RuleId.DO_05,
    ReasonCode.REJ_DO_PIN_LOCKED,
    "The PIN is locked after five wrong entries; request a new one.",
)


def redeem(pin: PinRecord, *, matches: bool) -> RedeemVerdict:
    """DO-05 once the PIN is compared: a match activates; a wrong entry counts, and the fifth
    locks the PIN."""
    if matches:
        return RedeemVerdict(Redemption.ACTIVATE, None, PinState.REDEEMED, pin.attempts)
    attempts = pin.attempts + 1
    if attempts >= MAX_ATTEMPTS:
        return RedeemVerdict(Redemption.LOCK, LOCKED, PinState.LOCKED, attempts)
    wrong = _reject(RuleId.DO_05, ReasonCode.REJ_DO_PIN_WRONG, "The PIN entered is not right.")
    return RedeemVerdict(Redemption.WRONG, wrong, PinState.ISSUED, attempts)


@dataclass(frozen=True)
class Official:
    """A Designated Official of a business, as intake keeps them."""

    official_id: str
    active: bool
    activated_at: dt.datetime
    deactivated_at: dt.datetime | None = None  # as read back, once inactive
    deactivated_by: str | None = None  # an official id, or `operator:<name>`


def may_deactivate(acting: Official | None, target: Official | None) -> Rejection | None:
    """DO-07: another active Designated Official of the business deactivates an active one."""
    if acting is None or not acting.active:
        return NOT_OFFICIAL
    if target is None or not target.active or target.official_id == acting.official_id:
        return _reject(
            RuleId.DO_07,
            ReasonCode.REJ_DO_NOT_OFFICIAL,
            "The person named is not another active Designated Official of the business.",
        )
    return None
