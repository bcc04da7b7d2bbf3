"""The evidence bucket (ESSAR): signature evidence objects under S3 Object Lock, compliance mode.

One object per evidence record, at its content address (`schemas.evidence.object_key`), written
once: `If-None-Match: *` makes a second write of the same key a no-op (412), never a second
version; a second reference to it (another grant of the same form) only lengthens its lock when
it names a later date. Object Lock in compliance mode (retain-until = posting +
CAF_EVIDENCE_RETENTION_DAYS, 7 years by default) makes the store itself refuse to delete or
shorten a version before then, whoever asks. Objects are encrypted at rest (SSE-KMS with
CAF_EVIDENCE_KMS_KEY, else SSE-S3), and S3 checks each upload against the SHA-256 we send
(`x-amz-checksum-sha256`).

The bucket remembers the locks it saw (`KNOWN_LOCKS` keys, the least recently used forgotten
first): an object this process stored, or found locked, until a date at least as late as a new
reference asks is not written again. Sound because a compliance lock cannot be shortened nor its
version deleted before then, by anyone; a forgotten key only costs the calls again.

Reading re-computes the SHA-256 of the stored bytes and compares it with the content address
(ES-05): a changed copy, wherever it came from, reads `verified: false`.

`S3_ENDPOINT` points at the local S3-compatible server (`make up` starts SeaweedFS) or is unset
for AWS; credentials are the standard chain unless `S3_ACCESS_KEY_ID`/`S3_SECRET_ACCESS_KEY` set.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import logging
from collections import OrderedDict
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import aioboto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from caf_runtime.config import EvidenceSettings
from caf_runtime.metrics import EVIDENCE_KNOWN, EVIDENCE_WRITES
from schemas.evidence import SignatureEvidence, SignatureRef, sha256_of_key

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client
    from types_aiobotocore_s3.type_defs import PutObjectRequestTypeDef

log = logging.getLogger(__name__)

# One attempt, short timeouts: a store that does not answer fails fast and the poster's durable
# timers try again (ES-03); in-client retries would hold a timer round for every waiting grant.
_CLIENT_CONFIG = Config(
    retries={"max_attempts": 1, "mode": "standard"},
    connect_timeout=2,
    read_timeout=3,
    s3={"addressing_style": "path"},
)
# How many objects' locks the bucket remembers (a key and a date: a few MB at most).
KNOWN_LOCKS = 50_000


class EvidenceUnavailable(Exception):  # noqa: N818 - the store's state, not a bug
    """The object store did not take (or give back) an evidence object; try again later."""


@dataclass(frozen=True)
class StoredEvidence:
    """One evidence object as the bucket holds it, hashed again (ES-05).

    `served_sha256` is the hash of what a plain GET of the key returns now (None when a delete
    marker hides it); `verified` says it is still the object recorded at posting. The original
    version is looked for among all versions: Object Lock keeps it whatever was written over it,
    so `original_kept` and its lock tell whether the evidence itself survives a tampering."""

    key: str
    served_sha256: str | None
    original_kept: bool
    lock_mode: str | None
    retain_until: dt.datetime | None
    versions: int
    data: bytes | None  # the original's bytes

    @property
    def verified(self) -> bool:
        return self.served_sha256 is not None and self.served_sha256 == sha256_of_key(self.key)


class EvidenceStore(Protocol):
    """What the poster needs of the evidence bucket (the test fake implements it)."""

    async def store(self, evidence: Sequence[SignatureEvidence], retain_until: dt.datetime) -> None:
        """Every object stored and locked until `retain_until` (or already there);
        `EvidenceUnavailable` otherwise."""
        ...


class EvidenceReader(Protocol):
    """What the read side needs of the evidence bucket."""

    async def read(self, ref: SignatureRef | str) -> StoredEvidence | None: ...


class EvidenceBucket:
    """The evidence bucket through aioboto3; `async with` opens and closes its client."""

    def __init__(self, settings: EvidenceSettings) -> None:
        self._settings = settings
        self.name = settings.evidence_bucket
        self._stack = AsyncExitStack()
        self._client: S3Client | None = None
        self._locked: OrderedDict[str, dt.datetime] = OrderedDict()  # key: locked at least until

    async def __aenter__(self) -> EvidenceBucket:
        self._client = await self._stack.enter_async_context(s3_client(self._settings))
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._stack.aclose()
        self._client = None

    @property
    def client(self) -> S3Client:
        if self._client is None:
            msg = "the evidence bucket is used before it was opened"
            raise RuntimeError(msg)
        return self._client

    async def store(self, evidence: Sequence[SignatureEvidence], retain_until: dt.datetime) -> None:
        """ES-03, ES-04: write each object once, locked in compliance mode until
        `retain_until`, encrypted at rest; one already there counts as stored."""
        for item in {e.sha256: e for e in evidence}.values():
            if self._known_locked(item.key, retain_until):
                EVIDENCE_KNOWN.inc()
                continue
            data = item.payload()
            kms_key = self._settings.evidence_kms_key
            request: PutObjectRequestTypeDef = {
                "Bucket": self.name,
                "Key": item.key,
                "Body": data,
                "ContentType": "application/json",
                "ChecksumSHA256": base64.b64encode(hashlib.sha256(data).digest()).decode(),
                "ObjectLockMode": "COMPLIANCE",
                "ObjectLockRetainUntilDate": retain_until,
                "IfNoneMatch": "*",
                "ServerSideEncryption": "aws:kms" if kms_key else "AES256",
            }
            if kms_key:
                request["SSEKMSKeyId"] = kms_key
            try:
                await self.client.put_object(**request)
                result = "stored"
            except ClientError as error:
                if _code(error) not in {"PreconditionFailed", "412"}:
                    EVIDENCE_WRITES.labels(result="failed").inc()
                    raise EvidenceUnavailable(_code(error)) from error
                result = await self._extend_lock(item.key, retain_until)
            except (BotoCoreError, OSError) as error:
                EVIDENCE_WRITES.labels(result="failed").inc()
                raise EvidenceUnavailable(type(error).__name__) from error
            self._remember(item.key, retain_until)
            EVIDENCE_WRITES.labels(result=result).inc()

    def _known_locked(self, key: str, retain_until: dt.datetime) -> bool:
        held = self._locked.get(key)
        if held is None or held < retain_until:
            return False
        self._locked.move_to_end(key)
        return True

    def _remember(self, key: str, retain_until: dt.datetime) -> None:
        """`key` is locked at least until `retain_until` (stored, found or lengthened so)."""
        self._locked[key] = max(retain_until, self._locked.get(key, retain_until))
        self._locked.move_to_end(key)
        while len(self._locked) > KNOWN_LOCKS:
            self._locked.popitem(last=False)

    async def _extend_lock(self, key: str, retain_until: dt.datetime) -> str:
        """An object already stored (another grant of the same form, a retry) stays locked at
        least as long as the newest reference to it says: compliance mode lets a lock be
        lengthened, never shortened."""
        held = await self.client.get_object_retention(Bucket=self.name, Key=key)
        until = held.get("Retention", {}).get("RetainUntilDate")
        if until is not None and until >= retain_until:
            return "already_stored"
        await self.client.put_object_retention(
            Bucket=self.name,
            Key=key,
            Retention={"Mode": "COMPLIANCE", "RetainUntilDate": retain_until},
        )
        return "lock_extended"

    async def read(self, ref: SignatureRef | str) -> StoredEvidence | None:
        """ES-05: every version at a reference, hashed again; None when nothing was ever
        stored there."""
        key = ref if isinstance(ref, str) else ref.key
        expected = sha256_of_key(key)
        try:
            listing = await self.client.list_object_versions(Bucket=self.name, Prefix=key)
            versions = [v for v in listing.get("Versions", []) if v.get("Key") == key]
            if not versions:
                return None
            served: str | None = None
            original: tuple[bytes, str | None, dt.datetime | None] | None = None
            for version in versions:
                answer = await self.client.get_object(
                    Bucket=self.name, Key=key, VersionId=version["VersionId"]
                )
                async with answer["Body"] as body:
                    data = await body.read()
                digest = hashlib.sha256(data).hexdigest()
                if version.get("IsLatest"):
                    served = digest
                if digest == expected and original is None:
                    lock = answer.get("ObjectLockMode"), answer.get("ObjectLockRetainUntilDate")
                    original = (data, *lock)
        except ClientError as error:
            raise EvidenceUnavailable(_code(error)) from error
        except (BotoCoreError, OSError) as error:
            raise EvidenceUnavailable(type(error).__name__) from error
        return StoredEvidence(
            key=key,
            served_sha256=served,  # None: a delete marker is the latest
            original_kept=original is not None,
            lock_mode=original[1] if original else None,
            retain_until=original[2] if original else None,
            versions=len(versions),
            data=original[0] if original else None,
        )

    async def ping(self) -> bool:
        try:
            await self.client.head_bucket(Bucket=self.name)
        except (ClientError, BotoCoreError, OSError):
            return False
        return True


def s3_client(settings: EvidenceSettings) -> AbstractAsyncContextManager[S3Client]:
    """An S3 client for the configured endpoint and credentials."""
    access_key = settings.s3_access_key_id
    secret = settings.s3_secret_access_key
    session = aioboto3.Session(
        aws_access_key_id=access_key,
        aws_secret_access_key=secret.get_secret_value() if secret else None,
    )
    return session.client(  # type: ignore[no-any-return]
        "s3",
        endpoint_url=settings.s3_endpoint,
        region_name=settings.aws_region,
        config=_CLIENT_CONFIG,
    )


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", "Unknown"))


async def ensure_bucket(client: S3Client, name: str) -> bool:
    """Create the evidence bucket with versioning and Object Lock (True), or check that the one
    there has Object Lock enabled (False); `RuntimeError` if it has not: evidence is never
    written where it could be deleted."""
    try:
        await client.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    except ClientError as error:
        if _code(error) not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
            raise
    else:
        return True
    try:
        lock = await client.get_object_lock_configuration(Bucket=name)
    except ClientError as error:
        lock_state = _code(error)
    else:
        lock_state = lock.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled", "Disabled")
    if lock_state != "Enabled":
        msg = f"bucket {name} exists without Object Lock ({lock_state}): not an evidence bucket"
        raise RuntimeError(msg)
    return False
