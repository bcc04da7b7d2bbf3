"""The one declarative list of topics and tables the processor needs.

Provisioning (`caf_runtime.provision`) creates what is missing from these lists; nothing else
creates topics (brokers run with auto-creation off) or tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from schemas import topics

KEYED_PARTITIONS = 12


@dataclass(frozen=True)
class TopicSpec:
    """A topic with its partition count and topic-level configuration."""

    name: str
    partitions: int = KEYED_PARTITIONS
    config: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TableSpec:
    """A DynamoDB table with a string partition key `pk` and sort key `sk`.

    `ttl_attribute`, when set, names the epoch-seconds attribute after which DynamoDB may delete
    an item (used for dedup marks, whose retention is bounded).
    """

    name: str
    ttl_attribute: str | None = None


TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(topics.INBOUND),
    TopicSpec(topics.INBOUND_DLQ),
    TopicSpec(topics.INBOUND_RETRY),
    TopicSpec(
        topics.PRACTITIONERS,
        config={"cleanup.policy": "compact", "min.compaction.lag.ms": "0"},
    ),
    TopicSpec(topics.EVENTS),
    TopicSpec(topics.NOTIFICATIONS),
    TopicSpec(topics.GRANTS_ACCEPTED),
    TopicSpec(topics.GRANTS_VALIDATED),
    TopicSpec(topics.VALIDATOR_DLQ),
    TopicSpec(topics.POSTER_DLQ),
    TopicSpec(topics.NOTIFIER_DLQ),
    *(TopicSpec(name) for name in topics.RETRY_TOPICS),
)

TABLES: tuple[TableSpec, ...] = (
    TableSpec("intake", ttl_attribute="expires_at"),
    TableSpec("validator"),
    TableSpec("caf"),
    TableSpec("notifier", ttl_attribute="expires_at"),
    TableSpec("ops"),  # operator tools: which dead letters were replayed
)
