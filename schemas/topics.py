"""Every Kafka topic the processor uses, by its contract name (see docs/contract.md).

Public topics are part of the wire contract; internal ones are ours to shape but follow the same
conventions. Deployments may add a prefix (`CAF_TOPIC_PREFIX`) for isolation; the names here never
change without a new `.vN` topic.
"""

from typing import Final

__all__ = [
    "AUDIT",
    "DEAD_LETTER_TOPICS",
    "ENTITIES",
    "EVENTS",
    "GRANTS_ACCEPTED",
    "GRANTS_VALIDATED",
    "INBOUND",
    "INBOUND_DLQ",
    "INBOUND_RETRY",
    "INTAKE_RETRY",
    "MONITOR_DLQ",
    "MONITOR_RETRY",
    "NOTIFICATIONS",
    "NOTIFIER_DLQ",
    "NOTIFIER_RETRY",
    "OFFICIALS",
    "POSTER_DLQ",
    "POSTER_RETRY",
    "PRACTITIONERS",
    "PROTECTED",
    "QUERY_DLQ",
    "QUERY_RETRY",
    "RETRY_TOPICS",
    "REVIEWS",
    "STATEMENTS",
    "VALIDATOR_DLQ",
    "VALIDATOR_RETRY",
]

INBOUND: Final = "caf.inbound.v1"
INBOUND_DLQ: Final = "caf.inbound.dlq.v1"
# Internal: Tax Pro Account decisions waiting for their request (IN-21).
INBOUND_RETRY: Final = "caf.inbound.retry.v1"
PRACTITIONERS: Final = "caf.practitioners.v1"
# Compacted business entity records (Designated Officials, DO-01), keyed by entity_id.
ENTITIES: Final = "caf.entities.v1"
# Compacted IP PIN program membership (protected taxpayers, PT-01), keyed by taxpayer_ref.
PROTECTED: Final = "caf.protected.v1"
EVENTS: Final = "caf.events.v1"
NOTIFICATIONS: Final = "caf.notifications.v1"
GRANTS_ACCEPTED: Final = "caf.grants.accepted.v1"
GRANTS_VALIDATED: Final = "caf.grants.validated.v1"
# Dead letters of the internal consumers (intake's is the contract's INBOUND_DLQ).
VALIDATOR_DLQ: Final = "caf.validator.dlq.v1"
POSTER_DLQ: Final = "caf.poster.dlq.v1"
NOTIFIER_DLQ: Final = "caf.notifier.dlq.v1"
QUERY_DLQ: Final = "caf.query.dlq.v1"
MONITOR_DLQ: Final = "caf.monitor.dlq.v1"
DEAD_LETTER_TOPICS: Final = (
    INBOUND_DLQ,
    VALIDATOR_DLQ,
    POSTER_DLQ,
    NOTIFIER_DLQ,
    QUERY_DLQ,
    MONITOR_DLQ,
)
# Internal: messages whose handling kept failing transiently, waiting for another round
# (`caf_runtime.guard`); after the last round they go to the consumer's dead-letter topic.
INTAKE_RETRY: Final = "caf.intake.retry.v1"
VALIDATOR_RETRY: Final = "caf.validator.retry.v1"
POSTER_RETRY: Final = "caf.poster.retry.v1"
NOTIFIER_RETRY: Final = "caf.notifier.retry.v1"
QUERY_RETRY: Final = "caf.query.retry.v1"
MONITOR_RETRY: Final = "caf.monitor.retry.v1"
RETRY_TOPICS: Final = (
    INTAKE_RETRY,
    VALIDATOR_RETRY,
    POSTER_RETRY,
    NOTIFIER_RETRY,
    QUERY_RETRY,
    MONITOR_RETRY,
)
# Internal: operators' decisions on held grants (CN-09), written only by cafctl's principal.
REVIEWS: Final = "caf.reviews.v1"
# Internal: operators' deactivations of Designated Officials (DO-07), written only by cafctl's
# principal and read by intake.
OFFICIALS: Final = "caf.officials.v1"
# Internal: operators' requests of the annual review statements (cafctl statements send), read
# by the monitor.
STATEMENTS: Final = "caf.statements.v1"
# Internal: every state-changing operator action, append-only and kept forever (AU-04).
AUDIT: Final = "caf.audit.v1"
