"""`make bench` measures what authenticity costs; the measurement runs from inside the bench's
own event loop (it once failed there, after the whole bench had run)."""

from __future__ import annotations

import asyncio

import pytest

from devstack import auth_bench

pytestmark = pytest.mark.unit


async def test_the_authenticity_cost_is_measured_from_inside_a_running_event_loop() -> None:
    figures = await asyncio.to_thread(auth_bench.measure, 20)
    assert figures.record_us > 0
    assert figures.assertion_us > 0
    assert "verify a record's signature" in auth_bench.table(figures)
