"""Service processes started, killed, paused and scaled on purpose (fault runs, benchmarks).

Each replica is `python -m services.<name>` with its own health port; replicas of one service
share its consumer groups, so starting or stopping one moves partitions (a rebalance).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import signal
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from devstack.errors import StackError

SERVICES = ("intake", "validator", "caf_poster", "notifier")


def free_port() -> int:
    return free_ports(1)[0]


# Where listening ports are picked when the kernel does not say its ephemeral range (Linux's
# default starts at 32768).
_EPHEMERAL_FROM = 32768
_LISTEN_FROM = 20000


def free_ports(count: int) -> list[int]:
    """`count` distinct free ports below the kernel's ephemeral range, all held at once while
    they are picked (picked one by one and released, two of them can come out the same).

    Below the ephemeral range because a process that restarts (the fault run restarts the
    broker, DynamoDB Local and the object store) must get its ports back: one from the
    ephemeral range can be taken meanwhile by an outgoing connection of any process (the
    services reconnecting to it, for one), and the restart then fails with "address already
    in use"."""
    first = _LISTEN_FROM if _ephemeral_start() > _LISTEN_FROM + count else 1024
    candidates = random.SystemRandom().sample(range(first, _ephemeral_start()), k=4 * count + 64)
    ports: list[int] = []
    with contextlib.ExitStack() as held:
        for port in candidates:
            probe = held.enter_context(socket.socket())
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue  # in use
            ports.append(port)
            if len(ports) == count:
                return ports
    msg = f"no {count} free ports below {_ephemeral_start()}"
    raise StackError(msg)


def _ephemeral_start() -> int:
    """The first port of the kernel's ephemeral range (outgoing connections' source ports)."""
    try:
        low = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0]
        return int(low)
    except (OSError, ValueError, IndexError):
        return _EPHEMERAL_FROM


@dataclass
class Replica:
    """One process of a service."""

    name: str
    service: str
    port: int
    process: asyncio.subprocess.Process
    paused: bool = False

    @property
    def alive(self) -> bool:
        return self.process.returncode is None

    def ready(self) -> bool:
        return _get(self.port, "/readyz") is not None

    def handled(self) -> float:
        """Messages this process has finished (any outcome), from its /metrics."""
        page = _get(self.port, "/metrics") or ""
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in page.splitlines()
            if line.startswith("caf_messages_total{")
        )


def metric_samples(port: int, metric: str) -> dict[str, float]:
    """The samples of a counter on a process's /metrics, by their label text
    (`operation="Query"`); empty when the process does not answer."""
    page = _get(port, "/metrics") or ""
    samples: dict[str, float] = {}
    for line in page.splitlines():
        if line.startswith(f"{metric}{{"):
            labels, value = line[len(metric) + 1 :].rsplit("} ", 1)
            samples[labels] = float(value)
    return samples


def _get(port: int, path: str) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
            return response.read().decode() if response.status == 200 else None
    except (urllib.error.URLError, OSError):
        return None


class Fleet:
    """The service replicas of one pipeline (one topic and table prefix)."""

    def __init__(
        self,
        env: Mapping[str, str],
        logs: Path,
        identity: Callable[[str], Mapping[str, str]] | None = None,
    ) -> None:
        self.env = dict(env)
        self.logs = logs
        self._identity = identity  # per service: its own Kafka principal's credentials
        self.replicas: list[Replica] = []
        self._numbers = itertools.count(1)

    def of(self, service: str) -> list[Replica]:
        return [r for r in self.replicas if r.service == service and r.alive]

    async def start(self, service: str, *, wait: bool = True) -> Replica:
        port = free_port()
        name = f"{service}-{next(self._numbers)}"
        self.logs.mkdir(parents=True, exist_ok=True)
        identity = self._identity(service) if self._identity else {}
        env = {**self.env, **identity, f"{service.upper()}_HEALTH_PORT": str(port)}
        with (self.logs / f"{name}.log").open("ab") as log:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", f"services.{service}", env=env, stdout=log, stderr=log
            )
        replica = Replica(name, service, port, process)
        self.replicas.append(replica)
        if wait:
            await self.until_ready(replica)
        return replica

    async def until_ready(self, replica: Replica, limit_s: float = 60.0) -> float:
        """Wait until the replica answers /readyz; return how long that took."""
        started = time.monotonic()
        while not await asyncio.to_thread(replica.ready):
            if not replica.alive:
                raise StackError(f"{replica.name} exited; see {self.logs / replica.name}.log")
            if time.monotonic() - started > limit_s:
                raise StackError(f"{replica.name} not ready; see {self.logs / replica.name}.log")
            await asyncio.sleep(0.2)
        return time.monotonic() - started

    async def kill(self, replica: Replica) -> None:
        """SIGKILL: no drain, no commit."""
        if replica.alive:
            replica.process.kill()
        await replica.process.wait()

    def pause(self, replica: Replica) -> None:
        replica.process.send_signal(signal.SIGSTOP)
        replica.paused = True

    def resume(self, replica: Replica) -> None:
        if replica.alive:
            replica.process.send_signal(signal.SIGCONT)
        replica.paused = False

    async def terminate(self, replica: Replica, limit_s: float = 60.0) -> int | None:
        """SIGTERM and wait: in-flight work finishes and is committed."""
        if replica.paused:
            self.resume(replica)
        if replica.alive:
            replica.process.terminate()
        try:
            return await asyncio.wait_for(replica.process.wait(), limit_s)
        except TimeoutError:
            await self.kill(replica)
            return None

    async def stop_all(self) -> dict[str, int | None]:
        alive = [r for r in self.replicas if r.alive]
        codes = await asyncio.gather(*(self.terminate(r) for r in alive))
        return {r.name: code for r, code in zip(alive, codes, strict=True)}
