"""A background process owned by the stack, tracked through a pid file in its work folder."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

# Children started by this process, kept so they can be reaped (no zombies, no ResourceWarning).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True)
class ManagedProcess:
    """One long-running child: started detached, found again by its pid file, stopped cleanly.

    The pid file records the pid and the kernel's start time of that process, so a pid reused
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
            pid_text, started = self.pidfile.read_text().split()
            pid = int(pid_text)
        except (FileNotFoundError, ValueError):
            return None
        state = _proc_state(pid)
        if state is None or state[0] == "Z" or state[1] != started:
            return None
        return pid

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
        state = _proc_state(child.pid)
        self.pidfile.write_text(f"{child.pid} {state[1] if state else 0}")
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


def _proc_state(pid: int) -> tuple[str, str] | None:
    """(state letter, start time in clock ticks) of a live pid, from /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(") ", 1)[-1].split()
    return fields[0], fields[19]
