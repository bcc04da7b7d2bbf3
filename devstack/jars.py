"""Resolve and cache the jars of the local stack from Maven Central.

The first call runs Maven on `deploy/local/pom.xml` (one profile per component) and copies the
runtime dependencies into a cache folder named after the profile and a hash of the POM, so a
change of versions resolves afresh and every later call reuses the cached jars.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

from devstack.errors import StackError

POM = Path(__file__).resolve().parent.parent / "deploy" / "local" / "pom.xml"
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
_COMPLETE = ".complete"


_MAVEN = {"m": "http://maven.apache.org/POM/4.0.0"}


@dataclass(frozen=True)
class Versions:
    """The versions of the stack's servers, set in one place, the POM's properties: the local
    stack runs their jars, Compose (deploy/compose/compose.yaml) and the tests' testcontainers
    their images (a unit test compares)."""

    kafka: str
    dynamodb_local: str

    @property
    def kafka_image(self) -> str:
        return f"apache/kafka:{self.kafka}"

    @property
    def dynamodb_local_image(self) -> str:
        return f"amazon/dynamodb-local:{self.dynamodb_local}"


def versions(pom: Path = POM) -> Versions:
    """Kafka's and DynamoDB Local's versions: `kafka.version` and `dynamodb.local.version`."""
    document = ElementTree.parse(pom)  # noqa: S314 - our own file, not untrusted input
    properties = document.getroot().find("m:properties", _MAVEN)
    if properties is None:
        raise StackError(f"{pom} has no <properties>")

    def value(name: str) -> str:
        text = properties.findtext(f"m:{name}", namespaces=_MAVEN)
        if not text:
            raise StackError(f"{pom} does not set {name}")
        return text.strip()

    return Versions(kafka=value("kafka.version"), dynamodb_local=value("dynamodb.local.version"))


def cache_root() -> Path:
    """Where resolved jars are kept: `CAF_JAR_CACHE`, else the user's cache folder."""
    configured = os.environ.get("CAF_JAR_CACHE")
    if configured:
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "caf-devstack"


def resolve(profile: str) -> Path:
    """Return the folder holding every runtime jar of `profile`, resolving it if needed."""
    digest = hashlib.sha256(POM.read_bytes()).hexdigest()[:12]
    target = cache_root() / f"{profile}-{digest}"
    if (target / _COMPLETE).exists():
        return target
    mvn = shutil.which("mvn")
    if mvn is None:
        raise StackError("Maven (mvn) is needed to fetch the stack's jars; install Maven 3.8+")
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    command = [
        mvn,
        "--batch-mode",
        "--quiet",
        "-f",
        str(POM),
        f"-P{profile}",
        f"{DEPENDENCY_PLUGIN}:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={staging}",
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise StackError(
            f"Maven could not resolve profile {profile!r}:\n{result.stdout}{result.stderr}"
        )
    (staging / _COMPLETE).write_text(digest)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target


_MAIN_JARS = {"kafka": r"kafka_2\.13-([0-9.]+)\.jar", "dynamodb": r"DynamoDBLocal-([0-9.]+)\.jar"}


def version(profile: str) -> str:
    """The version of the profile's main artifact, read off the resolved jar's name."""
    import re  # noqa: PLC0415 - only the benchmark asks

    for jar in sorted(resolve(profile).glob("*.jar")):
        found = re.fullmatch(_MAIN_JARS[profile], jar.name)
        if found:
            return found.group(1)
    return "unknown"
