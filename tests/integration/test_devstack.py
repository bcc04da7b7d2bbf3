"""The project's own stack: starting it again is harmless; it knows what it runs."""

from __future__ import annotations

import pytest

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
