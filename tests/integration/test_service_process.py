"""Each service runs as its own process against real infrastructure and stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from caf_runtime.broker import client_options
from caf_runtime.config import ServiceSettings
from caf_runtime.service import EX_CONFIG
from devstack.fleet import free_port
from schemas import topics
from tests.conftest import Infrastructure

pytestmark = pytest.mark.integration

SERVICES = ["intake", "validator", "caf_poster", "notifier"]


def readiness(port: int, path: str = "/readyz") -> dict[str, object] | None:
    """The JSON body of a health endpoint, whatever its status; None while nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
            return dict(json.loads(response.read()))
    except urllib.error.HTTPError as error:
        return dict(json.loads(error.read()))
    except (urllib.error.URLError, OSError):
        return None


def metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
        return str(response.read().decode())


@pytest.mark.parametrize("service", SERVICES)
async def test_a_service_process_becomes_ready_and_exits_cleanly_on_sigterm(
    service: str, infra: Infrastructure, settings: ServiceSettings, tmp_path: Path
) -> None:
    await infra.prepare(settings)
    port = free_port()
    env = {
        **os.environ,
        **infra.environment(),
        **infra.service_identity(service),
        "CAF_TOPIC_PREFIX": settings.topic_prefix,
        "CAF_TABLE_PREFIX": settings.table_prefix,
        f"{service.upper()}_HEALTH_PORT": str(port),
    }
    log_path = tmp_path / f"{service}.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", f"services.{service}", env=env, stdout=log, stderr=log
        )
        try:
            ready = None
            for _ in range(300):
                ready = await asyncio.to_thread(readiness, port)
                if (
                    ready is not None and ready["status"] == "ready"
                ) or process.returncode is not None:
                    break
                await asyncio.sleep(0.1)
            stateful = {"dynamodb": True} if service != "notifier" else {}  # it keeps no state
            assert ready == {
                "status": "ready",
                "checks": {
                    "kafka": True,
                    "partitions": True,
                    "codecs": True,
                    "consumer_fetch": True,
                    **stateful,
                },
            }
        finally:
            process.send_signal(signal.SIGTERM)
            exit_code = await asyncio.wait_for(process.wait(), timeout=30)

    output = log_path.read_text()
    assert exit_code == 0, output[-3000:]
    lines = [json.loads(line) for line in output.splitlines() if line.strip()]
    assert any(line["msg"] == "service stopped" for line in lines)
    assert all(line["service"] == service for line in lines)


async def test_a_batch_the_process_cannot_decode_makes_it_not_ready_then_not_live(
    infra: Infrastructure, settings: ServiceSettings, tmp_path: Path
) -> None:
    """Codec support killed (the codec library cannot be imported, as in an image built without
    it): a snappy batch on `caf.inbound.v1` fails every fetch; within the bounds the process
    reports not ready, then not live, and the error counter and failing gauge say why."""
    await infra.prepare(settings)
    broken = tmp_path / "no-codecs" / "cramjam"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("raise ImportError('codec library removed by the test')\n")
    port = free_port()
    env = {
        **os.environ,
        **infra.environment(),
        **infra.service_identity("intake"),
        "PYTHONPATH": os.pathsep.join([str(broken.parent), os.environ.get("PYTHONPATH", "")]),
        "CAF_TOPIC_PREFIX": settings.topic_prefix,
        "CAF_TABLE_PREFIX": settings.table_prefix,
        "CAF_FETCH_NOT_READY_AFTER_S": "2",
        "CAF_FETCH_NOT_LIVE_AFTER_S": "6",
        "INTAKE_HEALTH_PORT": str(port),
        "CAF_CONSUMERS_PER_TOPIC": "1",
        "KAFKA_COMPRESSION": "gzip",  # a producer refuses to start with a codec it lacks
    }
    log_path = tmp_path / "intake.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "services.intake", env=env, stdout=log, stderr=log
        )
        try:
            ready = await _until(port, "/readyz", lambda body: body["checks"]["partitions"])
            assert ready["checks"]["codecs"] is False  # seen before any record arrives
            assert ready["checks"]["consumer_fetch"] is True
            producer = AIOKafkaProducer(**client_options(settings), compression_type="snappy")
            await producer.start()
            try:
                await producer.send_and_wait(
                    settings.topic(topics.INBOUND), b'{"kind": "submission"}', key=b"k"
                )
            finally:
                await producer.stop()
            loop = asyncio.get_running_loop()
            sent = loop.time()
            await _until(port, "/readyz", lambda body: not body["checks"]["consumer_fetch"])
            assert loop.time() - sent < 2 + 10  # the bound, plus the first fetch and a probe
            page = await asyncio.to_thread(metrics, port)
            assert re.search(
                r'caf_consumer_fetch_errors_total\{error="UnsupportedCodecError",'
                r'topic="caf.inbound.v1"\} [1-9]',
                page,
            ), page
            assert re.search(
                r'caf_consumer_fetch_failing_seconds\{topic="caf.inbound.v1"\} [1-9]', page
            )
            stuck = await _until(port, "/healthz", lambda body: body["status"] == "stuck")
            assert stuck == {"status": "stuck", "checks": {"consumer_fetch": False}}
        finally:
            process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(process.wait(), timeout=30)
    assert "no suitable compression library" in log_path.read_text()


async def _until(
    port: int, path: str, condition: Callable[[dict[str, Any]], object]
) -> dict[str, Any]:
    for _ in range(300):
        body = await asyncio.to_thread(readiness, port, path)
        if body is not None and condition(body):
            return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"{path} never met the condition; last answer {body}")


@pytest.mark.parametrize(
    ("key", "says"),
    [("", "INTAKE_TAXPAYER_REF_KEY is empty"), ("0a1b2c3d", "shorter than 32 random bytes")],
)
async def test_intake_with_an_empty_or_short_key_exits_non_zero_with_a_clear_message(
    key: str, says: str, tmp_path: Path
) -> None:
    """It never gets as far as reporting ready: the settings are refused before any
    connection, with one line naming the setting and never the key."""
    env = {**os.environ, "INTAKE_TAXPAYER_REF_KEY": key}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.intake",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == EX_CONFIG
    lines = [json.loads(line) for line in output.decode().splitlines() if line.startswith("{")]
    (refusal,) = [line for line in lines if line["level"] == "CRITICAL"]
    assert refusal["msg"].startswith("refusing to start")
    assert says in refusal["msg"]
    assert not key or key not in output.decode()
