"""Settings of the misuse monitor (environment prefix `MONITOR_`)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from caf_runtime import topology
from caf_runtime.config import ServiceSettings
from services.monitor.rules import Limits


class MonitorSettings(ServiceSettings):
    """monitor settings; connection settings are inherited."""

    model_config = SettingsConfigDict(env_prefix="MONITOR_", extra="ignore", frozen=True)

    group_id: str = Field(
        default=topology.MONITOR.name, description="Consumer group of the outcomes."
    )
    health_port: int = Field(default=8087, description="Port of /healthz, /readyz, /metrics.")
    burst_ceiling: int = Field(
        default=Limits.burst_ceiling,
        description="MN-01: distinct taxpayers in 24 hours that are a burst whatever the number's "
        "own baseline.",
    )
    burst_factor: float = Field(
        default=Limits.burst_factor,
        description="MN-01: a burst is also this many times the number's daily average.",
    )
    share_min_grants: int = Field(
        default=Limits.share_min_grants,
        description="MN-02: grants in 7 days before the share counts.",
    )
    share_8821: float = Field(
        default=Limits.share_8821, description="MN-02: the share of 8821s that is suspect."
    )
    refusals: int = Field(
        default=Limits.refusals,
        description="MN-03: refusals for a name mismatch or a number not in good standing in 7 "
        "days.",
    )
    revocations: int = Field(
        default=Limits.revocations,
        description="MN-04: revocations by taxpayers of grants younger than 30 days, in 30 days.",
    )
    first_use_ceiling: int = Field(
        default=Limits.first_use_ceiling,
        description="MN-05: distinct taxpayers in the first 24 hours of use after a long idle "
        "period or right after assignment.",
    )
    idle_days: int = Field(default=Limits.idle_days, description="MN-05: what a long idle is.")
    fresh_days: int = Field(
        default=Limits.fresh_days, description="MN-05: what right after assignment is."
    )
    statement_day: str = Field(
        default="01-15",
        description="MN-07: the day of the year (MM-DD, New York) the annual review statements "
        "go out; `cafctl statements send` sends them on demand.",
    )
    remind_after_days: int = Field(
        default=1095,
        description="MN-07: a practitioner whose oldest active grant is older than this and who "
        "had no new grant for as long is reminded to withdraw what they no longer need.",
    )

    def limits(self) -> Limits:
        return Limits(
            burst_ceiling=self.burst_ceiling,
            burst_factor=self.burst_factor,
            share_min_grants=self.share_min_grants,
            share_8821=self.share_8821,
            refusals=self.refusals,
            revocations=self.revocations,
            first_use_ceiling=self.first_use_ceiling,
            idle_days=self.idle_days,
            fresh_days=self.fresh_days,
        )
