"""Session-wide real infrastructure for integration and end-to-end tests.

Where the broker and DynamoDB come from, in order:
1. `KAFKA_BOOTSTRAP_SERVERS` and `DYNAMODB_ENDPOINT`, when set (an already running stack; then
   `S3_ENDPOINT` and its credentials name the object store too);
2. testcontainers, when a Docker engine answers: the apache/kafka and amazon/dynamodb-local images
   of the versions the local stack runs (`devstack.jars.versions()`, from deploy/local/pom.xml);
   the object store: the local SeaweedFS binary;
3. otherwise the project's own local stack (`devstack`): Kafka, DynamoDB Local and SeaweedFS on
   free ports in a temporary folder, stopped when the session ends.

Tests isolate themselves with unique topic names, table prefixes and ids, never by cleaning up.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import socket
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from caf_runtime.broker import client_options
from caf_runtime.config import ServiceSettings
from caf_runtime.dynamo import dynamodb_client
from caf_runtime.provision import provision_environment
from devstack import jars
from devstack.access import PROVISIONER, SERVICE_PRINCIPALS
from devstack.dynamodb import LOCAL_CREDENTIALS
from devstack.fleet import free_ports
from devstack.kafka import COMMON_PROPERTIES
from devstack.keys import DevKeys
from devstack.objectstore import ObjectStore, Ports
from devstack.stack import Stack

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient


def pytest_configure(config: pytest.Config) -> None:
    """Signing keys for the session (AU-01, AU-02): every service started by a test trusts them
    through the environment, and `tests.signing` signs with them."""
    keys = DevKeys(Path(tempfile.mkdtemp(prefix="caf-test-keys-"))).ensure()
    os.environ["CAF_TEST_KEYS"] = str(keys.root)
    os.environ["CAF_SIGNING_KEYS"] = str(keys.root)  # what `cafctl submit` signs with
    os.environ.update(keys.environment())


@dataclass(frozen=True)
class Infrastructure:
    """Endpoints of real Kafka and DynamoDB; `stack` is set when this session started them (its
    broker authenticates every client with SASL_SSL and authorizes with ACLs)."""

    bootstrap_servers: str
    dynamodb_endpoint: str
    stack: Stack | None = None
    objectstore: ObjectStore | None = None  # None: S3_ENDPOINT and its credentials are set

    @property
    def secured(self) -> bool:
        return self.stack is not None and self.stack.secured

    def identity(self, principal: str) -> dict[str, str]:
        """The Kafka credentials of `principal` (none on an unsecured broker)."""
        return self.stack.access.environment(principal) if self.stack and self.secured else {}

    def s3_identity(self, principal: str) -> dict[str, str]:
        """S3_ENDPOINT and the object-store access key of `principal`."""
        if self.objectstore is not None:
            return self.objectstore.environment(principal)
        names = ("S3_ENDPOINT", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY")
        return {name: os.environ[name] for name in names if name in os.environ}

    def settings(self, principal: str = PROVISIONER, **overrides: object) -> ServiceSettings:
        """Settings of a test, with its own prefixes, connecting as `principal` (default: the
        provisioning super user, so a test may create what it needs)."""
        values: dict[str, object] = {
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap_servers,
            "DYNAMODB_ENDPOINT": self.dynamodb_endpoint,
            "CAF_TABLE_PREFIX": unique("t") + "-",
            "CAF_TOPIC_PREFIX": unique("p") + ".",
            **self.identity(principal),
        }
        values.update(overrides)
        return ServiceSettings.model_validate(values)

    def environment(self, principal: str = "operator") -> dict[str, str]:
        """Environment of a process the test starts (default: as the operator, like cafctl)."""
        return {
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap_servers,
            "DYNAMODB_ENDPOINT": self.dynamodb_endpoint,
            **{key: os.environ.get(key, value) for key, value in LOCAL_CREDENTIALS.items()},
            **self.identity(principal),
            **self.s3_identity(principal),
        }

    def client_properties(self, principal: str) -> Path | None:
        """The Kafka client properties file of `principal` (None on an unsecured broker)."""
        if self.stack is None or not self.secured:
            return None
        return self.stack.access.write_client_files(self.bootstrap_servers) / (
            f"{principal}.properties"
        )

    def service_identity(self, service: str) -> dict[str, str]:
        """A service process's own principal (`devstack.access.SERVICE_PRINCIPALS`): its Kafka
        and object-store credentials."""
        principal = SERVICE_PRINCIPALS[service]
        return self.identity(principal) | self.s3_identity(principal)

    async def prepare(self, settings: ServiceSettings) -> None:
        """Topics and tables of the prefix of `settings`, and on a secured broker its ACLs."""
        await provision_environment(settings, acls=self.secured)


def unique(prefix: str) -> str:
    """A short name no other test (or earlier run) uses."""
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def _docker_answers() -> bool:
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if host.startswith("unix://"):
        # Probe the socket first: the Docker SDK leaks its socket when no engine listens.
        try:
            with socket.socket(socket.AF_UNIX) as probe:
                probe.settimeout(1.0)
                probe.connect(host.removeprefix("unix://"))
        except OSError:
            return False
    try:
        import docker  # noqa: PLC0415 - optional: only where a Docker engine may exist

        client = docker.from_env(timeout=2)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # noqa: BLE001 - any failure means "no engine here"
        return False


@pytest.fixture(scope="session")
def infra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Infrastructure]:
    for key, value in LOCAL_CREDENTIALS.items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("AWS_REGION", "us-east-1")
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    endpoint = os.environ.get("DYNAMODB_ENDPOINT")
    if bootstrap and endpoint:
        yield Infrastructure(bootstrap, endpoint)  # S3_ENDPOINT, its credentials: from outside
    elif _docker_answers():
        yield from _containers(tmp_path_factory)
    else:
        kafka_port, controller_port, dynamodb_port, *s3_ports = free_ports(11)
        os.environ.pop("S3_ENDPOINT", None)  # this session's own object store
        stack = Stack(
            root=tmp_path_factory.mktemp("devstack"),
            kafka_port=kafka_port,
            kafka_controller_port=controller_port,
            dynamodb_port=dynamodb_port,
            s3_ports=Ports(*s3_ports),
        )
        try:
            stack.start_infrastructure()
            asyncio.run(stack.ensure_evidence_bucket())
            yield Infrastructure(
                stack.kafka.bootstrap_servers, stack.dynamodb.endpoint, stack, stack.objectstore
            )
        finally:
            stack.down()


def _containers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Infrastructure]:
    """Kafka and DynamoDB Local in containers, of the versions the local stack runs (the POM's)."""
    from testcontainers.core.container import DockerContainer  # noqa: PLC0415
    from testcontainers.core.wait_strategies import LogMessageWaitStrategy  # noqa: PLC0415

    versions = jars.versions()
    dynamodb_ready = LogMessageWaitStrategy("Initializing DynamoDB Local")
    with (
        _kafka_container(versions.kafka_image) as bootstrap_servers,
        DockerContainer(versions.dynamodb_local_image)
        .with_exposed_ports(8000)
        .waiting_for(dynamodb_ready) as dynamodb,
    ):
        endpoint = f"http://{dynamodb.get_container_host_ip()}:{dynamodb.get_exposed_port(8000)}"
        # the object store runs from its cached binary, as in the local stack
        stack = Stack(root=tmp_path_factory.mktemp("devstack"), s3_ports=Ports(*free_ports(8)))
        objectstore = stack.objectstore
        objectstore.start()
        try:
            asyncio.run(stack.ensure_evidence_bucket())
            yield Infrastructure(bootstrap_servers, endpoint, None, objectstore)
        finally:
            objectstore.stop()


ADVERTISED_LISTENERS = "/tmp/caf-advertised-listeners"  # noqa: S108 - inside the container


@contextlib.contextmanager
def _kafka_container(image: str) -> Iterator[str]:
    """One KRaft node (broker and controller) of the apache/kafka image, configured like the
    local stack's broker; yields its bootstrap address.

    A plain container: testcontainers' KafkaContainer drives Confluent's image only (its start
    script is Confluent's, and its KRaft mode refuses a tag below 7.0.0). The broker advertises
    the address clients reach it at, the host's port mapped to 9092, known only once the container
    runs: the container waits for it in a file, then runs the image's own command."""
    from testcontainers.core.container import DockerContainer  # noqa: PLC0415
    from testcontainers.core.wait_strategies import LogMessageWaitStrategy  # noqa: PLC0415

    start = (
        f"while [ ! -s {ADVERTISED_LISTENERS} ]; do sleep 0.1; done; "
        f'export KAFKA_ADVERTISED_LISTENERS="$(cat {ADVERTISED_LISTENERS})"; '
        "exec /etc/kafka/docker/run"
    )
    container = (
        DockerContainer(image)
        .with_exposed_ports(9092)
        .with_envs(**kafka_container_environment())
        .with_command(["sh", "-c", start])
    )
    with container:
        address = f"{container.get_container_host_ip()}:{container.get_exposed_port(9092)}"
        listeners = f"PLAINTEXT://{address},BROKER://localhost:19092"
        container.copy_into_container(listeners.encode(), ADVERTISED_LISTENERS)
        started = LogMessageWaitStrategy("Kafka Server started").with_startup_timeout(120)
        started.wait_until_ready(container)
        yield address


def kafka_container_environment() -> dict[str, str]:
    """The local stack's broker settings (`devstack.kafka.COMMON_PROPERTIES`) as the apache/kafka
    image takes them (`KAFKA_` and the name in capitals, `.` as `_`, `_` as `__`, `-` as `___`),
    with a listener for clients on the host (9092), one between brokers (19092) and the
    controller's (9093)."""
    properties = COMMON_PROPERTIES.format(controller_port=9093, data_dir="/var/lib/kafka/data")
    environment = {}
    for line in filter(None, properties.splitlines()):
        name, _, value = line.partition("=")
        name = name.replace("_", "__").replace("-", "___").replace(".", "_")
        environment[f"KAFKA_{name.upper()}"] = value
    return environment | {
        "CLUSTER_ID": base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="),
        "KAFKA_LISTENERS": "PLAINTEXT://:9092,BROKER://:19092,CONTROLLER://:9093",
        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": (
            "PLAINTEXT:PLAINTEXT,BROKER:PLAINTEXT,CONTROLLER:PLAINTEXT"
        ),
        "KAFKA_INTER_BROKER_LISTENER_NAME": "BROKER",
    }


@pytest.fixture
def settings(infra: Infrastructure) -> ServiceSettings:
    """Settings pointing at the real infrastructure with this test's own topic and table prefix."""
    return infra.settings()


@pytest.fixture
async def create_topic(
    infra: Infrastructure,
) -> AsyncIterator[Callable[..., Awaitable[str]]]:
    """Create a uniquely named topic: `await create_topic(partitions=3)` returns its name."""
    admin = AIOKafkaAdminClient(**client_options(infra.settings()))
    await admin.start()

    async def make(partitions: int = 3, name: str | None = None) -> str:
        topic = name or unique("test.topic.")
        await admin.create_topics(
            [NewTopic(name=topic, num_partitions=partitions, replication_factor=1)]
        )
        return topic

    yield make
    await admin.close()


@pytest.fixture
async def dynamodb(settings: ServiceSettings) -> AsyncIterator[DynamoDBClient]:
    async with dynamodb_client(settings) as client:
        yield client


@pytest.fixture
def project_root() -> Path:
    return Path(__file__).resolve().parent.parent
