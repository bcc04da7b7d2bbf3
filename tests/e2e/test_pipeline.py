"""Submissions, withdrawals and revocations through the four services on real infrastructure."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from caf_runtime.broker import client_options
from caf_runtime.config import ServiceSettings
from caf_runtime.dynamo import DynamoTable
from cafctl import dlq
from cafctl.cli import main as cafctl_main
from cafctl.lag_exporter import lag_page
from cafctl.status import status, trace
from devstack import messages
from schemas import topics
from tests.e2e.conftest import (
    Pipeline,
    business_today,
    older_then_newer,
    random_ssn,
    ref_of,
    submission,
    submitted,
    two_representatives,
    unique_caf,
)

pytestmark = pytest.mark.e2e


def types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


async def test_a_clean_2848_posts_and_the_taxpayer_is_told_without_the_full_tin(
    pipeline: Pipeline,
) -> None:
    """PO-05 (nothing to revoke), NO-02, NO-08."""
    ssn, caf, message = await submitted(pipeline, {"receive_notices": True})

    [posted] = await pipeline.terminal(ref_of(ssn), 1)
    assert posted["type"] == "AuthorizationPosted"
    assert posted["grant_id"] == f"{message['message_id']}:0"
    assert posted["caf_number"] == caf
    assert posted["tin_last4"] == ssn[-4:]
    assert ssn.replace("-", "") not in str(posted)
    assert ssn not in str(posted)
    [note] = await pipeline.until(lambda: pipeline.notifications({posted["event_id"]}))
    assert note["recipient"] == "taxpayer"
    assert note["template"] == "authorization_posted"
    assert ssn[-4:] in note["body"]
    assert ssn not in note["body"]
    items = await pipeline.caf_items(ref_of(ssn))
    grants = [i for i in items if i["sk"]["S"].startswith("GRANT#")]
    assert [g["sk"]["S"] for g in grants] == [f"GRANT#{posted['grant_id']}"]


async def test_an_8821_designee_posts(pipeline: Pipeline) -> None:
    ssn, caf = random_ssn(), unique_caf()
    await pipeline.register(caf, "Casey Jones", status="R")  # VA-03: 8821 designees not blocked
    await pipeline.send_inbound(
        submission(ssn, [{"caf_number": caf, "name": "Casey Jones"}], form="8821")
    )
    [posted] = await pipeline.terminal(ref_of(ssn), 1)
    assert (posted["type"], posted["form"]) == ("AuthorizationPosted", "8821")


async def test_a_new_poa_revokes_the_older_one_on_overlapping_periods(pipeline: Pipeline) -> None:
    """PO-05: later signature revokes matter by matter; retain_prior with a copy keeps it."""
    third_caf = unique_caf()
    year = business_today().year
    await pipeline.register(third_caf, "Drew Roe")
    ssn, _, _, old, new = await older_then_newer(
        pipeline,
        [str(year - 3), str(year - 2)],
        [str(year - 2)],
        older_signed=business_today() - timedelta(days=10),
        newer_signed=business_today() - timedelta(days=5),
    )
    [revoked] = await pipeline.until(
        lambda: [e for e in pipeline.events(ref_of(ssn)) if e["type"] == "AuthorizationRevoked"]
    )
    assert revoked["grant_id"] == f"{old['message_id']}:0"
    assert revoked["revoked_by"] == "REV-SUPERSEDED"
    assert revoked["superseded_by"] == f"{new['message_id']}:0"
    assert revoked["tax_matters"] == [
        {"tax_type": "Income", "form_number": "1040", "periods": [str(year - 2)]}
    ]
    kept = submission(
        ssn,
        [{"caf_number": third_caf, "name": "Drew Roe"}],
        periods=[str(year - 3)],
        retain_prior=True,
        prior_copies_attached=1,
    )
    await pipeline.send_inbound(kept)
    terminal = await pipeline.terminal(ref_of(ssn), 3)
    assert types(terminal) == ["AuthorizationPosted"] * 3
    revocations = [e for e in pipeline.events(ref_of(ssn)) if e["type"] == "AuthorizationRevoked"]
    assert len(revocations) == 1


async def test_an_older_signature_is_superseded_and_future_periods_are_dropped(
    pipeline: Pipeline,
) -> None:
    """PO-06 NP-SUPERSEDED; PO-07 PART-FUTURE-PERIOD-DROPPED."""
    year = business_today().year
    ssn, caf, _ = await submitted(pipeline, periods=[str(year - 1), str(year + 5)])
    [posted] = await pipeline.terminal(ref_of(ssn), 1)
    assert posted["dropped_periods"] == [
        {
            "tax_type": "Income",
            "form_number": "1040",
            "period": str(year + 5),
            "reason_code": "PART-FUTURE-PERIOD-DROPPED",
        }
    ]
    older = submission(
        ssn,
        [{"caf_number": caf}],
        periods=[str(year - 1)],
        signed=business_today() - timedelta(days=20),
    )
    await pipeline.send_inbound(older)
    terminal = await pipeline.terminal(ref_of(ssn), 2)
    assert (terminal[1]["type"], terminal[1]["reason_code"], terminal[1]["rule_id"]) == (
        "AuthorizationNotProcessed",
        "NP-SUPERSEDED",
        "PO-06",
    )


async def test_a_third_notice_recipient_is_not_processed(pipeline: Pipeline) -> None:
    """PO-03: notice elections counted in listed order within one form."""
    ssn = random_ssn()
    cafs = [unique_caf() for _ in range(3)]
    names = ["Avery Smith", "Blake Doe", "Drew Roe"]
    for caf, name in zip(cafs, names, strict=True):
        await pipeline.register(caf, name)
    form = submission(
        ssn,
        [
            {"caf_number": c, "name": n, "receive_notices": True}
            for c, n in zip(cafs, names, strict=True)
        ],
    )
    await pipeline.send_inbound(form)
    terminal = await pipeline.terminal(ref_of(ssn), 3)
    by_grant = {e["grant_id"]: e for e in terminal}
    assert [by_grant[f"{form['message_id']}:{i}"]["type"] for i in range(3)] == [
        "AuthorizationPosted",
        "AuthorizationPosted",
        "AuthorizationNotProcessed",
    ]
    assert by_grant[f"{form['message_id']}:2"]["reason_code"] == "NP-NOTICE-LIMIT-EXCEEDED"


@pytest.mark.parametrize(
    ("status", "outcome", "code"),
    [
        ("", "AuthorizationPosted", None),
        ("D", "AuthorizationRejected", "REJ-REP-NOT-GOOD-STANDING"),
        ("S", "AuthorizationRejected", "REJ-REP-NOT-GOOD-STANDING"),
        ("E", "AuthorizationRejected", "REJ-REP-NOT-GOOD-STANDING"),
        ("P", "AuthorizationRejected", "REJ-REP-PENDING-REVIEW"),
        ("R", "AuthorizationRejected", "REJ-REP-INACTIVE"),
        ("I", "AuthorizationRejected", "REJ-REP-INACTIVE"),
    ],
)
async def test_each_standing_status_code_gets_its_outcome(
    pipeline: Pipeline, status: str, outcome: str, code: str | None
) -> None:
    """VA-01, VA-02 (with the NO-06 alert), VA-03."""
    ssn, _, _ = await submitted(pipeline, status=status)
    [event] = await pipeline.terminal(ref_of(ssn), 1)
    assert (event["type"], event.get("reason_code")) == (outcome, code)
    if status == "P":
        notes = await pipeline.until(lambda: pipeline.notifications({event["event_id"]}))
        assert [n["template"] for n in notes] == ["suspicious_activity"]


async def test_an_unknown_caf_number_and_a_registry_update_take_effect_in_order(
    pipeline: Pipeline,
) -> None:
    """VA-04, then a registry update applies to grants that arrive after it."""
    ssn, caf = random_ssn(), unique_caf()
    await pipeline.send_inbound(submission(ssn, [{"caf_number": caf}]))
    [unknown] = await pipeline.terminal(ref_of(ssn), 1)
    assert unknown["reason_code"] == "REJ-CAF-UNKNOWN"
    await pipeline.register(caf, "Avery Smith", status="S")
    await pipeline.send_inbound(submission(ssn, [{"caf_number": caf}], periods=["2019"]))
    terminal = await pipeline.terminal(ref_of(ssn), 2)
    assert terminal[1]["reason_code"] == "REJ-REP-NOT-GOOD-STANDING"


async def test_a_first_time_representative_gets_a_caf_number(pipeline: Pipeline) -> None:
    """VA-08, PO-08, NO-05."""
    ssn = random_ssn()
    await pipeline.send_inbound(submission(ssn, [{"caf_number": "None", "name": "New Person"}]))
    [posted] = await pipeline.terminal(ref_of(ssn), 1)
    [assigned] = [e for e in pipeline.events(ref_of(ssn)) if e["type"] == "CafNumberAssigned"]
    assert posted["caf_number"] == assigned["caf_number"]
    assert assigned["caf_number"].startswith("78")  # given by the validator (CN-02)
    assert len(assigned["caf_number"]) == 9
    notes = await pipeline.until(lambda: pipeline.notifications({assigned["event_id"]}))
    assert notes[0]["template"] == "caf_number_assigned"


def removal(kind: str, ssn: str, **fields: Any) -> dict[str, Any]:
    """A withdrawal, else a revocation, of taxpayer `ssn`'s 2848 signed with a checkbox today
    (`messages.removal`); `fields` replace fields on the wire (`caf_number`, `channel`)."""
    made = messages.removal(
        kind,
        tin=ssn,
        signed=messages.signature(business_today(), "checkbox"),
        message_id=str(uuid.uuid4()),
        sent_at=datetime.now(UTC),
    )
    return messages.document(made, **fields)


async def test_a_withdrawal_and_a_taxpayer_revocation_end_the_grants(pipeline: Pipeline) -> None:
    """PO-09, PO-10, NO-03; and REJ-NOTHING-TO-WITHDRAW when nothing matches."""
    ssn, first, _, form = await two_representatives(pipeline)

    withdrawal = removal("withdrawal", ssn, caf_number=first)
    await pipeline.send_inbound(withdrawal)
    [withdrawn] = await pipeline.until(
        lambda: [e for e in pipeline.events(ref_of(ssn)) if e["type"] == "AuthorizationWithdrawn"]
    )
    assert (withdrawn["grant_id"], withdrawn["message_id"]) == (
        f"{form['message_id']}:0",
        withdrawal["message_id"],
    )
    notes = await pipeline.until(lambda: pipeline.notifications({withdrawn["event_id"]}))
    assert sorted(n["recipient"] for n in notes) == ["representative", "taxpayer"]

    revocation = removal("revocation", ssn, caf_numbers=None)
    await pipeline.send_inbound(revocation)
    [revoked] = await pipeline.until(
        lambda: [
            e
            for e in pipeline.events(ref_of(ssn))
            if e["type"] == "AuthorizationRevoked" and e["revoked_by"] == "REV-BY-TAXPAYER"
        ]
    )
    assert revoked["grant_id"] == f"{form['message_id']}:1"

    again = removal("withdrawal", ssn, caf_number=first)
    await pipeline.send_inbound(again)
    [nothing] = await pipeline.until(
        lambda: [e for e in pipeline.events(ref_of(ssn)) if e["message_id"] == again["message_id"]]
    )
    assert (nothing["type"], nothing["reason_code"]) == (
        "AuthorizationRejected",
        "REJ-NOTHING-TO-WITHDRAW",
    )


async def test_a_duplicate_message_and_a_duplicate_form_get_one_outcome_each(
    pipeline: Pipeline,
) -> None:
    """IN-02 drops the same message id; IN-03 marks the same form via fax NP-DUPLICATE."""
    ssn, _, form = await submitted(pipeline)
    await pipeline.send_inbound(form)
    faxed = form | {"message_id": str(uuid.uuid4()), "channel": "fax"}
    faxed["taxpayer"] = form["taxpayer"] | {
        "signature": {"date": form["received_on"], "method": "wet"}
    }
    faxed["representatives"] = [
        form["representatives"][0] | {"signature": {"date": form["received_on"], "method": "wet"}}
    ]
    await pipeline.send_inbound(faxed)
    terminal = await pipeline.terminal(ref_of(ssn), 2)
    assert sorted((e["type"], e.get("reason_code")) for e in terminal) == [
        ("AuthorizationNotProcessed", "NP-DUPLICATE"),
        ("AuthorizationPosted", None),
    ]
    assert (
        len([e for e in pipeline.events(ref_of(ssn)) if e["message_id"] == form["message_id"]]) == 1
    )


async def test_a_malformed_message_is_dead_lettered_while_the_next_one_posts(
    pipeline: Pipeline,
) -> None:
    """IN-01: DLQ with error headers; the partition keeps flowing."""
    ssn, caf = random_ssn(), unique_caf()
    await pipeline.register(caf, "Avery Smith")
    key = str(uuid.uuid4())
    await pipeline.send_inbound(b"{not json at all", key=key)
    await pipeline.send_inbound(submission(ssn, [{"caf_number": caf}]), key=key)
    [posted] = await pipeline.terminal(ref_of(ssn), 1)
    assert posted["type"] == "AuthorizationPosted"
    [dead] = await pipeline.until(
        lambda: [r for r in pipeline.inbound_dead_letters() if r.key == key.encode()]
    )
    headers = {k: v.decode() for k, v in dead.headers}
    assert dead.value == b"{not json at all"
    assert headers["error-class"] == "ContractError"
    assert headers["original-topic"] == pipeline.settings.topic("caf.inbound.v1")
    assert {"error-message", "original-partition", "original-offset", "failed-at"} <= set(headers)


async def test_a_schema_failure_with_a_readable_message_id_is_also_rejected(
    pipeline: Pipeline,
) -> None:
    """IN-01: REJ-SCHEMA on the outcome stream as well as the dead letter."""
    ssn = random_ssn()
    broken = submission(ssn, [{}])
    broken["representatives"] = "not a list"
    await pipeline.send_inbound(broken)
    [rejected] = await pipeline.terminal(ref_of(ssn), 1)
    assert (rejected["reason_code"], rejected["rule_id"], rejected["grant_id"]) == (
        "REJ-SCHEMA",
        "IN-01",
        broken["message_id"],
    )


async def test_a_dead_letter_is_replayed_once_even_when_replay_runs_twice(
    pipeline: Pipeline,
) -> None:
    """cafctl dlq replay: back to its original topic with `replayed-from`, never twice."""
    key = str(uuid.uuid4())
    await pipeline.send_inbound(b"[not a message]", key=key)
    await pipeline.until(
        lambda: [r for r in pipeline.inbound_dead_letters() if r.key == key.encode()]
    )
    settings = pipeline.settings
    sealer = settings.sealer()
    assert sealer is not None
    options = client_options(settings)
    letters = [
        letter
        for letter in await dlq.list_dead_letters(settings, options, (topics.INBOUND_DLQ,))
        if dlq.opened(letter, sealer).key == key
    ]
    assert len(letters) == 1
    producer = AIOKafkaProducer(enable_idempotence=True, acks="all", **options)
    await producer.start()
    try:
        async with DynamoTable(settings, "ops") as ops:
            first = await dlq.replay(
                letters, ops=ops, producer=producer, prefix=settings.topic_prefix, sealer=sealer
            )
            second = await dlq.replay(
                letters, ops=ops, producer=producer, prefix=settings.topic_prefix, sealer=sealer
            )
    finally:
        await producer.stop()
    assert first.replayed == (letters[0].id,)
    assert second == dlq.ReplayReport(replayed=(), already_replayed=(letters[0].id,))
    again = await pipeline.until(
        lambda: [
            r
            for r in pipeline.inbound_dead_letters()
            if r.key == key.encode() and dict(r.headers).get("replayed-from")
        ]
    )
    assert len(again) == 1  # still malformed: dead-lettered again, carrying where it came from


async def test_trace_follows_a_grant_from_its_form_to_its_notifications(
    pipeline: Pipeline,
) -> None:
    """cafctl trace: the inbound message (summarised, no TIN), the events, the notifications."""
    ssn, _, _ = await submitted(pipeline)
    [posted] = await pipeline.terminal(ref_of(ssn), 1)
    await pipeline.until(lambda: pipeline.notifications({posted["event_id"]}))
    entries = await trace(pipeline.settings, client_options(pipeline.settings), posted["grant_id"])
    assert [e["topic"] for e in entries] == [
        "caf.inbound.v1",
        "caf.events.v1",
        "caf.notifications.v1",
        "caf (table, now)",
    ]
    assert entries[-1]["record"]["status"] == "active"
    assert ssn not in json.dumps(entries)
    assert ssn.replace("-", "") not in json.dumps(entries)


async def test_status_shows_every_topic_and_no_lag_once_quiet(pipeline: Pipeline) -> None:
    """cafctl status: topics with their messages, consumer lag, dead letters."""
    settings = pipeline.settings
    summary = await status(settings, client_options(settings))
    assert {row["topic"] for row in summary["topics"]} >= {
        topics.INBOUND,
        topics.EVENTS,
        topics.INBOUND_DLQ,
    }

    async def quiet() -> bool:
        current = await status(settings, client_options(settings))
        return all(
            g["lag"] == 0
            for g in current["groups"]
            # this pipeline runs no read side (tests/e2e/test_query.py does) and no monitor
            # (tests/e2e/test_misuse_monitor.py does)
            if g["group"]
            not in {
                "caf-intake-retry",
                "caf-query",
                "caf-query-redelivery",
                "caf-monitor",
                "caf-monitor-statements",
                "caf-monitor-redelivery",
            }
        )

    for _ in range(100):
        if await quiet():
            break
        await asyncio.sleep(0.2)
    assert await quiet()
    assert summary["dead_letters"][topics.INBOUND_DLQ] >= 1


async def test_every_service_exports_metrics_without_any_taxpayer_identifier(
    pipeline: Pipeline,
) -> None:
    """Outcomes by type and reason, handling latency, notifications; no TIN or pseudonym."""
    pages = {}
    for name, port in pipeline.services.ports.items():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        pages[name] = (await reader.read()).decode()
        writer.close()
    assert 'caf_events_total{reason="",type="AuthorizationPosted"}' in pages["caf_poster"]
    assert 'reason="REJ-REP-NOT-GOOD-STANDING"' in pages["validator"]
    assert 'template="authorization_posted"' in pages["notifier"]
    assert "caf_handling_seconds_bucket" in pages["intake"]
    for page in pages.values():
        labels = " ".join(re.findall(r"\{[^}]*\}", page))
        assert not re.search(r"\d{3}-?\d{2}-?\d{4}", labels)
        assert not re.search(r"[0-9a-f]{32}", labels)


async def test_the_lag_exporter_reports_lag_in_messages_and_seconds(pipeline: Pipeline) -> None:
    """Consumer lag per group, topic and partition, for SREs (and KEDA)."""
    settings = pipeline.settings
    page = (await lag_page(settings, client_options(settings))).decode()
    intake = re.findall(
        r'caf_consumer_lag_messages\{group="caf-intake",partition="(\d+)",topic="caf.inbound.v1"\} '
        r"(\S+)",
        page,
    )
    assert len(intake) == 12
    assert 'caf_consumer_lag_seconds{group="caf-poster"' in page


async def test_reconciliation_finds_every_grant_with_exactly_one_outcome(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Runs last in this module: everything the tests above published is reconciled."""
    for name, value in {
        "KAFKA_BOOTSTRAP_SERVERS": pipeline.settings.kafka_bootstrap_servers,
        "DYNAMODB_ENDPOINT": pipeline.settings.dynamodb_endpoint or "",
        "CAF_TOPIC_PREFIX": pipeline.settings.topic_prefix,
        "CAF_TABLE_PREFIX": pipeline.settings.table_prefix,
        # as the operator's principal, like every cafctl run
        **{k: v for k, v in pipeline.services.env.items() if k.startswith("KAFKA_S")},
    }.items():
        monkeypatch.setenv(name, value)
    await asyncio.sleep(2.0)  # quiet period: let in-flight outcomes land
    settings = ServiceSettings()
    report = await asyncio.to_thread(cafctl_json, ["--json", "reconcile"])
    assert report["clean"], report
    assert report["grants_expected"] > 20
    assert report["grants_ok"] == report["grants_expected"]
    assert report["removals_ok"] == report["removals_expected"] > 0
    assert report["dead_letters"] >= 2
    assert settings.topic_prefix == pipeline.settings.topic_prefix


def cafctl_json(argv: list[str]) -> dict[str, Any]:
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        code = cafctl_main(argv)
    document: dict[str, Any] = json.loads(output.getvalue())
    assert code == (0 if document["clean"] else 2)
    return document
