"""A single-node Apache Kafka 4.x broker in KRaft mode (broker and controller in one JVM).

With a `KafkaAccess` (the default of the local stack) the broker listens with SASL_SSL
(SCRAM-SHA-512 over TLS with the stack's own CA) and authorizes every request with KRaft's
StandardAuthorizer: super users `admin` and `provisioner`, everyone else only what an ACL allows.
The controller listener (127.0.0.1 only) takes SASL PLAIN for `admin` alone. Every principal's
SCRAM credential is written into the metadata when the storage is formatted (KIP-900).
Without one (tests that bring their own broker use none) it is PLAINTEXT.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import shutil
import ssl
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from devstack import jars
from devstack.access import ADMIN, MECHANISM, KafkaAccess
from devstack.errors import StackError
from devstack.process import ManagedProcess

LOG4J_CONFIG = Path(__file__).resolve().parent.parent / "deploy" / "local" / "log4j2.properties"
HEAP = ("-Xms256m", "-Xmx512m")

COMMON_PROPERTIES = """\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{controller_port}
controller.listener.names=CONTROLLER
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
PLAINTEXT_PROPERTIES = """\
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
"""
SECURED_PROPERTIES = """\
listeners=SASL_SSL://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=SASL_SSL://127.0.0.1:{port}
inter.broker.listener.name=SASL_SSL
listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:SASL_PLAINTEXT
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=\
org.apache.kafka.common.security.scram.ScramLoginModule required \
username="admin" password="{admin_password}";
sasl.mechanism.controller.protocol=PLAIN
listener.name.controller.sasl.enabled.mechanisms=PLAIN
listener.name.controller.plain.sasl.jaas.config=\
org.apache.kafka.common.security.plain.PlainLoginModule required \
username="admin" password="{admin_password}" user_admin="{admin_password}";
ssl.keystore.type=PEM
ssl.keystore.location={broker_pem}
ssl.truststore.type=PEM
ssl.truststore.location={ca_file}
ssl.client.auth=none
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:admin;User:provisioner
allow.everyone.if.no.acl.found=false
"""


@dataclass(frozen=True)
class KafkaNode:
    """One broker whose configuration, data and log live in `workdir`."""

    workdir: Path
    port: int = 9092
    controller_port: int = 9093
    access: KafkaAccess | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def admin_options(self) -> dict[str, Any]:
        """aiokafka options of the broker's own super user (`admin`)."""
        options: dict[str, Any] = {"bootstrap_servers": self.bootstrap_servers}
        if self.access is not None:
            options |= {
                "security_protocol": "SASL_SSL",
                "sasl_mechanism": MECHANISM,
                "sasl_plain_username": ADMIN,
                "sasl_plain_password": self.access.password(ADMIN),
                "ssl_context": ssl.create_default_context(cafile=str(self.access.ca_file)),
            }
        return options

    def _properties(self) -> str:
        common = COMMON_PROPERTIES.format(
            controller_port=self.controller_port, data_dir=self._data_dir
        )
        if self.access is None:
            listeners = PLAINTEXT_PROPERTIES.format(
                port=self.port, controller_port=self.controller_port
            )
            return common + listeners
        self.access.ensure_tls()
        return common + SECURED_PROPERTIES.format(
            port=self.port,
            controller_port=self.controller_port,
            admin_password=self.access.password(ADMIN),
            broker_pem=self.access.broker_pem,
            ca_file=self.access.ca_file,
        )

    def _scram(self) -> list[str]:
        return [] if self.access is None else self.access.scram_arguments()

    def _move_aside_if_unsecured(self) -> None:
        """Data formatted before the stack was secured has no SCRAM users: keep it aside and
        format anew (a development broker; its topics are provisioned again)."""
        marker = self._data_dir / "caf-secured"
        if self.access is None or not (self._data_dir / "meta.properties").exists():
            return
        if marker.exists():
            return
        aside = self.workdir / f"data-plaintext-{int(time.time())}"
        self._data_dir.rename(aside)
        print(f"Kafka data from before SASL/ACLs moved to {aside}; formatting anew")

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
        self._move_aside_if_unsecured()
        descriptor = os.open(self._config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(self._properties())  # holds the admin password
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
                    *self._scram(),
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if formatted.returncode != 0:
                raise StackError(f"formatting Kafka storage failed:\n{formatted.stderr}")
            if self.access is not None:
                (self._data_dir / "caf-secured").touch()
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
            if asyncio.run(answers_metadata(self.admin_options())):
                return
            time.sleep(0.5)
        raise StackError(f"Kafka not ready after {timeout:.0f}s:\n{self.process.log_tail()}")

    def stop(self) -> bool:
        return self.process.stop(timeout=30.0)


async def answers_metadata(options: dict[str, Any]) -> bool:
    """True when the cluster `options` name answers a describe-cluster call."""
    # aiokafka logs every refused connection at ERROR; while probing that is expected.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    admin = AIOKafkaAdminClient(**options, request_timeout_ms=3000)
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
