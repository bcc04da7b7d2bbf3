"""DynamoDB Local as a process, with its data on disk so it survives a restart."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from devstack import jars
from devstack.errors import StackError
from devstack.process import ManagedProcess

MAIN_CLASS = "software.amazon.dynamodb.services.local.main.ServerRunner"
# DynamoDB Local wants an alphanumeric key id; nothing checks the secret.
LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}


@dataclass(frozen=True)
class DynamoDBLocal:
    """One DynamoDB Local server whose database and log live in `workdir`."""

    workdir: Path
    port: int = 8000

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def process(self) -> ManagedProcess:
        return ManagedProcess("dynamodb", self.workdir)

    def start(self, timeout: float = 60.0) -> None:
        if self.process.pid() is not None:
            self.wait_ready(timeout)
            return
        java = shutil.which("java")
        if java is None:
            raise StackError("Java 17+ is needed to run DynamoDB Local")
        libs = jars.resolve("dynamodb")
        data = self.workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        self.process.start(
            [
                java,
                "-Xms64m",
                "-Xmx512m",
                f"-Djava.library.path={libs}",
                f"-Dsqlite4java.library.path={libs}",
                "-cp",
                f"{libs}/*",
                MAIN_CLASS,
                "-port",
                str(self.port),
                "-dbPath",
                str(data),
                "-sharedDb",
                "-disableTelemetry",
            ],
        )
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.pid() is None:
                raise StackError(
                    f"DynamoDB Local exited during start-up:\n{self.process.log_tail()}"
                )
            if answers_list_tables(self.endpoint):
                return
            time.sleep(0.3)
        raise StackError(
            f"DynamoDB Local not ready after {timeout:.0f}s:\n{self.process.log_tail()}"
        )

    def stop(self) -> bool:
        return self.process.stop(timeout=20.0)


def answers_list_tables(endpoint: str) -> bool:
    client = boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        config=Config(connect_timeout=1, read_timeout=2, retries={"max_attempts": 1}),
    )
    try:
        client.list_tables(Limit=1)
    except (BotoCoreError, ClientError):
        return False
    return True
