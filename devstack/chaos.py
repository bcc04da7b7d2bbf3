"""`make chaos`: the pipeline under faults, then reconciliation and a replay check.

    python -m devstack.chaos [--messages 20000] [--rate 150] [--interval 3-7] [--no-baseline]
                             [--json] [--keep]

On a stack of its own (`.devstack/chaos`, free ports, so the development stack is untouched) it:
1. baseline: publishes the workload (`devstack.workload`) with no faults and times it;
2. faults: publishes the same mix again (new prefix: fresh topics and tables) while a controller,
   every 3-7 s, kills one service process with SIGKILL and restarts it, pauses one with SIGSTOP
   for longer than the consumer session timeout while a second replica takes its partitions
   (a zombie that comes back), scales one service to 3 processes and back, and restarts the Kafka
   broker and DynamoDB Local once each and the object store of signature evidence twice (their
   data stays on disk; e-signed grants wait for the store, ES-03);
3. waits until every expected outcome is there or nothing moves for a quiet period, and
   reconciles (lost, duplicates, duplicate notifications, dead letters);
4. replay check: stops the poster and the notifier, resets their consumer groups to the earliest
   offsets, starts them again and lets them process everything a second time: the CAF table must
   not change and no new notification may appear (the notifier keeps no state, so the replay
   publishes every notification again, each with the id it had: those are counted as
   `republished`, and any id not there before as `new_notifications`).

Exit status 0 only when lost = duplicates = duplicate notifications = 0 and the replay changed
nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import random
import shutil
import sys
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata

from caf_runtime import topology
from caf_runtime.broker import client_options
from caf_runtime.config import ServiceSettings
from caf_runtime.dynamo import DynamoTable
from caf_runtime.offsets import topic_partitions
from cafctl.reconcile import Report, expected, reconcile_deployment
from cafctl.topics import follow, read_topic
from devstack.dynamodb import DynamoDBLocal
from devstack.errors import StackError
from devstack.fleet import SERVICES, Fleet, Replica, free_ports
from devstack.kafka import KafkaNode
from devstack.objectstore import ObjectStore, Ports
from devstack.stack import PROJECT_ROOT, Stack
from devstack.workload import Workload, signed_inbound, signed_registry
from schemas import topics
from schemas.events import TERMINAL_TYPES

log = logging.getLogger("chaos")
# When (share of the expected run time) each infrastructure restart happens; the object store of
# signature evidence twice
INFRASTRUCTURE_FAULTS = (
    (0.2, "objectstore#1"),
    (0.3, "kafka"),
    (0.6, "dynamodb"),
    (0.75, "objectstore#2"),
)
PRODUCER_START_LIMIT_S = 120.0  # longer than a broker restart may take (its start waits 90 s)
SESSION_TIMEOUT_S = 10.0  # FastStream's consumer default (session_timeout_ms=10000)
QUIET_S = 180.0  # longer than the last retry round (120 s): a late outcome is not a lost one
REPLAY_GROUPS = {"caf_poster": topology.POSTER, "notifier": topology.NOTIFIER}


@dataclass
class Phase:
    name: str
    messages: int = 0
    grants_expected: int = 0
    published_s: float = 0.0
    settled_s: float = 0.0
    faults: Counter[str] = field(default_factory=Counter)
    recover_s: list[float] = field(default_factory=list)
    report: dict[str, Any] = field(default_factory=dict)
    replay: dict[str, int] = field(default_factory=dict)

    @property
    def throughput(self) -> float:
        return self.messages / self.settled_s if self.settled_s else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "faults": dict(self.faults),
            "throughput_msgs_per_s": round(self.throughput, 1),
            "worst_recover_s": round(max(self.recover_s), 1) if self.recover_s else None,
        }


class Run:
    """One pipeline (prefix) on the chaos stack: its services, its load, its observations."""

    def __init__(self, stack: Stack, phase: Phase, workload: Workload, logs: Path) -> None:
        self.stack = stack
        self.phase = phase
        self.workload = workload
        prefix = f"chaos-{uuid.uuid4().hex[:6]}-{phase.name}-"
        env = stack.environment()
        self.settings = stack.settings(prefix)
        self.fleet = Fleet(
            {
                **os.environ,
                **env,
                "CAF_TOPIC_PREFIX": prefix,
                "CAF_TABLE_PREFIX": prefix,
                "CAF_LOG_LEVEL": "WARNING",
                "CAF_GRACEFUL_TIMEOUT_S": "10",
                # ES-03: grants waiting for the object store try again within seconds, not the
                # production 5 s / 30 s / 120 s, so the run settles while it is timed
                "CAF_POSTER_EVIDENCE_RETRY_S": "[1, 2, 5]",
                "CAF_POSTER_EVIDENCE_RETRY_EVERY_S": "5",
            },
            logs / phase.name,
            identity=stack.service_identity,
        )
        self.terminal: set[str] = set()
        self.last_progress = time.monotonic()

    async def prepare(self) -> None:
        await self.stack.prepare(self.settings)
        await asyncio.gather(*(self.fleet.start(service) for service in SERVICES))

    async def publish(self, rate: float) -> None:
        """The registry, then the workload at `rate` messages per second; a send the broker
        refused (it may be restarting) is sent again, by a new producer: a repeated message id
        is dropped (IN-02)."""
        producer = await self._producer()
        try:
            for practitioner in self.workload.registry:
                record = signed_registry(practitioner, self.stack.keys)
                await producer.send(
                    self.settings.topic(record.topic),
                    record.value,
                    key=record.key,
                    headers=record.headers,
                )
            await producer.flush()
            started = time.monotonic()
            batch = max(1, int(rate / 10))
            messages = self.workload.messages
            for offset in range(0, len(messages), batch):
                chunk = messages[offset : offset + batch]
                producer = await self._send_all(producer, chunk)
                self.phase.messages += len(chunk)
                behind = started + (offset + batch) / rate - time.monotonic()
                if behind > 0:
                    await asyncio.sleep(behind)
            self.phase.published_s = time.monotonic() - started
        finally:
            await producer.stop()

    async def _producer(self) -> AIOKafkaProducer:
        """A started producer. While the broker is down (the fault run restarts it), starting
        fails: try again every second, for as long as a broker start may take."""
        deadline = time.monotonic() + PRODUCER_START_LIMIT_S
        while True:
            producer = AIOKafkaProducer(
                **client_options(self.settings),
                enable_idempotence=True,
                acks="all",
                linger_ms=5,
                request_timeout_ms=15000,
            )
            try:
                await producer.start()
            except KafkaError:
                with contextlib.suppress(KafkaError):
                    await producer.stop()
                if time.monotonic() > deadline:
                    raise
                log.warning("broker not answering; starting the load's producer again")
                await asyncio.sleep(1.0)
                continue
            return producer

    async def _send_all(self, producer: AIOKafkaProducer, chunk: list[Any]) -> AIOKafkaProducer:
        """Send `chunk`; the producer that sent it. After a failure the producer is replaced
        before sending again: an idempotent producer whose batch failed may be left with a gap
        in its sequence numbers, which the broker refuses for good (OutOfOrderSequence)."""
        topic = self.settings.topic(topics.INBOUND)
        pending = list(chunk)
        while pending:
            failed: list[Any] = []
            try:
                sends = []
                for message in pending:
                    record = signed_inbound(message, self.stack.keys)
                    sends.append(
                        await producer.send(
                            topic, record.value, key=record.key, headers=record.headers
                        )
                    )
                results = await asyncio.gather(*sends, return_exceptions=True)
                failed = [
                    m for m, r in zip(pending, results, strict=True) if isinstance(r, Exception)
                ]
            except KafkaError:
                failed = pending
            pending = failed
            if pending:
                log.warning("broker refused %d sends; sending them again", len(pending))
                with contextlib.suppress(KafkaError):
                    await producer.stop()
                await asyncio.sleep(1.0)
                producer = await self._producer()
        return producer

    async def watch(self) -> None:
        """Follow the outcome stream: which grants and removals have their terminal event."""

        def seen(record: ConsumerRecord[bytes, bytes]) -> None:
            event = json.loads(record.value or b"{}")
            if event.get("type") in TERMINAL_TYPES:
                self.terminal.add(event["grant_id"])
            self.terminal.add(f"msg:{event.get('message_id')}")
            self.last_progress = time.monotonic()

        await follow(client_options(self.settings), self.settings.topic(topics.EVENTS), seen)

    def outstanding(self, wanted: set[str]) -> int:
        return len(wanted - self.terminal)

    def wanted(self) -> set[str]:
        """Grants and withdrawal/revocation message ids that must reach an outcome."""
        records = [
            _Record(m.body if isinstance(m.body, bytes) else json.dumps(m.body).encode())
            for m in self.workload.messages
        ]
        grants, removals = expected(records)
        self.phase.grants_expected = len(grants)
        return grants | {f"msg:{m}" for m in removals}

    async def settle(self, wanted: set[str], started: float, limit_s: float) -> None:
        """Wait for every wanted outcome, or for nothing to move for a quiet period."""
        while self.outstanding(wanted):
            idle = time.monotonic() - self.last_progress
            if idle > QUIET_S or time.monotonic() - started > limit_s:
                log.warning("%d outcomes still missing; reconciling", self.outstanding(wanted))
                break
            await asyncio.sleep(0.5)
        self.phase.settled_s = time.monotonic() - started


@dataclass(frozen=True)
class _Record:
    """Just enough of a ConsumerRecord for `cafctl.reconcile.expected`."""

    value: bytes


class Controller:
    """Injects faults at random intervals until told to stop."""

    def __init__(self, run: Run, interval: tuple[float, float], seed: int) -> None:
        self.run = run
        self.fleet = run.fleet
        self.interval = interval
        self.random = random.Random(seed)  # noqa: S311 - fault schedule, not a secret
        self.busy: set[str] = set()
        self.background: set[asyncio.Task[None]] = set()
        self.infrastructure_done: set[str] = set()

    async def run_until(self, done: asyncio.Event, expected_s: float) -> None:
        started = time.monotonic()
        while not done.is_set():
            await asyncio.sleep(self.random.uniform(*self.interval))
            if done.is_set():
                break
            elapsed = (time.monotonic() - started) / max(expected_s, 1.0)
            due = [f for at, f in INFRASTRUCTURE_FAULTS if elapsed > at]
            pending = [f for f in due if f not in self.infrastructure_done]
            if pending:
                await self._restart_infrastructure(pending[0])
            else:
                await self._service_fault()
        await asyncio.gather(*self.background)
        for _, missing in INFRASTRUCTURE_FAULTS:
            if missing not in self.infrastructure_done:
                await self._restart_infrastructure(missing)

    async def _service_fault(self) -> None:
        free = [s for s in SERVICES if s not in self.busy]
        if not free:
            return
        service = self.random.choice(free)
        kind = self.random.choices(("kill", "pause", "scale"), (3, 1, 1))[0]
        self.run.phase.faults[kind] += 1
        if kind == "kill":
            await self._kill(service)
        else:
            self.busy.add(service)
            fault = self._pause(service) if kind == "pause" else self._scale(service)
            task = asyncio.create_task(fault)
            self.background.add(task)
            task.add_done_callback(self.background.discard)

    async def _kill(self, service: str) -> None:
        victim = self.random.choice(self.fleet.of(service))
        killed_at = time.monotonic()
        self.busy.add(service)  # until its replacement handles messages
        await self.fleet.kill(victim)
        log.info("killed %s", victim.name)
        task = asyncio.create_task(self._restart(service, killed_at))
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def _start(self, service: str, tries: int = 5) -> Replica:
        """Start a replica as an orchestrator would: one that exits while starting (it could not
        reach the broker during a broker restart, say) is started again, a few seconds later."""
        for attempt in range(1, tries + 1):
            try:
                return await self.fleet.start(service)
            except StackError:
                if attempt == tries:
                    raise
                log.info("%s exited while starting; starting it again", service)
                await asyncio.sleep(3)
        raise AssertionError("unreachable")

    async def _restart(self, service: str, killed_at: float) -> None:
        try:
            replica = await self._start(service)
            handled = await asyncio.to_thread(replica.handled)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:  # recovered: it handles messages again
                if await asyncio.to_thread(replica.handled) > handled:
                    break
                await asyncio.sleep(0.1)
            self.run.phase.recover_s.append(time.monotonic() - killed_at)
        finally:
            self.busy.discard(service)

    async def _pause(self, service: str) -> None:
        try:
            zombie = self.random.choice(self.fleet.of(service))
            helper = await self._start(service)
            self.fleet.pause(zombie)
            log.info("paused %s", zombie.name)
            await asyncio.sleep(SESSION_TIMEOUT_S + 5)
            self.fleet.resume(zombie)
            await asyncio.sleep(3)
            await self.fleet.terminate(helper)
        finally:
            self.busy.discard(service)

    async def _scale(self, service: str) -> None:
        try:
            extra = await asyncio.gather(self._start(service), self._start(service))
            log.info("scaled %s to %d", service, len(self.fleet.of(service)))
            await asyncio.sleep(self.random.uniform(8, 15))
            await asyncio.gather(*(self.fleet.terminate(r) for r in extra))
        finally:
            self.busy.discard(service)

    async def _restart_infrastructure(self, fault: str) -> None:
        self.infrastructure_done.add(fault)
        which = fault.partition("#")[0]
        self.run.phase.faults[f"{which}_restart"] += 1
        stack = self.run.stack
        components: dict[str, KafkaNode | DynamoDBLocal | ObjectStore] = {
            "kafka": stack.kafka,
            "dynamodb": stack.dynamodb,
            "objectstore": stack.objectstore,
        }
        component = components[which]
        started = time.monotonic()
        await asyncio.to_thread(component.stop)
        await asyncio.to_thread(component.start)
        log.info("%s restarted in %.1fs", which, time.monotonic() - started)


async def _replay_check(run: Run) -> dict[str, int]:
    """Reprocess everything in the poster and the notifier: nothing may change."""
    before_caf = await _caf_snapshot(run.settings)
    before_notes = await _notification_ids(run.settings)
    before_end = await _end_offset_sum(run.settings, topics.NOTIFICATIONS)
    for service in REPLAY_GROUPS:
        for replica in run.fleet.of(service):
            await run.fleet.terminate(replica)
    for group in REPLAY_GROUPS.values():
        for topic in group.topics:
            await _reset_to_earliest(run.settings, group.name, topic)
    for service in REPLAY_GROUPS:
        await run.fleet.start(service)
    for group in REPLAY_GROUPS.values():
        for topic in group.topics:
            await _until_caught_up(run.settings, group.name, topic)
    await asyncio.sleep(5)  # anything re-published would be on the topic by now
    after_caf = await _caf_snapshot(run.settings)
    changed = len(set(before_caf.items()) ^ set(after_caf.items()))
    return {
        "caf_items": len(after_caf),
        "caf_changes": changed,
        "new_notifications": len(await _notification_ids(run.settings) - before_notes),
        "republished": await _end_offset_sum(run.settings, topics.NOTIFICATIONS) - before_end,
    }


async def _notification_ids(settings: ServiceSettings) -> set[str]:
    """The distinct notification ids on the notifications topic (NO-08: one per event,
    recipient and channel, however often it was published)."""
    records = await read_topic(client_options(settings), settings.topic(topics.NOTIFICATIONS))
    return {str(json.loads(record.value or b"{}").get("notification_id")) for record in records}


async def _caf_snapshot(settings: ServiceSettings) -> dict[str, str]:
    items: dict[str, str] = {}
    async with DynamoTable(settings, "caf") as caf:
        paginator = caf.client.get_paginator("scan")
        async for page in paginator.paginate(TableName=caf.name, ConsistentRead=True):
            for item in page.get("Items", []):
                key = f"{item['pk'].get('S')}|{item['sk'].get('S')}"
                items[key] = json.dumps(item, sort_keys=True, default=str)
    return items


async def _partitions(settings: ServiceSettings, topic: str) -> list[TopicPartition]:
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        return await topic_partitions(admin, settings.topic(topic))
    finally:
        await admin.close()


async def _end_offset_sum(settings: ServiceSettings, topic: str) -> int:
    partitions = await _partitions(settings, topic)
    consumer = AIOKafkaConsumer(**client_options(settings), enable_auto_commit=False)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(partitions)
        return sum(ends.values())
    finally:
        await consumer.stop()


async def _reset_to_earliest(settings: ServiceSettings, group: str, topic: str) -> None:
    partitions = await _partitions(settings, topic)
    consumer = AIOKafkaConsumer(
        **client_options(settings), group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign(partitions)
        starts = await consumer.beginning_offsets(partitions)
        await consumer.commit({tp: OffsetAndMetadata(starts[tp], "") for tp in partitions})
    finally:
        await consumer.stop()


async def _until_caught_up(
    settings: ServiceSettings, group: str, topic: str, limit_s: float = 900
) -> None:
    partitions = await _partitions(settings, topic)
    admin = AIOKafkaAdminClient(**client_options(settings))
    consumer = AIOKafkaConsumer(**client_options(settings), enable_auto_commit=False)
    await admin.start()
    await consumer.start()
    try:
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            ends = await consumer.end_offsets(partitions)
            committed = await admin.list_consumer_group_offsets(group, partitions=partitions)
            lag = sum(ends[tp] - (committed[tp].offset if tp in committed else 0) for tp in ends)
            if lag <= 0:
                return
            await asyncio.sleep(1)
        log.warning("%s did not catch up on %s", group, topic)
    finally:
        await consumer.stop()
        await admin.close()


async def run_phase(
    stack: Stack, name: str, args: argparse.Namespace, logs: Path, *, faults: bool
) -> Phase:
    phase = Phase(name)
    workload = Workload(args.messages, seed=args.seed)
    run = Run(stack, phase, workload, logs)
    await run.prepare()
    wanted = run.wanted()
    watcher = asyncio.create_task(run.watch())
    started = time.monotonic()
    try:
        done = asyncio.Event()
        controller = Controller(run, args.interval, args.seed)
        chaos = (
            asyncio.create_task(controller.run_until(done, args.messages / args.rate))
            if faults
            else None
        )
        await run.publish(args.rate)
        await run.settle(wanted, started, args.limit)  # faults go on until everything is in
        if chaos is not None:
            done.set()
            await chaos
            await _ensure_one_each(run.fleet)
            await run.settle(wanted, started, args.limit)
    except BaseException:
        await run.fleet.stop_all()  # a run that fails leaves no service process behind
        raise
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
    report: Report = await reconcile_deployment(run.settings, client_options(run.settings))
    phase.report = {
        key: (len(value) if isinstance(value, list) else value)
        for key, value in report.as_dict().items()
    }
    phase.report["lost_ids"] = (report.lost + report.removals_lost)[:10]
    if faults and args.replay_check:
        phase.replay = await _replay_check(run)
    codes = await run.fleet.stop_all()
    phase.report["unclean_exits"] = sum(1 for code in codes.values() if code not in (0, None))
    return phase


async def _ensure_one_each(fleet: Fleet) -> None:
    for service in SERVICES:
        alive: list[Replica] = fleet.of(service)
        for replica in alive:
            if replica.paused:
                fleet.resume(replica)
        if not alive:
            await fleet.start(service)


def _print(phases: list[Phase]) -> None:
    print(f"{'':28}" + "".join(f"{p.name:>14}" for p in phases))
    rows: list[tuple[str, Any]] = [
        ("messages", lambda p: p.messages),
        ("grants expected", lambda p: p.grants_expected),
        ("duration (s)", lambda p: f"{p.settled_s:.0f}"),
        ("throughput (msg/s)", lambda p: f"{p.throughput:.1f}"),
        ("faults injected", lambda p: sum(p.faults.values())),
        ("worst recovery after kill (s)", lambda p: p.summary()["worst_recover_s"] or "-"),
        ("lost", lambda p: p.report["lost"] + p.report["removals_lost"]),
        ("duplicates", lambda p: p.report["duplicated"] + p.report["caf_unexpected"]),
        ("duplicate notifications", lambda p: p.report["duplicate_notifications"]),
        ("dead letters", lambda p: p.report["dead_letters"]),
        ("grants with one outcome", lambda p: p.report["grants_ok"]),
    ]
    for label, value in rows:
        print(f"{label:<28}" + "".join(f"{value(p)!s:>14}" for p in phases))
    for phase in phases:
        if phase.faults:
            print(f"faults ({phase.name}): {dict(phase.faults)}")
        if phase.replay:
            print(f"replay check ({phase.name}): {phase.replay}")
    if len(phases) == 2 and phases[0].throughput:
        ratio = phases[1].throughput / phases[0].throughput
        print(f"throughput under faults / without: {ratio:.2f}")


def _interval(text: str) -> tuple[float, float]:
    low, _, high = text.partition("-")
    return float(low), float(high or low)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m devstack.chaos", description=__doc__)
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--rate", type=float, default=150.0, help="offered messages per second")
    parser.add_argument("--interval", type=_interval, default=(3.0, 7.0), help="seconds, a-b")
    parser.add_argument("--limit", type=float, default=3600.0, help="longest wait to settle (s)")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--no-baseline", dest="baseline", action="store_false")
    parser.add_argument("--no-faults", dest="faults", action="store_false")
    parser.add_argument("--no-replay-check", dest="replay_check", action="store_false")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--keep", action="store_true", help="leave the chaos stack running")
    return parser


def clean(phases: list[Phase]) -> bool:
    for phase in phases:
        report = phase.report
        if report["lost"] or report["removals_lost"] or report["duplicated"]:
            return False
        if report["caf_unexpected"] or report["caf_missing"] or report["duplicate_notifications"]:
            return False
        if phase.replay and (phase.replay["caf_changes"] or phase.replay["new_notifications"]):
            return False
    return True


async def _main(args: argparse.Namespace) -> int:
    for variable in ("KAFKA_BOOTSTRAP_SERVERS", "DYNAMODB_ENDPOINT", "S3_ENDPOINT"):
        os.environ.pop(variable, None)  # this run restarts its own broker, database and store
    root = Path(os.environ.get("CAF_CHAOS_DIR", PROJECT_ROOT / ".devstack" / "chaos"))
    kafka_port, controller_port, dynamodb_port, *s3_ports = free_ports(11)
    stack = Stack(root, kafka_port, controller_port, dynamodb_port, Ports(*s3_ports))
    if stack.kafka.process.pid() is None and stack.dynamodb.process.pid() is None:
        # topics, tables and evidence of past runs
        for leftover in (root / "kafka", root / "dynamodb", root / "objectstore"):
            shutil.rmtree(leftover, ignore_errors=True)
    logs = root / "logs" / time.strftime("%Y%m%d-%H%M%S")
    os.environ.update({k: v for k, v in stack.environment().items() if k.startswith("AWS_")})
    phases: list[Phase] = []
    try:
        # Inside the try: if Kafka fails to start, the DynamoDB Local started before it stops too.
        await asyncio.to_thread(stack.start_infrastructure)
        await stack.ensure_evidence_bucket()
        if args.baseline:
            phases.append(await run_phase(stack, "baseline", args, logs, faults=False))
        if args.faults:
            phases.append(await run_phase(stack, "faults", args, logs, faults=True))
    finally:
        if not args.keep:
            await asyncio.to_thread(stack.down)
    if args.json:
        print(json.dumps([p.summary() for p in phases], indent=2, default=str))
    else:
        _print(phases)
        print(f"service logs: {logs}")
    return 0 if clean(phases) else 2


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    sys.exit(asyncio.run(_main(_parser().parse_args())))


if __name__ == "__main__":
    main()
