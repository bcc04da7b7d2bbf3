"""`make bench`'s targets section (issue 16): each target against the run's figure, and for a
missed one what the same run's figures say bounds it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from devstack import bench_targets


@dataclass
class Run:
    sustained: float
    cpu_per_1000: dict[str, float]
    latency: dict[int, dict[str, Any]] = field(default_factory=dict)
    lone: list[float] = field(default_factory=list)


PIPELINE = Run(
    sustained=47.0,
    cpu_per_1000={
        "intake": 3.0,
        "validator": 5.0,
        "caf_poster": 7.0,
        "notifier": 2.0,
        "dynamodb": 12.0,
        "objectstore": 6.0,
        "kafka": 4.0,
    },
    latency={50: {"p99": 3.2, "complete": True}, 200: {"p99": 20.0, "complete": False}},
    lone=[0.1, 0.12, 0.2],
)
RELAY = Run(
    sustained=900.0,
    cpu_per_1000={"relay0": 0.1, "relay1": 0.1, "kafka": 1.0},
    latency={50: {"p99": 0.3}, 200: {"p99": 0.25}},
    lone=[0.04, 0.05],
)


def test_every_missed_target_says_no_and_names_what_bounds_it_from_the_same_run() -> None:
    rows = {row.target: row for row in bench_targets.rows(PIPELINE, RELAY, 140.0)}
    throughput = rows["sustained throughput"]
    assert (throughput.met, throughput.measured) == (False, "47.0 grants/s")
    assert "39.0 ms per grant on two cores allows 51 grants/s" in throughput.bound
    assert "reaches 140 grants/s (the floor)" in throughput.bound
    cpu = rows["CPU per grant, all processes"]
    assert "stand-ins of managed services take 22.0 ms" in cpu.bound
    assert "our four services 17.0 ms" in cpu.bound
    assert "a relay hop costs 0.10 ms" in cpu.bound
    at_50 = rows["p99 latency at 50 grants/s"]
    assert (at_50.met, at_50.measured) == (False, "3200 ms")
    assert "above what the pipeline sustains (47.0)" in at_50.bound
    lone = rows["a lone message (p50)"]
    assert (lone.met, lone.measured) == (False, "120 ms")
    assert "relay chain alone takes 45 ms" in lone.bound


def test_a_target_met_says_yes_and_chaos_is_left_to_its_own_run() -> None:
    fast = Run(
        sustained=300.0,
        cpu_per_1000={"intake": 1.0, "dynamodb": 5.0},
        latency={50: {"p99": 0.2}},
        lone=[0.03],
    )
    rows = {row.target: row for row in bench_targets.rows(fast, RELAY, 500.0)}
    assert rows["sustained throughput"].met
    assert rows["CPU per grant, all processes"].met
    assert rows["p99 latency at 50 grants/s"].met
    assert (
        "the relay chain's own p99 at 50 grants/s is 300 ms"
        in rows["p99 latency at 50 grants/s"].bound
    )
    assert rows["a lone message (p50)"].met
    chaos = [row for row in rows.values() if row.met is None]
    assert len(chaos) == 1
    assert "| — |" in bench_targets.table(fast, RELAY, 500.0)


def test_what_was_tried_is_a_table_with_a_row_per_step() -> None:
    rendered = bench_targets.tried().splitlines()
    assert rendered[0] == "| step | kept | measured |"
    assert len(rendered) == 2 + len(bench_targets.TRIED)
    assert all(line.count("|") >= 4 for line in rendered)
