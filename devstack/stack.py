"""The whole local stack: Kafka, DynamoDB Local, the object store, provisioning and the services.

State lives in one folder (`CAF_STACK_DIR`, default `.devstack/` in the project): each component's
data, log and pid file. `up` is idempotent (what runs is left running) and `down` stops
everything the folder's pid files name. When `KAFKA_BOOTSTRAP_SERVERS`, `DYNAMODB_ENDPOINT` or
`S3_ENDPOINT` is set, that component is taken as already running elsewhere and is neither
started nor stopped.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from caf_runtime.acls import all_acls, apply_acls, kafka_admin_config
from caf_runtime.broker import client_options
from caf_runtime.config import EvidenceSettings, ServiceSettings
from caf_runtime.dynamo import dynamodb_client
from caf_runtime.evidence_bucket import ensure_bucket, s3_client
from caf_runtime.provision import (
    ProvisionReport,
    ensure_tables,
    ensure_topics,
    provision_environment,
)
from caf_runtime.topology import TABLES, TOPICS
from devstack.access import PROVISIONER, SERVICE_PRINCIPALS, KafkaAccess
from devstack.dynamodb import LOCAL_CREDENTIALS, DynamoDBLocal
from devstack.errors import StackError
from devstack.kafka import KafkaNode
from devstack.keys import DevKeys
from devstack.objectstore import ObjectStore, Ports
from devstack.process import ManagedProcess

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Each process `make up` runs: its module and the port of its /readyz (and /metrics).
SERVICES: Mapping[str, tuple[str, int, str]] = {
    "intake": ("services.intake", 8081, "INTAKE_HEALTH_PORT"),
    "validator": ("services.validator", 8082, "VALIDATOR_HEALTH_PORT"),
    "caf_poster": ("services.caf_poster", 8083, "CAF_POSTER_HEALTH_PORT"),
    "notifier": ("services.notifier", 8084, "NOTIFIER_HEALTH_PORT"),
    "lag_exporter": ("cafctl.lag_exporter", 8085, "CAF_LAG_EXPORTER_PORT"),
    "caf_query": ("services.caf_query", 8086, "CAF_QUERY_HEALTH_PORT"),  # API on 8090
    "monitor": ("services.monitor", 8087, "MONITOR_HEALTH_PORT"),
}


def _port(variable: str, default: int) -> int:
    return int(os.environ.get(variable, default))


@dataclass
class Stack:
    """The local stack rooted at `root`."""

    root: Path = field(
        default_factory=lambda: Path(os.environ.get("CAF_STACK_DIR", PROJECT_ROOT / ".devstack"))
    )
    kafka_port: int = field(default_factory=lambda: _port("CAF_KAFKA_PORT", 9092))
    kafka_controller_port: int = field(
        default_factory=lambda: _port("CAF_KAFKA_CONTROLLER_PORT", 9093)
    )
    dynamodb_port: int = field(default_factory=lambda: _port("CAF_DYNAMODB_PORT", 8000))
    s3_ports: Ports = field(default_factory=lambda: Ports.around(_port("CAF_S3_PORT", 8333)))

    @property
    def access(self) -> KafkaAccess:
        """TLS, SCRAM principals and client files of this stack's broker (SASL_SSL + ACLs)."""
        return KafkaAccess(self.root)

    @property
    def kafka(self) -> KafkaNode:
        return KafkaNode(
            self.root / "kafka", self.kafka_port, self.kafka_controller_port, self.access
        )

    @property
    def secured(self) -> bool:
        """Whether clients authenticate: always with this stack's own broker; an external
        cluster's security settings come from the environment."""
        return self.external_kafka is None

    @property
    def keys(self) -> DevKeys:
        """The development signing keys (AU-01, AU-02), made at the first `up`."""
        return DevKeys(self.root / "keys")

    @property
    def dynamodb(self) -> DynamoDBLocal:
        return DynamoDBLocal(self.root / "dynamodb", self.dynamodb_port)

    @property
    def objectstore(self) -> ObjectStore:
        """The S3-compatible server with Object Lock that keeps signature evidence (ES-03)."""
        return ObjectStore(self.root / "objectstore", self.s3_ports)

    @property
    def external_s3(self) -> str | None:
        configured = os.environ.get("S3_ENDPOINT")
        return None if configured == self.objectstore.endpoint else configured

    @property
    def evidence_bucket(self) -> str:
        return os.environ.get("CAF_EVIDENCE_BUCKET", "caf-signature-evidence")

    @property
    def external_kafka(self) -> str | None:
        """The configured brokers, unless they are this stack's own (as `devstack env` sets)."""
        configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        return None if configured == self.kafka.bootstrap_servers else configured

    @property
    def external_dynamodb(self) -> str | None:
        configured = os.environ.get("DYNAMODB_ENDPOINT")
        return None if configured == self.dynamodb.endpoint else configured

    @property
    def bootstrap_servers(self) -> str:
        return self.external_kafka or self.kafka.bootstrap_servers

    @property
    def dynamodb_endpoint(self) -> str:
        return self.external_dynamodb or self.dynamodb.endpoint

    def service(self, name: str) -> ManagedProcess:
        return ManagedProcess(name, self.root / "services")

    def environment(self, principal: str = "operator") -> dict[str, str]:
        """What a service, script or test needs in its environment to use this stack, connecting
        as `principal` (default: the operator's, what `cafctl` needs)."""
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap_servers,
            "DYNAMODB_ENDPOINT": self.dynamodb_endpoint,
            "AWS_REGION": os.environ.get("AWS_REGION", "us-east-1"),
            # PO-03's 2-minute reorder window, shortened so the local demo is not kept waiting
            "CAF_POSTER_REORDER_WINDOW_S": os.environ.get("CAF_POSTER_REORDER_WINDOW_S", "5"),
            **self.keys.ensure().environment(),
        }
        if self.external_dynamodb is None:
            env.update(LOCAL_CREDENTIALS)
        if self.secured:
            env.update(self.access.environment(principal))
        if self.external_s3 is None:
            env.update(self.objectstore.environment(principal))
        return env

    def service_environment(self, service: str) -> dict[str, str]:
        """The environment of one service process: its own principal (least privilege)."""
        return self.environment(SERVICE_PRINCIPALS[service])

    def service_identity(self, service: str) -> dict[str, str]:
        """Only the Kafka and object-store credentials of a service's principal (none for an
        external cluster or store), to lay over an environment made for another principal."""
        identity = {}
        if self.secured:
            identity.update(self.access.environment(SERVICE_PRINCIPALS[service]))
        if self.external_s3 is None:
            identity.update(self.objectstore.environment(SERVICE_PRINCIPALS[service]))
        return identity

    def settings(self, prefix: str = "", principal: str = PROVISIONER) -> ServiceSettings:
        """Settings of a harness (bench, chaos, tests) on this stack with its own prefix,
        connecting as `principal` (default: the provisioning super user)."""
        env = self.environment(principal)
        return ServiceSettings.model_validate(
            {k: v for k, v in env.items() if k.startswith(("KAFKA_", "DYNAMODB_"))}
            | {"CAF_TOPIC_PREFIX": prefix, "CAF_TABLE_PREFIX": prefix or "caf-local-"}
        )

    async def prepare(self, settings: ServiceSettings) -> None:
        """Topics, tables and (on this stack's broker) ACLs for the prefix of `settings`, and
        the evidence bucket on this stack's object store (a fresh stack has none until then:
        the poster's PutObject would be refused)."""
        await provision_environment(settings, acls=self.secured)
        if self.external_s3 is None:
            await self.ensure_evidence_bucket()

    def start_infrastructure(self) -> None:
        if self.external_dynamodb is None:
            self.dynamodb.start()
        if self.external_s3 is None:
            self.objectstore.start()
        if self.external_kafka is None:
            self.kafka.start()

    def provision(self) -> tuple[ProvisionReport, ProvisionReport]:
        """Create the declared topics and tables that are missing, and the ACLs of every role
        (idempotent); write each principal's client properties file."""
        env = self.environment(PROVISIONER)
        settings = ServiceSettings.model_validate(
            {key: value for key, value in env.items() if key.startswith(("KAFKA_", "DYNAMODB_"))}
            | {"CAF_TOPIC_PREFIX": os.environ.get("CAF_TOPIC_PREFIX", "")}
        )
        if self.secured:
            self.access.ensure_users(kafka_admin_config(settings))
            apply_acls(kafka_admin_config(settings), all_acls(settings.topic_prefix))
            self.access.write_client_files(self.bootstrap_servers)
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            if key in env:
                os.environ.setdefault(key, env[key])

        async def provision_all() -> tuple[ProvisionReport, ProvisionReport]:
            topic_report = await ensure_topics(
                settings.kafka_bootstrap_servers,
                TOPICS,
                prefix=settings.topic_prefix,
                client_options=client_options(settings),
            )
            async with dynamodb_client(settings) as client:
                table_report = await ensure_tables(
                    client, TABLES, prefix=settings.table_prefix, kms_key=settings.table_kms_key
                )
            if self.external_s3 is None:
                await self.ensure_evidence_bucket()
            return topic_report, table_report

        return asyncio.run(provision_all())

    async def ensure_evidence_bucket(self) -> bool:
        """The evidence bucket, with versioning and Object Lock, on this stack's object store."""
        evidence = EvidenceSettings.model_validate(
            self.objectstore.environment(PROVISIONER)
            | {"CAF_EVIDENCE_BUCKET": self.evidence_bucket}
        )
        async with s3_client(evidence) as s3:
            return await ensure_bucket(s3, evidence.evidence_bucket)

    def start_services(self, timeout: float = 60.0) -> None:
        for name, (module, port, port_variable) in SERVICES.items():
            process = self.service(name)
            if process.pid() is None:
                env = {**os.environ, **self.service_environment(name), port_variable: str(port)}
                process.start([sys.executable, "-m", module], env=env)
        deadline = time.monotonic() + timeout
        for name, (_, port, _) in SERVICES.items():
            while not _ready(port):
                if self.service(name).pid() is None:
                    raise StackError(f"service {name} exited:\n{self.service(name).log_tail()}")
                if time.monotonic() > deadline:
                    raise StackError(f"service {name} not ready:\n{self.service(name).log_tail()}")
                time.sleep(0.3)

    def up(self) -> None:
        self.start_infrastructure()
        self.provision()
        self.start_services()

    def down(self) -> list[str]:
        """Stop services first (they drain and commit), then Kafka, the object store, then
        DynamoDB Local."""
        stopped = [name for name in SERVICES if self.service(name).stop()]
        if self.external_kafka is None and self.kafka.stop():
            stopped.append("kafka")
        if self.external_s3 is None and self.objectstore.stop():
            stopped.append("objectstore")
        if self.external_dynamodb is None and self.dynamodb.stop():
            stopped.append("dynamodb")
        return stopped

    def status(self) -> dict[str, str]:
        states: dict[str, str] = {}
        states["kafka"] = (
            f"external {self.external_kafka}"
            if self.external_kafka
            else _state(self.kafka.process, self.kafka.bootstrap_servers)
        )
        states["dynamodb"] = (
            f"external {self.external_dynamodb}"
            if self.external_dynamodb
            else _state(self.dynamodb.process, self.dynamodb.endpoint)
        )
        states["objectstore"] = (
            f"external {self.external_s3}"
            if self.external_s3
            else _state(self.objectstore.process, self.objectstore.endpoint)
        )
        for name, (_, port, _) in SERVICES.items():
            where = f"http://127.0.0.1:{port}/readyz"
            running = _state(self.service(name), where)
            states[name] = (
                running if running == "stopped" or _ready(port) else f"{running} (not ready)"
            )
        return states


def _state(process: ManagedProcess, where: str) -> str:
    pid = process.pid()
    return "stopped" if pid is None else f"running pid {pid} at {where}"


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False
