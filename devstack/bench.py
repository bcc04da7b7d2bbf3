"""`make bench`: the pipeline measured side by side with this machine's own ceiling.

    python -m devstack.bench [--burst 3000] [--duration 10] [--loads 50,200,500] [--cap 60]
                             [--no-profile]
                             [--output BENCHMARKS.md]

On the local stack (started if needed; the development services are left alone but compete for
the CPU if running), in one run:

1. ceiling: four relay processes (`devstack.relay`: consume, produce unchanged, no logic, the
   services' client library and settings) chained like the four services, fed messages of the
   workload's size;
2. pipeline: the four services with their rules and DynamoDB Local, fed the realistic mix of
   `devstack.workload`.

For each: sustained throughput (a burst, then the rate at which outcomes arrive while the backlog
drains: the point where lag stops growing), latency from publish to the terminal record (p50,
p95, p99; broker timestamps of the inbound message and of the outcome) of a lone message (ten
sent one at a time, each after the previous one's outcomes) and at fixed offered loads,
and CPU seconds per 1,000 grants of each process (services or relays, the broker, DynamoDB Local)
during the burst. Then, unless --no-profile, the services are sampled with py-spy during a burst
of their own (so no figure is measured under the profiler). Last, the relay chain once per
compression codec, and one poster decision over a CAF of 200 grants x 200 units
(`devstack.decision_bench`). Writes the tables and the machine's facts to BENCHMARKS.md, and
deletes the topics and tables it created.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import platform
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import psutil
from aiokafka import AIOKafkaProducer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient

from caf_runtime import topology
from caf_runtime.broker import client_options, producer_options
from caf_runtime.config import ServiceSettings
from caf_runtime.dynamo import dynamodb_client
from caf_runtime.feed_barrier import FeedBarrier
from caf_runtime.provision import ensure_topics
from caf_runtime.topology import TABLES, TOPICS, TopicSpec
from cafctl.topics import follow
from devstack import auth_bench, bench_targets, decision_bench, jars, query_bench
from devstack.access import PROVISIONER
from devstack.charts import draw
from devstack.dynamo_floor import FloorFigures, measure_floor
from devstack.figures import cpu_seconds, percentiles, progress
from devstack.fleet import SERVICES, Fleet, metric_samples
from devstack.keys import DevKeys
from devstack.profile import RATE_HZ, Profile, Profiler, shares
from devstack.stack import PROJECT_ROOT, Stack
from devstack.workload import Message, Workload, signed_inbound, signed_registry
from schemas import topics
from schemas.events import TERMINAL_TYPES

CODECS = ("none", "gzip", "snappy", "lz4", "zstd")
LONE_MESSAGES = 10  # sent one at a time, for "a lone message" latency
HOPS = ("bench.hop0", "bench.hop1", "bench.hop2", "bench.hop3", "bench.hop4")


@dataclass
class Measurement:
    """Figures of one system (ceiling or pipeline)."""

    name: str
    grants_per_message: float = 1.0
    sustained: float = 0.0
    latency: dict[int, dict[str, Any]] = field(default_factory=dict)
    # publish → terminal record of a message sent alone (the previous one's outcomes arrived)
    lone: list[float] = field(default_factory=list)
    cpu_per_1000: dict[str, float] = field(default_factory=dict)
    # DynamoDB requests per grant, by process and operation (`Query`, `TransactWriteItems`...),
    # and the items they carried
    dynamodb_per_grant: dict[str, dict[str, DynamoUse]] = field(default_factory=dict)
    profile: dict[str, Profile] = field(default_factory=dict)


@dataclass(frozen=True)
class DynamoUse:
    """One operation's DynamoDB requests, and the items they carried, per grant."""

    requests: float
    items: float


def _dynamodb_counts(ports: dict[str, int]) -> dict[str, dict[str, tuple[float, float]]]:
    """Each process's DynamoDB (requests, items) so far, by operation, from its /metrics."""
    counts: dict[str, dict[str, tuple[float, float]]] = {}
    for name, port in ports.items():
        requests = metric_samples(port, "caf_dynamodb_requests_total")
        items = metric_samples(port, "caf_dynamodb_items_total")
        counts[name] = {
            labels.split('"')[1]: (value, items.get(labels, 0.0))
            for labels, value in requests.items()
        }
    return counts


def _dynamodb_use(
    before: dict[str, dict[str, tuple[float, float]]],
    after: dict[str, dict[str, tuple[float, float]]],
    grants: int,
) -> dict[str, dict[str, DynamoUse]]:
    use: dict[str, dict[str, DynamoUse]] = {}
    for name, operations in after.items():
        for operation, (requests, items) in sorted(operations.items()):
            was = before.get(name, {}).get(operation, (0.0, 0.0))
            use.setdefault(name, {})[operation] = DynamoUse(
                round((requests - was[0]) / grants, 2), round((items - was[1]) / grants, 2)
            )
    return use


class Probe:
    """Follows the terminal topic: arrival time (broker timestamp, ms) of each awaited key."""

    def __init__(
        self, settings: ServiceSettings, topic: str, keys_of: Callable[[bytes], list[str]]
    ):
        self.settings = settings
        self.topic = topic
        self.keys_of = keys_of
        self.arrived: dict[str, int] = {}

    async def run(self) -> None:
        def seen(record: ConsumerRecord[bytes, bytes]) -> None:
            for key in self.keys_of(record.value or b""):
                self.arrived.setdefault(key, record.timestamp)

        await follow(client_options(self.settings), self.settings.topic(self.topic), seen)

    async def wait_for(self, keys: set[str], limit_s: float, what: str = "") -> bool:
        deadline = time.monotonic() + limit_s
        told = time.monotonic()
        while not keys <= self.arrived.keys():
            if time.monotonic() > deadline:
                return False
            if what and time.monotonic() - told >= 5:
                told = time.monotonic()
                done = len(keys & self.arrived.keys())
                progress(f"{what}: {done}/{len(keys)} outcomes")
            await asyncio.sleep(0.2)
        return True


class System:
    """Something to feed: where inputs go, how outcomes are recognised, which pids to meter."""

    def __init__(self, name: str, settings: ServiceSettings, logs: Path, keys: DevKeys) -> None:
        self.name = name
        self.settings = settings
        self.logs = logs
        self.keys = keys
        self.pids: dict[str, int] = {}
        self.metric_ports: dict[str, int] = {}  # processes whose /metrics count DynamoDB calls

    async def publish(
        self, producer: AIOKafkaProducer, messages: list[Message], rate: float | None
    ) -> dict[str, int]:
        """Send `messages` (at `rate` per second, or as fast as possible); the broker timestamp
        of each message's expected outcomes, by key."""
        sent: dict[str, int] = {}
        started = time.monotonic()
        pending = []
        for index, message in enumerate(messages):
            # signed as a portal signs (AU-01), for the relay too: the same bytes either way
            record = signed_inbound(message, self.keys)
            pending.append(
                (
                    message,
                    await producer.send(
                        self.settings.topic(self.inbound),
                        record.value,
                        key=record.key,
                        headers=record.headers,
                    ),
                )
            )
            if rate is not None:
                behind = started + (index + 1) / rate - time.monotonic()
                if behind > 0:
                    await asyncio.sleep(behind)
        for message, future in pending:
            metadata = await future
            for key in self.expected(message):
                sent[key] = metadata.timestamp
        return sent

    inbound = topics.INBOUND

    def expected(self, message: Message) -> list[str]:
        raise NotImplementedError

    def outcome_keys(self, value: bytes) -> list[str]:
        raise NotImplementedError


class Relay(System):
    inbound = HOPS[0]

    def expected(self, message: Message) -> list[str]:
        return [str(message.key)]

    def outcome_keys(self, value: bytes) -> list[str]:
        return [value[-36:].decode(errors="replace")]


class Pipeline(System):
    def expected(self, message: Message) -> list[str]:
        """Grants of clean submissions: publish → terminal event is one grant's latency."""
        body = message.body
        if not isinstance(body, dict) or message.kind not in ("form", "form_rejected"):
            return []
        return [f"{body['message_id']}:{i}" for i in range(len(body["representatives"]))]

    def outcome_keys(self, value: bytes) -> list[str]:
        event = json.loads(value)
        return [event["grant_id"]] if event.get("type") in TERMINAL_TYPES else []


def _relay_messages(workload: Workload, count: int) -> list[Message]:
    """Messages of the workload's size, each ending with its own 36-character id."""
    sizes = [
        len(m.body if isinstance(m.body, bytes) else json.dumps(m.body)) for m in workload.messages
    ]
    size = int(statistics.mean(sizes))
    messages = []
    for _ in range(count):
        key = str(uuid.uuid4())
        messages.append(Message(key, b"x" * max(size - 36, 0) + key.encode(), "relay"))
    return messages


async def _lone_messages(
    system: System,
    producer: AIOKafkaProducer,
    probe: Probe,
    make_messages: Callable[[int, int], list[Message]],
    cap: float,
) -> list[float]:
    """Publish → terminal record (s) of each grant of `LONE_MESSAGES` messages, each sent once
    the previous one's outcomes arrived, on an otherwise idle system."""
    progress(f"{system.name}: {LONE_MESSAGES} lone messages")
    latencies: list[float] = []
    for n in range(LONE_MESSAGES):
        expected = await system.publish(producer, make_messages(1, 1000 + n), None)
        await probe.wait_for(set(expected), cap, f"{system.name} lone message")
        latencies.extend(
            (probe.arrived[k] - sent) / 1000 for k, sent in expected.items() if k in probe.arrived
        )
    return latencies


async def measure(
    system: System, make_messages: Callable[[int, int], list[Message]], args: argparse.Namespace
) -> Measurement:
    result = Measurement(system.name)
    probe = Probe(
        system.settings,
        topics.EVENTS if isinstance(system, Pipeline) else HOPS[-1],
        system.outcome_keys,
    )
    watcher = asyncio.create_task(probe.run())
    producer = AIOKafkaProducer(
        **client_options(system.settings), enable_idempotence=True, acks="all", linger_ms=5
    )
    await producer.start()
    try:
        # warm-up: every process has joined its group and answers
        progress(f"{system.name}: warm-up")
        warm = make_messages(20, 0)
        expected = await system.publish(producer, warm, None)
        await probe.wait_for(set(expected), 120, f"{system.name} warm-up")
        # sustained: a burst, then the drain rate between 10% and 90% of the outcomes
        burst = make_messages(args.burst, 1)
        cpu_before = {name: cpu_seconds(pid) for name, pid in system.pids.items()}
        calls_before = await asyncio.to_thread(_dynamodb_counts, system.metric_ports)
        progress(f"{system.name}: burst of {len(burst)} messages")
        expected = await system.publish(producer, burst, None)
        await probe.wait_for(set(expected), args.cap * 10, f"{system.name} burst")
        cpu_after = {name: cpu_seconds(pid) for name, pid in system.pids.items()}
        calls_after = await asyncio.to_thread(_dynamodb_counts, system.metric_ports)
        arrivals = sorted(probe.arrived[k] for k in expected if k in probe.arrived)
        low, high = arrivals[len(arrivals) // 10], arrivals[len(arrivals) * 9 // 10]
        span_s = max((high - low) / 1000, 1e-3)
        result.sustained = (len(arrivals) * 0.8) / span_s
        grants = len(expected)
        result.grants_per_message = grants / len(burst)
        result.cpu_per_1000 = {
            name: round((cpu_after[name] - cpu_before[name]) * 1000 / grants, 2)
            for name in system.pids
        }
        result.dynamodb_per_grant = _dynamodb_use(calls_before, calls_after, grants)
        if args.profile and isinstance(system, Pipeline):
            # a burst of its own: py-spy takes CPU too, so no figure above is measured under it
            services = {name: pid for name, pid in system.pids.items() if name in SERVICES}
            profiler = Profiler(system.logs / "profile", services)
            await profiler.start()
            progress(f"{system.name}: profiled burst")
            profiled = await system.publish(producer, make_messages(args.burst // 3, 99), None)
            await probe.wait_for(set(profiled), args.cap * 10, f"{system.name} profiled burst")
            result.profile = await profiler.stop()
        result.lone = await _lone_messages(system, producer, probe, make_messages, args.cap)
        # latency at fixed offered loads (grants per second)
        for load in args.loads:
            rate = load / result.grants_per_message
            messages = make_messages(max(int(rate * args.duration), 1), 2 + load)
            progress(f"{system.name}: {load} grants/s for {args.duration:.0f} s")
            expected = await system.publish(producer, messages, rate)
            complete = await probe.wait_for(set(expected), args.cap, f"{system.name} at {load}/s")
            latencies = [
                (probe.arrived[k] - sent) / 1000
                for k, sent in expected.items()
                if k in probe.arrived
            ]
            result.latency[load] = {
                **percentiles(latencies),
                "grants": len(expected),
                "complete": complete,
                "missing": len(expected) - len(latencies),
            }
            if not complete:
                await probe.wait_for(set(expected), args.cap * 10, "draining")  # before the next
    finally:
        await producer.stop()
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
    return result


async def _prepare_hops(settings: ServiceSettings, specs: tuple[TopicSpec, ...]) -> None:
    """The relays' hop topics (the relays run as the provisioning super user)."""
    await ensure_topics(
        settings.kafka_bootstrap_servers,
        specs,
        prefix=settings.topic_prefix,
        client_options=client_options(settings),
    )


async def _discard(settings: ServiceSettings, specs: tuple[TopicSpec, ...]) -> None:
    """Delete a measurement's topics and tables, so runs do not pile up on the dev stack."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        await admin.delete_topics([settings.topic(spec.name) for spec in specs])
    finally:
        await admin.close()
    async with dynamodb_client(settings) as client:
        for table in TABLES:
            with contextlib.suppress(client.exceptions.ResourceNotFoundException):
                # a measurement's own tables: protection off first, deliberately
                name = settings.table(table.name)
                await client.update_table(TableName=name, DeletionProtectionEnabled=False)
                await client.delete_table(TableName=name)


def _settings(stack: Stack, prefix: str) -> tuple[ServiceSettings, dict[str, str]]:
    env = {
        **os.environ,
        **stack.environment(PROVISIONER),  # relays; each service runs as its own principal
        "CAF_TOPIC_PREFIX": prefix,
        "CAF_TABLE_PREFIX": prefix,
        "CAF_LOG_LEVEL": "WARNING",
    }
    return stack.settings(prefix), env


@contextlib.asynccontextmanager
async def _relays(
    stack: Stack, settings: ServiceSettings, env: dict[str, str], logs: Path, name: str = "ceiling"
) -> AsyncIterator[Relay]:
    """Four relay processes chained over the hop topics; the topics are deleted afterwards."""
    specs = tuple(TopicSpec(hop) for hop in HOPS)
    await _prepare_hops(settings, specs)
    processes = []
    try:
        for source, target in itertools.pairwise(HOPS):
            with (logs / f"relay-{name}-{source}.log").open("ab") as log:
                processes.append(
                    await asyncio.create_subprocess_exec(
                        sys.executable,
                        "-m",
                        "devstack.relay",
                        source,
                        target,
                        env=env,
                        stdout=log,
                        stderr=log,
                    )
                )
        relay = Relay(f"{name} (relay)", settings, logs, stack.keys)
        relay.pids = {f"relay{i}": p.pid for i, p in enumerate(processes)}
        relay.pids |= _infrastructure_pids(stack)
        yield relay
    finally:
        for process in processes:
            process.terminate()
            await process.wait()
        await _discard(settings, specs)


def _infrastructure_pids(stack: Stack) -> dict[str, int]:
    pids = {}
    for name, process in (
        ("kafka", stack.kafka.process),
        ("dynamodb", stack.dynamodb.process),
        ("objectstore", stack.objectstore.process),
    ):
        pid = process.pid()
        if pid is not None:
            pids[name] = pid
    return pids


@dataclass
class Report:
    """Everything one `make bench` run measured."""

    measurements: list[Measurement]
    paper: Measurement  # the pipeline again, every form signed on paper: no evidence (ES-01)
    floor: FloorFigures
    codecs: list[CodecFigures]
    decision: decision_bench.DecisionFigures
    authenticity: auth_bench.AuthFigures
    checks: query_bench.CheckFigures


async def run(args: argparse.Namespace) -> Report:
    stack = Stack()
    os.environ.update({k: v for k, v in stack.environment().items() if k.startswith("AWS_")})
    await asyncio.to_thread(stack.start_infrastructure)
    workload = Workload(max(args.burst, 2000), seed=5, practitioners=_registry_size(args))
    logs = PROJECT_ROOT / ".devstack" / "bench" / time.strftime("%Y%m%d-%H%M%S")
    results = []

    # ceiling: four relays
    settings, env = _settings(stack, f"bench-{uuid.uuid4().hex[:6]}-")
    logs.mkdir(parents=True, exist_ok=True)
    async with _relays(stack, settings, env, logs) as relay:
        results.append(await measure(relay, lambda n, _: _relay_messages(workload, n), args))

    # pipeline: the four services
    settings, env = _settings(stack, f"bench-{uuid.uuid4().hex[:6]}-")
    await stack.prepare(settings)  # topics, tables, ACLs of the prefix
    fleet = Fleet(env, logs, identity=stack.service_identity)
    replicas = await asyncio.gather(*(fleet.start(service) for service in SERVICES))
    pipeline = Pipeline("pipeline", settings, logs, stack.keys)
    pipeline.pids = {r.service: r.process.pid for r in replicas} | _infrastructure_pids(stack)
    pipeline.metric_ports = {r.service: r.port for r in replicas}
    await _publish_registry(stack, settings, workload.registry)
    forms = [m for m in workload.messages if m.kind == "form"]
    rotation = _Rotation(workload.registry)

    def fresh(count: int, seed: int, *, method: str = "electronic") -> list[Message]:
        """`count` clean forms of the mix (fresh ids, so each is new work), signed with
        `method` by the taxpayer and every representative."""
        chosen = []
        for index in range(count):
            body = dict(forms[(index + seed * 7) % len(forms)].body)  # type: ignore[arg-type]
            body["message_id"] = str(uuid.uuid4())
            taxpayer = dict(body["taxpayer"])
            taxpayer["tin"] = (
                f"{100 + index % 500:03d}-{10 + seed % 89:02d}-{1000 + index // 500:04d}"
            )
            taxpayer["signature"] = {**taxpayer["signature"], "method": method}
            body["taxpayer"] = taxpayer
            body["representatives"] = [
                {**r, "signature": {**r["signature"], "method": method}} if "signature" in r else r
                for r in map(rotation.next, body["representatives"])
            ]
            chosen.append(Message(body["message_id"], body, "form"))
        return chosen

    def on_paper(count: int, seed: int) -> list[Message]:
        return fresh(count, seed + 1000, method="wet")

    try:
        results.append(await measure(pipeline, fresh, args))
        # the same mix signed on paper: what signature evidence (ES-01 … ES-03) costs per grant
        paper_run = Pipeline("pipeline, paper forms", settings, logs, stack.keys)
        paper_run.pids, paper_run.metric_ports = pipeline.pids, pipeline.metric_ports
        paper = await measure(
            paper_run, on_paper, argparse.Namespace(**{**vars(args), "profile": False})
        )
    finally:
        await fleet.stop_all()
        await _discard(settings, TOPICS)
    progress("DynamoDB floor: the pipeline's DynamoDB work per grant in the fewest calls")
    floor = await _floor(stack, settings, results[-1], args.burst)
    codecs = await measure_codecs(stack, workload, logs, args.codec_messages)
    checks = await query_bench.measure(stack, logs)
    # measure() runs its own event loop: in a thread, away from this one
    authenticity = await asyncio.to_thread(auth_bench.measure)
    return Report(results, paper, floor, codecs, decision_bench.measure(), authenticity, checks)


# Each CAF number named at most this often in a whole run (every load, both signing methods):
# under VA-07's 25 distinct taxpayers an hour, so the velocity check runs as in production.
_NAMED_PER_NUMBER = 20


def _registry_size(args: argparse.Namespace) -> int:
    """Practitioners enough that no CAF number (and no first-time representative's PTIN) reaches
    VA-07's limit in the run: about two registered representatives per form, over the forms the
    e-signed and paper runs publish (warm-up, lone, burst, profiled burst, the loads)."""
    forms = 2 * (40 + args.burst * 4 // 3 + sum(args.loads) * args.duration)
    return max(2000, int(forms * 2 / _NAMED_PER_NUMBER))


@dataclass
class _Rotation:
    """Spreads the representatives of the bench's copied forms over the registry: each
    registered one becomes the next practitioner in turn, each first-time one the next PTIN of a
    pool as large, so one form never names one twice and no number is named past VA-07's limit."""

    registry: list[dict[str, Any]]
    _registered: Iterator[int] = field(default_factory=itertools.count)
    _newcomers: Iterator[int] = field(default_factory=itertools.count)

    def next(self, rep: dict[str, Any]) -> dict[str, Any]:
        if rep.get("caf_number"):
            chosen = self.registry[next(self._registered) % len(self.registry)]
            return rep | {"caf_number": chosen["caf_number"], "name": chosen["name"]}
        if rep.get("ptin"):
            n = next(self._newcomers) % len(self.registry)
            return rep | {"ptin": f"P9{n:07d}", "name": f"New Representative {n}"}
        return rep


async def _publish_registry(
    stack: Stack, settings: ServiceSettings, registry: list[dict[str, Any]]
) -> None:
    """Publish the workload's registry and wait until the validator's view holds all of it:
    before it does, a grant naming a number not yet applied would wait for it (or be judged
    without it)."""
    producer = AIOKafkaProducer(**client_options(settings), acks="all")
    await producer.start()
    for practitioner in registry:
        record = signed_registry(practitioner, stack.keys)
        await producer.send(
            settings.topic(record.topic), record.value, key=record.key, headers=record.headers
        )
    await producer.stop()
    progress(f"pipeline: the validator applies a registry of {len(registry)}")
    async with FeedBarrier(
        client_options(settings),
        settings.topic(topics.PRACTITIONERS),
        topology.VALIDATOR_REGISTRY.name,
        wait_s=600,
    ) as barrier:
        if not await barrier.wait_until_applied(int(time.time() * 1000)):
            msg = "the validator did not apply the bench's registry within 10 minutes"
            raise RuntimeError(msg)


async def _floor(
    stack: Stack, settings: ServiceSettings, pipeline: Measurement, messages: int
) -> FloorFigures:
    items: dict[str, float] = {}
    requests: dict[str, float] = {}
    for operations in pipeline.dynamodb_per_grant.values():
        for operation, use in operations.items():
            items[operation] = items.get(operation, 0.0) + use.items
            requests[operation] = requests.get(operation, 0.0) + use.requests
    pid = stack.dynamodb.process.pid()
    grants = int(messages * pipeline.grants_per_message)
    return await measure_floor(
        settings, items, requests, grants, lambda: cpu_seconds(pid) if pid else 0.0
    )


@dataclass(frozen=True)
class CodecFigures:
    """One codec on the relay chain, fed real forms."""

    codec: str
    cpu_ms_per_message: float  # relays and broker, per message carried across the four hops
    bytes_per_record: float  # what the broker stored (= what crossed the wire) per record
    messages_per_s: float


async def measure_codecs(
    stack: Stack, workload: Workload, logs: Path, count: int
) -> list[CodecFigures]:
    """For each codec Kafka supports: the relay chain with every producer (the bench's and the
    relays') compressing with it, fed `count` real forms; CPU of relays and broker per message,
    and the bytes of the hop topics' log segments per record."""
    bodies = [json.dumps(m.body).encode() for m in workload.messages if isinstance(m.body, dict)]
    figures = []
    for codec in CODECS:
        settings, env = _settings(stack, f"bench-{uuid.uuid4().hex[:6]}-")
        env["KAFKA_COMPRESSION"] = codec
        settings = settings.model_copy(update={"kafka_compression": codec})

        def messages(n: int, seed: int) -> list[Message]:
            chosen = []
            for index in range(n):
                key = str(uuid.uuid4())
                body = bodies[(index + seed * 13) % len(bodies)]
                chosen.append(Message(key, body + key.encode(), "relay"))
            return chosen

        async with _relays(stack, settings, env, logs, name=codec) as relay:
            probe = Probe(settings, HOPS[-1], relay.outcome_keys)
            watcher = asyncio.create_task(probe.run())
            producer = AIOKafkaProducer(**producer_options(settings), linger_ms=5)
            await producer.start()
            try:
                expected = await relay.publish(producer, messages(20, 0), None)
                await probe.wait_for(set(expected), 120)
                size_before = _topic_bytes(stack, settings)
                cpu_before = sum(cpu_seconds(pid) for pid in relay.pids.values())
                started = time.monotonic()
                expected = await relay.publish(producer, messages(count, 1), None)
                await probe.wait_for(set(expected), 600)
                elapsed = time.monotonic() - started
                cpu = sum(cpu_seconds(pid) for pid in relay.pids.values()) - cpu_before
                size = _topic_bytes(stack, settings) - size_before
            finally:
                await producer.stop()
                watcher.cancel()
                await asyncio.gather(watcher, return_exceptions=True)
        figures.append(
            CodecFigures(
                codec=codec,
                cpu_ms_per_message=cpu * 1000 / count,
                bytes_per_record=size / (count * len(HOPS)),
                messages_per_s=count / elapsed,
            )
        )
    return figures


def _topic_bytes(stack: Stack, settings: ServiceSettings) -> int:
    """Bytes in the log segments of the hop topics (the broker stores batches as produced)."""
    data = stack.kafka.workdir / "data"
    return sum(
        segment.stat().st_size
        for hop in HOPS
        for segment in data.glob(f"{settings.topic(hop)}-*/*.log")
    )


CODEC_CHOICE = (
    "The services' producers use **lz4** (`KAFKA_COMPRESSION`, default in"
    " `caf_runtime/config.py`): CPU is what two cores run out of, and across runs lz4 has been"
    " among the cheapest codecs while saving about three quarters of the bytes (README,"
    " 'Compression')."
)


def evidence_table(signed: Measurement, paper: Measurement, loads: list[int]) -> str:
    """What signature evidence costs: the e-signed pipeline against the same mix on paper."""
    signed_cpu, paper_cpu = sum(signed.cpu_per_1000.values()), sum(paper.cpu_per_1000.values())
    lines = [
        "| figure | e-signed (evidence stored) | paper (no evidence) | difference |",
        "|---|---|---|---|",
        f"| sustained throughput (grants/s) | {signed.sustained:.1f} | {paper.sustained:.1f} "
        f"| {signed.sustained / max(paper.sustained, 1e-3) - 1:+.1%} |",
        f"| CPU ms per grant, all processes | {signed_cpu:.1f} | {paper_cpu:.1f} "
        f"| {signed_cpu - paper_cpu:+.1f} |",
    ]
    for name in ("intake", "caf_poster", "objectstore", "kafka"):
        cpu_signed, cpu_paper = (
            signed.cpu_per_1000.get(name, 0.0),
            paper.cpu_per_1000.get(name, 0.0),
        )
        lines.append(
            f"| CPU ms per grant, {name} | {cpu_signed:.1f} | {cpu_paper:.1f} "
            f"| {cpu_signed - cpu_paper:+.1f} |"
        )
    for load in loads:
        for quantile in ("p50", "p99"):
            at_signed, at_paper = signed.latency.get(load), paper.latency.get(load)
            if at_signed and at_paper:
                lines.append(
                    f"| {quantile} latency at {load} grants/s (ms) | {_ms(at_signed, quantile)} "
                    f"| {_ms(at_paper, quantile)} | |"
                )
    return "\n".join(lines)


def codec_table(figures: list[CodecFigures]) -> str:
    plain = next(f for f in figures if f.codec == "none")
    lines = [
        "| codec | CPU per message, relays + broker (ms) | bytes per record on the wire "
        "| vs none | messages/s |",
        "|---|---|---|---|---|",
    ]
    lines.extend(
        f"| {f.codec} | {f.cpu_ms_per_message:.2f} | {f.bytes_per_record:.0f} "
        f"| {f.bytes_per_record / plain.bytes_per_record:.0%} | {f.messages_per_s:.0f} |"
        for f in figures
    )
    compressing = [f for f in figures if f.codec != "none"]
    if compressing:
        cheapest = min(compressing, key=lambda f: f.cpu_ms_per_message)
        lines.extend(
            [
                "",
                f"The cheapest compressing codec of this run: **{cheapest.codec}**"
                f" ({cheapest.cpu_ms_per_message:.2f} ms per message). One run on two shared cores"
                " is noisy: lz4, snappy and zstd have traded places between runs.",
            ]
        )
    return "\n".join(lines)


def _cpu_model() -> str:
    """The processor's name. psutil has none: Linux's `/proc/cpuinfo` names it ("model name"),
    where that file exists; elsewhere what the platform module says (`platform.processor()`,
    often only the architecture), else the machine type."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown"


def _machine() -> dict[str, str]:
    return {
        "cores": str(psutil.cpu_count()),  # logical, as os.cpu_count() counted them before
        "cpu": _cpu_model(),
        "memory": f"{psutil.virtual_memory().total / 1024**3:.1f} GiB",
        "python": platform.python_version(),
        "faststream": version("faststream"),
        "aiokafka": version("aiokafka"),
        "aioboto3": version("aioboto3"),
        "kafka": jars.version("kafka"),
        "dynamodb local": jars.version("dynamodb"),
        **_consumption(ServiceSettings()),
    }


def _consumption(settings: ServiceSettings) -> dict[str, str]:
    """How the services and relays consumed (CAF_BATCH_MAX_RECORDS, CAF_CONSUMERS_PER_TOPIC)."""
    if settings.batch_max_records:
        return {
            "consumption": f"one consumer per topic, up to {settings.batch_max_records} records "
            f"a poll (waiting at most {settings.batch_timeout_ms} ms), each key in order and up "
            f"to {settings.batch_concurrency} keys at once, one commit a poll; producers linger "
            f"{settings.producer_linger_ms} ms"
        }
    return {
        "consumption": "one record at a time per consumer",
        "consumers per topic": str(settings.consumers_per_topic),
    }


def table(results: list[Measurement], loads: list[int], floor: FloorFigures) -> str:
    ceiling, pipeline = results
    lines = [
        "| figure | ceiling (relay) | pipeline | pipeline / ceiling |",
        "|---|---|---|---|",
        f"| sustained throughput (grants/s) | {ceiling.sustained:.0f} | {pipeline.sustained:.1f} "
        f"| {pipeline.sustained / ceiling.sustained:.1%} |",
        f"| DynamoDB floor (grants/s) | {floor.grants_per_s:.0f} | | "
        f"{pipeline.sustained / max(floor.grants_per_s, 1e-3):.1%} of the floor |",
    ]
    if ceiling.lone and pipeline.lone:
        for quantile, pick in (("p50", statistics.median), ("slowest", max)):
            lines.append(
                f"| lone message, {quantile} of {len(pipeline.lone)} grants (ms) "
                f"| {pick(ceiling.lone) * 1000:.0f} | {pick(pipeline.lone) * 1000:.0f} | |"
            )
    for load in loads:
        for quantile in ("p50", "p95", "p99"):
            a, b = ceiling.latency[load], pipeline.latency[load]
            lines.append(
                f"| {quantile} latency at {load} grants/s (ms) | {_ms(a, quantile)} "
                f"| {_ms(b, quantile)} | |"
            )
    lines.append("")
    lines.append("CPU seconds per 1,000 grants (during the burst):")
    lines.append("")
    lines.append("| process | ceiling (relay) | pipeline |")
    lines.append("|---|---|---|")
    names = list(dict.fromkeys([*ceiling.cpu_per_1000, *pipeline.cpu_per_1000]))
    for name in names:
        relayed, piped = ceiling.cpu_per_1000.get(name, ""), pipeline.cpu_per_1000.get(name, "")
        lines.append(f"| {name} | {relayed} | {piped} |")
    lines.append(
        f"| all | {sum(ceiling.cpu_per_1000.values()):.1f} "
        f"| {sum(pipeline.cpu_per_1000.values()):.1f} |"
    )
    lines.extend(
        [
            "",
            f"DynamoDB floor: the pipeline's DynamoDB work of {floor.grants} grants (the mix"
            " below) done by a minimal client in the largest calls DynamoDB takes"
            f" ({floor.calls_per_grant} calls per grant, 8 at a time): {floor.grants_per_s:.0f}"
            f" grants/s, DynamoDB Local {floor.dynamodb_cpu_per_1000} CPU seconds per 1,000"
            f" grants (pipeline: {pipeline.cpu_per_1000.get('dynamodb', 0.0)}).",
        ]
    )
    if pipeline.dynamodb_per_grant:
        lines.extend(["", _dynamodb_table(pipeline.dynamodb_per_grant)])
    if pipeline.profile:
        lines.extend(["", _profile_table(pipeline.profile)])
    return "\n".join(lines)


def _dynamodb_table(use: dict[str, dict[str, DynamoUse]]) -> str:
    """DynamoDB requests per grant, by service and operation (timers and probes included)."""
    lines = [
        "DynamoDB requests per grant during the burst (and the items they carried), from each"
        " service's `caf_dynamodb_requests_total` / `caf_dynamodb_items_total`:",
        "",
        "| service | operation | requests per grant | items per grant |",
        "|---|---|---|---|",
    ]
    total = 0.0
    for name, operations in use.items():
        for operation, figures in operations.items():
            if figures.requests:
                total += figures.requests
                lines.append(
                    f"| {name} | {operation} | {figures.requests:.2f} | {figures.items:.2f} |"
                )
    lines.append(f"| all | | {total:.2f} | |")
    return "\n".join(lines)


def _profile_table(profiles: dict[str, Profile], sites: int = 6) -> str:
    """Where each service's CPU goes: by library of the innermost frame, then our busiest lines."""
    libraries = {name: shares(p.libraries) for name, p in profiles.items()}
    categories = sorted(
        {c for by_library in libraries.values() for c in by_library},
        key=lambda c: -sum(by_library.get(c, 0.0) for by_library in libraries.values()),
    )
    samples = ", ".join(f"{name} {p.total}" for name, p in profiles.items())
    lines = [
        f"Where the services' CPU goes (py-spy, {RATE_HZ} Hz, during a burst of its own after the"
        f" measured one; samples: {samples}). By library of the innermost frame, % of each"
        " service's samples:",
        "",
        "| | " + " | ".join(profiles) + " |",
        "|---|" + "---|" * len(profiles),
    ]
    for category in categories:
        cells = " | ".join(
            f"{by_library.get(category, 0.0) * 100:.0f}" for by_library in libraries.values()
        )
        lines.append(f"| {category} | {cells} |")
    lines.extend(
        [
            "",
            f"By the deepest line of our code on the stack (what it waits on or runs), the {sites}"
            " largest of each service, %:",
            "",
            "| service | our code | share |",
            "|---|---|---|",
        ]
    )
    for name, profile in profiles.items():
        for site, share in list(shares(profile.call_sites).items())[:sites]:
            lines.append(f"| {name} | `{site}` | {share * 100:.0f} |")
    return "\n".join(lines)


def _ms(figures: dict[str, Any], quantile: str) -> str:
    shown = f"{figures[quantile] * 1000:.0f}"
    if not figures["complete"]:
        shown += f" (saturated: {figures['missing']}/{figures['grants']} not done within the cap)"
    return shown


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m devstack.bench", description=__doc__)
    parser.add_argument("--burst", type=int, default=3000, help="messages of the burst")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per offered load")
    parser.add_argument(
        "--loads", type=lambda t: [int(x) for x in t.split(",")], default=[50, 200, 500]
    )
    parser.add_argument("--cap", type=float, default=60.0, help="longest wait per load (s)")
    parser.add_argument(
        "--codec-messages",
        type=int,
        default=3000,
        help="forms carried by the relay chain per compression codec",
    )
    parser.add_argument("--output", type=Path, default=PROJECT_ROOT / "BENCHMARKS.md")
    parser.add_argument(
        "--no-profile",
        dest="profile",
        action="store_false",
        help="do not sample the services with py-spy during the burst",
    )
    return parser


def main() -> None:
    args = _parser().parse_args()
    report = asyncio.run(run(args))
    rendered = table(report.measurements, args.loads, report.floor)
    relay, pipeline = report.measurements
    targets = bench_targets.table(pipeline, relay, report.floor.grants_per_s)
    chart = args.output.with_suffix(".png")
    draw(report.measurements, args.loads, chart)
    codecs = codec_table(report.codecs)
    evidence = evidence_table(report.measurements[1], report.paper, args.loads)
    decision = decision_bench.table(report.decision)
    authenticity = auth_bench.table(report.authenticity)
    checks = query_bench.table(report.checks)
    print(rendered, evidence, codecs, decision, authenticity, checks, sep="\n\n")
    machine = _machine()
    facts = "\n".join(f"- {k}: {v}" for k, v in machine.items())
    command = " ".join(["python -m devstack.bench", *sys.argv[1:]])
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    args.output.write_text(
        "# Benchmarks\n\n"
        f"Written by `{command}` (`make bench`) on {when}."
        " Rerun it to regenerate this file. Ceiling: four relay processes, consume and produce"
        " unchanged with the services' client settings; pipeline: the four services with DynamoDB"
        " Local. Latency: broker timestamp of the outcome minus that of the inbound message, for"
        " the grants of clean forms; sustained throughput: drain rate of a burst.\n\n"
        f"![Latency by offered load; CPU per grant by process]({chart.name})\n\n"
        f"{rendered}\n\n## Targets\n\n"
        "Issue 16's targets against this run, and for each one missed what this run's figures"
        " say bounds it (the profile above says where each service's CPU goes).\n\n"
        f"{targets}\n\n### What was tried\n\n"
        "In order, with the figures each step was measured by (`make bench` unless said"
        " otherwise; short runs: `--burst 1500 --loads 50 --no-profile`, one after the other on"
        " the same machine, which vary by about ±20% between runs).\n\n"
        f"{bench_targets.tried()}\n\n## Signature evidence\n\n"
        "The pipeline above runs the workload's forms as uploads signed electronically: intake"
        " seals an evidence object per signature (ES-01, ES-02) and the poster stores each under"
        " S3 Object Lock in the local SeaweedFS before it posts (ES-03). Side by side, on the same"
        " services right after: the same mix signed on paper (`method: wet`), which leaves no"
        " evidence. The paper run comes second, on a stack the first run has warmed (DynamoDB"
        " Local's JVM above all), so the totals overstate what evidence costs; the rows of"
        " intake, the poster, the object store and Kafka are its direct cost.\n\n"
        f"{evidence}\n\n## Producer compression\n\n"
        f"The relay chain again, {args.codec_messages} real forms per codec, with every producer"
        " (the bench's and the relays') compressing with it (`KAFKA_COMPRESSION`). CPU: relays"
        " and broker, per message carried across the four hops; bytes: the hop topics' log"
        " segments (the broker keeps batches as they were produced) per record.\n\n"
        f"{codecs}\n\n{CODEC_CHOICE}\n\n## Poster decision over a large CAF\n\n"
        "`python -m devstack.decision_bench`: one taxpayer holding that many active grants of"
        " different representatives, all on the same quarterly units; deciding and applying a"
        " later-signed grant on every unit (it revokes a unit of each, PO-05/MK-03). The rules"
        " alone, no I/O.\n\n"
        f"{decision}\n\n## Authenticity\n\n"
        "`python -m devstack.auth_bench`: process CPU per message of what intake adds to every"
        " record (AU-01) and to every Tax Pro Account decision (AU-02), on a real form with the"
        " development keys. The pipeline above runs with both, on SASL_SSL with ACLs.\n\n"
        f"{authenticity}\n\n## The authorization check\n\n"
        "`python -m devstack.query_bench`: `POST /v1/authorization-checks` of the read side's own"
        " process (`caf_query`, as `make up` runs it) over DynamoDB Local, on a read model it"
        " projected from the outcome stream. Each check names the taxpayer by TIN (pseudonymised"
        " per request) with a random representative and year, and is timed from when it was due"
        " at the offered rate; the load comes from the bench's own process on the same two cores."
        " Side by side: every check reading the table (`CAF_QUERY_CACHE_ENTRIES=0`) and as"
        " configured, memory first, invalidated by the outcome stream"
        " (`services/caf_query/cache.py`).\n\n"
        f"{checks}\n\n## Machine\n\n{facts}\n"
    )


if __name__ == "__main__":
    main()
