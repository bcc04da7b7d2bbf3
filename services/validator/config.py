"""Settings of the validator service (environment prefix `VALIDATOR_`)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from caf_runtime import topology
from caf_runtime.config import ServiceSettings


class ValidatorSettings(ServiceSettings):
    """validator settings; connection settings are inherited."""

    model_config = SettingsConfigDict(env_prefix="VALIDATOR_", extra="ignore", frozen=True)

    group_id: str = Field(default=topology.VALIDATOR.name, description="Consumer group for grants.")
    registry_group_id: str = Field(
        default=topology.VALIDATOR_REGISTRY.name,
        description="Consumer group that applies caf.practitioners.v1 to the registry view.",
    )
    protected_group_id: str = Field(
        default=topology.VALIDATOR_PROTECTED.name,
        description="Consumer group that applies caf.protected.v1 to the IP PIN program view.",
    )
    health_port: int = Field(default=8082, description="Port of /healthz and /readyz.")
    velocity_limit: int = Field(
        default=25, description="VA-07: new grants for distinct taxpayers per CAF number per hour."
    )
    registry_wait_s: float = Field(
        default=10.0,
        description="How long a grant waits for the registry view to catch up with the feed.",
    )
    registry_restore_wait_s: float = Field(
        default=300.0,
        description="How long a grant waits for a replica that has just started to read the "
        "whole registry feed into memory (its first catch-up).",
    )
