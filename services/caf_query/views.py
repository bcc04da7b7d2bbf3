"""The read model of the CAF, as pure functions of the outcome stream (`caf.events.v1`).

One `GrantView` per grant: its story from pending to outcome to partly or fully revoked or
withdrawn, the units it covers now, and the offset of the last event applied. `apply` folds one
event into the view it concerns; applying an event at or below the view's offset changes nothing
(redelivery, a rebuild that meets events already applied), so the model is the same whether
built once or rebuilt from the earliest offset.

`check` answers the CAF's question: is this representative authorized for this taxpayer, this
kind of return, this period, and do they receive notices?
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from schemas.errors import ContractError
from schemas.matters import Unit, expand, matter_key

Status = Literal[
    "pending",
    "held",
    "active",
    "partly_revoked",
    "partly_withdrawn",
    "revoked",
    "withdrawn",
    "rejected",
    "not_processed",
    "declined",
    "expired",
]
IN_EFFECT: frozenset[Status] = frozenset({"active", "partly_revoked", "partly_withdrawn"})
# event type -> the status it leaves a grant in (revocations and withdrawals: see `apply`)
_STATUS: dict[str, Status] = {
    "AuthorizationPendingApproval": "pending",
    "AuthorizationHeld": "held",
    "AuthorizationPosted": "active",
    "AuthorizationRejected": "rejected",
    "AuthorizationNotProcessed": "not_processed",
    "AuthorizationDeclined": "declined",
    "AuthorizationExpired": "expired",
}
# events that are part of a grant's story (SLA alerts and number assignments are not)
STORY = frozenset({*_STATUS, "AuthorizationRevoked", "AuthorizationWithdrawn"})


@dataclass(frozen=True)
class Position:
    """Where an event sits in the outcome stream."""

    partition: int
    offset: int


@dataclass(frozen=True)
class Step:
    """One event of a grant's story."""

    type: str
    occurred_at: str
    reason_code: str | None = None


@dataclass(frozen=True)
class CoveredMatter:
    """A matter the grant covers now: its return family and period units (labels)."""

    tax_type: str
    form_number: str
    periods: tuple[str, ...]


@dataclass(frozen=True)
class EvidenceRef:
    """Where the evidence of one electronic signature of the grant's story is kept (ES-03,
    ES-04): the act it signed, the signer's role, the object's key and SHA-256."""

    role: str
    act: str
    key: str
    sha256: str
    retain_until: str


@dataclass(frozen=True)
class GrantView:
    """A grant as the read side knows it."""

    grant_id: str
    taxpayer_ref: str
    tin_last4: str | None
    form: str | None
    status: Status
    caf_number: str | None
    representative_name: str | None
    authorization_id: str | None
    request_id: str | None
    expires_on: str | None
    receive_notices: bool
    matters: tuple[CoveredMatter, ...]
    story: tuple[Step, ...]
    position: Position
    signatures: tuple[EvidenceRef, ...] = ()
    applied: tuple[str, ...] = ()  # the ids of the events in its story

    @property
    def in_effect(self) -> bool:
        return self.status in IN_EFFECT

    def units(self) -> frozenset[Unit]:
        """The units the grant covers now."""
        return frozenset(
            unit
            for matter in self.matters
            for unit in _units(matter_key(matter.tax_type, matter.form_number), matter.periods)
        )

    def to_document(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> GrantView:
        return cls(
            **{
                **document,
                "matters": tuple(
                    CoveredMatter(m["tax_type"], m["form_number"], tuple(m["periods"]))
                    for m in document["matters"]
                ),
                "story": tuple(Step(**step) for step in document["story"]),
                "position": Position(**document["position"]),
                "signatures": tuple(EvidenceRef(**s) for s in document.get("signatures", ())),
                "applied": tuple(document.get("applied", ())),
            }
        )


def _units(key: str, labels: Iterable[str]) -> tuple[Unit, ...]:
    units: list[Unit] = []
    for label in labels:
        try:
            units.extend(expand(key, label))
        except ContractError:
            continue  # a label this code cannot read covers nothing it can answer for
    return tuple(units)


def _matters(recorded: Iterable[dict[str, Any]]) -> tuple[CoveredMatter, ...]:
    return tuple(
        CoveredMatter(m["tax_type"], m["form_number"], tuple(m.get("periods", ())))
        for m in recorded
    )


def _applied(view: GrantView, event_id: object, at: Position) -> bool:
    """The record at `at` was applied (redelivered: not after the view's position), or the same
    event was, published again: a service that handles its input again publishes its recorded
    outputs, the same ids, later in the stream than events that came after them the first time.
    Applied twice, a posting published again after its revocation would put the grant back in
    effect."""
    seen = (at.partition, at.offset) <= (view.position.partition, view.position.offset)
    return seen or event_id in view.applied


def apply(view: GrantView | None, event: dict[str, Any], at: Position) -> GrantView | None:
    """The view after `event` (a decoded `caf.events.v1` value) at `at`; the view unchanged for
    an event already applied or not part of a grant's story. None when there is nothing to
    show (a story event for a grant never seen, that does not start one)."""
    kind = str(event.get("type"))
    if kind not in STORY:
        return view
    event_id = event.get("event_id")
    if view is not None and _applied(view, event_id, at):
        return view
    step = Step(kind, str(event.get("occurred_at")), event.get("reason_code"))
    if view is None:
        view = GrantView(
            grant_id=str(event["grant_id"]),
            taxpayer_ref=str(event["taxpayer_ref"]),
            tin_last4=event.get("tin_last4"),
            form=event.get("form"),
            status="pending",
            caf_number=event.get("caf_number"),
            representative_name=event.get("representative_name"),
            authorization_id=event.get("authorization_id"),
            request_id=event.get("request_id"),
            expires_on=event.get("expires_on"),
            receive_notices=False,
            matters=(),
            story=(),
            position=at,
        )
    changes: dict[str, Any] = {"story": (*view.story, step), "position": at}
    if isinstance(event_id, str):
        changes["applied"] = (*view.applied, event_id)
    for field in ("caf_number", "representative_name", "authorization_id", "request_id", "form"):
        if event.get(field) is not None:
            changes[field] = event[field]
    if kind in _STATUS:
        changes["status"] = _STATUS[kind]
        if kind == "AuthorizationPendingApproval":
            changes["expires_on"] = event.get("expires_on")
    refs = [EvidenceRef(**r) for r in event.get("signature_refs", ())]
    if refs:
        known = {r.key for r in view.signatures}
        changes["signatures"] = (*view.signatures, *(r for r in refs if r.key not in known))
    if kind == "AuthorizationPosted":
        changes["matters"] = _matters(event.get("tax_matters", []))
        changes["receive_notices"] = bool(event.get("receive_notices"))
    elif kind in ("AuthorizationRevoked", "AuthorizationWithdrawn"):
        remaining = _matters(event.get("remaining_matters", []))
        ended = "revoked" if kind == "AuthorizationRevoked" else "withdrawn"
        changes["matters"] = remaining
        changes["status"] = f"partly_{ended}" if remaining else ended
        if not remaining:
            changes["receive_notices"] = False
    return dataclasses.replace(view, **changes)


Access = Literal["POA", "TIA", "none"]


@dataclass(frozen=True)
class Answer:
    """The check's answer, and which grant gave it."""

    authorized: Access
    receives_notices: bool
    grant_id: str | None
    authorization_id: str | None
    as_of: tuple[Position, ...]


FORM_ACCESS: dict[str, Access] = {"2848": "POA", "8821": "TIA"}


def check(
    grants: Iterable[GrantView], caf_number: str, tax_type: str, form_number: str, period: str
) -> Answer:
    """Is `caf_number` authorized for this taxpayer (the `grants` are theirs), this return and
    this period? A power of attorney answers before an information authorization; among those,
    one that receives notices first. `ContractError` for a period that is not one."""
    wanted = set(expand(matter_key(tax_type, form_number), period))
    grants = list(grants)
    covering = [
        grant
        for grant in grants
        if grant.in_effect and grant.caf_number == caf_number and wanted <= grant.units()
    ]
    covering.sort(key=lambda g: (g.form != "2848", not g.receive_notices, g.grant_id))
    as_of = tuple(sorted({g.position for g in grants}, key=lambda p: (p.partition, p.offset)))
    if not covering:
        return Answer(
            "none", receives_notices=False, grant_id=None, authorization_id=None, as_of=as_of
        )
    best = covering[0]
    return Answer(
        FORM_ACCESS.get(best.form or "", "none"),
        receives_notices=best.receive_notices,
        grant_id=best.grant_id,
        authorization_id=best.authorization_id,
        as_of=as_of,
    )
