"""The check's memory (issue 17): what it may keep, when it may answer, and what drops it."""

from __future__ import annotations

from typing import Any

import pytest

from services.caf_query.cache import CURRENT_WITHIN, HORIZON, KEPT_FOR, ViewCache
from services.caf_query.views import GrantView, Position, apply
from tests.unit.builders import SteppedClock

pytestmark = pytest.mark.unit


def view(ref: str, offset: int, partition: int = 0, grant: int = 0) -> GrantView:
    event: dict[str, Any] = {
        "type": "AuthorizationPosted",
        "occurred_at": "2026-12-01T10:00:00+00:00",
        "taxpayer_ref": ref,
        "grant_id": f"{ref}:{grant}",
        "caf_number": "781234567",
        "form": "2848",
        "tax_matters": [{"tax_type": "Income", "form_number": "1040", "periods": ["2024"]}],
        "receive_notices": True,
    }
    made = apply(None, event, Position(partition, offset))
    assert made is not None
    return made


def current_cache(capacity: int = 10, remembered: int = 100) -> tuple[ViewCache, SteppedClock]:
    clock = SteppedClock()
    cache = ViewCache(capacity, remembered, clock)
    cache.current()
    return cache, clock


def read(cache: ViewCache, ref: str, views: list[GrantView]) -> None:
    with cache.reading(ref) as keep:
        keep(views)


def test_a_read_is_kept_and_answers_from_memory_while_the_reader_is_current() -> None:
    cache, clock = current_cache()
    assert cache.get("a") is None
    read(cache, "a", [view("a", 5)])
    assert cache.get("a") == [view("a", 5)]
    clock.now += CURRENT_WITHIN + 0.1  # the reader has not caught up since
    assert cache.get("a") is None
    cache.current()
    assert cache.get("a") == [view("a", 5)]


def test_an_event_of_the_taxpayer_drops_what_memory_holds() -> None:
    cache, _ = current_cache()
    read(cache, "a", [view("a", 5)])
    read(cache, "b", [view("b", 6)])
    cache.seen("a", "a:0", Position(0, 9))
    assert cache.get("a") is None
    assert cache.get("b") == [view("b", 6)]


def test_a_read_that_an_event_overtook_is_answered_but_not_kept() -> None:
    cache, _ = current_cache()
    with cache.reading("a") as keep:
        views = [view("a", 5)]  # what the table said
        cache.seen("a", "a:0", Position(0, 9))  # meanwhile the stream moved on
        keep(views)
    assert cache.get("a") is None


def test_a_read_is_kept_only_once_the_table_holds_the_newest_event_seen() -> None:
    cache, _ = current_cache()
    cache.seen("a", "a:0", Position(0, 9))
    read(cache, "a", [view("a", 5)])  # the projector has not applied offset 9 yet
    assert cache.get("a") is None
    read(cache, "a", [view("a", 9)])
    assert cache.get("a") is not None
    cache.seen("b", "b:0", Position(1, 4))
    read(cache, "b", [view("b", 4, partition=0)])  # offset 4, but of another partition
    assert cache.get("b") is None


def test_a_taxpayer_with_no_grants_is_kept_until_their_first_event() -> None:
    cache, _ = current_cache()
    read(cache, "new", [])
    assert cache.get("new") == []
    cache.seen("new", "new:0", Position(0, 1))
    assert cache.get("new") is None


def test_memory_keeps_the_most_recently_used_taxpayers_up_to_its_capacity() -> None:
    cache, _ = current_cache(capacity=2)
    read(cache, "a", [view("a", 1)])
    read(cache, "b", [view("b", 2)])
    assert cache.get("a") is not None  # a is now the most recently used
    read(cache, "c", [view("c", 3)])
    assert cache.get("b") is None
    assert cache.get("a") is not None
    assert cache.get("c") is not None


def test_with_more_recent_events_than_it_can_remember_memory_stops_answering() -> None:
    cache, clock = current_cache(remembered=2)
    read(cache, "a", [view("a", 1)])
    for offset, ref in enumerate(("x", "y", "z")):
        cache.seen(ref, f"{ref}:0", Position(0, 10 + offset))
    assert cache.get("a") is None  # three positions held, two allowed
    read(cache, "a", [view("a", 1)])
    assert cache.get("a") is None  # nor does it keep anything
    clock.now += HORIZON + 1
    cache.seen("w", "w:0", Position(0, 20))  # the old positions age out
    cache.current()
    read(cache, "a", [view("a", 1)])
    assert cache.get("a") == [view("a", 1)]


def test_no_capacity_means_every_look_up_reads_the_table() -> None:
    cache, _ = current_cache(capacity=0)
    read(cache, "a", [view("a", 1)])
    assert cache.get("a") is None


def test_when_the_reader_stops_memory_forgets_and_keeps_nothing_until_it_is_current_again() -> None:
    cache, _ = current_cache()
    read(cache, "a", [view("a", 1)])
    cache.stop()
    assert cache.get("a") is None
    read(cache, "a", [view("a", 1)])  # a read while the reader is down
    cache.current()
    assert cache.get("a") is None


def test_a_later_event_of_another_grant_does_not_vouch_for_an_event_still_to_be_retried() -> None:
    """The projector sent the event of grant 0 to its retry topic and applied the later one of
    grant 1: the table holds offset 12, but not offset 10."""
    cache, _ = current_cache()
    cache.seen("a", "a:0", Position(0, 10))
    cache.seen("a", "a:1", Position(0, 12))
    read(cache, "a", [view("a", 3, grant=0), view("a", 12, grant=1)])
    assert cache.get("a") is None
    read(cache, "a", [view("a", 10, grant=0), view("a", 12, grant=1)])  # retried, applied
    assert cache.get("a") is not None


def test_a_view_is_answered_from_memory_for_a_limited_time_only() -> None:
    cache, clock = current_cache()
    read(cache, "a", [view("a", 1)])
    clock.now += KEPT_FOR - 0.5
    cache.current()
    assert cache.get("a") is not None
    clock.now += 1.0
    cache.current()
    assert cache.get("a") is None


def test_a_read_in_flight_when_the_reader_restarts_is_not_kept() -> None:
    cache, _ = current_cache()
    with cache.reading("a") as keep:
        cache.restarted()  # offsets taken after this read began: it may miss what they skip
        keep([view("a", 1)])
    assert cache.get("a") is None
