"""The validator's in-memory registry view (issue 16): what it takes from the feed and how the
store answers from it (AU-01, CN-02, CN-03)."""

from __future__ import annotations

from tests.feeds import feed_record, practitioner
from tests.feeds import registry_view as view


async def test_a_record_signed_by_the_registry_feed_is_kept_under_its_number() -> None:
    registry = view()
    await registry.apply(feed_record("012345678", practitioner("012345678")))
    found = registry.get("012345678")
    assert found is not None
    assert found.name == "Avery Smith"
    assert registry.named("012345678")


async def test_a_record_signed_by_another_publisher_is_not_taken_au_01() -> None:
    registry = view()
    await registry.apply(feed_record("012345678", practitioner("012345678"), kind="submission"))
    assert not registry.named("012345678")


async def test_a_record_published_under_another_number_is_not_taken() -> None:
    registry = view()
    await registry.apply(feed_record("012345679", practitioner("012345678")))
    assert not registry.named("012345679")
    assert not registry.named("012345678")


async def test_a_tombstone_removes_the_record_but_the_number_stays_named() -> None:
    registry = view()
    await registry.apply(feed_record("012345678", practitioner("012345678")))
    await registry.apply(feed_record("012345678", None))
    assert registry.get("012345678") is None
    assert registry.named("012345678")
    assert registry.with_ptin("P01234567") == []


async def test_a_record_that_changes_its_ptin_is_found_by_the_new_one_only_cn_03() -> None:
    registry = view()
    await registry.apply(feed_record("012345678", practitioner("012345678", "P01234567")))
    await registry.apply(feed_record("012345678", practitioner("012345678", "P07654321")))
    assert registry.with_ptin("P01234567") == []
    assert [r.caf_number for r in registry.with_ptin("p07654321")] == ["012345678"]


async def test_records_sharing_a_ptin_come_lowest_number_first_cn_02() -> None:
    registry = view()
    for number in ("012345679", "012345678"):
        await registry.apply(feed_record(number, practitioner(number)))
    assert [r.caf_number for r in registry.with_ptin("P01234567")] == ["012345678", "012345679"]
