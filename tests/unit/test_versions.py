"""One version of each server everywhere: the local stack's jars (deploy/local/pom.xml), Compose's
images and the tests' testcontainers (`devstack.jars.versions()`); SeaweedFS's release
(`devstack.objectstore.RELEASE`) for the local binary and Compose's image."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from devstack import jars, objectstore
from tests.conftest import kafka_container_environment

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def compose_images() -> dict[str, str]:
    compose = yaml.safe_load((ROOT / "deploy" / "compose" / "compose.yaml").read_text())
    return {name: service.get("image", "") for name, service in compose["services"].items()}


def test_compose_runs_the_versions_of_the_local_stack() -> None:
    versions = jars.versions()
    images = compose_images()
    assert images["kafka"] == versions.kafka_image == f"apache/kafka:{versions.kafka}"
    assert images["dynamodb"] == versions.dynamodb_local_image
    assert images["dynamodb"] == f"amazon/dynamodb-local:{versions.dynamodb_local}"
    assert images["objectstore"] == f"chrislusf/seaweedfs:{objectstore.RELEASE}"


def test_the_versions_are_read_from_the_pom_s_properties(tmp_path: Path) -> None:
    pom = tmp_path / "pom.xml"
    pom.write_text(
        jars.POM.read_text()
        .replace(f"<kafka.version>{jars.versions().kafka}<", "<kafka.version>9.8.7<")
        .replace(
            f"<dynamodb.local.version>{jars.versions().dynamodb_local}<",
            "<dynamodb.local.version>6.5.4<",
        )
    )
    assert jars.versions(pom) == jars.Versions(kafka="9.8.7", dynamodb_local="6.5.4")
    assert jars.versions(pom).kafka_image == "apache/kafka:9.8.7"


def test_the_kafka_container_is_configured_like_the_local_stack_s_broker() -> None:
    environment = kafka_container_environment()
    assert environment["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert environment["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert environment["KAFKA_NUM_PARTITIONS"] == "12"
    assert environment["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@127.0.0.1:9093"
    assert environment["KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR"] == "1"
    assert len(environment["CLUSTER_ID"]) == 22  # a UUID in URL-safe base64, as Kafka wants it
    assert "KAFKA_ADVERTISED_LISTENERS" not in environment  # set once the port is known
