"""The project's own stack: starting it again is harmless; it knows what it runs; a run that
fails to start it leaves nothing running."""

from __future__ import annotations

from pathlib import Path

import pytest

from devstack import chaos
from devstack.errors import StackError
from devstack.stack import Stack
from tests.conftest import Infrastructure

pytestmark = pytest.mark.integration


def test_starting_the_running_stack_again_leaves_the_same_processes(infra: Infrastructure) -> None:
    stack = infra.stack
    if stack is None:
        pytest.skip("infrastructure is external to this test session")
    before = (stack.kafka.process.pid(), stack.dynamodb.process.pid())

    stack.start_infrastructure()

    assert before == (stack.kafka.process.pid(), stack.dynamodb.process.pid())
    assert None not in before
    status = stack.status()
    assert status["kafka"].startswith("running")
    assert status["dynamodb"].startswith("running")


async def test_a_fault_run_whose_kafka_fails_to_start_stops_the_dynamodb_it_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[Stack] = []

    class KafkaWillNotStart(Stack):
        def start_infrastructure(self) -> None:
            started.append(self)
            self.dynamodb.start()
            msg = "kafka did not start"
            raise StackError(msg)

    monkeypatch.setenv("CAF_CHAOS_DIR", str(tmp_path))
    monkeypatch.setattr(chaos, "Stack", KafkaWillNotStart)

    with pytest.raises(StackError, match="kafka did not start"):
        await chaos._main(chaos._parser().parse_args(["--messages", "10"]))

    (stack,) = started
    running = stack.dynamodb.process.pid()
    stack.dynamodb.stop()  # so that a failure here leaves nothing behind either
    assert running is None, "DynamoDB Local left running"
