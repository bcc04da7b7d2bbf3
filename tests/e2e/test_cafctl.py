"""Every cafctl subcommand, run as the operator runs it, against the four services on real Kafka
and DynamoDB Local."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from caf_runtime.broker import client_options
from cafctl.topics import read_topic
from schemas import topics
from tests.e2e.conftest import (
    Pipeline,
    business_today,
    older_then_newer,
    random_ssn,
    ref_of,
    submission,
    unique_caf,
)

pytestmark = pytest.mark.e2e

AS_OPERATOR = ("--operator", "dana", "--why", "ticket OPS-1")


async def read_all(pipeline: Pipeline, topic: str) -> list[dict[str, Any]]:
    """Every record of a topic of the pipeline, as JSON."""
    options = client_options(pipeline.settings)
    records = await read_topic(options, pipeline.settings.topic(topic))
    return [json.loads(r.value) for r in records if r.value]


async def cafctl(pipeline: Pipeline, *args: str) -> tuple[int, Any]:
    """Run `cafctl --json <args>` with the pipeline's settings; (exit status, parsed output)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cafctl",
        "--json",
        *args,
        env=pipeline.services.env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    try:
        return process.returncode, json.loads(out) if out.strip() else None
    except ValueError as error:
        raise AssertionError(f"not JSON: {out[:500]!r} {err[-2000:]!r}") from error


async def test_trace_follows_a_grant_revoked_by_a_later_form_to_its_caf_record(
    pipeline: Pipeline,
) -> None:
    year = business_today().year
    ssn, _, _, old, _ = await older_then_newer(
        pipeline,
        [str(year - 3), str(year - 2)],
        [str(year - 2)],
        older_signed=business_today() - timedelta(days=10),
        newer_signed=business_today() - timedelta(days=5),
        notices=True,
    )
    await pipeline.until(
        lambda: [e for e in pipeline.events(ref_of(ssn)) if e["type"] == "AuthorizationRevoked"]
    )
    grant_id = f"{old['message_id']}:0"
    status, entries = await cafctl(pipeline, "trace", grant_id)
    assert status == 0
    topics_seen = [e["topic"] for e in entries]
    kinds = [e["record"].get("type") or e["record"].get("kind") for e in entries]
    assert topics_seen[0] == topics.INBOUND
    assert "AuthorizationPosted" in kinds
    assert "AuthorizationRevoked" in kinds
    assert kinds.index("AuthorizationPosted") < kinds.index("AuthorizationRevoked")
    assert topics.NOTIFICATIONS in topics_seen
    caf = entries[-1]
    assert caf["topic"].startswith("caf (table")
    assert caf["record"]["grant_id"] == grant_id
    assert caf["record"]["status"] == "active", "the year not revoked stays on the CAF"
    assert [m["period"] for m in caf["record"]["matters"]] == [str(year - 3)]
    assert ssn.replace("-", "") not in json.dumps(entries)
    assert ssn not in json.dumps(entries)


async def test_status_shows_topics_lag_dead_letters_and_readiness(pipeline: Pipeline) -> None:
    status, summary = await cafctl(pipeline, "status")
    assert status == 0
    by_topic = {t["topic"]: t for t in summary["topics"]}
    assert by_topic[topics.INBOUND]["partitions"] == 12
    assert by_topic[topics.INBOUND]["messages"] > 0
    assert {"caf-intake", "caf-poster", "caf-notifier"} <= {g["group"] for g in summary["groups"]}
    assert "dead_letters" in summary


async def test_dead_letters_are_listed_shown_masked_and_replayed_once(
    pipeline: Pipeline,
) -> None:
    """Intake's letter is sealed on the topic; `show` opens it with the operator's key and masks
    it by field: the TIN to its last four digits, the name wholly."""
    ssn = random_ssn()
    broken = {"kind": "submission", "taxpayer": {"tin": ssn, "name": "Robin Quincy Doe"}}
    await pipeline.send_inbound(json.dumps(broken).encode(), key="broken")
    await pipeline.until(lambda: pipeline.seen[topics.INBOUND_DLQ].records)
    for raw in pipeline.seen[topics.INBOUND_DLQ].records:
        assert ssn[-4:].encode() not in (raw.value or b""), "sealed on the topic"
    status, letters = await cafctl(pipeline, "dlq", "list", "--error-class", "ContractError")
    assert status == 0
    (letter,) = [x for x in letters if x["original"].startswith(pipeline.settings.topic_prefix)]
    assert letter["sealed"] is True
    status, shown = await cafctl(pipeline, "dlq", "show", letter["id"])
    assert status == 0
    assert shown["key"] == "broken"
    assert shown["value"]["taxpayer"]["tin"] == f"*****{ssn[-4:]}"
    assert shown["value"]["taxpayer"]["name"].startswith("[masked")
    assert ssn.replace("-", "") not in json.dumps(shown)
    assert "Quincy" not in json.dumps(shown)
    replay = ("dlq", "replay", "--error-class", "ContractError", *AS_OPERATOR)
    status, first = await cafctl(pipeline, *replay)
    assert status == 0
    assert letter["id"] in first["replayed"]
    status, second = await cafctl(pipeline, *replay)
    assert letter["id"] in second["already_replayed"]
    assert letter["id"] not in second["replayed"]


async def test_sla_lists_a_grant_waiting_to_post_until_it_is_posted(pipeline: Pipeline) -> None:
    await pipeline.services.kill("caf_poster")
    ssn = random_ssn()
    form = submission(ssn, [{"caf_number": None, "name": "New Rep"}])
    grant_id = f"{form['message_id']}:0"
    await pipeline.send_inbound(form)
    await pipeline.until(
        lambda: [
            r
            for r in pipeline.seen[topics.GRANTS_VALIDATED].json()
            if r.get("grant_id") == grant_id
        ]
    )
    status, waiting = await cafctl(pipeline, "sla")
    assert status == 0
    (row,) = [r for r in waiting if r["grant_id"] == grant_id]
    assert row["age_s"] >= 0
    assert row["deadline"] > row["ready_at"]
    await pipeline.services.start("caf_poster")
    await pipeline.terminal(ref_of(ssn), 1)

    async def listed() -> bool:
        _, rows = await cafctl(pipeline, "sla")
        return any(r["grant_id"] == grant_id for r in rows)

    for _ in range(50):
        if not await listed():
            break
        await asyncio.sleep(0.2)
    assert not await listed()


async def test_practitioner_set_publishes_a_record_the_validator_applies(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    caf = unique_caf()
    record = {
        "caf_number": caf,
        "name": "Emery Lee",
        "status_code": "S",
        "designations": ["a"],
        "updated_at": "2026-11-20T10:00:00+00:00",
    }
    path = tmp_path / "practitioner.json"
    path.write_text(json.dumps(record))
    status, published = await cafctl(pipeline, "practitioner", "set", str(path), *AS_OPERATOR)
    assert (status, published["published"]) == (0, caf)
    for _ in range(100):
        status, shown = await cafctl(pipeline, "practitioner", "show", caf)
        if shown["validator_view"]:
            break
        await asyncio.sleep(0.2)
    assert shown["registry_feed"]["status_code"] == "S"
    assert shown["validator_view"]["status_code"] == "S"
    status, _ = await cafctl(pipeline, "practitioner", "show", unique_caf())
    assert status == 1


async def test_submit_publishes_messages_from_a_file_and_refuses_a_broken_one(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    ssn = random_ssn()
    path = tmp_path / "forms.jsonl"
    path.write_text(json.dumps(submission(ssn, [{"caf_number": None, "name": "New Rep"}])))
    status, result = await cafctl(pipeline, "submit", str(path), *AS_OPERATOR)
    assert (status, result["published"]) == (0, 1)
    [posted] = await pipeline.terminal(ref_of(ssn), 1)
    assert posted["type"] == "AuthorizationPosted"
    path.write_text(json.dumps({"kind": "submission"}))
    status, _ = await cafctl(pipeline, "submit", str(path), *AS_OPERATOR)
    assert status != 0


async def test_provision_is_idempotent_on_a_provisioned_environment(pipeline: Pipeline) -> None:
    status, report = await cafctl(pipeline, "provision")
    assert status == 0
    assert report["topics_created"] == []
    assert report["tables_created"] == []
    assert report["topics_mismatched"] == []


async def test_reconcile_reports_this_pipeline_clean(pipeline: Pipeline) -> None:
    status, report = await cafctl(pipeline, "reconcile")
    assert report["lost"] == []
    assert report["duplicated"] == []
    assert report["duplicate_notifications"] == []
    assert status == 0


@pytest.mark.parametrize(
    "command",
    [
        ("submit", "forms.json"),
        ("practitioner", "set", "record.json"),
        ("dlq", "replay"),
        ("holds", "release", "m-1:0"),
    ],
)
async def test_au_04_a_state_changing_command_without_an_operator_or_reason_is_refused(
    pipeline: Pipeline, tmp_path: Path, command: tuple[str, ...]
) -> None:
    """AU-04: nothing is published or recorded; the message says what is missing."""
    (tmp_path / "forms.json").write_text("[]")
    (tmp_path / "record.json").write_text('{"caf_number": "030100999", "name": "X"}')
    args = [str(tmp_path / a) if a.endswith(".json") else a for a in command]
    for missing in (("--why", "because"), ("--operator", "dana")):
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "cafctl",
            *args,
            *missing,
            env={k: v for k, v in pipeline.services.env.items() if k != "CAF_OPERATOR"},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await process.communicate()
        assert process.returncode == 1
        assert b"--operator" in err or b"--why" in err, err


async def test_au_04_each_operator_action_leaves_one_audit_record_with_before_and_after(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    """AU-04: who, when, what, why, before/after, in the table and on caf.audit.v1; no TIN."""
    ssn, caf = random_ssn(), unique_caf()
    record = {"caf_number": caf, "name": "Robin Fay", "status_code": ""}
    (tmp_path / "record.json").write_text(json.dumps(record))
    form = submission(ssn, [{"caf_number": None, "name": "New Rep"}])
    (tmp_path / "form.json").write_text(json.dumps(form))
    for args in (
        ("practitioner", "set", str(tmp_path / "record.json")),
        ("submit", str(tmp_path / "form.json")),
    ):
        status, _ = await cafctl(pipeline, *args, "--operator", "erin", "--why", "OPS-7")
        assert status == 0
    status, trail = await cafctl(pipeline, "audit", "--limit", "20")
    assert status == 0
    mine = [r for r in trail if r["operator"] == "erin"]
    by_action = {r["action"]: r for r in mine}
    assert set(by_action) == {"practitioner set", "submit"}
    assert by_action["practitioner set"]["target"] == caf
    assert by_action["practitioner set"]["before"] is None
    assert by_action["practitioner set"]["after"]["name"] == "Robin Fay"
    assert by_action["submit"]["after"] == [
        {"kind": "submission", "message_id": form["message_id"]}
    ]
    assert all(r["why"] == "OPS-7" and r["outcome"] == "done" and r["at"] for r in mine)
    assert ssn not in json.dumps(trail)
    assert ssn.replace("-", "") not in json.dumps(trail)
    on_topic = await read_all(pipeline, topics.AUDIT)
    assert {r["audit_id"] for r in mine} <= {r["audit_id"] for r in on_topic}
