"""Settings of the caf_poster service (environment prefix `CAF_POSTER_`)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from caf_runtime.config import ServiceSettings


class CafPosterSettings(ServiceSettings):
    """caf_poster settings; connection settings are inherited."""

    model_config = SettingsConfigDict(env_prefix="CAF_POSTER_", extra="ignore", frozen=True)

    group_id: str = Field(default="caf-poster", description="Kafka consumer group.")
    health_port: int = Field(default=8083, description="Port of /healthz and /readyz.")
    reorder_window_s: float = Field(
        default=120.0,
        description="PO-03: how long approvals of a group wait so late, earlier ones go first.",
    )
