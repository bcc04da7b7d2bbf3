"""What the benchmarks share: progress on stderr, a process's CPU time, latency percentiles."""

from __future__ import annotations

import statistics
import sys
import time

import psutil

_STARTED = time.monotonic()


def progress(text: str) -> None:
    """What the bench is doing, how far, since when (stderr: the report is stdout)."""
    elapsed = int(time.monotonic() - _STARTED)
    print(f"[bench {elapsed // 60:3d}:{elapsed % 60:02d}] {text}", file=sys.stderr, flush=True)


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of process `pid` so far (0 when it is gone).

    The process's own time only, as the kernel counts it (Linux: utime + stime of
    `/proc/<pid>/stat`): not that of children it waited for (psutil's `children_user` and
    `children_system`, the kernel's cutime and cstime), so every figure of a process is its own
    and the processes of a run add up without counting a child twice."""
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:  # gone, or not ours to look at
        return 0.0
    return times.user + times.system


def percentiles(values: list[float]) -> dict[str, float]:
    """p50, p95 and p99 of `values` (0 where there are too few)."""
    if len(values) < 2:
        return {"p50": values[0] if values else 0.0, "p95": 0.0, "p99": 0.0}
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50": statistics.median(values), "p95": cuts[94], "p99": cuts[98]}
