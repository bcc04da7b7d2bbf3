"""A taxpayer_ref key rotation on real DynamoDB: the poster moves a partition when a command
names both refs, `cafctl rekey` moves the rest without a TIN, and every lookup by either ref
still finds the taxpayer's CAF (docs/operations.md, "Rotating the taxpayer_ref key")."""

from __future__ import annotations

import datetime as dt
import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from caf_runtime.config import ServiceSettings
from caf_runtime.ledger import transact
from caf_runtime.provision import ensure_tables
from caf_runtime.timers import Timer
from caf_runtime.topology import TABLES
from cafctl.rekey import rekey
from schemas.grants import PostGrant, RevokeGrants
from schemas.ids import RefKeys
from services.caf_poster.config import CafPosterSettings
from services.caf_poster.handlers import PosterHandler
from services.caf_poster.rules import apply, decide_posting
from services.caf_poster.store import DynamoCafStore, SaveResult, StudentPurge
from tests.evidence import RETRY, MemoryEvidence
from tests.integration.test_poster_redelivery import CrashingPublisher, FixedClock, record_of
from tests.unit.builders import NOW, post_grant

pytestmark = pytest.mark.integration

BASE, LAYER = secrets.token_bytes(32), secrets.token_bytes(32)
BEFORE, AFTER = RefKeys((BASE,)), RefKeys((BASE, LAYER))


@dataclass
class Rig:
    settings: CafPosterSettings
    store: DynamoCafStore
    handler: PosterHandler
    publisher: CrashingPublisher


@pytest.fixture
async def rig(settings: ServiceSettings) -> AsyncIterator[Rig]:
    poster_settings = CafPosterSettings.model_validate(
        {
            "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
            "DYNAMODB_ENDPOINT": settings.dynamodb_endpoint,
            "CAF_TABLE_PREFIX": settings.table_prefix,
        }
    )
    store = DynamoCafStore(poster_settings)
    async with store.table:
        await ensure_tables(store.table.client, TABLES, prefix=settings.table_prefix)
        publisher = CrashingPublisher()
        handler = PosterHandler(
            store,
            publisher,
            FixedClock(NOW),
            dt.timedelta(0),
            evidence=MemoryEvidence(),
            evidence_retry=RETRY,
        )
        yield Rig(poster_settings, store, handler, publisher)


def posted(tin: str, n: int) -> PostGrant:
    return post_grant(
        message_id=f"m-{tin}-{n}",
        grant_id=f"m-{tin}-{n}:0",
        authorization_id=f"m-{tin}-{n}",
        taxpayer_ref=BEFORE.ref(tin),
    )


async def scheduled_timer(store: DynamoCafStore, timer_id: str) -> dict[str, Any]:
    for item in await store.timers.due(NOW + dt.timedelta(days=365)):
        timer = json.loads(item["timer"]["S"])
        if timer["timer_id"] == timer_id:
            return dict(timer)
    raise AssertionError(f"no timer {timer_id}")


async def test_rekey_moves_every_old_partition_and_both_refs_still_find_it(rig: Rig) -> None:
    tins = [f"{n:09d}" for n in range(123450000, 123450005)]
    for tin in tins:
        await rig.handler.on_command(record_of(posted(tin, 1)))
    purge = Timer(
        "purge#rotation",
        NOW + dt.timedelta(days=90),
        StudentPurge(taxpayer_ref=BEFORE.ref(tins[0]), tin_last4="0000", grant_id="x"),
    )
    assert await transact(rig.store.table, [rig.store.timers.schedule(purge)]) is None

    report = await rekey(rig.settings, 2, LAYER)
    assert (report.moved, report.timers_rewritten) == (len(tins), 1)
    again = await rekey(rig.settings, 2, LAYER)
    assert (again.moved, again.already_current) == (0, len(tins))
    for tin in tins:
        new = await rig.store.locate(AFTER.ref(tin))
        old = await rig.store.locate(BEFORE.ref(tin))
        assert new.taxpayer_ref == AFTER.ref(tin) == old.taxpayer_ref
        assert [g.grant_id for g in new.caf.grants] == [f"m-{tin}-1:0"]
        assert (await rig.store.partition(BEFORE.ref(tin))).items == (), "no copy left in v1"
    timer = await scheduled_timer(rig.store, "purge#rotation")
    assert timer["payload"]["taxpayer_ref"] == AFTER.ref(tins[0])


async def test_a_command_naming_both_refs_moves_the_partition_and_revokes_an_old_grant(
    rig: Rig,
) -> None:
    tin = "987650001"
    await rig.handler.on_command(record_of(posted(tin, 1)))
    revoke = RevokeGrants(
        action="revoke",
        message_id="rev-1",
        taxpayer_ref=AFTER.ref(tin),
        previous_taxpayer_ref=BEFORE.ref(tin),
        tin_last4=tin[-4:],
        form="2848",
        received_at=NOW,
        caf_numbers=None,
        tax_matters=None,
        signature_date=NOW.date(),
    )
    await rig.handler.on_command(record_of(revoke))
    revoked = [
        output
        for batch in rig.publisher.published
        for output in batch
        if b"AuthorizationRevoked" in output.value
    ]
    assert [output.key for output in revoked] == [AFTER.ref(tin)]
    located = await rig.store.locate(BEFORE.ref(tin))
    assert located.taxpayer_ref == AFTER.ref(tin)
    assert not located.caf.active("2848")


async def test_a_writer_that_read_the_partition_before_it_moved_fails_and_reads_again(
    rig: Rig,
) -> None:
    tin = "555443333"
    old, new = BEFORE.ref(tin), AFTER.ref(tin)
    await rig.handler.on_command(record_of(posted(tin, 1)))
    stale = await rig.store.load(old)
    assert await rig.store.move(old, new)
    grant = posted(tin, 2)
    after = apply(stale, decide_posting(stale, grant, grant.caf_number))
    assert await rig.store.save(old, stale, after, "k-stale", []) is SaveResult.CONFLICT
    assert (await rig.store.locate(old)).taxpayer_ref == new
