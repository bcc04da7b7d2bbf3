"""A real Prometheus (Debian's package) scrapes the four services and the lag exporter during a
small workload; its HTTP API shows the outcome counters, FastStream's metrics and the consumer
lag with sensible values, the alert rules loaded, and no TIN in any label."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import sys
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from devstack.fleet import free_port
from tests.e2e.conftest import Pipeline, random_ssn, ref_of, submission

pytestmark = pytest.mark.e2e

ALERTS = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "alerts.yml"


class Prometheus:
    def __init__(self, port: int) -> None:
        self.port = port

    def get(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        url = f"http://127.0.0.1:{self.port}{path}?{query}"
        with urllib.request.urlopen(url, timeout=5) as response:
            document = json.loads(response.read())
        assert document["status"] == "success", document
        return document["data"]

    def value(self, expression: str) -> float | None:
        result = self.get("/api/v1/query", query=expression)["result"]
        return float(result[0]["value"][1]) if result else None

    async def until(self, expression: str, at_least: float, limit_s: float = 60) -> float:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit_s
        while True:
            try:
                found = await asyncio.to_thread(self.value, expression)
            except OSError:  # not listening yet
                found = None
            if found is not None and found >= at_least:
                return found
            assert loop.time() < deadline, f"{expression} = {found}, wanted >= {at_least}"
            await asyncio.sleep(1)


@pytest.fixture
async def prometheus(pipeline: Pipeline, tmp_path: Path) -> AsyncIterator[Prometheus]:
    binary = shutil.which("prometheus")
    assert binary, "prometheus is missing: `make tools` installs Debian's package"
    exporter_port = free_port()
    with (tmp_path / "lag_exporter.log").open("wb") as log:
        exporter = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "cafctl.lag_exporter",
            env={**pipeline.services.env, "CAF_LAG_EXPORTER_PORT": str(exporter_port)},
            stdout=log,
            stderr=log,
        )
    services = [f"127.0.0.1:{port}" for port in pipeline.services.ports.values()]
    config = tmp_path / "prometheus.yml"
    config.write_text(
        json.dumps(  # JSON is YAML
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(ALERTS)],
                "scrape_configs": [
                    {"job_name": "caf-services", "static_configs": [{"targets": services}]},
                    {
                        "job_name": "caf-lag-exporter",
                        "scrape_interval": "5s",
                        "scrape_timeout": "5s",
                        "static_configs": [{"targets": [f"127.0.0.1:{exporter_port}"]}],
                    },
                ],
            }
        )
    )
    port = free_port()
    with (tmp_path / "prometheus.log").open("wb") as log:
        server = await asyncio.create_subprocess_exec(
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            stdout=log,
            stderr=log,
        )
    client = Prometheus(port)
    try:
        await client.until("count(up)", 5)
        yield client
    finally:
        for process in (server, exporter):
            process.terminate()
            await process.wait()


async def test_prometheus_sees_outcomes_lag_and_no_taxpayer_identifier(
    pipeline: Pipeline, prometheus: Prometheus
) -> None:
    taxpayers = [random_ssn() for _ in range(5)]
    for ssn in taxpayers:
        await pipeline.send_inbound(submission(ssn, [{"caf_number": None, "name": "New Rep"}]))
    for ssn in taxpayers:
        await pipeline.terminal(ref_of(ssn), 1)

    assert await prometheus.until("min(up)", 1) == 1, "every service and the exporter scraped"
    posted = 'sum(caf_events_total{type="AuthorizationPosted"})'
    assert await prometheus.until(posted, 5) >= 5
    handled = 'sum(caf_messages_total{topic="caf.inbound.v1",outcome="handled"})'
    assert await prometheus.until(handled, 5) >= 5
    assert await prometheus.until("sum(faststream_received_messages_total)", 5) >= 5
    assert await prometheus.until('count(caf_consumer_lag_messages{group="caf-poster"})', 12)
    lag = await asyncio.to_thread(prometheus.value, "max(caf_consumer_lag_messages)")
    assert lag is not None
    assert 0 <= lag < 100, "a caught-up pipeline has (almost) no lag"
    assert await prometheus.until('sum(caf_consumer_assigned_partitions{group="caf-poster"})', 12)
    # Over the counters since start, not a rate: a rate window holding no new observation
    # (the handling ended more than a window ago) gives NaN.
    p99 = await asyncio.to_thread(
        prometheus.value,
        "histogram_quantile(0.99, sum by (le) (caf_handling_seconds_bucket))",
    )
    assert p99 is not None
    assert 0 < p99 < 10, "every stage handled these messages within seconds"

    waiting = await prometheus.until("count(caf_grants_waiting_to_post)", 4)
    assert waiting == 4, "one series per age band"
    assert await prometheus.until("count(caf_grant_waiting_oldest_seconds >= 0)", 1)

    rules = await asyncio.to_thread(prometheus.get, "/api/v1/rules")
    names = {rule["name"] for group in rules["groups"] for rule in group["rules"]}
    assert {"CafConsumerLagHigh", "CafSlaBreached", "CafConsumerGroupWithoutMembers"} <= names

    series = await asyncio.to_thread(
        prometheus.get, "/api/v1/series", **{"match[]": '{__name__=~"caf_.+|faststream_.+"}'}
    )
    values = {str(v) for labels in series for k, v in labels.items() if k != "__name__"}
    digits = {ssn.replace("-", "") for ssn in taxpayers} | set(taxpayers)
    assert not {v for v in values if any(d in v for d in digits)}
    assert not {v for v in values if re.search(r"\b\d{3}-?\d{2}-?\d{4}\b", v)}
    assert not {v for v in values if re.fullmatch(r"[0-9a-f]{32}", v)}, "no taxpayer_ref either"
