"""The registry barrier: concurrent grants share one reading of the registry group's offsets."""

from __future__ import annotations

import asyncio
import time

from caf_runtime.feed_barrier import FeedBarrier


class _Counted(FeedBarrier):
    """A barrier whose offset reading is counted and answers `behind` times 'not yet'."""

    def __init__(self, behind: int = 0) -> None:
        super().__init__({}, "caf.practitioners.v1", "caf-validator-registry", wait_s=5)
        self.readings = 0
        self.behind = behind

    async def _caught_up(self) -> bool:
        self.readings += 1
        await asyncio.sleep(0.01)  # a round trip to the broker
        return self.readings > self.behind


async def test_concurrent_grants_share_one_reading_of_the_offsets() -> None:
    barrier = _Counted()
    published = int(time.time() * 1000) - 1
    assert all(await asyncio.gather(*(barrier.wait_until_applied(published) for _ in range(64))))
    assert barrier.readings == 1


async def test_a_grant_published_after_a_reading_began_waits_for_a_reading_of_its_own() -> None:
    barrier = _Counted()
    first = asyncio.ensure_future(barrier.wait_until_applied(int(time.time() * 1000) - 1))
    await asyncio.sleep(0.002)  # the first reading is under way
    later = int(time.time() * 1000) + 1
    assert await barrier.wait_until_applied(later)
    assert await first
    assert barrier.readings == 2


async def test_a_view_behind_the_feed_is_read_again_until_it_catches_up() -> None:
    barrier = _Counted(behind=3)
    assert await barrier.wait_until_applied(int(time.time() * 1000) - 1)
    assert barrier.readings == 4
