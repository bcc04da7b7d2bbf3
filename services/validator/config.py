"""Settings of the validator service (environment prefix `VALIDATOR_`)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from caf_runtime.config import ServiceSettings


class ValidatorSettings(ServiceSettings):
    """validator settings; connection settings are inherited."""

    model_config = SettingsConfigDict(env_prefix="VALIDATOR_", extra="ignore", frozen=True)

    group_id: str = Field(default="caf-validator", description="Kafka consumer group.")
    health_port: int = Field(default=8082, description="Port of /healthz and /readyz.")
