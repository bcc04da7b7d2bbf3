"""Each service runs as its own process against real infrastructure and stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from caf_runtime.config import ServiceSettings
from caf_runtime.dynamo import dynamodb_client
from caf_runtime.provision import ensure_tables, ensure_topics
from caf_runtime.topology import TABLES, TOPICS
from devstack.fleet import free_port
from tests.conftest import Infrastructure

pytestmark = pytest.mark.integration

SERVICES = ["intake", "validator", "caf_poster", "notifier"]


def readiness(port: int) -> dict[str, object] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
            return dict(json.loads(response.read()))
    except (urllib.error.URLError, OSError):
        return None


async def provision(settings: ServiceSettings) -> None:
    await ensure_topics(settings.kafka_bootstrap_servers, TOPICS, prefix=settings.topic_prefix)
    async with dynamodb_client(settings) as client:
        await ensure_tables(client, TABLES, prefix=settings.table_prefix)


@pytest.mark.parametrize("service", SERVICES)
async def test_a_service_process_becomes_ready_and_exits_cleanly_on_sigterm(
    service: str, infra: Infrastructure, settings: ServiceSettings, tmp_path: Path
) -> None:
    await provision(settings)
    port = free_port()
    env = {
        **os.environ,
        **infra.environment(),
        "CAF_TOPIC_PREFIX": settings.topic_prefix,
        "CAF_TABLE_PREFIX": settings.table_prefix,
        f"{service.upper()}_HEALTH_PORT": str(port),
        "INTAKE_TAXPAYER_REF_KEY": "test-only-key",
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
            assert ready == {
                "status": "ready",
                "checks": {"kafka": True, "partitions": True, "dynamodb": True},
            }
        finally:
            process.send_signal(signal.SIGTERM)
            exit_code = await asyncio.wait_for(process.wait(), timeout=30)

    output = log_path.read_text()
    assert exit_code == 0, output[-3000:]
    lines = [json.loads(line) for line in output.splitlines() if line.strip()]
    assert any(line["msg"] == "service stopped" for line in lines)
    assert all(line["service"] == service for line in lines)
