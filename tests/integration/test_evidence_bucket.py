"""The evidence bucket on the real S3-compatible server (SeaweedFS) with Object Lock: ES-03, ES-05.

The store itself refuses what would destroy evidence (deleting or shortening a locked version,
even for the bucket's administrator); what it cannot refuse (a new version written over the key,
a delete marker) reads `verified: false` while the locked original stays."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from caf_runtime.config import EvidenceSettings
from caf_runtime.evidence_bucket import (
    EvidenceBucket,
    EvidenceUnavailable,
    ensure_bucket,
    s3_client,
)
from tests.conftest import Infrastructure, unique
from tests.evidence_objects import taxpayer_evidence

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

pytestmark = pytest.mark.integration

RETAIN = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)


def evidence_settings(infra: Infrastructure, principal: str, bucket: str) -> EvidenceSettings:
    return EvidenceSettings.model_validate(
        infra.s3_identity(principal) | {"CAF_EVIDENCE_BUCKET": bucket}
    )


def admin(infra: Infrastructure) -> S3Client:
    """A plain boto3 client as the bucket's administrator (the provisioner)."""
    identity = infra.s3_identity("provisioner")
    return boto3.client(
        "s3",
        endpoint_url=identity["S3_ENDPOINT"],
        region_name="us-east-1",
        aws_access_key_id=identity.get("S3_ACCESS_KEY_ID"),
        aws_secret_access_key=identity.get("S3_SECRET_ACCESS_KEY"),
        config=Config(s3={"addressing_style": "path"}),
    )


@pytest.fixture
async def bucket(infra: Infrastructure) -> str:
    name = unique("evidence-")
    async with s3_client(evidence_settings(infra, "provisioner", name)) as client:
        assert await ensure_bucket(client, name)
        assert not await ensure_bucket(client, name)  # there already, with Object Lock
    return name


async def test_stored_evidence_reads_back_verified_and_locked_in_compliance_mode_es_03_es_05(
    infra: Infrastructure, bucket: str
) -> None:
    evidence = taxpayer_evidence()
    async with EvidenceBucket(evidence_settings(infra, "poster", bucket)) as poster:
        await poster.store([evidence], RETAIN)
        # a later reference (another grant of the form) lengthens the lock; an earlier one
        # (a redelivery) leaves it
        await poster.store([evidence], RETAIN + dt.timedelta(days=1))
        await poster.store([evidence], RETAIN)
    async with EvidenceBucket(evidence_settings(infra, "query", bucket)) as reader:
        stored = await reader.read(evidence.ref(RETAIN))
    assert stored is not None
    assert stored.verified
    assert stored.original_kept
    assert stored.versions == 1  # the later writes did not add a version
    assert stored.lock_mode == "COMPLIANCE"
    assert stored.retain_until is not None
    assert abs((stored.retain_until - RETAIN - dt.timedelta(days=1)).total_seconds()) < 1
    assert stored.data == evidence.payload()


async def test_an_object_known_locked_long_enough_is_not_written_again_and_a_later_date_is(
    infra: Infrastructure, bucket: str
) -> None:
    """ES-03: the second grant of a form names the same object for the same day's lock: the
    bucket remembers the lock it made and makes no call; a later date still lengthens it."""
    evidence = taxpayer_evidence(offset=5)
    async with EvidenceBucket(evidence_settings(infra, "poster", bucket)) as poster:
        calls: list[str] = []
        client = poster.client
        put, extend = client.put_object, client.put_object_retention

        async def counted_put(**kwargs: Any) -> Any:
            calls.append("put_object")
            return await put(**kwargs)

        async def counted_extend(**kwargs: Any) -> Any:
            calls.append("put_object_retention")
            return await extend(**kwargs)

        client.put_object = counted_put  # type: ignore[method-assign]
        client.put_object_retention = counted_extend  # type: ignore[method-assign]
        await poster.store([evidence], RETAIN)
        await poster.store([evidence, evidence], RETAIN)
        await poster.store([evidence], RETAIN - dt.timedelta(hours=1))
        assert calls == ["put_object"]
        await poster.store([evidence], RETAIN + dt.timedelta(days=1))
        assert calls == ["put_object", "put_object", "put_object_retention"]
    async with EvidenceBucket(evidence_settings(infra, "query", bucket)) as reader:
        stored = await reader.read(evidence.ref(RETAIN))
    assert stored is not None
    assert stored.retain_until is not None
    assert abs((stored.retain_until - RETAIN - dt.timedelta(days=1)).total_seconds()) < 1


async def test_the_store_refuses_to_delete_or_shorten_a_locked_version_even_for_its_admin_es_03(
    infra: Infrastructure, bucket: str
) -> None:
    evidence = taxpayer_evidence(offset=8)
    async with EvidenceBucket(evidence_settings(infra, "poster", bucket)) as poster:
        await poster.store([evidence], RETAIN)
    s3 = admin(infra)
    [version] = s3.list_object_versions(Bucket=bucket, Prefix=evidence.key)["Versions"]
    with pytest.raises(ClientError, match="AccessDenied"):
        s3.delete_object(Bucket=bucket, Key=evidence.key, VersionId=version["VersionId"])
    with pytest.raises(ClientError, match="AccessDenied"):
        s3.delete_object(
            Bucket=bucket,
            Key=evidence.key,
            VersionId=version["VersionId"],
            BypassGovernanceRetention=True,
        )
    with pytest.raises(ClientError, match="AccessDenied"):
        s3.put_object_retention(
            Bucket=bucket,
            Key=evidence.key,
            VersionId=version["VersionId"],
            Retention={"Mode": "COMPLIANCE", "RetainUntilDate": RETAIN - dt.timedelta(days=1)},
        )


async def test_a_copy_written_over_a_key_or_a_delete_marker_reads_unverified_original_kept_es_05(
    infra: Infrastructure, bucket: str
) -> None:
    evidence = taxpayer_evidence(offset=9)
    async with EvidenceBucket(evidence_settings(infra, "poster", bucket)) as poster:
        await poster.store([evidence], RETAIN)
    s3 = admin(infra)
    s3.put_object(Bucket=bucket, Key=evidence.key, Body=b'{"format":"forged"}')
    async with EvidenceBucket(evidence_settings(infra, "query", bucket)) as reader:
        changed = await reader.read(evidence.key)
        s3.delete_object(Bucket=bucket, Key=evidence.key)
        hidden = await reader.read(evidence.key)
    assert changed is not None
    assert hidden is not None
    assert not changed.verified
    assert changed.versions == 2
    assert changed.original_kept
    assert changed.data == evidence.payload()
    assert not hidden.verified
    assert hidden.served_sha256 is None
    assert hidden.original_kept
    assert hidden.lock_mode == "COMPLIANCE"


async def test_the_reader_cannot_write_and_the_writer_cannot_store_into_a_missing_bucket(
    infra: Infrastructure, bucket: str
) -> None:
    async with EvidenceBucket(evidence_settings(infra, "query", bucket)) as reader:
        with pytest.raises(EvidenceUnavailable):
            await reader.store([taxpayer_evidence(offset=10)], RETAIN)
    async with EvidenceBucket(evidence_settings(infra, "poster", unique("nobucket-"))) as poster:
        with pytest.raises(EvidenceUnavailable):
            await poster.store([taxpayer_evidence(offset=11)], RETAIN)


async def test_a_bucket_without_object_lock_is_refused_as_an_evidence_bucket(
    infra: Infrastructure,
) -> None:
    name = unique("plain-")
    admin(infra).create_bucket(Bucket=name)
    async with s3_client(evidence_settings(infra, "provisioner", name)) as client:
        with pytest.raises(RuntimeError, match="without Object Lock"):
            await ensure_bucket(client, name)
