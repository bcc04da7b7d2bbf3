"""`make bench`'s chart (BENCHMARKS.png): latency by offered load, and CPU per grant by process."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib as mpl

mpl.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # after the backend is chosen

if TYPE_CHECKING:
    from devstack.bench import Measurement

QUANTILES = ("p50", "p99")


def draw(measurements: list[Measurement], loads: list[int], path: Path) -> None:
    """Left: p50 and p99 latency (ms, log scale) at each offered load, per system; a load the
    system could not keep up with is drawn hollow. Right: CPU ms per grant, stacked by process."""
    figure, (latency, cpu) = plt.subplots(1, 2, figsize=(12, 4.8), layout="constrained")
    for measurement, colour in zip(measurements, ("tab:blue", "tab:orange"), strict=False):
        for quantile, style in zip(QUANTILES, ("-", "--"), strict=True):
            figures = [measurement.latency[load] for load in loads if load in measurement.latency]
            xs = [load for load in loads if load in measurement.latency]
            ys = [max(f[quantile] * 1000, 0.1) for f in figures]
            latency.plot(xs, ys, style, color=colour, label=f"{measurement.name} {quantile}")
            for x, y, f in zip(xs, ys, figures, strict=True):
                latency.plot(
                    x, y, "o", color=colour, markerfacecolor=colour if f["complete"] else "white"
                )
    latency.set_yscale("log")
    latency.set_xlabel("offered load (grants/s)")
    latency.set_ylabel("publish → outcome (ms)")
    latency.set_title("Latency by offered load (hollow: saturated)")
    latency.grid(visible=True, which="both", alpha=0.3)
    latency.legend(fontsize="small")

    names = [m.name for m in measurements]
    processes = list(dict.fromkeys(p for m in measurements for p in m.cpu_per_1000))
    bottoms = [0.0] * len(measurements)
    for process in processes:
        heights = [m.cpu_per_1000.get(process, 0.0) for m in measurements]  # s/1000 = ms each
        cpu.bar(names, heights, bottom=bottoms, label=process)
        bottoms = [b + h for b, h in zip(bottoms, heights, strict=True)]
    cpu.set_ylabel("CPU ms per grant")
    cpu.set_title("CPU per grant, by process (during the burst)")
    cpu.legend(fontsize="small", ncols=2)
    figure.savefig(path, dpi=110)
    plt.close(figure)
