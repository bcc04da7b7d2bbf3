"""The poster with signature evidence (ES-03, ES-04) under TestKafkaBroker, with the fake CAF
store of `test_downstream_services` (extended with holds, timers and firing deltas) and the
in-memory evidence store. Timers are fired by calling the handler, as the timer loop does."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker

from caf_runtime.broker import make_broker
from caf_runtime.timers import Firing, Timer
from schemas import topics
from schemas.evidence import SignatureEvidence
from schemas.grants import PostGrant, RevokeGrants
from services.caf_poster.config import CafPosterSettings
from services.caf_poster.handlers import PosterHandler
from services.caf_poster.handlers import register as register_poster
from services.caf_poster.store import AwaitEvidence, StoreEvidence
from services.intake.evidence import Assurance, SignedBy, canonical_content, evidence_object
from tests.evidence import RETRY, MemoryEvidence
from tests.evidence_objects import SEALER, carrier, taxpayer_evidence
from tests.service.fakes import FakeCafStore, Seen, probe
from tests.unit.builders import NOW, post_grant, removal, submission

pytestmark = pytest.mark.service

RETAINED = dt.timedelta(days=2557)


def kept_until(posted_at: dt.datetime) -> dt.datetime:
    """ES-03: posting + 2557 days, to the end of that day (UTC); never midnight here."""
    until = (posted_at + RETAINED).astimezone(dt.UTC)
    return dt.datetime.combine(until.date(), dt.time(), dt.UTC) + dt.timedelta(days=1)


@dataclass
class MovingClock:
    at: dt.datetime = NOW

    def now(self) -> dt.datetime:
        return self.at


@dataclass
class Poster:
    broker: KafkaBroker
    handler: PosterHandler
    store: FakeCafStore
    evidence: MemoryEvidence
    clock: MovingClock
    seen: Seen

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(value) for value, _ in self.seen.get(topics.EVENTS, [])]

    def pending(self, kind: str) -> list[Timer]:
        return [t for t in self.store.timers.timers if t.kind == kind]

    async def fire(self, timer: Timer) -> list[dict[str, Any]]:
        """Fire `timer` when it is due; the events of its firing."""
        self.clock.at = timer.due
        firing: Firing = await self.handler.fire(timer)
        assert all(o.topic == topics.EVENTS for o in firing.outputs)
        return [json.loads(o.value) for o in firing.outputs]


def poster(*, store_down: bool = False) -> Poster:
    settings = CafPosterSettings(evidence_retry_s=[5.0, 30.0], evidence_retry_every_s=300.0)
    assert settings.evidence_retry() == RETRY
    broker = make_broker(settings, client_id="test")
    store = FakeCafStore()
    evidence = MemoryEvidence(down=store_down)
    clock = MovingClock()
    handler = register_poster(broker, settings, store, clock, evidence)
    seen = probe(broker, topics.EVENTS, topics.POSTER_DLQ)
    return Poster(broker, handler, store, evidence, clock, seen)


async def send(poster: Poster, *commands: PostGrant | RevokeGrants) -> None:
    async with TestKafkaBroker(poster.broker) as test_broker:
        for command in commands:
            await test_broker.publish(
                command.model_dump_json().encode(), topic=topics.GRANTS_VALIDATED
            )
    assert topics.POSTER_DLQ not in poster.seen


def representative_evidence() -> SignatureEvidence:
    signed = SignedBy(
        act="submission",
        role="representative",
        signer={"caf_number": "030112345", "position": 0},
        signature=submission().representatives[0].signature,
    )
    return evidence_object(signed, canonical_content(submission()), carrier(), SEALER)


def revocation_evidence() -> SignatureEvidence:
    message = removal("revocation", channel="online_account")
    signed = SignedBy(
        act="revocation",
        role="taxpayer",
        signer={"taxpayer_ref": "a" * 32},
        signature=message.signature,
        asserted=Assurance.asserted("https://idp.example", "sub-1", "jti-r"),
    )
    return evidence_object(signed, canonical_content(message), carrier(offset=30), SEALER)


def revocation(evidence: list[SignatureEvidence]) -> RevokeGrants:
    return RevokeGrants.model_validate(
        {
            "action": "revoke",
            "message_id": "r-1",
            "taxpayer_ref": "a" * 32,
            "tin_last4": "6789",
            "form": "2848",
            "received_at": NOW,
            "caf_numbers": None,
            "tax_matters": None,
            "signature_date": dt.date(2026, 11, 20),
            "signature_evidence": [e.model_dump(mode="json") for e in evidence],
        },
        strict=False,
    )


def refs_of(evidence: list[SignatureEvidence], retain_until: dt.datetime) -> list[dict[str, Any]]:
    return [
        {
            "role": e.role,
            "act": e.act,
            "key": e.key,
            "sha256": e.sha256,
            "retain_until": retain_until,
        }
        for e in evidence
    ]


def read_refs(event: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        ref | {"retain_until": dt.datetime.fromisoformat(ref["retain_until"])}
        for ref in event["signature_refs"]
    ]


async def test_an_e_signed_grant_posts_once_its_evidence_is_stored_with_7_year_refs_es_03() -> None:
    """The store is up: the objects are stored (locked until posting + 2557 days) before the
    grant posts, and `AuthorizationPosted` says where they are."""
    p = poster()
    evidence = [taxpayer_evidence(), representative_evidence()]
    await send(p, post_grant(signature_evidence=evidence))
    [posted] = p.events()
    assert posted["type"] == "AuthorizationPosted"
    assert read_refs(posted) == refs_of(evidence, kept_until(NOW))
    assert [(r["role"], r["act"]) for r in posted["signature_refs"]] == [
        ("taxpayer", "submission"),
        ("representative", "submission"),
    ]
    assert p.evidence.objects == {e.key: (e.payload(), kept_until(NOW)) for e in evidence}
    for key, (data, _) in p.evidence.objects.items():
        assert key == f"evidence/sha256/{hashlib.sha256(data).hexdigest()}"
    assert p.store.timers.timers == []
    assert [g.grant_id for g in p.store.cafs["a" * 32].grants] == ["m-1:0"]


async def test_an_e_signed_grant_waits_while_the_store_is_down_and_posts_with_its_refs_once_it_is_back_es_03() -> (  # noqa: E501
    None
):
    """Nothing posts while the store refuses; the grant is held on an `await_evidence` timer
    tried again after 5 s, 30 s, then every 5 minutes; `PostingDelayed` is said once, when the
    attempt after the listed delays fails; the first attempt the store takes posts, once."""
    p = poster(store_down=True)
    evidence = [taxpayer_evidence(), representative_evidence()]
    grant = post_grant(signature_evidence=evidence)
    await send(p, grant, grant)  # the second: a redelivery while it waits
    assert p.events() == []
    assert p.store.held == ["m-1:0"]
    assert "a" * 32 not in p.store.cafs
    [first] = p.store.timers.timers
    assert (first.timer_id, first.kind, first.due) == (
        "evidence#m-1:0#1",
        AwaitEvidence.kind,
        NOW + dt.timedelta(seconds=5),
    )
    assert first.payload == AwaitEvidence(command=grant, attempt=1, since=NOW)

    said: list[dict[str, Any]] = []
    timer = first
    for attempt, pause in [
        (2, dt.timedelta(seconds=30)),
        (3, dt.timedelta(minutes=5)),
        (4, dt.timedelta(minutes=5)),
        (5, dt.timedelta(minutes=5)),
    ]:
        events = await p.fire(timer)
        said.extend(events)
        assert events == [] or attempt == 3
        timer = p.store.timers.timers[-1]
        assert (timer.timer_id, timer.kind, timer.due) == (
            f"evidence#m-1:0#{attempt}",
            AwaitEvidence.kind,
            p.clock.at + pause,
        )
        assert isinstance(timer.payload, AwaitEvidence)
        assert timer.payload.attempt == attempt
    [delayed] = said
    assert delayed["type"] == "PostingDelayed"
    assert (delayed["reason_code"], delayed["rule_id"], delayed["stage"]) == (
        "DELAY-EVIDENCE-UNSTORED",
        "ES-03",
        "caf_poster",
    )
    assert (delayed["grant_id"], delayed["attempts"]) == ("m-1:0", 3)
    assert dt.datetime.fromisoformat(delayed["waiting_since"]) == NOW
    assert p.evidence.objects == {}
    assert "a" * 32 not in p.store.cafs

    p.evidence.down = False
    waited = len(p.store.timers.timers)
    events = await p.fire(timer)
    posted_at = p.clock.at
    [posted] = events
    assert posted["type"] == "AuthorizationPosted"
    assert dt.datetime.fromisoformat(posted["posted_at"]) == posted_at
    assert read_refs(posted) == refs_of(evidence, kept_until(posted_at))
    assert p.evidence.objects == {e.key: (e.payload(), kept_until(posted_at)) for e in evidence}
    assert len(p.store.timers.timers) == waited, "no timer after posting"
    assert [g.grant_id for g in p.store.cafs["a" * 32].grants] == ["m-1:0"]
    assert await p.fire(timer) == [], "a timer firing again posts nothing twice"
    assert p.events() == []


async def test_a_paper_grant_posts_even_while_the_evidence_store_is_down_es_03() -> None:
    """No electronic signature, no evidence object: nothing to wait for."""
    p = poster(store_down=True)
    await send(p, post_grant())
    [posted] = p.events()
    assert (posted["type"], posted["signature_refs"]) == ("AuthorizationPosted", [])
    assert (p.evidence.writes, p.store.timers.timers, p.store.held) == (0, [], [])


async def test_a_revocation_ends_access_while_the_store_is_down_and_a_timer_stores_its_evidence_es_04() -> (  # noqa: E501
    None
):
    """A removal does not wait: `AuthorizationRevoked` carries its refs at once and a
    `store_evidence` timer stores the evidence, tried again while the store refuses, locked
    until the time the refs state."""
    p = poster(store_down=True)
    evidence = [revocation_evidence()]
    await send(p, post_grant(), revocation(evidence))
    posted, revoked = p.events()
    assert posted["type"] == "AuthorizationPosted"
    assert (revoked["type"], revoked["grant_id"], revoked["revoked_by"]) == (
        "AuthorizationRevoked",
        "m-1:0",
        "REV-BY-TAXPAYER",
    )
    assert read_refs(revoked) == refs_of(evidence, kept_until(NOW))
    assert [(r["role"], r["act"]) for r in revoked["signature_refs"]] == [
        ("taxpayer", "revocation")
    ]
    assert p.store.cafs["a" * 32].active("2848") == ()
    [timer] = p.store.timers.timers
    assert (timer.timer_id, timer.kind, timer.due) == (
        "store-evidence#r-1#1",
        StoreEvidence.kind,
        NOW + dt.timedelta(seconds=5),
    )
    assert p.evidence.objects == {}

    assert await p.fire(timer) == []
    again = p.store.timers.timers[-1]
    assert (again.timer_id, again.kind, again.due) == (
        "store-evidence#r-1#2",
        StoreEvidence.kind,
        p.clock.at + dt.timedelta(seconds=30),
    )
    assert p.evidence.objects == {}

    p.evidence.down = False
    assert await p.fire(again) == []
    assert p.evidence.objects == {e.key: (e.payload(), kept_until(NOW)) for e in evidence}
    assert len(p.store.timers.timers) == 2, "stored: no further timer"


async def test_a_revocation_with_the_store_up_stores_its_evidence_at_once_es_04() -> None:
    p = poster()
    evidence = [revocation_evidence()]
    await send(p, post_grant(), revocation(evidence))
    _, revoked = p.events()
    assert read_refs(revoked) == refs_of(evidence, kept_until(NOW))
    assert p.evidence.objects == {e.key: (e.payload(), kept_until(NOW)) for e in evidence}
    assert p.store.timers.timers == []


async def test_a_taxpayer_signature_shared_by_two_grants_stays_locked_as_long_as_the_later_ref_says_es_03() -> (  # noqa: E501
    None
):
    """Both grants of one submission carry the same taxpayer evidence object (built once, one
    content address). When the second posts later (here: 30 days, e.g. released from a CN-09
    velocity hold), its ref states retain_until = its posting + 2557 days, so storing it again
    lengthens the object's lock to that date (compliance mode lengthens, never shortens)."""
    p = poster()
    shared = taxpayer_evidence()
    first = post_grant(signature_evidence=[shared])
    second = post_grant(
        grant_id="m-1:1",
        group_position=1,
        caf_number="030154321",
        representative_name="Blake Doe",
        signature_evidence=[shared],
    )
    await send(p, first)
    p.clock.at = NOW + dt.timedelta(days=30)
    await send(p, second)
    posted = [e for e in p.events() if e["type"] == "AuthorizationPosted"]
    assert [e["grant_id"] for e in posted] == ["m-1:0", "m-1:1"]
    [ref] = read_refs(posted[1])
    _, locked_until = p.evidence.objects[shared.key]
    assert locked_until >= ref["retain_until"]
