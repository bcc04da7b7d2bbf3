"""Intake's Designated Official acts (DO-01 … DO-07): a PIN request, its redemption, an
authorized user added or removed, a Designated Official deactivated (by another one, or by an
operator on `caf.officials.v1`).

Each act is decided from the business's records (`IntakeStore`), the requester's verified
identity assertion (AU-02: `nonce` = the message id; who they are is the assertion's issuer and
subject, never a TIN) and the pure rules of `services.intake.officials`. It ends in exactly one
event on `caf.events.v1` keyed by the business's `taxpayer_ref`, plus, for an issued PIN, the
CP311 letter on `caf.notifications.v1`: the only place the PIN is ever written (the ledger keeps
that output sealed).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypedDict

from caf_runtime.clock import business_day
from caf_runtime.outputs import Output
from schemas import topics
from schemas.codes import Rejection
from schemas.entities import DeactivateOfficial
from schemas.errors import ContractError
from schemas.events import (
    DesignatedOfficialActivated,
    DesignatedOfficialDeactivated,
    DesignatedOfficialPinIssued,
    DesignatedOfficialRefused,
    EntityUserAdded,
    EntityUserRemoved,
    OfficialAct,
    Stage,
)
from schemas.ids import event_id, notification_id, official_id
from schemas.inbound import (
    DoDeactivation,
    DoPinRedeem,
    DoPinRequest,
    EntityUserChange,
    OfficialMessage,
    TaxpayerIdentity,
)
from schemas.notifications import Notification
from schemas.values import normalize_tin, tin_last4
from services.intake.identity import Asserted, AssertionFailed
from services.intake.officials import (
    MAX_ATTEMPTS,
    NOT_OFFICIAL,
    UNKNOWN_ENTITY,
    EntityView,
    Official,
    PinRecord,
    PinState,
    Redemption,
    assess_pin_request,
    may_deactivate,
    pin_expires_on,
    redeem,
    redeemable,
)
from services.intake.pins import PinVault, new_pin
from services.intake.store import IntakeStore

Assert = Callable[[str | None, str, dt.datetime], Awaitable[Asserted | AssertionFailed]]
CP311 = "cp311_designated_official_pin"
IRS_BUSINESS_PHONE = "800-829-4933"


@dataclass(frozen=True)
class ActDecision:
    """What an act decided: its outputs and the business's items written with them."""

    outputs: list[Output]
    writes: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Business:
    """The business an act names, as far as it could be read: its pseudonym, the last four
    digits of its EIN, and the entity record intake keeps (None: not known, DO-01)."""

    taxpayer_ref: str
    tin_last4: str
    entity: EntityView | None


def entity_digest(digest: Callable[[str], str], ein: str) -> str:
    """The keyed digest an entity record is kept under (never the EIN itself)."""
    return digest(f"entity:{ein}")


def readable_ein(entity: TaxpayerIdentity) -> str | None:
    if entity.tin_type != "EIN" or not entity.tin:
        return None
    try:
        return normalize_tin(entity.tin, "EIN")
    except ContractError:
        return None


class OfficialDesk:
    """Decides the Designated Official acts; `assert_identity` is intake's AU-02 check."""

    def __init__(self, store: IntakeStore, vault: PinVault, assert_identity: Assert) -> None:
        self._store = store
        self._vault = vault
        self._assert = assert_identity

    async def decide(
        self, message: OfficialMessage, business: Business, now: dt.datetime
    ) -> ActDecision:
        act = _ACTS[type(message)]
        entity = business.entity
        verdict = await self._assert(message.identity_assertion, message.message_id, now)
        if isinstance(verdict, AssertionFailed):
            return _refused(message.message_id, business, act, now, verdict.rejection())
        who = official_id(verdict.issuer, verdict.subject)
        if entity is None or not entity.active:
            return _refused(message.message_id, business, act, now, UNKNOWN_ENTITY, who=who)
        if isinstance(message, DoPinRequest):
            return await self._pin_request(message, business, entity, who, now)
        if isinstance(message, DoPinRedeem):
            return await self._redeem(message, business, entity, who, now)
        acting = await self._store.official(entity.entity_id, who)
        if acting is None or not acting.active:
            return _refused(message.message_id, business, act, now, NOT_OFFICIAL, who=who)
        if isinstance(message, EntityUserChange):
            return self._user_change(message, business, entity, acting, now)
        return await self._deactivation(message, business, entity, acting, now)

    async def _pin_request(
        self,
        message: DoPinRequest,
        business: Business,
        entity: EntityView,
        who: str,
        now: dt.datetime,
    ) -> ActDecision:
        today = business_day(now)
        previous = await self._store.pin(entity.entity_id, who)
        rejection = assess_pin_request(
            entity,
            title=message.title,
            attests_authority=message.attests_authority,
            previous=previous,
            today=today,
        )
        if rejection is not None:
            return _refused(message.message_id, business, "pin_request", now, rejection, who=who)
        pin = new_pin()
        pin_hash = await self._vault.hash(entity.entity_id, who, pin)
        if previous is None:
            record = PinRecord(
                official_id=who,
                pin_hash=pin_hash,
                requested_at=now,
                notice_on=today,
                expires_on=pin_expires_on(today),
                attempts=0,
                state=PinState.ISSUED,
                version=1,
                message_id=message.message_id,
            )
        else:
            record = previous.replaced_by(
                pin_hash=pin_hash, requested_at=now, notice_on=today, message_id=message.message_id
            )
        issued = DesignatedOfficialPinIssued(
            **_about("DesignatedOfficialPinIssued", message.message_id, business, now),
            type="DesignatedOfficialPinIssued",
            official_id=who,
            notice_on=record.notice_on,
            expires_on=record.expires_on,
            attempts_allowed=MAX_ATTEMPTS,
        )
        letter = cp311_letter(issued, business, pin)
        return ActDecision(
            [_output(issued, business), letter], (self._store.pin_put(entity.entity_id, record),)
        )

    async def _redeem(
        self,
        message: DoPinRedeem,
        business: Business,
        entity: EntityView,
        who: str,
        now: dt.datetime,
    ) -> ActDecision:
        pin = await self._store.pin(entity.entity_id, who)
        refusal = redeemable(entity, pin, business_day(now))
        if refusal is not None or pin is None:
            return _refused(
                message.message_id, business, "pin_redeem", now, refusal or UNKNOWN_ENTITY, who=who
            )
        entered = self._vault.open(message.sealed_pin)
        matches = entered is not None and await self._vault.matches(
            pin.pin_hash, entity.entity_id, who, entered
        )
        verdict = redeem(pin, matches=matches)
        changed = dataclasses.replace(
            pin, state=verdict.state, attempts=verdict.attempts, version=pin.version + 1
        )
        writes: list[Any] = [self._store.pin_put(entity.entity_id, changed)]
        if verdict.outcome is Redemption.ACTIVATE:
            official = Official(who, active=True, activated_at=now)
            writes.append(self._store.official_put(entity.entity_id, official, at=now))
            event = DesignatedOfficialActivated(
                **_about("DesignatedOfficialActivated", message.message_id, business, now),
                type="DesignatedOfficialActivated",
                official_id=who,
            )
            return ActDecision([_output(event, business)], tuple(writes))
        assert verdict.rejection is not None  # a wrong entry is refused
        refused = _refused(
            message.message_id,
            business,
            "pin_redeem",
            now,
            verdict.rejection,
            who=who,
            attempts_left=verdict.attempts_left,
        )
        return ActDecision(refused.outputs, tuple(writes))

    def _user_change(
        self,
        message: EntityUserChange,
        business: Business,
        entity: EntityView,
        acting: Official,
        now: dt.datetime,
    ) -> ActDecision:
        user = official_id(message.user.issuer, message.user.subject)
        add = message.action == "add"
        write = self._store.user_write(
            entity.entity_id, user, add=add, by=acting.official_id, at=now
        )
        event: EntityUserAdded | EntityUserRemoved
        if add:
            event = EntityUserAdded(
                **_about("EntityUserAdded", message.message_id, business, now),
                type="EntityUserAdded",
                user_id=user,
                by_official_id=acting.official_id,
            )
        else:
            event = EntityUserRemoved(
                **_about("EntityUserRemoved", message.message_id, business, now),
                type="EntityUserRemoved",
                user_id=user,
                by_official_id=acting.official_id,
            )
        return ActDecision([_output(event, business)], (write,))

    async def _deactivation(
        self,
        message: DoDeactivation,
        business: Business,
        entity: EntityView,
        acting: Official,
        now: dt.datetime,
    ) -> ActDecision:
        named = official_id(message.official.issuer, message.official.subject)
        target = await self._store.official(entity.entity_id, named)
        rejection = may_deactivate(acting, target)
        if rejection is not None or target is None:
            return _refused(
                message.message_id,
                business,
                "deactivation",
                now,
                rejection or NOT_OFFICIAL,
                who=acting.official_id,
            )
        return self.deactivated(
            message.message_id, business, target, now, by_official=acting.official_id
        )

    def deactivated(
        self,
        message_id: str,
        business: Business,
        target: Official,
        now: dt.datetime,
        *,
        by_official: str | None = None,
        operator: str | None = None,
    ) -> ActDecision:
        """DO-07: `target` deactivated by another Designated Official or by an operator."""
        assert business.entity is not None
        inactive = dataclasses.replace(target, active=False)
        by = by_official or f"operator:{operator}"
        write = self._store.official_put(business.entity.entity_id, inactive, by=by, at=now)
        event = DesignatedOfficialDeactivated(
            **_about("DesignatedOfficialDeactivated", message_id, business, now),
            type="DesignatedOfficialDeactivated",
            official_id=target.official_id,
            by="official" if by_official else "operator",
            by_official_id=by_official,
        )
        return ActDecision([_output(event, business)], (write,))

    async def operator_deactivation(
        self, command: DeactivateOfficial, now: dt.datetime
    ) -> ActDecision:
        """DO-07 by an operator (`cafctl officials deactivate`, audited there): the named
        Designated Official, if active, is deactivated; otherwise nothing changes."""
        entity = await self._store.entity_by_id(command.entity_id)
        if entity is None:
            return ActDecision([])
        business = Business(entity.taxpayer_ref, entity.tin_last4, entity)
        target = await self._store.official(entity.entity_id, command.official_id)
        if target is None or not target.active:
            return ActDecision([])
        return self.deactivated(
            command.command_id, business, target, now, operator=command.operator
        )


_ACTS: dict[type[OfficialMessage], OfficialAct] = {
    DoPinRequest: "pin_request",
    DoPinRedeem: "pin_redeem",
    EntityUserChange: "user_change",
    DoDeactivation: "deactivation",
}


class _About(TypedDict):
    """What every event of a Designated Official act says of it: the business (by its
    pseudonym), the message (also the grant id: no grant is concerned), when."""

    event_id: str
    occurred_at: dt.datetime
    taxpayer_ref: str
    tin_last4: str
    form: None
    message_id: str
    grant_id: str
    stage: Stage


def _about(name: str, message_id: str, business: Business, now: dt.datetime) -> _About:
    return _About(
        event_id=event_id(name, message_id, message_id),
        occurred_at=now,
        taxpayer_ref=business.taxpayer_ref,
        tin_last4=business.tin_last4,
        form=None,
        message_id=message_id,
        grant_id=message_id,
        stage="intake",
    )


def _output(event: Any, business: Business) -> Output:
    return Output.of(topics.EVENTS, business.taxpayer_ref, event)


def _refused(
    message_id: str,
    business: Business,
    act: OfficialAct,
    now: dt.datetime,
    rejection: Rejection,
    *,
    who: str | None = None,
    attempts_left: int | None = None,
) -> ActDecision:
    event = DesignatedOfficialRefused(
        **_about("DesignatedOfficialRefused", message_id, business, now),
        type="DesignatedOfficialRefused",
        act=act,
        official_id=who,
        attempts_left=attempts_left,
        reason_code=rejection.code,
        reason=rejection.reason,
        rule_id=rejection.rule,
    )
    return ActDecision([_output(event, business)])


def cp311_letter(issued: DesignatedOfficialPinIssued, business: Business, pin: str) -> Output:
    """DO-04: the CP311 notice, mailed to the business's address of record (the letter shop
    addresses a `mail` notification by its `recipient_ref` from the address of record; a
    request carries no address). The only output that holds the PIN: marked secret."""
    letter = Notification(
        notification_id=notification_id(issued.event_id, "taxpayer", business.taxpayer_ref),
        event_id=issued.event_id,
        recipient="taxpayer",
        recipient_ref=business.taxpayer_ref,
        template=CP311,
        channel="mail",
        created_at=issued.occurred_at,
        subject="CP311: your Designated Official PIN",
        body=(
            f"Someone asked to become the Designated Official of the business with EIN ending "
            f"{business.tin_last4} in Business Tax Account on {issued.notice_on}. Their "
            f"one-time PIN is {pin}. Only that person can use it, once, for this business, "
            f"until {issued.expires_on}; it locks after {MAX_ATTEMPTS} wrong entries. If nobody "
            f"at the business asked for it, call {IRS_BUSINESS_PHONE}."
        ),
    )
    return dataclasses.replace(
        Output.of(topics.NOTIFICATIONS, business.taxpayer_ref, letter), secret=True
    )


def business_of(
    entity: TaxpayerIdentity,
    *,
    ref: Callable[[str], str],
    message_ref: str,
    view: EntityView | None,
) -> Business:
    """The business an act names: by its EIN's pseudonym, or by the message's when the EIN
    cannot be read (then it is unknown, DO-01)."""
    ein = readable_ein(entity)
    if ein is None:
        return Business(message_ref, "", None)
    return Business(ref(ein), tin_last4(ein), view)
