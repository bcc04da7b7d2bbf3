"""Sampling profiles of running processes (py-spy), summarised by where the CPU goes.

`make bench` records the services while the burst drains (`--profile`), so the benchmark's
numbers come with what limits them. Each sample is charged twice: to the library of its innermost
frame (what the CPU runs), and to the deepest line of our code on the stack (which of our calls
it serves).
"""

from __future__ import annotations

import asyncio
import re
import shutil
import signal
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

# top-level module of the innermost frame → what the time is spent on
CATEGORIES = {
    "botocore": "DynamoDB client (botocore)",
    "aiobotocore": "DynamoDB client (botocore)",
    "aiohttp": "HTTP (aiohttp)",
    "yarl": "HTTP (aiohttp)",
    "multidict": "HTTP (aiohttp)",
    "aiokafka": "Kafka client (aiokafka)",
    "faststream": "FastStream",
    "fast_depends": "FastStream",
    "anyio": "FastStream",
    "pydantic": "pydantic",
    "pydantic_core": "pydantic",
    "json": "json",
    "asyncio": "event loop",
    "uvloop": "event loop",
    "selectors.py": "event loop",
    "threading.py": "threads",
    "concurrent": "threads",
    "prometheus_client": "metrics",
    "logging": "logging",
    "services": "our code",
    "caf_runtime": "our code",
    "schemas": "our code",
}
OURS = ("services/", "caf_runtime/", "schemas/")
ENTRY_POINTS = ("caf_runtime/service.py:run", "__main__.py:<module>")  # under every sample
NO_HANDLER = "no handler on the stack (event loop, Kafka client tasks)"
RATE_HZ = 25  # low enough that py-spy's own CPU barely touches the figures it sits beside
_FRAME = re.compile(r"\((?P<path>[^()]*):\d+\)$")


def py_spy() -> str | None:
    """The py-spy executable beside this interpreter, or on the PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


class Profiler:
    """py-spy recorders attached to processes until `stop`, writing collapsed stacks."""

    def __init__(self, directory: Path, pids: dict[str, int]) -> None:
        self.directory = directory
        self._pids = pids
        self._recorders: list[asyncio.subprocess.Process] = []

    async def start(self) -> None:
        executable = py_spy()
        if executable is None:
            msg = "py-spy is not installed (pip install -e '.[dev]')"
            raise RuntimeError(msg)
        self.directory.mkdir(parents=True, exist_ok=True)
        for name, pid in self._pids.items():
            with (self.directory / f"{name}.py-spy.log").open("wb") as log:
                self._recorders.append(
                    await asyncio.create_subprocess_exec(
                        executable,
                        "record",
                        "--pid",
                        str(pid),
                        "--rate",
                        str(RATE_HZ),
                        "--nonblocking",
                        "--format",
                        "raw",
                        "--output",
                        str(self.directory / f"{name}.txt"),
                        stdout=log,
                        stderr=log,
                    )
                )

    async def stop(self) -> dict[str, Profile]:
        for recorder in self._recorders:
            if recorder.returncode is None:
                recorder.send_signal(signal.SIGINT)
        await asyncio.gather(*(recorder.wait() for recorder in self._recorders))
        return {
            name: categorise((self.directory / f"{name}.txt").read_text())
            for name in self._pids
            if (self.directory / f"{name}.txt").exists()
        }


@dataclass
class Profile:
    """One process's samples: by library of the innermost frame, and by our deepest frame (the
    line of our code that is waiting on, or running, whatever the sample caught)."""

    libraries: Counter[str] = field(default_factory=Counter)
    call_sites: Counter[str] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return sum(self.libraries.values())


def categorise(collapsed: str) -> Profile:
    """A `Profile` from py-spy's raw (collapsed stacks) output."""
    profile = Profile()
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        top = _path(frames[-1]).split("/", 1)[0]
        profile.libraries[CATEGORIES.get(top, "other")] += int(count)
        ours = [
            _site(frame)
            for frame in frames
            if _path(frame).startswith(OURS) and not _site(frame).endswith(ENTRY_POINTS)
        ]
        site = ours[-1] if ours else NO_HANDLER
        profile.call_sites[site] += int(count)
    return profile


def _path(frame: str) -> str:
    match = _FRAME.search(frame)
    return match.group("path") if match else ""


def _site(frame: str) -> str:
    """`function (path:line)` → `path:function`."""
    function = frame.split(" (", 1)[0]
    return f"{_path(frame)}:{function}"


def shares(samples: Counter[str]) -> dict[str, float]:
    """Each key's share of the samples, largest first."""
    total = sum(samples.values()) or 1
    return {name: count / total for name, count in samples.most_common()}
