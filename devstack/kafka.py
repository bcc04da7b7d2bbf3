"""A single-node Apache Kafka 4.x broker in KRaft mode (broker and controller in one JVM)."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from devstack import jars
from devstack.errors import StackError
from devstack.process import ManagedProcess

LOG4J_CONFIG = Path(__file__).resolve().parent.parent / "deploy" / "local" / "log4j2.properties"
HEAP = ("-Xms256m", "-Xmx512m")

SERVER_PROPERTIES = """\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{controller_port}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs={data_dir}
num.partitions=12
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=12
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.hours=-1
"""


@dataclass(frozen=True)
class KafkaNode:
    """One broker whose configuration, data and log live in `workdir`."""

    workdir: Path
    port: int = 9092
    controller_port: int = 9093

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def process(self) -> ManagedProcess:
        return ManagedProcess("kafka", self.workdir)

    @property
    def _config(self) -> Path:
        return self.workdir / "server.properties"

    @property
    def _data_dir(self) -> Path:
        return self.workdir / "data"

    def start(self, timeout: float = 90.0) -> None:
        """Format the storage on first use, start the broker, and wait until it answers."""
        if self.process.pid() is not None:
            self.wait_ready(timeout)
            return
        java = _java()
        classpath = f"{jars.resolve('kafka')}/*"
        self.workdir.mkdir(parents=True, exist_ok=True)
        tmp = self.workdir / "tmp"
        tmp.mkdir(exist_ok=True)
        self._config.write_text(
            SERVER_PROPERTIES.format(
                port=self.port, controller_port=self.controller_port, data_dir=self._data_dir
            )
        )
        if not (self._data_dir / "meta.properties").exists():
            cluster_id = _cluster_id()
            formatted = subprocess.run(
                [
                    java,
                    "-cp",
                    classpath,
                    "kafka.tools.StorageTool",
                    "format",
                    "-t",
                    cluster_id,
                    "-c",
                    str(self._config),
                    "--ignore-formatted",
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if formatted.returncode != 0:
                raise StackError(f"formatting Kafka storage failed:\n{formatted.stderr}")
        self.process.logfile.unlink(missing_ok=True)
        self.process.start(
            [
                java,
                *HEAP,
                f"-Djava.io.tmpdir={tmp}",
                f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
                "-cp",
                classpath,
                "kafka.Kafka",
                str(self._config),
            ],
            env={**os.environ, "KAFKA_HEAP_OPTS": " ".join(HEAP)},
        )
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float) -> None:
        """Ready means the log says so and an admin metadata call succeeds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.pid() is None:
                raise StackError(f"Kafka exited during start-up:\n{self.process.log_tail()}")
            if asyncio.run(answers_metadata(self.bootstrap_servers)):
                return
            time.sleep(0.5)
        raise StackError(f"Kafka not ready after {timeout:.0f}s:\n{self.process.log_tail()}")

    def stop(self) -> bool:
        return self.process.stop(timeout=30.0)


async def answers_metadata(bootstrap_servers: str) -> bool:
    """True when the cluster at `bootstrap_servers` answers a describe-cluster call."""
    # aiokafka logs every refused connection at ERROR; while probing that is expected.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=3000)
    try:
        await admin.start()
        cluster = await admin.describe_cluster()
        return bool(cluster.get("brokers"))
    except (TimeoutError, KafkaError, OSError):
        return False
    finally:
        await admin.close()


def _cluster_id() -> str:
    """A random KRaft cluster id. Like Kafka's own `Uuid.randomUuid`, never one that starts with
    '-': the storage tool's argument parser would take it for an option (1 start in 64 failed)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def _java() -> str:
    java = shutil.which("java")
    if java is None:
        raise StackError("Java 17+ is needed to run Kafka and DynamoDB Local")
    return java
