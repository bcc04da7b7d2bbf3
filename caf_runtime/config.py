"""Settings every service shares. Each service subclasses `ServiceSettings` with its own prefix.

Connection settings use the conventional unprefixed names (`KAFKA_BOOTSTRAP_SERVERS`,
`DYNAMODB_ENDPOINT`, ...) so one environment points every service, script and test at the same
stack. Secrets have no defaults.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from caf_runtime.envelope import KeyRing, Sealer
from caf_runtime.secrets import WeakKeyError, ref_keys, secret_map
from schemas.ids import RefKeys


class ServiceSettings(BaseSettings):
    """Connection and runtime settings common to all services."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:9092",
        validation_alias="KAFKA_BOOTSTRAP_SERVERS",
        description="Comma-separated host:port list of Kafka brokers.",
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT", validation_alias="KAFKA_SECURITY_PROTOCOL"
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        default="SCRAM-SHA-512", validation_alias="KAFKA_SASL_MECHANISM"
    )
    kafka_sasl_username: str | None = Field(default=None, validation_alias="KAFKA_SASL_USERNAME")
    kafka_sasl_password: SecretStr | None = Field(
        default=None, validation_alias="KAFKA_SASL_PASSWORD"
    )
    kafka_ssl_cafile: str | None = Field(
        default=None,
        validation_alias="KAFKA_SSL_CAFILE",
        description="PEM file of the CA that signed the brokers' certificates (SSL, SASL_SSL); "
        "unset: the system's trust store.",
    )
    kafka_compression: Literal["none", "gzip", "snappy", "lz4", "zstd"] = Field(
        default="lz4",
        validation_alias="KAFKA_COMPRESSION",
        description="Codec of the record batches this process produces (consumers read every "
        "codec). lz4 was chosen by `make bench`: see BENCHMARKS.md, 'Producer compression'.",
    )
    publisher_jwks: str | None = Field(
        default=None,
        validation_alias="CAF_PUBLISHER_JWKS",
        description="AU-01: JWKS file or http(s) URL of the publishers' public keys (kid "
        "`<publisher>` or `<publisher>@<version>`). Required by the services that consume "
        "`caf.inbound.v1` and `caf.practitioners.v1`.",
    )
    publisher_allow: dict[str, dict[str, list[str]]] | None = Field(
        default=None,
        validation_alias="CAF_PUBLISHER_ALLOW",
        description="AU-01: which publisher may sign which kind on which topic (JSON, "
        '`{"caf.inbound.v1": {"submission": ["forms-intake"]}}`); unset: the contract\'s list.',
    )
    envelope_keys: SecretStr | None = Field(
        default=None,
        validation_alias="CAF_ENVELOPE_KEYS",
        description="Key-encryption keys of sealed copies (dead letters and retries of inbound "
        'records), JSON `{"<kid>": "<64 hex digits>"}`; older kids stay to open older copies. '
        "Required by intake; `cafctl dlq` needs it to show or replay a sealed letter.",
    )
    envelope_kid: str | None = Field(
        default=None,
        validation_alias="CAF_ENVELOPE_KID",
        description="The kid in CAF_ENVELOPE_KEYS that seals new copies (default: the only one).",
    )
    topic_prefix: str = Field(
        default="",
        validation_alias="CAF_TOPIC_PREFIX",
        description="Prepended to every topic name; empty in production.",
    )
    dynamodb_endpoint: str | None = Field(
        default=None,
        validation_alias="DYNAMODB_ENDPOINT",
        description="DynamoDB endpoint URL; unset means AWS DynamoDB for the region.",
    )
    aws_region: str = Field(default="us-east-1", validation_alias="AWS_REGION")
    table_prefix: str = Field(
        default="caf-local-",
        validation_alias="CAF_TABLE_PREFIX",
        description="Prepended to every DynamoDB table name (one prefix per environment).",
    )
    table_kms_key: str | None = Field(
        default=None,
        validation_alias="CAF_TABLE_KMS_KEY",
        description="ARN of the customer-managed KMS key that encrypts the tables provisioning "
        "creates on AWS; unset: DynamoDB's own key (the local endpoint has no KMS).",
    )
    log_level: str = Field(default="INFO", validation_alias="CAF_LOG_LEVEL")
    graceful_timeout_s: float = Field(
        default=25.0,
        validation_alias="CAF_GRACEFUL_TIMEOUT_S",
        description="How long SIGTERM waits for in-flight messages before the process exits.",
    )
    clock_offset_file: str | None = Field(
        default=None,
        validation_alias="CAF_CLOCK_OFFSET_FILE",
        description="Drills and tests only: a file whose number of seconds moves the clock ahead.",
    )
    consumers_per_topic: int = Field(
        default=4,
        ge=1,
        validation_alias="CAF_CONSUMERS_PER_TOPIC",
        description="With CAF_BATCH_MAX_RECORDS=0 only: consumers per subscribed topic in one "
        "process, each with its own partitions (messages of one partition stay in order); more "
        "than the partition count idle.",
    )
    batch_max_records: int = Field(
        default=200,
        ge=0,
        le=10_000,
        validation_alias="CAF_BATCH_MAX_RECORDS",
        description="0: each consumer takes one record at a time. N > 0: one consumer per "
        "subscribed topic takes up to N records per poll, runs the records of each key in order "
        "and the keys concurrently, and commits once per poll.",
    )
    batch_concurrency: int = Field(
        default=64,
        ge=1,
        le=10_000,
        validation_alias="CAF_BATCH_CONCURRENCY",
        description="With batches: how many keys of a poll run at once (each key's records in "
        "order); their DynamoDB reads and transactions share calls.",
    )
    batch_timeout_ms: int = Field(
        default=5,
        ge=1,
        validation_alias="CAF_BATCH_TIMEOUT_MS",
        description="With batches: the longest a poll waits for records (also the pause after an "
        "empty poll). Each hop adds up to twice this to a record that arrives while it is idle "
        "(make bench, relay chain p50 at 50/s: 129 ms with 20, 72 ms with 5).",
    )
    producer_linger_ms: int = Field(
        default=5,
        ge=0,
        le=1000,
        validation_alias="CAF_PRODUCER_LINGER_MS",
        description="How long the producer waits for more records to the same partition before "
        "sending a batch: a few ms of latency for fewer, larger produce requests under load.",
    )
    event_loop: Literal["uvloop", "asyncio"] = Field(
        default="uvloop",
        validation_alias="CAF_EVENT_LOOP",
        description="The event loop: uvloop (faster I/O callbacks) or the standard asyncio one.",
    )
    timer_poll_s: float = Field(
        default=1.0, validation_alias="CAF_TIMER_POLL_S", description="How often due timers fire."
    )
    fetch_not_ready_after_s: float = Field(
        default=60.0,
        gt=0,
        validation_alias="CAF_FETCH_NOT_READY_AFTER_S",
        description="A consumer that has failed to fetch or decode a batch for longer than this "
        "makes the process not ready (/readyz 503).",
    )
    fetch_not_live_after_s: float = Field(
        default=300.0,
        gt=0,
        validation_alias="CAF_FETCH_NOT_LIVE_AFTER_S",
        description="... and for longer than this, not live (/healthz 503: the process is "
        "restarted).",
    )
    health_host: str = Field(
        default="127.0.0.1",
        validation_alias="CAF_HEALTH_HOST",
        description="Address of the health and metrics endpoint (0.0.0.0 in containers).",
    )
    health_port: int = Field(
        default=0, description="Port of the /healthz and /readyz endpoint; 0 picks a free one."
    )

    def sealer(self) -> Sealer | None:
        """The sealer of CAF_ENVELOPE_KEYS; None when none is configured; `WeakKeyError` when a
        key is weak or the current kid is not among them."""
        if self.envelope_keys is None or not self.envelope_keys.get_secret_value().strip():
            return None
        keys = secret_map(self.envelope_keys, "CAF_ENVELOPE_KEYS")
        current = self.envelope_kid or (next(iter(keys)) if len(keys) == 1 else "")
        if not current:
            msg = "CAF_ENVELOPE_KID must name the current key when CAF_ENVELOPE_KEYS has several"
            raise WeakKeyError(msg)
        return Sealer(KeyRing.from_config(keys, current))

    def topic(self, name: str) -> str:
        """The deployed name of a contract topic."""
        return f"{self.topic_prefix}{name}"

    def table(self, name: str) -> str:
        """The deployed name of a logical table."""
        return f"{self.table_prefix}{name}"


class TaxpayerRefSettings(ServiceSettings):
    """Settings of a service that turns TINs into their taxpayer_ref (intake; the read side
    looks TINs up by it): the key of every version, under the service's own prefix."""

    taxpayer_ref_key: SecretStr = Field(
        description="HMAC key that turns a TIN into its taxpayer_ref pseudonym (key version 1): "
        "64 hex digits or base64 of 32 random bytes; no default. A weak key refuses to start.",
    )
    taxpayer_ref_layers: SecretStr | None = Field(
        default=None,
        description="The keys of versions 2, 3, ... added by rotations (JSON "
        '`{"2": "<64 hex digits>"}`); the highest version is current. Every version up to it '
        "must be present (docs/operations.md, 'Rotating the taxpayer_ref key').",
    )

    def ref_keys(self) -> RefKeys:
        """The taxpayer_ref key of every version; `WeakKeyError` if one is weak or missing."""
        prefix = str(self.model_config.get("env_prefix", ""))
        return ref_keys(self.taxpayer_ref_key, self.taxpayer_ref_layers, prefix)


class EvidenceSettings(ServiceSettings):
    """Settings of a service that stores or reads signature evidence (ESSAR: the poster writes,
    the read side reads): the bucket, its endpoint and the retention of its objects."""

    s3_endpoint: str | None = Field(
        default=None,
        validation_alias="S3_ENDPOINT",
        description="S3 endpoint URL (the local S3-compatible server); unset: AWS S3.",
    )
    s3_access_key_id: str | None = Field(
        default=None,
        validation_alias="S3_ACCESS_KEY_ID",
        description="Access key of the evidence bucket; unset: the standard AWS credential chain "
        "(the service's IAM role).",
    )
    s3_secret_access_key: SecretStr | None = Field(
        default=None, validation_alias="S3_SECRET_ACCESS_KEY", description="Its secret."
    )
    evidence_bucket: str = Field(
        default="caf-signature-evidence",
        validation_alias="CAF_EVIDENCE_BUCKET",
        description="Bucket of signature evidence objects, created with versioning and Object "
        "Lock by provisioning (ES-03).",
    )
    evidence_retention_days: int = Field(
        default=2557,
        ge=1,
        validation_alias="CAF_EVIDENCE_RETENTION_DAYS",
        description="Object Lock retain-until of an evidence object, in days after its grant "
        "posts (ES-03; 2557 = 7 years, the IRM retention of CAF documents).",
    )
    evidence_kms_key: str | None = Field(
        default=None,
        validation_alias="CAF_EVIDENCE_KMS_KEY",
        description="KMS key (ARN) of SSE-KMS for evidence objects; unset: SSE-S3 (AES256).",
    )
