"""Settings of the intake service (environment prefix `INTAKE_`)."""

from __future__ import annotations

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from caf_runtime import topology
from caf_runtime.config import TaxpayerRefSettings
from caf_runtime.secrets import WeakKeyError
from services.intake.pins import PinVault


class IntakeSettings(TaxpayerRefSettings):
    """intake settings; connection settings are inherited."""

    model_config = SettingsConfigDict(env_prefix="INTAKE_", extra="ignore", frozen=True)

    group_id: str = Field(default=topology.INTAKE.name, description="Kafka consumer group.")
    health_port: int = Field(default=8081, description="Port of /healthz and /readyz.")
    dedup_retention_days: int = Field(
        default=35, description="How long message ids and form fingerprints are remembered."
    )
    max_receipt_age_days: int = Field(
        default=60,
        ge=1,
        description="TB-01: a form received more than this many days before it is processed "
        "is refused (REJ-RECEIPT-DATE-INVALID).",
    )
    request_expiry_days: int = Field(
        default=30, description="IN-23: days a Tax Pro Account request waits for its decision."
    )
    decision_retry_window_s: float = Field(
        default=600.0,
        description="IN-21: how long a decision for a request not seen yet is retried.",
    )
    decision_retry_delay_s: float = Field(
        default=5.0, description="Pause between two tries of such a decision."
    )
    identity_providers: dict[str, str] = Field(
        default_factory=dict,
        description="AU-02: the allow-listed identity providers, issuer -> JWKS file or URL "
        '(JSON, `{"https://secure-access.local": ".devstack/keys/secure-access.jwks"}`). '
        "Empty: every identity assertion fails its issuer check.",
    )

    pin_keys: SecretStr = Field(
        description="DO-05: intake's private PIN keys, a JWKS (JSON) of EC P-256 keys, the "
        "current one first; portals seal a typed PIN to the public half (`caf_client.pins`). "
        "Older keys stay until no sealed PIN of theirs can arrive.",
    )
    entities_group_id: str = Field(
        default=topology.INTAKE_ENTITIES.name,
        description="Consumer group that applies caf.entities.v1 to intake's entity view.",
    )
    entity_wait_s: float = Field(
        default=10.0,
        description="How long a Designated Official act waits for the entity view to catch up "
        "with the entity feed (DO-01).",
    )

    @model_validator(mode="after")
    def _keys_are_strong(self) -> IntakeSettings:
        """Intake does not start on a weak or missing key (no plaintext may leave it)."""
        self.ref_keys()
        if self.sealer() is None:
            msg = "CAF_ENVELOPE_KEYS is required: intake seals its dead letters and retries"
            raise WeakKeyError(msg)
        try:
            self.pin_vault()
        except ValueError as error:
            raise WeakKeyError(f"INTAKE_PIN_KEYS: {error}") from None
        return self

    def pin_vault(self) -> PinVault:
        return PinVault.from_jwks(self.pin_keys.get_secret_value())
