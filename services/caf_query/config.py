"""Settings of the read side (environment prefix `CAF_QUERY_`)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from caf_runtime import topology
from caf_runtime.config import EvidenceSettings, TaxpayerRefSettings


class QuerySettings(TaxpayerRefSettings, EvidenceSettings):
    """caf_query settings; connection settings are inherited."""

    model_config = SettingsConfigDict(env_prefix="CAF_QUERY_", extra="ignore", frozen=True)

    group_id: str = Field(default=topology.QUERY.name, description="Kafka consumer group.")
    health_port: int = Field(default=8086, description="Port of /healthz and /readyz.")
    api_host: str = Field(default="127.0.0.1", description="Address of the HTTP API.")
    api_port: int = Field(default=8090, description="Port of the HTTP API.")
    cache_entries: int = Field(
        default=100_000,
        ge=0,
        description="Taxpayers whose views the check keeps in memory, invalidated by the outcome "
        "stream (services/caf_query/cache.py); 0: every check reads the table.",
    )
    cache_remembered: int = Field(
        default=200_000,
        ge=1,
        description="Recent events' positions the cache may hold (5 minutes' worth); beyond it, "
        "the check reads the table until they age out.",
    )
    secure_cookies: bool = Field(
        default=True,
        description="Mark the web pages' session cookie Secure (sent over HTTPS only); off only "
        "where the API is served over plain HTTP on loopback.",
    )
    signing_key: SecretStr | None = Field(
        default=None,
        description="The authorization API's private publisher key (a JWK, kid `caf-api`), "
        "with which a practitioner's withdrawal is signed (MN-07). Unset: withdrawals through "
        "the API answer 503.",
    )
    identity_providers: dict[str, str] = Field(
        default_factory=dict,
        description="Issuers whose bearer tokens the API accepts, issuer -> JWKS file or URL "
        "(JSON). Empty: every request is 401.",
    )
