"""What the benchmarks share: progress on stderr, a process's CPU time, latency percentiles."""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
_STARTED = time.monotonic()


def progress(text: str) -> None:
    """What the bench is doing, how far, since when (stderr: the report is stdout)."""
    elapsed = int(time.monotonic() - _STARTED)
    print(f"[bench {elapsed // 60:3d}:{elapsed % 60:02d}] {text}", file=sys.stderr, flush=True)


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of process `pid` so far (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def percentiles(values: list[float]) -> dict[str, float]:
    """p50, p95 and p99 of `values` (0 where there are too few)."""
    if len(values) < 2:
        return {"p50": values[0] if values else 0.0, "p95": 0.0, "p99": 0.0}
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50": statistics.median(values), "p95": cuts[94], "p99": cuts[98]}
