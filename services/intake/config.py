"""Settings of the intake service (environment prefix `INTAKE_`)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from caf_runtime.config import ServiceSettings


class IntakeSettings(ServiceSettings):
    """intake settings; connection settings are inherited."""

    model_config = SettingsConfigDict(env_prefix="INTAKE_", extra="ignore", frozen=True)

    group_id: str = Field(default="caf-intake", description="Kafka consumer group.")
    health_port: int = Field(default=8081, description="Port of /healthz and /readyz.")
    dedup_retention_days: int = Field(
        default=35, description="How long message ids and form fingerprints are remembered."
    )
    taxpayer_ref_key: SecretStr = Field(
        description="HMAC key that turns a TIN into its taxpayer_ref pseudonym; no default.",
    )
