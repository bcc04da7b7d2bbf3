"""Graceful shutdown: SIGTERM lets in-flight work finish and commit, so a rolling restart of
every service under traffic loses nothing and decides nothing twice."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from caf_runtime.broker import client_options
from caf_runtime.config import ServiceSettings
from cafctl.reconcile import Report, reconcile_deployment
from devstack.fleet import SERVICES, Fleet
from devstack.workload import Workload, signed_inbound, signed_registry
from tests.conftest import Infrastructure
from tests.signing import keys

pytestmark = pytest.mark.e2e

MESSAGES = 400


@pytest.mark.timeout(300)
async def test_a_rolling_restart_of_every_service_loses_and_duplicates_nothing(
    infra: Infrastructure, tmp_path: Path
) -> None:
    settings = infra.settings()
    await infra.prepare(settings)
    fleet = Fleet(
        {
            **os.environ,
            **infra.environment(),
            "CAF_TOPIC_PREFIX": settings.topic_prefix,
            "CAF_TABLE_PREFIX": settings.table_prefix,
            "CAF_GRACEFUL_TIMEOUT_S": "10",
        },
        tmp_path,
        identity=infra.service_identity,
    )
    first = await asyncio.gather(*(fleet.start(service) for service in SERVICES))
    workload = Workload(MESSAGES, seed=3, gap=60)
    producer = AIOKafkaProducer(**client_options(settings), enable_idempotence=True, acks="all")
    await producer.start()

    async def publish() -> None:
        for practitioner in workload.registry:
            record = signed_registry(practitioner, keys())
            await producer.send(
                settings.topic(record.topic), record.value, key=record.key, headers=record.headers
            )
        for message in workload:
            record = signed_inbound(message, keys())
            await producer.send_and_wait(
                settings.topic(record.topic), record.value, key=record.key, headers=record.headers
            )
            await asyncio.sleep(0.02)

    async def roll() -> list[int | None]:
        codes = []
        for old in first:
            await asyncio.sleep(1.5)
            await fleet.start(old.service)
            codes.append(await fleet.terminate(old))
        return codes

    try:
        _, codes = await asyncio.gather(publish(), roll())
        assert codes == [0, 0, 0, 0], "every old replica drained and exited cleanly"
        report = await _settled(settings)
    finally:
        await producer.stop()
        final = await fleet.stop_all()
    assert not report.lost, report.lost[:5]
    assert not report.removals_lost
    assert not report.duplicated
    assert not report.caf_unexpected
    assert not report.caf_missing
    assert not report.duplicate_notifications
    assert report.grants_ok == report.grants_expected > 0
    assert set(final.values()) == {0}


async def _settled(settings: ServiceSettings, limit_s: float = 120) -> Report:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while True:
        report = await reconcile_deployment(settings, client_options(settings))
        if (not report.lost and not report.removals_lost) or loop.time() > deadline:
            return report
        await asyncio.sleep(2)
