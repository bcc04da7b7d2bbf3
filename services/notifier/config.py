"""Settings of the notifier service (environment prefix `NOTIFIER_`)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from caf_runtime import topology
from caf_runtime.config import ServiceSettings


class NotifierSettings(ServiceSettings):
    """notifier settings; connection settings are inherited."""

    model_config = SettingsConfigDict(env_prefix="NOTIFIER_", extra="ignore", frozen=True)

    group_id: str = Field(default=topology.NOTIFIER.name, description="Kafka consumer group.")
    health_port: int = Field(default=8084, description="Port of /healthz and /readyz.")
