"""The local S3-compatible object store with Object Lock: SeaweedFS, built from the Go module proxy.

Signature evidence (ESSAR, issue 18) needs a real server that implements S3 Object Lock in
compliance mode, conditional writes and server-side encryption, not a mock. SeaweedFS (Apache
2.0) implements all three. MinIO, the usual choice, is under the AGPL; SeaweedFS is not.

`build()` compiles `weed` once from a pinned pseudo-version (the module's go.mod carries one
`replace`, which `go install` refuses, so a two-file wrapper module repeats it) and caches the
binary like the Kafka jars (`CAF_JAR_CACHE`, else `~/.cache/caf-devstack`). `start()` runs one
`weed server` (master, volume, filer and S3 gateway in one process) with its data in `workdir`,
so objects and their locks survive a restart.

Each principal has its own access key (least privilege, as IAM would give it): `provisioner`
administers buckets, `poster` writes evidence, `query` and the `operator` read it (the names of
the Kafka principals, `devstack.access`).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from devstack import jars
from devstack.errors import StackError
from devstack.process import ManagedProcess

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MODULE = "github.com/seaweedfs/seaweedfs"
VERSION = "v0.0.0-20261109003541-7506e5f91cd6"  # the commit of RELEASE
# the release: Compose runs its image, chrislusf/seaweedfs:<RELEASE> (a unit test compares)
RELEASE = "4.53"
# the replace directive of SeaweedFS's own go.mod (a module deleted upstream)
REPLACE = "github.com/tyler-smith/go-bip39 => github.com/cosmos/go-bip39 v1.0.0"
GO_VERSION = "1.26.6"

# principal -> SeaweedFS actions (docs/operations.md, "Signature evidence")
PRINCIPALS = {
    "provisioner": ["Admin"],
    # PutObject with its retention (Object Lock refuses deletes), HeadBucket
    "poster": ["Write", "Read", "PutObjectRetention", "GetObjectRetention"],
    "query": ["Read", "List", "GetObjectRetention"],
    "operator": ["Read", "List", "GetObjectRetention"],
}


def binary() -> Path:
    return jars.cache_root() / f"seaweedfs-{VERSION}" / "weed"


def build() -> Path:
    """The `weed` binary, built once from the Go module proxy and cached."""
    target = binary()
    if target.exists():
        return target
    go = shutil.which("go")
    if go is None:
        raise StackError("Go is needed to build the local object store (SeaweedFS)")
    module = target.parent / "module"
    shutil.rmtree(module, ignore_errors=True)
    module.mkdir(parents=True)
    (module / "go.mod").write_text(
        f"module caf.local/objectstore\n\ngo {GO_VERSION}\n\n"
        f"require {MODULE} {VERSION}\n\nreplace {REPLACE}\n"
    )
    (module / "tools.go").write_text(
        f'//go:build tools\n\npackage tools\n\nimport _ "{MODULE}/weed"\n'
    )
    env = {**os.environ, "GOFLAGS": "-mod=mod"}
    partial = target.with_name("weed.partial")
    for command in (
        [go, "mod", "tidy"],
        [go, "build", "-trimpath", "-o", str(partial), f"{MODULE}/weed"],
    ):
        result = subprocess.run(
            command, cwd=module, env=env, capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise StackError(
                f"building SeaweedFS failed ({' '.join(command[1:3])}):\n"
                f"{result.stdout[-2000:]}{result.stderr[-4000:]}"
            )
    partial.rename(target)
    return target


@dataclass(frozen=True)
class Ports:
    """Every port one `weed server` listens on (gRPC ports too: no +10000 surprises)."""

    s3: int
    s3_grpc: int
    master: int
    master_grpc: int
    volume: int
    volume_grpc: int
    filer: int
    filer_grpc: int

    @classmethod
    def around(cls, s3: int) -> Ports:
        """The default layout: everything derived from the S3 port (8333 → 8334 … 8340)."""
        return cls(s3, s3 + 1, s3 + 2, s3 + 3, s3 + 4, s3 + 5, s3 + 6, s3 + 7)


@dataclass(frozen=True)
class ObjectStore:
    """One SeaweedFS server whose data, identities and log live in `workdir`."""

    workdir: Path
    ports: Ports

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports.s3}"

    @property
    def process(self) -> ManagedProcess:
        return ManagedProcess("objectstore", self.workdir)

    def credentials(self) -> dict[str, dict[str, str]]:
        """Each principal's access key and secret, made at the first start."""
        path = self.workdir / "identities.json"
        if path.exists():
            known: dict[str, dict[str, str]] = json.loads(path.read_text())
            if set(known) == set(PRINCIPALS):
                return known
        made = {
            name: {"key": f"caf-{name.replace('_', '-')}", "secret": secrets.token_hex(20)}
            for name in PRINCIPALS
        }
        self.workdir.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(made))
        path.chmod(0o600)
        return made

    def environment(self, principal: str) -> dict[str, str]:
        """S3_ENDPOINT and the access key of `principal`."""
        found = self.credentials().get(principal)
        if found is None:
            return {"S3_ENDPOINT": self.endpoint}
        return {
            "S3_ENDPOINT": self.endpoint,
            "S3_ACCESS_KEY_ID": found["key"],
            "S3_SECRET_ACCESS_KEY": found["secret"],
        }

    def _config_file(self) -> Path:
        identities = [
            {
                "name": name,
                "credentials": [{"accessKey": cred["key"], "secretKey": cred["secret"]}],
                "actions": PRINCIPALS[name],
            }
            for name, cred in self.credentials().items()
        ]
        path = self.workdir / "s3.json"
        path.write_text(json.dumps({"identities": identities}))
        path.chmod(0o600)
        return path

    def _sse_key(self) -> str:
        """SSE-S3's key of this server (in production: the bucket's KMS key)."""
        path = self.workdir / "sse.key"
        if not path.exists():
            path.write_text(secrets.token_hex(32))
            path.chmod(0o600)
        return path.read_text().strip()

    def start(self, timeout: float = 60.0) -> None:
        if self.process.pid() is not None:
            self.wait_ready(timeout)
            return
        weed = build()
        data = self.workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        p = self.ports
        self.process.start(
            [
                str(weed),
                "server",
                f"-dir={data}",
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                "-volume.max=0",
                "-master.volumeSizeLimitMB=64",
                f"-master.port={p.master}",
                f"-master.port.grpc={p.master_grpc}",
                f"-volume.port={p.volume}",
                f"-volume.port.grpc={p.volume_grpc}",
                f"-filer.port={p.filer}",
                f"-filer.port.grpc={p.filer_grpc}",
                "-s3",
                f"-s3.port={p.s3}",
                f"-s3.port.grpc={p.s3_grpc}",
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
                f"-s3.config={self._config_file()}",
            ],
            env={**os.environ, "WEED_S3_SSE_KEY": self._sse_key()},
        )
        self.wait_ready(timeout)

    def client(self, principal: str = "provisioner") -> S3Client:
        cred = self.credentials()[principal]
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=cred["key"],
            aws_secret_access_key=cred["secret"],
            config=Config(
                connect_timeout=1,
                read_timeout=3,
                retries={"max_attempts": 1},
                s3={"addressing_style": "path"},
            ),
        )

    def answers(self) -> bool:
        """The S3 gateway answers and the master has a volume server to write to (after a
        restart the gateway answers seconds before a write can succeed)."""
        try:
            self.client().list_buckets()
            url = f"http://127.0.0.1:{self.ports.master}/dir/assign"
            with urllib.request.urlopen(url, timeout=3) as answer:
                assigned = json.loads(answer.read())
        except (BotoCoreError, ClientError, OSError, ValueError):
            return False
        return "fid" in assigned

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.pid() is None:
                raise StackError(f"SeaweedFS exited during start-up:\n{self.process.log_tail()}")
            if self.answers():
                return
            time.sleep(0.3)
        raise StackError(f"SeaweedFS not ready after {timeout:.0f}s:\n{self.process.log_tail()}")

    def stop(self) -> bool:
        # a graceful stop takes SeaweedFS ~15 s (its lock ring winds down); what it has
        # acknowledged is on disk, so a short wait and then SIGKILL loses nothing
        return self.process.stop(timeout=3.0)
