"""The one declarative list of topics and tables the processor needs, and of who may use them.

Provisioning (`caf_runtime.provision`) creates what is missing from these lists; nothing else
creates topics (brokers run with auto-creation off) or tables. `CONSUMER_GROUPS` names every
consumer group of the services (their settings' defaults come from it; `cafctl status` and the
lag exporter report their lag). `ROLES` says, for every Kafka principal, which topics it reads
and writes and which consumer-group prefixes it uses: the broker's ACLs are generated from it
(`caf_runtime.acls`), and `cafctl dlq replay` sends a dead letter back only the way
`replay_route` allows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from schemas import topics

KEYED_PARTITIONS = 12
DAY_MS = 24 * 60 * 60 * 1000


def kept_for(days: int | None) -> dict[str, str]:
    """Topic configuration that keeps records `days` days (None: for ever)."""
    retention = "-1" if days is None else str(days * DAY_MS)
    return {"retention.ms": retention, "retention.bytes": "-1"}


# How long each topic keeps its records (docs/operations.md, "How data is kept"). Topics that
# carry a TIN in plaintext or sealed (the inbound topic, intake's dead letters and retries) are
# kept short: long enough to replay after an outage, no longer. `caf.events.v1` is the audit
# trail of every decision and is kept for ever, like the operators' audit topic.
INBOUND_DAYS = 7
DEAD_LETTER_DAYS = 14
RETRY_DAYS = 2
COMMAND_DAYS = 7
NOTIFICATION_DAYS = 30


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
    an item (used for dedup marks, whose retention is bounded). Every table has point-in-time
    recovery and deletion protection, and on AWS server-side encryption under the configured
    customer-managed key (`CAF_TABLE_KMS_KEY`).
    """

    name: str
    ttl_attribute: str | None = None
    point_in_time_recovery: bool = True
    deletion_protection: bool = True


TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(topics.INBOUND, config=kept_for(INBOUND_DAYS)),
    TopicSpec(topics.INBOUND_DLQ, config=kept_for(DEAD_LETTER_DAYS)),
    TopicSpec(topics.INBOUND_RETRY, config=kept_for(RETRY_DAYS)),
    TopicSpec(
        topics.PRACTITIONERS,
        config={"cleanup.policy": "compact", "min.compaction.lag.ms": "0"},
    ),
    # the entity records hold EINs, names and addresses of businesses: compacted, like the
    # registry, so the latest record per entity stays (DO-01)
    TopicSpec(
        topics.ENTITIES,
        config={"cleanup.policy": "compact", "min.compaction.lag.ms": "0"},
    ),
    # IP PIN program membership by taxpayer_ref (year and basis, never a PIN): compacted (PT-01)
    TopicSpec(
        topics.PROTECTED,
        config={"cleanup.policy": "compact", "min.compaction.lag.ms": "0"},
    ),
    TopicSpec(topics.OFFICIALS, config=kept_for(NOTIFICATION_DAYS)),
    TopicSpec(topics.EVENTS, config=kept_for(None)),
    TopicSpec(topics.NOTIFICATIONS, config=kept_for(NOTIFICATION_DAYS)),
    TopicSpec(topics.GRANTS_ACCEPTED, config=kept_for(COMMAND_DAYS)),
    TopicSpec(topics.GRANTS_VALIDATED, config=kept_for(COMMAND_DAYS)),
    TopicSpec(topics.REVIEWS, config=kept_for(NOTIFICATION_DAYS)),
    TopicSpec(topics.VALIDATOR_DLQ, config=kept_for(DEAD_LETTER_DAYS)),
    TopicSpec(topics.POSTER_DLQ, config=kept_for(DEAD_LETTER_DAYS)),
    TopicSpec(topics.NOTIFIER_DLQ, config=kept_for(DEAD_LETTER_DAYS)),
    TopicSpec(topics.QUERY_DLQ, config=kept_for(DEAD_LETTER_DAYS)),
    TopicSpec(topics.MONITOR_DLQ, config=kept_for(DEAD_LETTER_DAYS)),
    TopicSpec(topics.STATEMENTS, config=kept_for(NOTIFICATION_DAYS)),
    *(TopicSpec(name, config=kept_for(RETRY_DAYS)) for name in topics.RETRY_TOPICS),
    # append-only and kept forever: the operators' audit trail (AU-04)
    TopicSpec(topics.AUDIT, partitions=1, config=kept_for(None)),
)

TABLES: tuple[TableSpec, ...] = (
    TableSpec("intake", ttl_attribute="expires_at"),
    TableSpec("validator", ttl_attribute="expires_at"),  # velocity sightings (VA-07)
    TableSpec("caf", ttl_attribute="expires_at"),  # only forwarding marks of moved partitions
    TableSpec("ops"),  # the audit trail; operator tools: which dead letters were replayed
    TableSpec("query"),  # the read side's views of every grant
    TableSpec("monitor", ttl_attribute="expires_at"),  # CAF-number counts (MN-01 … MN-05)
)


@dataclass(frozen=True)
class ConsumerGroup:
    """A consumer group a service consumes in: its name (the default; the service's settings
    may rename it, e.g. `INTAKE_GROUP_ID`), the topics it reads, and the principal (`Role`) that
    consumes in it. `cafctl status` and the lag exporter report these groups' lag."""

    name: str
    topics: tuple[str, ...]
    principal: str


# What a service's own groups are called after its base group (`<SERVICE>_GROUP_ID`): each
# service reads its retry topic in `<base>-redelivery` (`Guard.subscribe_retries`), and a
# service reading more than one contract topic reads the others in `<base>-<suffix>`.
REDELIVERY_SUFFIX = "-redelivery"
RETRY_SUFFIX = "-retry"  # intake: the decisions it parked on caf.inbound.retry.v1 (IN-21)
OFFICIALS_SUFFIX = "-officials"
REVIEWS_SUFFIX = "-reviews"
SLA_SUFFIX = "-sla"
STATEMENTS_SUFFIX = "-statements"

INTAKE = ConsumerGroup("caf-intake", (topics.INBOUND,), "intake")
INTAKE_ENTITIES = ConsumerGroup("caf-intake-entities", (topics.ENTITIES,), "intake")
VALIDATOR = ConsumerGroup("caf-validator", (topics.GRANTS_ACCEPTED,), "validator")
VALIDATOR_REGISTRY = ConsumerGroup("caf-validator-registry", (topics.PRACTITIONERS,), "validator")
VALIDATOR_PROTECTED = ConsumerGroup("caf-validator-protected", (topics.PROTECTED,), "validator")
POSTER = ConsumerGroup("caf-poster", (topics.GRANTS_VALIDATED,), "poster")
NOTIFIER = ConsumerGroup("caf-notifier", (topics.EVENTS,), "notifier")
QUERY = ConsumerGroup("caf-query", (topics.EVENTS,), "query")
MONITOR = ConsumerGroup("caf-monitor", (topics.EVENTS,), "monitor")


def _after(base: ConsumerGroup, suffix: str, topic: str) -> ConsumerGroup:
    return ConsumerGroup(base.name + suffix, (topic,), base.principal)


# Every consumer group of the services, each once.
CONSUMER_GROUPS: tuple[ConsumerGroup, ...] = (
    INTAKE,
    _after(INTAKE, RETRY_SUFFIX, topics.INBOUND_RETRY),
    INTAKE_ENTITIES,
    _after(INTAKE, OFFICIALS_SUFFIX, topics.OFFICIALS),
    VALIDATOR,
    VALIDATOR_REGISTRY,
    VALIDATOR_PROTECTED,
    _after(VALIDATOR, SLA_SUFFIX, topics.EVENTS),
    _after(VALIDATOR, REVIEWS_SUFFIX, topics.REVIEWS),
    POSTER,
    NOTIFIER,
    _after(INTAKE, REDELIVERY_SUFFIX, topics.INTAKE_RETRY),
    _after(VALIDATOR, REDELIVERY_SUFFIX, topics.VALIDATOR_RETRY),
    _after(POSTER, REDELIVERY_SUFFIX, topics.POSTER_RETRY),
    _after(NOTIFIER, REDELIVERY_SUFFIX, topics.NOTIFIER_RETRY),
    QUERY,
    _after(QUERY, REDELIVERY_SUFFIX, topics.QUERY_RETRY),
    MONITOR,
    _after(MONITOR, STATEMENTS_SUFFIX, topics.STATEMENTS),
    _after(MONITOR, REDELIVERY_SUFFIX, topics.MONITOR_RETRY),
)


@dataclass(frozen=True)
class Role:
    """One Kafka principal and exactly what it may do. A service also writes `caf.audit.v1`:
    `cafctl dlq replay` of its internal dead letters runs with its credentials, audited.

    `groups` are consumer-group name prefixes (a service's base group also covers the groups
    named after it, `CONSUMER_GROUPS`); `describe` topics are read for offsets only (lag,
    readiness), never consumed.
    """

    principal: str
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    describe: tuple[str, ...] = ()
    dead_letters: str | None = None
    retry: str | None = None


ALL_TOPICS = tuple(spec.name for spec in TOPICS)
SERVICE_ROLES: tuple[Role, ...] = (
    Role(
        "intake",
        reads=(
            topics.INBOUND,
            topics.INBOUND_RETRY,
            topics.INTAKE_RETRY,
            topics.ENTITIES,
            topics.OFFICIALS,
        ),
        writes=(
            topics.GRANTS_ACCEPTED,
            topics.EVENTS,
            topics.NOTIFICATIONS,  # only the CP311 letter, the one place a PIN is (DO-04)
            topics.INBOUND_DLQ,
            topics.INBOUND_RETRY,
            topics.INTAKE_RETRY,
            topics.AUDIT,
        ),
        groups=(INTAKE.name,),
        dead_letters=topics.INBOUND_DLQ,
        retry=topics.INTAKE_RETRY,
    ),
    Role(
        "validator",
        reads=(
            topics.PRACTITIONERS,
            topics.PROTECTED,
            topics.GRANTS_ACCEPTED,
            topics.REVIEWS,
            topics.EVENTS,
            topics.VALIDATOR_RETRY,
        ),
        writes=(
            topics.GRANTS_VALIDATED,
            topics.EVENTS,
            topics.VALIDATOR_DLQ,
            topics.VALIDATOR_RETRY,
            topics.AUDIT,
        ),
        groups=(VALIDATOR.name,),
        dead_letters=topics.VALIDATOR_DLQ,
        retry=topics.VALIDATOR_RETRY,
    ),
    Role(
        "poster",
        reads=(topics.GRANTS_VALIDATED, topics.POSTER_RETRY),
        writes=(topics.EVENTS, topics.POSTER_DLQ, topics.POSTER_RETRY, topics.AUDIT),
        groups=(POSTER.name,),
        dead_letters=topics.POSTER_DLQ,
        retry=topics.POSTER_RETRY,
    ),
    Role(
        "notifier",
        reads=(topics.EVENTS, topics.NOTIFIER_RETRY),
        writes=(topics.NOTIFICATIONS, topics.NOTIFIER_DLQ, topics.NOTIFIER_RETRY, topics.AUDIT),
        groups=(NOTIFIER.name,),
        dead_letters=topics.NOTIFIER_DLQ,
        retry=topics.NOTIFIER_RETRY,
    ),
    # the misuse monitor: counts per CAF number from the outcome stream, raises suspicions on
    # it, sends the annual review statements
    Role(
        "monitor",
        reads=(topics.EVENTS, topics.STATEMENTS, topics.MONITOR_RETRY),
        writes=(
            topics.EVENTS,
            topics.NOTIFICATIONS,
            topics.STATEMENTS,  # the yearly run it starts itself (MN-07)
            topics.MONITOR_DLQ,
            topics.MONITOR_RETRY,
            topics.AUDIT,
        ),
        groups=(MONITOR.name,),
        dead_letters=topics.MONITOR_DLQ,
        retry=topics.MONITOR_RETRY,
    ),
    # the read side: folds the outcome stream into its views; audits employee reads
    Role(
        "query",
        reads=(topics.EVENTS, topics.QUERY_RETRY),
        # caf.inbound.v1: a practitioner's withdrawal through the API, signed `caf-api` (MN-07)
        writes=(topics.INBOUND, topics.QUERY_DLQ, topics.QUERY_RETRY, topics.AUDIT),
        groups=(QUERY.name,),
        dead_letters=topics.QUERY_DLQ,
        retry=topics.QUERY_RETRY,
    ),
)
ROLES: tuple[Role, ...] = (
    *SERVICE_ROLES,
    # the lag exporter: offsets of the services' groups, and the oldest unhandled record's time
    Role(
        "lag-exporter",
        reads=tuple(sorted({topic for role in SERVICE_ROLES for topic in role.reads})),
        groups=("caf-",),
    ),
    # cafctl: reads everything it shows (dead letters, trace, reconcile, lag); writes only what
    # its audited actions publish (AU-04): signed contract records (`submit`, `practitioner set`,
    # replays of intake's dead letters) and hold reviews (their own topic). Never a grant command
    # or the outcome stream: internal dead letters are replayed with the owning service's
    # credentials.
    Role(
        "operator",
        reads=ALL_TOPICS,
        writes=(
            topics.INBOUND,
            topics.PRACTITIONERS,
            topics.REVIEWS,
            topics.OFFICIALS,
            topics.STATEMENTS,
            topics.AUDIT,
        ),
        groups=("cafctl-", "caf-"),
        describe=ALL_TOPICS,
    ),
    # the portals publish forms and acts; the registry feed its records (AU-01 still applies).
    # (The provisioning step's principal, `provisioner`, is a super user: it creates topics and
    # these ACLs, like the broker's own `admin`.)
    Role("portal", writes=(topics.INBOUND,)),
    Role("registry-feed", writes=(topics.PRACTITIONERS,)),
    Role("entity-feed", writes=(topics.ENTITIES,)),
    Role("ip-pin-feed", writes=(topics.PROTECTED,)),
    # downstream systems read the outcome stream and the notifications
    Role(
        "downstream",
        reads=(topics.EVENTS, topics.NOTIFICATIONS),
        groups=("downstream-",),
    ),
)


@dataclass(frozen=True)
class ReplayRoute:
    """Where the dead letters of one dead-letter topic may go again (AU-04).

    Intake's go back to `caf.inbound.v1` (their signatures are checked again). Every other
    service's go to its own retry topic, never straight to the topic they failed on: the
    service's guard runs them again with the work of their original topic, and no principal but
    the validator ever writes validated grants, nor any but a service the outcome stream.
    `originals` are the original topics a letter may name.
    """

    target: str
    originals: frozenset[str]


def replay_route(dead_letter_topic: str) -> ReplayRoute | None:
    for role in SERVICE_ROLES:
        if role.dead_letters != dead_letter_topic or role.retry is None:
            continue
        if dead_letter_topic == topics.INBOUND_DLQ:  # feeds and operators' topics: not inbound
            return ReplayRoute(
                topics.INBOUND, frozenset(role.reads) - {topics.ENTITIES, topics.OFFICIALS}
            )
        return ReplayRoute(role.retry, frozenset(role.reads) - {role.retry})
    return None
