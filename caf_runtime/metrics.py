"""Prometheus metrics every service exports on `/metrics` (next to `/healthz` and `/readyz`).

Labels are bounded enumerations only (service, topic, event type, reason code, template, timer
kind): never a TIN, a taxpayer pseudonym, a message or grant id.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from schemas import topics

# FastStream's own consumer and publisher metrics (faststream_received_messages_total, ..._
# processing_duration_seconds, ..._published_messages_total, by handler topic): one instance per
# process, shared by every broker the process builds.
FASTSTREAM = KafkaPrometheusMiddleware(registry=REGISTRY, app_name="caf-processor")
MESSAGES = Counter(
    "caf_messages_total",
    "Messages consumed, by how their handling ended (handled, retry_scheduled, dead_lettered).",
    ["topic", "outcome"],
)
RETRIES = Counter("caf_retries_total", "Transient failures retried in place.", ["topic"])
OUTAGE_WAITING = Gauge(
    "caf_outage_waiting",
    "Messages waiting for unreachable dependencies (DynamoDB, the broker) to answer again.",
)
HANDLING = Histogram(
    "caf_handling_seconds",
    "Time to handle one message, retries included.",
    ["topic"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
REGISTRY_VIEW_RECORDS = Gauge(
    "caf_registry_view_records",
    "CAF numbers the validator's in-memory registry view holds (records and tombstones).",
)
ASSIGNED_PARTITIONS = Gauge(
    "caf_consumer_assigned_partitions",
    "Partitions this process consumes now, by consumer group and topic (0: joined none yet).",
    ["group", "topic"],
)
EVENTS = Counter(
    "caf_events_total", "Outcome events published, by type and reason code.", ["type", "reason"]
)
EVIDENCE_WRITES = Counter(
    "caf_evidence_writes_total",
    "Signature evidence objects written to the evidence bucket (ES-03), by result.",
    ["result"],
)
# not a write: CafEvidenceStoreFailing counts writes that succeeded, and these ask the store nothing
EVIDENCE_KNOWN = Counter(
    "caf_evidence_known_locked_total",
    "Signature evidence objects not written again: the bucket stored or found them locked at least"
    " as long as asked (ES-03).",
)
NOTIFICATIONS = Counter("caf_notifications_total", "Notifications published.", ["template"])
TIMERS = Counter("caf_timers_fired_total", "Timers fired by this replica.", ["kind"])

DYNAMODB_REQUESTS = Counter(
    "caf_dynamodb_requests_total",
    "DynamoDB calls made (a call the client retries counts once).",
    ["operation"],
)
DYNAMODB_ITEMS = Counter(
    "caf_dynamodb_items_total",
    "Items the DynamoDB requests carried: a transaction's or batch's items, 1 for the others.",
    ["operation"],
)

FETCH_ERRORS = Counter(
    "caf_consumer_fetch_errors_total",
    "Fetches that raised instead of returning a record (an undecodable batch, a broker error), "
    "by topic and error class.",
    ["topic", "error"],
)
FETCH_FAILING = Gauge(
    "caf_consumer_fetch_failing_seconds",
    "How long the longest ongoing run of failed fetches of a topic's consumers has lasted "
    "(0: every consumer fetches).",
    ["topic"],
)


def count_published(published: Iterable[tuple[str, bytes]]) -> None:
    """Count the outcome events and notifications among published (topic, value) pairs."""
    for topic, value in published:
        if topic == topics.EVENTS:
            event = json.loads(value)
            reason = event.get("reason_code") or event.get("revoked_by") or ""
            EVENTS.labels(type=event.get("type", ""), reason=reason).inc()
        elif topic == topics.NOTIFICATIONS:
            NOTIFICATIONS.labels(template=json.loads(value).get("template", "")).inc()


def exposition(registry: CollectorRegistry = REGISTRY) -> tuple[bytes, str]:
    """The metrics page of `registry` (the process's default one) and its content type."""
    return generate_latest(registry), CONTENT_TYPE_LATEST


def count_dynamodb_request(model: Any, params: dict[str, Any], **_: Any) -> None:
    """botocore's `before-parameter-build.dynamodb` hook: one call of `model.name`, with its
    items."""
    operation = str(model.name)
    if "TransactItems" in params:
        items = len(params["TransactItems"])
    elif "RequestItems" in params:
        items = sum(
            len(request["Keys"]) if isinstance(request, dict) else len(request)
            for request in params["RequestItems"].values()
        )
    else:
        items = 1
    DYNAMODB_REQUESTS.labels(operation=operation).inc()
    DYNAMODB_ITEMS.labels(operation=operation).inc(items)
