"""A short fault-injection run inside the suite (`make chaos` runs the full one): kills, a
paused zombie, scaling, a broker restart, a DynamoDB Local restart and two restarts of the object
store of signature evidence lose nothing, duplicate nothing, and reprocessing everything
afterwards changes nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


@pytest.mark.timeout(1200)
def test_a_short_fault_run_ends_with_nothing_lost_and_nothing_duplicated(
    tmp_path: Path, project_root: Path
) -> None:
    command = [sys.executable, "-m", "devstack.chaos", "--messages", "2000", "--rate", "100"]
    command += ["--interval", "3-5", "--no-baseline", "--json"]
    process = subprocess.Popen(  # noqa: S603 - our own module
        command,
        cwd=project_root,
        env={**os.environ, "CAF_CHAOS_DIR": str(tmp_path / "chaos")},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=1100)
    except subprocess.TimeoutExpired:
        # SIGINT, not SIGKILL: the run stops the Kafka and DynamoDB Local it started
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=120)
        raise AssertionError(f"the fault run did not finish in time:\n{stderr[-3000:]}") from None
    assert process.returncode in (0, 2), stderr[-3000:]
    (run,) = json.loads(stdout)
    report, faults = run["report"], run["faults"]
    assert run["messages"] >= 2000
    assert report["lost"] == 0, report["lost_ids"]
    assert report["removals_lost"] == 0, report["lost_ids"]
    assert report["duplicated"] == 0
    assert report["caf_unexpected"] == 0, "a grant stored twice or stored without being posted"
    assert report["caf_missing"] == 0
    assert report["duplicate_notifications"] == 0
    assert report["grants_ok"] == run["grants_expected"]
    assert faults.get("kafka_restart") == 1
    assert faults.get("dynamodb_restart") == 1
    assert faults.get("objectstore_restart") == 2  # e-signed grants wait for it (ES-03)
    assert faults.get("kill", 0) >= 1
    assert run["replay"]["caf_changes"] == 0
    assert run["replay"]["new_notifications"] == 0
    assert process.returncode == 0
