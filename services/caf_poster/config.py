"""Settings of the caf_poster service (environment prefix `CAF_POSTER_`)."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from caf_runtime import topology
from caf_runtime.config import EvidenceSettings
from services.caf_poster.rules import EvidenceRetry


class CafPosterSettings(EvidenceSettings):
    """caf_poster settings; connection settings are inherited."""

    model_config = SettingsConfigDict(env_prefix="CAF_POSTER_", extra="ignore", frozen=True)

    group_id: str = Field(default=topology.POSTER.name, description="Kafka consumer group.")
    health_port: int = Field(default=8083, description="Port of /healthz and /readyz.")
    reorder_window_s: float = Field(
        default=120.0,
        description="PO-03: how long approvals of a group wait so late, earlier ones go first.",
    )
    evidence_retry_s: list[float] = Field(
        default=[5.0, 30.0, 120.0],
        min_length=1,
        description="ES-03: delays between attempts to store a waiting grant's signature "
        "evidence; past the last, `PostingDelayed` is announced once (JSON list of seconds).",
    )
    evidence_retry_every_s: float = Field(
        default=300.0,
        gt=0,
        description="ES-03: after the listed delays, how often storing is tried again.",
    )

    def evidence_retry(self) -> EvidenceRetry:
        return EvidenceRetry(
            retention=timedelta(days=self.evidence_retention_days),
            delays=tuple(timedelta(seconds=s) for s in self.evidence_retry_s),
            every=timedelta(seconds=self.evidence_retry_every_s),
        )
