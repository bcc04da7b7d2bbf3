"""Records from a producer this project did not write: Kafka's own Java console producer.

A portal team publishes with whatever client and codec it likes. For every codec Kafka supports,
the console producer (from the jars the local stack already caches) publishes a registry record
and two forms, each with its `caf-signature` header (AU-01), one with more headers of its own;
both forms post. An uncompressed form after a
compressed one on the same key posts too (the partition never stalls behind a codec).
"""

from __future__ import annotations

import asyncio
import json
import shutil
from typing import Any

import pytest

from caf_client.signing import SIGNATURE_HEADER
from devstack import jars
from schemas import topics
from tests.conftest import Infrastructure
from tests.e2e.conftest import Pipeline, random_ssn, ref_of, registry_record, submission, unique_caf
from tests.signing import signature

pytestmark = pytest.mark.e2e

CODECS = ("none", "gzip", "snappy", "lz4", "zstd")


async def console_produce(
    pipeline: Pipeline,
    infra: Infrastructure,
    topic: str,
    *,
    codec: str,
    lines: list[tuple[str, dict[str, Any]]],
    headers: str | None = None,
) -> None:
    """Publish `(key, value)` lines with `kafka-console-producer`'s own class, one JVM for the
    lot. Each record carries its signature by the development publisher of its kind, and
    `headers` (`name:value` pairs joined by commas) when given."""
    java = shutil.which("java")
    assert java is not None
    kind = "registry" if topic == topics.PRACTITIONERS else None
    properties = infra.client_properties("registry-feed" if kind else "portal")
    config = ["--producer.config", str(properties)] if properties else []
    text = ""
    for key, value in lines:
        line = json.dumps(value)
        signed = f"{SIGNATURE_HEADER}:{signature(line.encode(), kind)}"
        text += f"{signed}{',' + headers if headers else ''}\t{key}\t{line}\n"
    process = await asyncio.create_subprocess_exec(
        java,
        "-Xmx128m",
        "-cp",
        f"{jars.resolve('kafka')}/*",
        "org.apache.kafka.tools.ConsoleProducer",
        "--bootstrap-server",
        pipeline.settings.kafka_bootstrap_servers,
        "--topic",
        pipeline.settings.topic(topic),
        "--compression-codec",
        codec,
        "--property",
        "parse.key=true",
        "--property",
        "parse.headers=true",
        "--producer-property",
        "acks=all",
        *config,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(text.encode()), timeout=60)
    assert process.returncode == 0, output.decode()[-2000:]


@pytest.mark.parametrize("codec", CODECS)
async def test_forms_and_registry_records_from_the_java_console_producer_post(
    pipeline: Pipeline, infra: Infrastructure, codec: str
) -> None:
    """IN-01 decodes them whatever the batch codec; VA-01 finds the representative the console
    producer registered; PO-05 posts both forms."""
    caf = unique_caf()
    await console_produce(
        pipeline,
        infra,
        topics.PRACTITIONERS,
        codec=codec,
        lines=[(caf, registry_record(caf, "Avery Smith"))],
    )
    with_headers, without_headers = random_ssn(), random_ssn()
    form = submission(with_headers, [{"caf_number": caf}])
    await console_produce(
        pipeline,
        infra,
        topics.INBOUND,
        codec=codec,
        lines=[(form["message_id"], form)],
        headers="content-type:application/json,source:portal-java-client",
    )
    form = submission(without_headers, [{"caf_number": caf}])
    await console_produce(
        pipeline, infra, topics.INBOUND, codec=codec, lines=[(form["message_id"], form)]
    )
    for ssn in (with_headers, without_headers):
        [posted] = await pipeline.terminal(ref_of(ssn), 1)
        assert (posted["type"], posted["caf_number"]) == ("AuthorizationPosted", caf)


@pytest.mark.parametrize("codec", [c for c in CODECS if c != "none"])
async def test_an_uncompressed_form_after_a_compressed_one_on_the_same_key_posts_too(
    pipeline: Pipeline, infra: Infrastructure, codec: str
) -> None:
    caf, first, second = unique_caf(), random_ssn(), random_ssn()
    await pipeline.register(caf, "Avery Smith")
    key = f"portal-batch-{codec}"
    await console_produce(
        pipeline,
        infra,
        topics.INBOUND,
        codec=codec,
        lines=[(key, submission(first, [{"caf_number": caf}]))],
    )
    await console_produce(
        pipeline,
        infra,
        topics.INBOUND,
        codec="none",
        lines=[(key, submission(second, [{"caf_number": caf}]))],
    )
    for ssn in (first, second):
        [posted] = await pipeline.terminal(ref_of(ssn), 1)
        assert posted["type"] == "AuthorizationPosted"
