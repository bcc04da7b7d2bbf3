"""Reconciliation: does every input have its outcome, exactly once? (docs/contract.md invariant)

Reads `caf.inbound.v1`, `caf.events.v1`, `caf.notifications.v1`, the dead-letter topics and the
CAF table, and counts, for the grants the inputs imply:
- ok: exactly one distinct terminal event (a re-published event carries the same id);
- waiting for the taxpayer: a Tax Pro Account request announced pending, or a protected
  taxpayer's grant held for their confirmation (PT-01), not decided yet;
- held for review: a grant VA-07 held (CN-09) that no operator decided yet;
- lost: none otherwise; duplicated: more than one distinct terminal event;
- withdrawals and revocations: at least one Withdrawn/Revoked event, or one Rejected;
- the CAF: every posted grant stored once, nothing stored that was not posted;
- notifications: more than one distinct notification for one (event, recipient, channel).
Repeated message ids count once (IN-02). Undecodable inputs are dead letters.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from aiokafka import ConsumerRecord

from caf_runtime.config import ServiceSettings
from caf_runtime.dynamo import DynamoTable
from cafctl.topics import read_topic
from schemas import topics
from schemas.codec import decode_inbound
from schemas.errors import ContractError
from schemas.events import TERMINAL_TYPES
from schemas.ids import submission_grant_id
from schemas.inbound import Revocation, Submission, TpaRequest, Withdrawal

REMOVAL_OUTCOMES = frozenset(
    {"AuthorizationWithdrawn", "AuthorizationRevoked", "AuthorizationRejected"}
)


@dataclass
class Report:
    inputs: int = 0
    dead_letters: int = 0
    grants_expected: int = 0
    grants_ok: int = 0
    lost: list[str] = field(default_factory=list)
    waiting_for_taxpayer: list[str] = field(default_factory=list)
    held_for_review: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    removals_expected: int = 0
    removals_ok: int = 0
    removals_lost: list[str] = field(default_factory=list)
    caf_missing: list[str] = field(default_factory=list)
    caf_unexpected: list[str] = field(default_factory=list)
    duplicate_notifications: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (
            self.lost
            or self.duplicated
            or self.removals_lost
            or self.caf_missing
            or self.caf_unexpected
            or self.duplicate_notifications
        )

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "clean": self.clean}


def _json(records: Iterable[ConsumerRecord[bytes, bytes]]) -> list[dict[str, Any]]:
    documents = []
    for record in records:
        try:
            documents.append(json.loads(record.value or b"null"))
        except ValueError:
            continue
    return [d for d in documents if isinstance(d, dict)]


def expected(inbound: list[ConsumerRecord[bytes, bytes]]) -> tuple[set[str], set[str]]:
    """(grant ids, withdrawal/revocation message ids) the decodable inputs imply (IN-02: a
    repeated message id counts once)."""
    grants: set[str] = set()
    removals: set[str] = set()
    for record in inbound:
        try:
            message = decode_inbound(record.value or b"")
        except ContractError:
            continue
        if isinstance(message, Submission):
            grants.update(
                submission_grant_id(message.message_id, i)
                for i in range(len(message.representatives))
            )
        elif isinstance(message, TpaRequest):
            grants.add(message.request_id)
        elif isinstance(message, Withdrawal | Revocation):
            removals.add(message.message_id)
    return grants, removals


def reconcile(
    inbound: list[ConsumerRecord[bytes, bytes]],
    events: list[ConsumerRecord[bytes, bytes]],
    notifications: list[ConsumerRecord[bytes, bytes]],
    dead_letters: int,
    stored_grants: list[str],
) -> Report:
    """Pure: the report for what was read."""
    report = Report(inputs=len(inbound), dead_letters=dead_letters)
    grants, removals = expected(inbound)
    terminal: dict[str, set[str]] = defaultdict(set)
    removal_outcomes: dict[str, set[str]] = defaultdict(set)
    pending: set[str] = set()
    held: set[str] = set()
    for event in _json(events):
        if event.get("type") == "AuthorizationPendingApproval":
            pending.add(event["grant_id"])
        if event.get("type") == "AuthorizationHeld":
            if event.get("reason_code") == "HOLD-TAXPAYER-CONFIRMATION":
                pending.add(event["grant_id"])  # PT-01: the taxpayer's answer, like a TPA
            else:
                held.add(event["grant_id"])
        if event.get("type") in TERMINAL_TYPES:
            terminal[event["grant_id"]].add(event["event_id"])
        if event.get("type") in REMOVAL_OUTCOMES:
            removal_outcomes[event["message_id"]].add(event["type"])
    report.grants_expected = len(grants)
    for grant_id in sorted(grants):
        count = len(terminal.get(grant_id, ()))
        if count == 1:
            report.grants_ok += 1
        elif count == 0 and grant_id in held:
            report.held_for_review.append(grant_id)
        elif count == 0 and grant_id in pending:
            report.waiting_for_taxpayer.append(grant_id)
        else:
            (report.lost if count == 0 else report.duplicated).append(grant_id)
    report.removals_expected = len(removals)
    report.removals_lost = sorted(m for m in removals if not removal_outcomes.get(m))
    report.removals_ok = len(removals) - len(report.removals_lost)
    posted = {e["grant_id"] for e in _json(events) if e.get("type") == "AuthorizationPosted"}
    stored = Counter(stored_grants)
    report.caf_missing = sorted(posted - set(stored))
    report.caf_unexpected = sorted(g for g, n in stored.items() if g not in posted or n > 1)
    report.duplicate_notifications = duplicate_notifications(notifications)
    return report


def duplicate_notifications(notifications: list[ConsumerRecord[bytes, bytes]]) -> list[str]:
    """(event, recipient, channel) with more than one distinct notification (NO-08; a notice
    that goes both by mail and online, PT-01, is one per channel)."""
    sent: dict[tuple[str, str, str, str], set[str]] = defaultdict(set)
    for note in _json(notifications):
        where = (note["event_id"], note["recipient"], note["recipient_ref"], note["channel"])
        sent[where].add(note["notification_id"])
    return sorted(
        f"{event}/{recipient}/{channel}"
        for (event, recipient, _, channel), ids in sent.items()
        if len(ids) > 1
    )


async def reconcile_deployment(settings: ServiceSettings, options: dict[str, Any]) -> Report:
    """Read the topics and the CAF table of the deployment `settings` names; reconcile them."""
    inbound = await read_topic(options, settings.topic(topics.INBOUND))
    events = await read_topic(options, settings.topic(topics.EVENTS))
    notifications = await read_topic(options, settings.topic(topics.NOTIFICATIONS))
    dead = 0
    for topic in topics.DEAD_LETTER_TOPICS:
        dead += len(await read_topic(options, settings.topic(topic)))
    return reconcile(inbound, events, notifications, dead, await stored_grants(settings))


async def stored_grants(settings: ServiceSettings) -> list[str]:
    """The grant id of every grant item in the CAF table (a grant stored twice shows twice)."""
    stored: list[str] = []
    async with DynamoTable(settings, "caf") as caf:
        paginator = caf.client.get_paginator("scan")
        async for page in paginator.paginate(
            TableName=caf.name,
            FilterExpression="begins_with(sk, :grant)",
            ExpressionAttributeValues={":grant": {"S": "GRANT#"}},
            ProjectionExpression="sk",
        ):
            stored.extend(
                str(item["sk"].get("S", "")).removeprefix("GRANT#")
                for item in page.get("Items", [])
            )
    return stored
