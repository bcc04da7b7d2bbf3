"""A background process owned by the stack, tracked through a pid file in its work folder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

# Children started by this process, kept so they can be reaped (no zombies, no ResourceWarning).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}

# How far apart two readings of one process's start may be and still name the same process: well
# under the kernel's clock tick (10 ms), well over the float error of psutil's arithmetic.
_SAME_START_S = 0.001


@dataclass(frozen=True)
class PidRecord:
    """What a pid file says: the pid, and when that process started, in seconds since the
    machine booted.

    Since boot rather than psutil's `create_time()` (seconds since the epoch): the epoch figure
    is the boot time plus the start, and moves whenever the clock is set or NTP nudges the boot
    time across a second; the start since boot never moves. On Linux it is the kernel's start
    ticks (`/proc/<pid>/stat`, field 22) divided by the clock tick rate, which is also how the
    pid files of earlier versions (`<pid> <ticks>`) are read.
    """

    pid: int
    started: float

    def text(self) -> str:
        return json.dumps({"pid": self.pid, "started_since_boot_s": self.started})

    @classmethod
    def parse(cls, text: str) -> PidRecord | None:
        """The record in `text`, this version's (JSON) or an earlier one's (`<pid> <ticks>`);
        None for anything else, which names no process of ours."""
        try:
            document = json.loads(text)
        except ValueError:
            return _legacy_record(text)
        if not isinstance(document, dict):
            return _legacy_record(text)
        pid, started = document.get("pid"), document.get("started_since_boot_s")
        if isinstance(pid, bool) or not isinstance(pid, int):
            return None
        if isinstance(started, bool) or not isinstance(started, int | float):
            return None
        return cls(pid, float(started))

    def names(self, started: float | None) -> bool:
        """Whether a live process that started at `started` (since boot) is this record's."""
        return started is not None and abs(started - self.started) < _SAME_START_S


def _legacy_record(text: str) -> PidRecord | None:
    """A pid file of an earlier version: `<pid> <start ticks>`, Linux's clock ticks since boot."""
    fields = text.split()
    if len(fields) != 2 or not all(field.isdigit() for field in fields):
        return None
    ticks = int(fields[1])
    if ticks == 0:  # the start was unknown when it was written: nothing can be ours
        return None
    return PidRecord(int(fields[0]), ticks / os.sysconf("SC_CLK_TCK"))


def started_since_boot(pid: int) -> float | None:
    """When the live process `pid` started, in seconds since boot; None when there is no such
    process, it is a zombie, or it may not be looked at."""
    for _ in range(3):
        boot = psutil.boot_time()
        try:
            process = psutil.Process(pid)
            if process.status() == psutil.STATUS_ZOMBIE:
                return None
            started = process.create_time()
        except psutil.Error:  # gone, a zombie, or not ours to look at
            return None
        # create_time() added the boot time it read then: the same as ours unless the clock was
        # set in between, in which case we read again
        if psutil.boot_time() == boot:
            return started - boot
    return None


@dataclass(frozen=True)
class ManagedProcess:
    """One long-running child: started detached, found again by its pid file, stopped cleanly.

    The pid file records the pid and the start of that process (`PidRecord`), so a pid reused
    by an unrelated process later is never mistaken for ours.
    """

    name: str
    workdir: Path

    @property
    def pidfile(self) -> Path:
        return self.workdir / f"{self.name}.pid"

    @property
    def logfile(self) -> Path:
        return self.workdir / f"{self.name}.log"

    def pid(self) -> int | None:
        """The pid of the running process, or None when it is not running."""
        try:
            record = PidRecord.parse(self.pidfile.read_text())
        except FileNotFoundError:
            return None
        if record is None or not record.names(started_since_boot(record.pid)):
            return None
        return record.pid

    def start(self, argv: Sequence[str], env: Mapping[str, str] | None = None) -> int:
        """Start the process in its own session (so a signal to the group reaches its children)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        with self.logfile.open("ab") as log:
            child = subprocess.Popen(
                list(argv),
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                start_new_session=True,
            )
        _CHILDREN[child.pid] = child
        started = started_since_boot(child.pid)
        if started is None:  # already gone: no pid file names it
            self.pidfile.unlink(missing_ok=True)
        else:
            self.pidfile.write_text(PidRecord(child.pid, started).text())
        return child.pid

    def stop(self, timeout: float = 30.0) -> bool:
        """SIGTERM the process group, wait up to `timeout`, then SIGKILL. True if it was running."""
        pid = self.pid()
        if pid is None:
            self.pidfile.unlink(missing_ok=True)
            return False
        _signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._alive(pid):
            time.sleep(0.1)
        if self._alive(pid):
            _signal_group(pid, signal.SIGKILL)
            while self._alive(pid):
                time.sleep(0.05)
        self.pidfile.unlink(missing_ok=True)
        return True

    def _alive(self, pid: int) -> bool:
        child = _CHILDREN.get(pid)
        if child is not None and child.poll() is not None:
            del _CHILDREN[pid]
            return False
        return self.pid() is not None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        os.kill(pid, sig)
