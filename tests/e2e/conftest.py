"""The four services as processes on real Kafka and DynamoDB Local, and a probe of what they emit.

One pipeline per test module, isolated by its own topic and table prefix; tests isolate
themselves from each other with their own taxpayers (random TINs) and message ids.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord

from caf_runtime.broker import client_options
from caf_runtime.config import ServiceSettings
from caf_runtime.dynamo import dynamodb_client
from caf_runtime.envelope import is_sealed
from caf_runtime.guard import opened
from caf_runtime.secrets import key_bytes
from caf_runtime.topology import TOPICS
from devstack import messages
from devstack.fleet import free_port, free_ports
from schemas import topics
from schemas.events import TERMINAL_TYPES
from schemas.ids import RefKeys
from schemas.inbound import Channel, FormType
from tests.conftest import Infrastructure, unique
from tests.signing import signed_headers

SERVICES = ("intake", "validator", "caf_poster", "notifier")
DEADLINE_S = 30.0

business_today = messages.business_today  # the day the rules count in (New York)


def random_ssn() -> str:
    area, group = random.randint(100, 665), random.randint(10, 99)
    return f"{area:03d}-{group:02d}-{random.randint(1000, 9999):04d}"


def ref_of(ssn: str) -> str:
    """The taxpayer_ref intake gives `ssn` (the session's key, `tests/conftest.py`)."""
    key = key_bytes(os.environ["INTAKE_TAXPAYER_REF_KEY"], "INTAKE_TAXPAYER_REF_KEY")
    return RefKeys((key,)).ref(ssn.replace("-", ""))


@dataclass
class Seen:
    """Everything read from one topic so far."""

    records: list[ConsumerRecord[bytes, bytes]] = field(default_factory=list)

    def json(self) -> list[dict[str, Any]]:
        return [json.loads(r.value) for r in self.records if r.value]


class Pipeline:
    """Publish inputs; read what came out."""

    def __init__(
        self, settings: ServiceSettings, producer: AIOKafkaProducer, services: Services
    ) -> None:
        self.settings = settings
        self.producer = producer
        self.services = services
        self.seen: dict[str, Seen] = {
            name: Seen()
            for name in (
                topics.EVENTS,
                topics.NOTIFICATIONS,
                topics.INBOUND_DLQ,
                topics.GRANTS_VALIDATED,
            )
        }

    def inbound_dead_letters(self) -> list[ConsumerRecord[bytes, bytes]]:
        """Intake's dead letters as first written: each sealed one opened with the session's
        key-encryption key (its error headers kept)."""
        sealer = self.settings.sealer()
        assert sealer is not None, "the session configures CAF_ENVELOPE_KEYS"
        letters = []
        for record in self.seen[topics.INBOUND_DLQ].records:
            headers = {k: v.decode() for k, v in record.headers}
            letters.append(opened(record, sealer) if is_sealed(headers) else record)
        return letters

    async def send_inbound(
        self,
        message: dict[str, Any] | bytes,
        key: str | None = None,
        *,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        """Publish to `caf.inbound.v1`, signed by the development publisher of its kind unless
        `headers` says otherwise (AU-01)."""
        value = message if isinstance(message, bytes) else json.dumps(message).encode()
        if key is None and isinstance(message, dict):
            key = str(message.get("message_id"))
        await self.producer.send_and_wait(
            self.settings.topic(topics.INBOUND),
            value,
            key=key.encode() if key else None,
            headers=[
                ("content-type", b"application/json"),
                *(signed_headers(value) if headers is None else headers),
            ],
        )

    async def publish(
        self, topic: str, key: str, record: dict[str, Any], kind: str | None, kid: str | None = None
    ) -> None:
        """Publish `record` to feed `topic` (of this pipeline), signed as a record of `kind` by
        its development publisher, or by publisher `kid` (AU-01)."""
        value = json.dumps(record).encode()
        await self.producer.send_and_wait(
            self.settings.topic(topic),
            value,
            key=key.encode(),
            headers=signed_headers(value, kind, kid),
        )

    async def register(self, caf_number: str, name: str, status: str = "", **extra: Any) -> None:
        record = registry_record(caf_number, name, status, **extra)
        await self.publish(topics.PRACTITIONERS, caf_number, record, "registry")

    def events(self, ref: str) -> list[dict[str, Any]]:
        return [e for e in self.seen[topics.EVENTS].json() if e["taxpayer_ref"] == ref]

    def notifications(self, event_ids: set[str]) -> list[dict[str, Any]]:
        return [n for n in self.seen[topics.NOTIFICATIONS].json() if n["event_id"] in event_ids]

    async def until(self, condition: Callable[[], Any], limit_s: float = DEADLINE_S) -> Any:
        """Poll until `condition()` is truthy; return its value. Fails at the deadline."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit_s
        while True:
            value = condition()
            if value:
                return value
            if loop.time() > deadline:
                raise AssertionError(f"not seen within {limit_s}s")
            await asyncio.sleep(0.1)

    async def terminal(self, ref: str, count: int) -> list[dict[str, Any]]:
        """Wait for `count` terminal events of the taxpayer; return them."""
        found: list[dict[str, Any]] = await self.until(
            lambda: terminal if len(terminal := self.terminal_events(ref)) >= count else None
        )
        return found

    def terminal_events(self, ref: str) -> list[dict[str, Any]]:
        return [e for e in self.events(ref) if e["type"] in TERMINAL_TYPES]

    async def caf_items(self, ref: str) -> list[dict[str, Any]]:
        async with dynamodb_client(self.settings) as client:
            response = await client.query(
                TableName=self.settings.table("caf"),
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": f"TP#{ref}"}},
                ConsistentRead=True,
            )
        return [dict(item) for item in response["Items"]]


async def _collect(settings: ServiceSettings, pipeline: Pipeline) -> None:
    consumer = AIOKafkaConsumer(
        *(settings.topic(name) for name in pipeline.seen),
        **client_options(settings),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=unique("e2e-probe-"),
    )
    try:
        await consumer.start()  # inside: a collector cancelled while it starts still closes it
        while True:
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                for record in records:
                    name = record.topic.removeprefix(settings.topic_prefix)
                    pipeline.seen[name].records.append(record)
    finally:
        await consumer.stop()


async def _until_ready(name: str, port: int, logs: Path) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE_S
    while loop.time() < deadline:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")  # HTTP/1.1 needs Host
            response = await reader.read()
            writer.close()
            if response.startswith(b"HTTP/1.1 200"):
                return
        except OSError:
            pass
        await asyncio.sleep(0.2)
    raise AssertionError(f"{name} not ready; see {logs / (name + '.log')}")


class Services:
    """The four service processes, each as its own Kafka principal; any of them can be killed
    and started again. `env` (the operator's identity) is also what `cafctl` runs with."""

    def __init__(
        self,
        env: dict[str, str],
        logs: Path,
        identity: Callable[[str], dict[str, str]],
        names: tuple[str, ...] = SERVICES,
    ) -> None:
        self.env = env
        self.logs = logs
        self.identity = identity
        self.ports = dict(zip(names, free_ports(len(names)), strict=True))
        self.api_port = free_port()  # the read side's API, when it runs (`caf_query`)
        self.processes: dict[str, asyncio.subprocess.Process] = {}

    async def start(self, name: str) -> None:
        await self._spawn(name, name, self.ports[name])

    async def start_replica(self, name: str, replica: str) -> None:
        """Another process of the same service (same consumer groups, own health port)."""
        port = free_port()
        await self._spawn(f"{name}-{replica}", name, port)
        await _until_ready(f"{name}-{replica}", port, self.logs)

    async def _spawn(self, key: str, name: str, port: int) -> None:
        env = {
            **self.env,
            **self.identity(name),
            f"{name.upper()}_HEALTH_PORT": str(port),
            "CAF_QUERY_API_PORT": str(self.api_port),
        }
        with (self.logs / f"{key}.log").open("ab") as log:
            self.processes[key] = await asyncio.create_subprocess_exec(
                sys.executable, "-m", f"services.{name}", env=env, stdout=log, stderr=log
            )

    def move_clock(self, delta: timedelta) -> None:
        """Move every service's clock ahead (CAF_CLOCK_OFFSET_FILE)."""
        path = Path(self.env["CAF_CLOCK_OFFSET_FILE"])
        current = float(path.read_text() or 0)
        path.write_text(str(current + delta.total_seconds()))

    async def wait_ready(self) -> None:
        for name, port in self.ports.items():
            await _until_ready(name, port, self.logs)

    async def restart(self, name: str) -> None:
        """SIGTERM (drain and commit), then a new process with the current `env`, ready."""
        process = self.processes[name]
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), timeout=30)
        except TimeoutError:
            process.kill()
            tail = (self.logs / f"{name}.log").read_text(errors="replace")[-3000:]
            raise AssertionError(f"{name} did not stop within 30 s of SIGTERM:\n{tail}") from None
        await self.start(name)
        await _until_ready(name, self.ports[name], self.logs)

    async def kill(self, name: str) -> None:
        """SIGKILL: no drain, no commit, no goodbye."""
        process = self.processes[name]
        process.kill()
        await process.wait()

    async def stop_all(self) -> list[int | None]:
        for process in self.processes.values():
            if process.returncode is None:
                process.terminate()
        for process in self.processes.values():
            try:
                await asyncio.wait_for(process.wait(), timeout=30)
            except TimeoutError:
                process.kill()
                await process.wait()
        return [p.returncode for p in self.processes.values()]


@pytest.fixture(scope="module")
async def pipeline(
    infra: Infrastructure, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> AsyncIterator[Pipeline]:
    """The four services (or the module's `SERVICES`); a test module may set `SERVICE_ENV` (a
    dict) to configure them."""
    settings = infra.settings()
    await infra.prepare(settings)
    logs: Path = tmp_path_factory.mktemp("services")
    clock_offset = logs / "clock-offset"
    clock_offset.write_text("0")
    services = Services(
        {
            **os.environ,
            **infra.environment(),
            "CAF_TOPIC_PREFIX": settings.topic_prefix,
            "CAF_TABLE_PREFIX": settings.table_prefix,
            "CAF_GRACEFUL_TIMEOUT_S": "5",
            "INTAKE_DECISION_RETRY_WINDOW_S": "8",
            "INTAKE_DECISION_RETRY_DELAY_S": "1",
            "CAF_CLOCK_OFFSET_FILE": str(clock_offset),
            "CAF_TIMER_POLL_S": "0.5",
            "CAF_POSTER_REORDER_WINDOW_S": "3",
            **getattr(request.module, "SERVICE_ENV", {}),
        },
        logs,
        infra.service_identity,
        getattr(request.module, "SERVICES", SERVICES),
    )
    try:
        for name in services.ports:
            await services.start(name)
        await services.wait_ready()
    except BaseException:
        await services.stop_all()  # a pipeline that never got ready leaves no process behind
        raise
    producer = AIOKafkaProducer(**client_options(settings), enable_idempotence=True, acks="all")
    await producer.start()
    pipeline = Pipeline(settings, producer, services)
    collector = asyncio.create_task(_collect(settings, pipeline))
    try:
        yield pipeline
    finally:
        collector.cancel()
        await asyncio.gather(collector, return_exceptions=True)
        await producer.stop()
        codes = await services.stop_all()
        assert all(code == 0 for code in codes), f"services exited with {codes}; logs in {logs}"


def submission(
    ssn: str,
    reps: list[dict[str, Any]],
    *,
    form: FormType = "2848",
    periods: list[str] | None = None,
    signed: date | None = None,
    channel: Channel = "upload",
    **extra: Any,
) -> dict[str, Any]:
    """A valid signed form for taxpayer `ssn` (`messages.submission`), received today; `reps`
    are overrides of a default representative (first-time unless it has a CAF number), `extra`
    of top-level fields: both on the wire, so a test may send what the contract refuses."""
    today = business_today()
    signed = signed or today
    method = messages.method_for(channel)
    form_message = messages.submission(
        tin=ssn,
        form=form,
        channel=channel,
        received_on=today,
        signed=signed,
        periods=periods or [str(today.year - 1)],
        message_id=str(uuid.uuid4()),
        sent_at=datetime.now(UTC),
    )
    representatives = [
        messages.document(
            messages.representative(
                form,
                caf_number=None,
                ptin=_ptin_of(rep.get("caf_number")),
                receive_notices=False,
                signed=messages.signature(signed, method),
            )
        )
        | rep
        for rep in reps
    ]
    return messages.document(form_message, representatives=representatives, **extra)


def _ptin_of(caf_number: str | None) -> str:
    """A PTIN of the representative: derived from the CAF number (so a registered one matches
    its registry record), random for a first-time representative (CN-02 gives one number per
    PTIN)."""
    digits = (caf_number or "")[-8:] or f"{random.randint(0, 99_999_999):08d}"
    return f"P{digits}"


def registry_record(caf_number: str, name: str, status: str = "", **extra: Any) -> dict[str, Any]:
    """A practitioner registry record (`caf.practitioners.v1`) of an active representative;
    `status` and `extra` replace fields on the wire."""
    record = messages.practitioner(
        caf_number,
        name,
        designations=["b", "c", "k"],
        licence_number="CPA-1",
        ptin=_ptin_of(caf_number),
        ptin_valid_through=date(2027, 12, 31),
        afsp_years=[2024, 2025, 2026],
        updated_at=datetime.now(UTC),
    )
    return messages.document(record, status_code=status, **extra)


def unique_caf() -> str:
    """A registered-looking CAF number no other test uses (prefix 03)."""
    return f"03{random.randint(0, 9_999_999):07d}"


async def submitted(
    pipeline: Pipeline,
    rep: dict[str, Any] | None = None,
    *,
    status: str = "",
    **fields: Any,
) -> tuple[str, str, dict[str, Any]]:
    """A new taxpayer's form naming one representative newly registered as "Avery Smith" (with
    standing `status`), sent: (the taxpayer's SSN, the CAF number, the form). `rep` overrides
    fields of the representative, `fields` are `submission`'s."""
    ssn, caf = random_ssn(), unique_caf()
    await pipeline.register(caf, "Avery Smith", status=status)
    form = submission(ssn, [{"caf_number": caf} | (rep or {})], **fields)
    await pipeline.send_inbound(form)
    return ssn, caf, form


async def two_representatives(pipeline: Pipeline) -> tuple[str, str, str, dict[str, Any]]:
    """A new taxpayer's form naming two representatives newly registered ("Avery Smith", "Blake
    Doe"), sent and both its grants' outcomes in: (the SSN, the first CAF number, the second,
    the form)."""
    ssn, first, second = random_ssn(), unique_caf(), unique_caf()
    await pipeline.register(first, "Avery Smith")
    await pipeline.register(second, "Blake Doe")
    form = submission(ssn, [{"caf_number": first}, {"caf_number": second, "name": "Blake Doe"}])
    await pipeline.send_inbound(form)
    await pipeline.terminal(ref_of(ssn), 2)
    return ssn, first, second, form


async def older_then_newer(
    pipeline: Pipeline,
    older_periods: list[str],
    newer_periods: list[str],
    *,
    older_signed: date,
    newer_signed: date | None = None,
    notices: bool = False,
) -> tuple[str, str, str, dict[str, Any], dict[str, Any]]:
    """A new taxpayer's form (signed `older_signed`) for a representative newly registered as
    "Avery Smith" (receiving notices if `notices`), then, once it has its outcome, a newer one
    (signed `newer_signed`, else today) for a second, "Blake Doe": both sent and both outcomes
    in. (The SSN, the first CAF number, the second, the older form, the newer.)"""
    ssn, first, second = random_ssn(), unique_caf(), unique_caf()
    await pipeline.register(first, "Avery Smith")
    await pipeline.register(second, "Blake Doe")
    old = submission(
        ssn,
        [{"caf_number": first, "receive_notices": notices}],
        periods=older_periods,
        signed=older_signed,
    )
    await pipeline.send_inbound(old)
    await pipeline.terminal(ref_of(ssn), 1)
    new = submission(
        ssn,
        [{"caf_number": second, "name": "Blake Doe"}],
        periods=newer_periods,
        signed=newer_signed,
    )
    await pipeline.send_inbound(new)
    await pipeline.terminal(ref_of(ssn), 2)
    return ssn, first, second, old, new


async def topics_holding(
    pipeline: Pipeline, found: Callable[[str], bool], skip: frozenset[str] = frozenset()
) -> dict[str, int]:
    """Every record of every topic (but `skip`) read from the start, key, value and headers as
    text: how many records of each topic `found` says hold what must not be there."""
    consumer = AIOKafkaConsumer(
        *(pipeline.settings.topic(spec.name) for spec in TOPICS if spec.name not in skip),
        **client_options(pipeline.settings),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=unique("e2e-scan-"),
    )
    holding: dict[str, int] = {}
    await consumer.start()
    try:
        quiet = 0
        while quiet < 5:
            batches = await consumer.getmany(timeout_ms=500)
            quiet = 0 if batches else quiet + 1
            for records in batches.values():
                for record in records:
                    text = b"".join(
                        [record.key or b"", record.value or b"", *(v for _, v in record.headers)]
                    ).decode(errors="replace")
                    if found(text):
                        name = record.topic.removeprefix(pipeline.settings.topic_prefix)
                        holding[name] = holding.get(name, 0) + 1
    finally:
        await consumer.stop()
    return holding
