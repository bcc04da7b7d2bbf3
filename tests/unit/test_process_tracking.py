"""How the local stack knows its processes (devstack.process) and what it counts of their CPU
(devstack.figures): through psutil, pid files that survive a reused pid, and the pid files
earlier versions wrote."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from devstack.figures import cpu_seconds
from devstack.process import ManagedProcess, PidRecord, started_since_boot

pytestmark = pytest.mark.unit

SLEEP = [sys.executable, "-c", "import time; time.sleep(60)"]


@pytest.fixture
def sleeper(tmp_path: Path) -> Iterator[ManagedProcess]:
    """A running process tracked by its pid file; stopped afterwards whatever the test did to
    its pid file (and so reaped: no zombie, no ResourceWarning)."""
    process = ManagedProcess("sleeper", tmp_path)
    pid = process.start(SLEEP)
    recorded = process.pidfile.read_text()
    yield process
    if running(pid):
        process.pidfile.write_text(recorded)
        assert process.stop(timeout=5)


def kernel_start_ticks(pid: int) -> int:
    """What earlier versions wrote in a pid file: Linux's start of `pid` in clock ticks."""
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()[19])


def running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_a_started_process_is_found_again_by_its_pid_file_and_stopping_it_removes_both(
    sleeper: ManagedProcess,
) -> None:
    pid = sleeper.pid()
    assert pid is not None
    started = started_since_boot(pid)
    assert started is not None
    assert PidRecord.parse(sleeper.pidfile.read_text()) == PidRecord(pid, started)
    assert sleeper.stop(timeout=5)
    assert not running(pid)
    assert sleeper.pid() is None
    assert not sleeper.pidfile.exists()


def test_a_pid_reused_by_another_process_is_not_ours_and_stopping_leaves_that_process_alone(
    sleeper: ManagedProcess,
) -> None:
    """The pid file names a process that started at another time: whatever runs under that pid
    now is someone else's, and must not be signalled."""
    pid = sleeper.pid()
    assert pid is not None
    started = started_since_boot(pid)
    assert started is not None
    sleeper.pidfile.write_text(PidRecord(pid, started - 1.0).text())

    assert sleeper.pid() is None
    assert not sleeper.stop(timeout=5)
    assert running(pid)
    assert not sleeper.pidfile.exists()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="earlier versions ran on Linux")
def test_a_pid_file_written_by_an_earlier_version_still_names_its_process(
    sleeper: ManagedProcess,
) -> None:
    """`<pid> <start ticks>`, as the stack of an earlier version left it: `make down` after an
    upgrade still stops what that version started."""
    pid = sleeper.pid()
    assert pid is not None
    sleeper.pidfile.write_text(f"{pid} {kernel_start_ticks(pid)}")

    assert sleeper.pid() == pid
    assert sleeper.stop(timeout=5)
    assert not running(pid)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="earlier versions ran on Linux")
@pytest.mark.parametrize("ticks_apart", [1, -1, 100])
def test_an_earlier_version_s_pid_file_whose_pid_was_reused_names_nothing_and_kills_nothing(
    sleeper: ManagedProcess, ticks_apart: int
) -> None:
    pid = sleeper.pid()
    assert pid is not None
    sleeper.pidfile.write_text(f"{pid} {kernel_start_ticks(pid) + ticks_apart}")

    assert sleeper.pid() is None
    assert not sleeper.stop(timeout=5)
    assert running(pid)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "garbage",
        "12345",
        "12345 0",  # an earlier version that could not read the start: nothing is ours
        "12345 12 34",
        "[12345, 1.5]",
        '{"pid": "12345", "started_since_boot_s": 1.5}',
        '{"pid": 12345}',
        '{"pid": 12345, "started_since_boot_s": null}',
        '{"pid": true, "started_since_boot_s": 1.5}',
    ],
)
def test_a_pid_file_that_says_nothing_readable_names_no_process(text: str) -> None:
    assert PidRecord.parse(text) is None


def test_a_pid_record_reads_back_what_it_wrote() -> None:
    record = PidRecord(4242, 12345.678901)
    assert PidRecord.parse(record.text()) == record
    assert record.names(12345.678901 + 0.0001)
    assert not record.names(12345.678901 + 0.01)  # one clock tick apart: another process
    assert not record.names(None)


def test_a_process_that_ended_has_no_start_even_before_it_is_reaped() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + 10
        while running(child.pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert started_since_boot(child.pid) is None  # a zombie until we wait for it
    finally:
        child.wait()
    assert started_since_boot(child.pid) is None


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="the kernel's ticks: Linux")
def test_the_start_since_boot_is_the_kernel_s_start_ticks_so_earlier_pid_files_compare() -> None:
    started = started_since_boot(os.getpid())
    assert started is not None
    assert abs(started - kernel_start_ticks(os.getpid()) / os.sysconf("SC_CLK_TCK")) < 1e-3


BURN_CHILD = (
    "import subprocess, sys, time\n"
    "subprocess.run([sys.executable, '-c',"
    " 'import time\\nwhile time.process_time() < 0.6: pass'], check=True)\n"
    "print('child done', flush=True)\n"
    "time.sleep(60)\n"
)


def test_a_process_s_cpu_time_is_its_own_not_that_of_the_children_it_waited_for() -> None:
    """As the benchmark has always counted (utime + stime, not cutime + cstime): a parent's
    figure does not grow by the CPU of a child it waited for, so no CPU is counted twice."""
    with subprocess.Popen(  # noqa: S603 - this interpreter, this file's script
        [sys.executable, "-c", BURN_CHILD], stdout=subprocess.PIPE, text=True
    ) as parent:
        try:
            assert parent.stdout is not None
            assert parent.stdout.readline().strip() == "child done"
            children = psutil.Process(parent.pid).cpu_times()
            assert children.children_user + children.children_system >= 0.5  # the child's burn
            own = cpu_seconds(parent.pid)
            assert 0 < own < 0.4
        finally:
            parent.kill()
    assert cpu_seconds(parent.pid) == 0.0  # gone
