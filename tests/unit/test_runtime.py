"""The shared runtime: settings, broker security, JSON logs, health endpoint, process tracking."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest
from aiokafka import ConsumerRecord
from aiokafka.errors import KafkaTimeoutError
from faststream._internal.endpoint.subscriber.utils import MultiLock
from faststream.kafka import KafkaBroker
from faststream.security import SASLScram512

from caf_runtime.broker import _security, make_broker
from caf_runtime.config import ServiceSettings
from caf_runtime.guard import Guard, RetryPolicy
from caf_runtime.health import HealthServer
from caf_runtime.logging import JsonFormatter
from caf_runtime.outputs import Output
from caf_runtime.service import drain_in_flight
from devstack.process import ManagedProcess

pytestmark = pytest.mark.unit


def test_topic_and_table_names_carry_the_configured_prefixes() -> None:
    settings = ServiceSettings.model_validate(
        {"CAF_TOPIC_PREFIX": "staging.", "CAF_TABLE_PREFIX": "caf-staging-"}
    )
    assert settings.topic("caf.events.v1") == "staging.caf.events.v1"
    assert settings.table("caf") == "caf-staging-caf"


def test_production_topic_names_are_the_contract_names_by_default() -> None:
    assert ServiceSettings().topic("caf.inbound.v1") == "caf.inbound.v1"


def test_sasl_over_tls_is_built_from_configuration() -> None:
    settings = ServiceSettings.model_validate(
        {
            "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "KAFKA_SASL_USERNAME": "caf-intake",
            "KAFKA_SASL_PASSWORD": "from-the-secret-store",
        }
    )
    security = _security(settings)
    assert isinstance(security, SASLScram512)
    assert security.use_ssl


def test_sasl_without_credentials_is_refused() -> None:
    settings = ServiceSettings.model_validate({"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT"})
    with pytest.raises(ValueError, match="KAFKA_SASL_USERNAME"):
        _security(settings)


def test_plaintext_needs_no_security_object() -> None:
    assert _security(ServiceSettings()) is None


def test_a_log_line_is_one_json_object_with_its_extra_fields() -> None:
    record = logging.makeLogRecord(
        {"msg": "grant accepted", "levelname": "INFO", "name": "caf.intake"}
    )
    record.grant_id = "7b0c9a52:0"
    line = json.loads(JsonFormatter("intake").format(record))
    assert line["msg"] == "grant accepted"
    assert line["service"] == "intake"
    assert line["grant_id"] == "7b0c9a52:0"


def test_a_field_named_like_a_tin_is_redacted_from_log_lines() -> None:
    record = logging.makeLogRecord({"msg": "oops", "levelname": "WARNING"})
    record.tin = "123-45-6789"
    line = JsonFormatter("intake").format(record)
    assert "123-45-6789" not in line
    assert json.loads(line)["tin"] == "[redacted]"


async def http_get(port: int, path: str) -> tuple[int, dict[str, object]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    response = await reader.read()
    writer.close()
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


async def test_readiness_reports_each_failing_check_while_liveness_stays_up() -> None:
    async def up() -> bool:
        return True

    async def broken() -> bool:
        raise ConnectionError

    server = HealthServer({"kafka": up, "dynamodb": broken})
    await server.start()
    try:
        assert await http_get(server.port, "/healthz") == (200, {"status": "alive"})
        assert await http_get(server.port, "/readyz") == (
            503,
            {"status": "not ready", "checks": {"kafka": True, "dynamodb": False}},
        )
        assert await http_get(server.port, "/nowhere") == (404, {"status": "not found"})
    finally:
        await server.stop()


async def test_liveness_fails_with_the_checks_that_say_the_process_is_stuck() -> None:
    async def up() -> bool:
        return True

    stuck = {"consumer_fetch": False}
    server = HealthServer(
        {"kafka": up}, liveness={"consumer_fetch": lambda: not stuck["consumer_fetch"]}
    )
    await server.start()
    try:
        assert await http_get(server.port, "/healthz") == (200, {"status": "alive"})
        stuck["consumer_fetch"] = True
        assert await http_get(server.port, "/healthz") == (
            503,
            {"status": "stuck", "checks": {"consumer_fetch": False}},
        )
    finally:
        await server.stop()


def test_a_stale_pid_file_is_not_taken_for_a_running_process(tmp_path: Path) -> None:
    process = ManagedProcess("sleeper", tmp_path)
    pid = process.start([sys.executable, "-c", "import time; time.sleep(60)"])
    assert process.pid() == pid
    recorded = process.pidfile.read_text()
    process.pidfile.write_text(f"{pid} 1")  # same pid, another start time: a reused pid
    assert process.pid() is None
    process.pidfile.write_text(recorded)
    assert process.stop(timeout=5)
    assert process.pid() is None
    assert not process.pidfile.exists()


def test_plain_kafka_clients_get_the_same_sasl_settings_as_the_broker() -> None:
    from caf_runtime.broker import client_options  # noqa: PLC0415

    settings = ServiceSettings.model_validate(
        {
            "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "KAFKA_SASL_USERNAME": "caf",
            "KAFKA_SASL_PASSWORD": "s3cret",
            "KAFKA_BOOTSTRAP_SERVERS": "b1:9096",
        }
    )
    options = client_options(settings)
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_plain_password"] == "s3cret"
    assert options["bootstrap_servers"] == "b1:9096"
    assert "ssl_context" in options


def test_the_stack_treats_its_own_endpoints_in_the_environment_as_local(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After `eval "$(python -m devstack env)"`, `make down` must still stop Kafka and DynamoDB."""
    from devstack.stack import Stack  # noqa: PLC0415

    stack = Stack(root=tmp_path, kafka_port=19092, kafka_controller_port=19093, dynamodb_port=18000)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", stack.kafka.bootstrap_servers)
    monkeypatch.setenv("DYNAMODB_ENDPOINT", stack.dynamodb.endpoint)
    assert (stack.external_kafka, stack.external_dynamodb) == (None, None)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka-1.prod:9096")
    assert stack.external_kafka == "kafka-1.prod:9096"


async def test_the_health_endpoint_serves_the_metrics_page() -> None:
    from caf_runtime.metrics import count_published  # noqa: PLC0415

    count_published([("caf.events.v1", b'{"type": "AuthorizationPosted"}')])
    server = HealthServer({})
    await server.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        response = await reader.read()
        writer.close()
    finally:
        await server.stop()
    assert response.startswith(b"HTTP/1.1 200")
    assert b'caf_events_total{reason="",type="AuthorizationPosted"}' in response


class _Consumer:
    def __init__(self, partitions: set[str]) -> None:
        self.partitions, self.paused = partitions, set[str]()

    def assignment(self) -> set[str]:
        return self.partitions

    def pause(self, *partitions: str) -> None:
        self.paused.update(partitions)


class _Subscriber:
    def __init__(self, consumers: list[_Consumer]) -> None:
        self.running, self.consumer_subgroup, self.lock = True, consumers, MultiLock()


async def test_shutdown_drains_the_records_in_flight_before_any_consumer_stops() -> None:
    """FastStream's partition-concurrent subscriber stops its consumers before its handlers end;
    a handler that then commits through the closed consumer hangs the process for ever."""
    consumers = [_Consumer({"t-0"}), _Consumer({"t-1", "t-2"})]
    subscriber = _Subscriber(consumers)
    broker = cast("KafkaBroker", SimpleNamespace(subscribers=[subscriber]))
    subscriber.lock.acquire()  # a record in flight
    loop = asyncio.get_running_loop()
    loop.call_later(0.2, subscriber.lock.release)
    started = loop.time()
    await drain_in_flight(broker, timeout_s=5)
    assert loop.time() - started >= 0.2  # waited for the handler
    assert not subscriber.running  # no loop takes another record
    assert [c.paused for c in consumers] == [{"t-0"}, {"t-1", "t-2"}]


async def test_shutdown_stops_waiting_for_a_stuck_handler_after_the_graceful_timeout() -> None:
    subscriber = _Subscriber([_Consumer({"t-0"})])
    subscriber.lock.acquire()  # never released
    loop = asyncio.get_running_loop()
    started = loop.time()
    await drain_in_flight(cast("KafkaBroker", SimpleNamespace(subscribers=[subscriber])), 0.3)
    assert 0.3 <= loop.time() - started < 2


def _record(partition: int, offset: int) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        topic="t",
        partition=partition,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=None,
        value=b"%d" % offset,
        checksum=None,
        serialized_key_size=0,
        serialized_value_size=1,
        headers=(),
    )


async def test_a_poll_whose_outcome_cannot_be_written_finishes_its_other_partitions_then_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The error escapes only after every partition of the poll is done, so the rewind that
    follows redelivers records whose handling did not stop half way."""
    settings = ServiceSettings()
    guard = Guard(
        make_broker(settings, client_id="unit"),
        settings,
        retry_topic="r",
        dlq_topic="d",
        dependencies=lambda: asyncio.sleep(0, True),
        policy=RetryPolicy(attempts=1),
    )

    async def unreachable(outputs: list[Output]) -> None:
        raise KafkaTimeoutError

    monkeypatch.setattr(guard, "_publish", unreachable)
    handled: list[tuple[int, int]] = []

    async def work(record: ConsumerRecord[bytes, bytes]) -> None:
        if (record.partition, record.offset) == (0, 1):
            raise KeyError("a bug: its dead letter cannot be written")
        await asyncio.sleep(0.01)
        handled.append((record.partition, record.offset))

    poll = [_record(p, o) for o in range(3) for p in range(2)]
    with pytest.raises(KafkaTimeoutError):
        await guard.handle_batch(poll, work)
    assert handled == [(0, 0), (1, 0), (1, 1), (1, 2)]  # partition 0 stops at its failure


def test_the_stacks_export_lines_give_a_shell_every_value_exactly() -> None:
    """`eval "$(python -m devstack env)"`: a JWK set or a path with spaces survives the shell."""
    from devstack.cli import export_lines  # noqa: PLC0415

    values = {
        "INTAKE_PIN_KEYS": '{"keys": [{"crv": "P-256", "kid": "intake-pin-1"}]}',
        "CAF_SIGNING_KEYS": "/home/a folder/keys",
        "INTAKE_TAXPAYER_REF_KEY": "never printed",
    }
    script = "\n".join(
        [*export_lines(values), 'printf "%s\\n%s" "$INTAKE_PIN_KEYS" "$CAF_SIGNING_KEYS"']
    )
    bash = shutil.which("bash")
    assert bash is not None
    shown = subprocess.run([bash, "-c", script], capture_output=True, text=True, check=True)  # noqa: S603 - our own script
    assert shown.stdout.split("\n") == [values["INTAKE_PIN_KEYS"], values["CAF_SIGNING_KEYS"]]
    assert not any("TAXPAYER_REF" in line for line in export_lines(values))
