"""Monitor handlers (docs/rules.md §13).

Consumes `caf.events.v1` (group `caf-monitor`): grants posted or held for velocity, refusals
for a name mismatch or a number not in good standing, revocations and withdrawals, CAF numbers
assigned. Counts them per CAF number and raises `CafMisuseSuspected` on `caf.events.v1` (MN-01
… MN-05, once per number, rule and New York day). Consumes `caf.statements.v1` (group
`caf-monitor-statements`): a statement run sends each practitioner with active grants the list
of them on `caf.notifications.v1` (MN-07). Undecodable records go to `caf.monitor.dlq.v1`.
"""

from __future__ import annotations

import functools
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aiokafka import ConsumerRecord
from faststream.kafka import KafkaBroker

from caf_runtime.clock import BUSINESS_ZONE, Clock, business_day
from caf_runtime.guard import Guard
from caf_runtime.ledger import handle_once
from caf_runtime.outputs import Output, Publish, publish_all
from caf_runtime.timers import Firing, Kind, Timer, TimerKinds
from caf_runtime.topology import REDELIVERY_SUFFIX, STATEMENTS_SUFFIX
from schemas import topics
from schemas.codec import decode_event, encode
from schemas.codes import ReasonCode
from schemas.events import (
    AuthorizationHeld,
    AuthorizationNotProcessed,
    AuthorizationPosted,
    AuthorizationRejected,
    AuthorizationRevoked,
    AuthorizationWithdrawn,
    CafNumberAssigned,
    Event,
)
from schemas.monitoring import StatementRun
from services.monitor.config import MonitorSettings
from services.monitor.counting import counts_of, spell_after
from services.monitor.metrics import STATEMENTS, SUSPECTED
from services.monitor.outcomes import misuse_event
from services.monitor.rules import Limits, Suspicion, suspicions
from services.monitor.statements import reminder, statement_pages
from services.monitor.store import ActiveGrant, Delta, Meta, MonitorStore, StatementRunDue

log = logging.getLogger(__name__)

REFUSALS = frozenset({ReasonCode.REJ_REP_NAME_MISMATCH, ReasonCode.REJ_REP_NOT_GOOD_STANDING})
YOUNG = timedelta(days=30)  # MN-04: a revocation of a grant younger than this counts
# Suspicions are raised only from events this recent: a replay of old history (a new monitor
# reading the outcome stream from its start) counts it but does not alert on the past.
RECENT = timedelta(hours=48)


@dataclass
class Decided:
    """What one event changes and raises."""

    outputs: list[Output] = field(default_factory=list)
    changes: list[Any] = field(default_factory=list)
    raised: list[Suspicion] = field(default_factory=list)


def _counted(event: Event) -> bool:
    """Whether the monitor has anything to count or keep of the event (the rest it skips
    without a ledger record)."""
    if isinstance(event, AuthorizationHeld):
        return event.reason_code == ReasonCode.HOLD_VELOCITY
    if isinstance(event, AuthorizationRejected | AuthorizationNotProcessed):
        return event.reason_code in REFUSALS
    return isinstance(
        event,
        AuthorizationPosted | AuthorizationRevoked | AuthorizationWithdrawn | CafNumberAssigned,
    )


def _matters(matters: list[Any]) -> list[dict[str, Any]]:
    return [m.model_dump(mode="json") for m in matters]


class MonitorHandler:
    """Counts per CAF number; raises suspicions; sends statements."""

    def __init__(
        self, store: MonitorStore, publish: Publish, clock: Clock, settings: MonitorSettings
    ) -> None:
        self._store = store
        self._publish = publish
        self._clock = clock
        self._limits: Limits = settings.limits()
        self._remind_after = timedelta(days=settings.remind_after_days)
        self._statement_day = settings.statement_day
        self.timer_kinds = TimerKinds(Kind(StatementRunDue, self._run_statements))

    async def on_event(self, record: ConsumerRecord[bytes, bytes]) -> None:
        event = decode_event(record.value or b"")
        if event.caf_number is None or not _counted(event):
            return
        caf_number = event.caf_number

        async def decide_and_record() -> list[Output] | None:
            decided = await self._decide(event, caf_number)
            if not decided.changes and not decided.outputs:
                return []
            if not await self._store.record(event.event_id, decided.outputs, decided.changes):
                return None
            for found in decided.raised:
                SUSPECTED.labels(rule=str(found.rule)).inc()
                log.warning(
                    "CAF number misuse suspected",
                    extra={"caf_number": caf_number, "rule": str(found.rule)},
                )
            return decided.outputs

        await handle_once(
            self._store.ledger, event.event_id, decide_and_record, self._publish, decide_first=True
        )

    async def _decide(self, event: Event, caf_number: str) -> Decided:
        at = event.occurred_at
        decided = Decided()
        if isinstance(event, CafNumberAssigned):
            decided.changes.append(self._store.spell(caf_number, Meta(assigned_at=at)))
            return decided
        delta = await self._delta(event, caf_number, decided)
        if delta is None:
            return decided
        snapshot = await self._store.snapshot(caf_number, at)
        meta = spell_after(snapshot.meta, delta)
        if delta.grants:
            decided.changes.append(self._store.spell(caf_number, meta))
        decided.changes.extend(self._store.counted(caf_number, delta))
        counts = counts_of(snapshot, delta, meta)
        day = business_day(at).isoformat()
        if self._clock.now() - at > RECENT:
            return decided
        for found in suspicions(counts, self._limits):
            if await self._store.case_raised(caf_number, day, str(found.rule)):
                continue
            suspected = misuse_event(event, caf_number, found, day, counts)
            decided.outputs.append(Output.of(topics.EVENTS, event.taxpayer_ref, suspected))
            decided.changes.append(
                self._store.case(caf_number, day, str(found.rule), encode(suspected))
            )
            decided.raised.append(found)
        return decided

    async def _delta(self, event: Event, caf_number: str, decided: Decided) -> Delta | None:
        """What the event adds to the number's counts (None: nothing), and the change to its
        active grants."""
        at = event.occurred_at
        is_8821 = int(event.form == "8821")
        if isinstance(event, AuthorizationPosted):
            grant = ActiveGrant(
                caf_number,
                event.grant_id,
                event.tin_last4,
                event.form or "",
                _matters(event.tax_matters),
                event.posted_at,
            )
            decided.changes.extend(self._store.activated(grant))
            if await self._store.counted_when_held(caf_number, event.grant_id):
                return Delta(at)  # counted once already, when the velocity rule held it
            return Delta(at, grants=1, form_8821=is_8821, taxpayer_ref=event.taxpayer_ref)
        if isinstance(event, AuthorizationHeld) and event.reason_code == ReasonCode.HOLD_VELOCITY:
            decided.changes.append(self._store.held_counted(caf_number, event.grant_id, at))
            return Delta(at, grants=1, form_8821=is_8821, taxpayer_ref=event.taxpayer_ref)
        if isinstance(event, AuthorizationRejected | AuthorizationNotProcessed):
            return Delta(at, refusals=1) if event.reason_code in REFUSALS else None
        if isinstance(event, AuthorizationRevoked | AuthorizationWithdrawn):
            grant_now = await self._store.active(caf_number, event.grant_id)
            if grant_now is None:
                return None
            decided.changes.extend(
                self._store.narrowed(grant_now, _matters(event.remaining_matters))
            )
            by_taxpayer = (
                isinstance(event, AuthorizationRevoked)
                and event.revoked_by == ReasonCode.REV_BY_TAXPAYER
                and at - grant_now.since <= YOUNG
            )
            return Delta(at, taxpayer_revocations=1) if by_taxpayer else None
        return None

    # MN-07 ------------------------------------------------------------------------------------

    async def on_statement_run(self, record: ConsumerRecord[bytes, bytes]) -> None:
        """A statement run: each practitioner's statement once (its own ledger record)."""
        run = StatementRun.model_validate_json(record.value or b"")
        numbers = run.caf_numbers or await self._store.practitioners()
        for caf_number in numbers:
            await self._statement_once(run.command_id, caf_number)
        log.info("statement run done", extra={"run": run.command_id, "practitioners": len(numbers)})

    async def _statement_once(self, run_id: str, caf_number: str) -> None:
        """One practitioner's statement, each page (and the reminder) under its own ledger key,
        so no record outgrows an item however many grants the number holds."""
        for output in await self._statement(run_id, caf_number):
            key = f"{run_id}#{output.key}#{json.loads(output.value)['event_id']}"

            async def decide_and_record(
                output: Output = output, key: str = key
            ) -> list[Output] | None:
                if not await self._store.record(key, [output], []):
                    return None
                STATEMENTS.inc()
                return [output]

            await handle_once(
                self._store.ledger, key, decide_and_record, self._publish, decide_first=True
            )

    async def _statement(self, run_id: str, caf_number: str) -> list[Output]:
        grants = await self._store.active_grants(caf_number)
        now = self._clock.now()
        notes = statement_pages(run_id, caf_number, grants, now)
        snapshot = await self._store.snapshot(caf_number, now)
        reminded = reminder(
            run_id,
            caf_number,
            grants,
            last_grant_at=snapshot.meta.last_grant_at,
            now=now,
            remind_after=self._remind_after,
        )
        if reminded is not None:
            notes.append(reminded)
        return [Output.of(topics.NOTIFICATIONS, n.recipient_ref, n) for n in notes]

    def next_run(self, after: datetime) -> Timer:
        """MN-07: the yearly run's timer, on the configured New York day after `after`."""
        local = after.astimezone(BUSINESS_ZONE)
        due = self._run_day(local.year)
        if due <= local:
            due = self._run_day(local.year + 1)
        return Timer(f"{StatementRunDue.kind}#{due.year}", due, StatementRunDue(year=due.year))

    def _run_day(self, year: int) -> datetime:
        month, day = (int(part) for part in self._statement_day.split("-"))
        return datetime(year, month, day, tzinfo=BUSINESS_ZONE)

    async def fire(self, timer: Timer) -> Firing:
        return await self.timer_kinds.fire(timer)

    async def _run_statements(self, due: StatementRunDue) -> Firing:
        """MN-07: the yearly run starts (a StatementRun to ourselves) and the next is set."""
        run = StatementRun(
            command_id=f"annual-{due.year}",
            requested_at=self._clock.now(),
            requested_by="monitor",
        )
        following = self.next_run(self._run_day(due.year) + timedelta(days=1))
        return Firing(
            [Output.of(topics.STATEMENTS, run.command_id, run)],
            [self._store.timers.schedule(following, once=False)],
        )

    async def schedule_first_run(self) -> None:
        """At start: the next yearly run is scheduled (once: an existing timer stays)."""
        await self._store.schedule_once(self.next_run(self._clock.now()))


def register(
    broker: KafkaBroker, settings: MonitorSettings, store: MonitorStore, clock: Clock
) -> MonitorHandler:
    """Attach the monitor's subscribers to `broker`."""
    publish = functools.partial(publish_all, broker, settings)
    handler = MonitorHandler(store, publish, clock, settings)
    guard = Guard(
        broker,
        settings,
        retry_topic=topics.MONITOR_RETRY,
        dlq_topic=topics.MONITOR_DLQ,
        dependencies=store.ping,
    )
    guard.subscribe(topics.EVENTS, settings.group_id, handler.on_event)
    guard.subscribe(
        topics.STATEMENTS, settings.group_id + STATEMENTS_SUFFIX, handler.on_statement_run
    )
    guard.subscribe_retries(settings.group_id + REDELIVERY_SUFFIX)
    return handler
