"""`make demo`: publish a small sample workload to the running stack and show what came out.

The pipeline's business handling arrives with the pipeline issue; until then the demo proves the
infrastructure round trip: messages published to `caf.inbound.v1` are consumed and committed by
the intake service's consumer group, and whatever reached `caf.events.v1` is printed.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from caf_runtime.config import ServiceSettings
from schemas import topics
from services.intake.config import IntakeSettings

DEADLINE_S = 30.0


def sample_workload() -> list[dict[str, object]]:
    """A few inbound messages shaped as in the contract (fictional taxpayers)."""
    now = datetime.now(UTC).isoformat(timespec="seconds")
    today = now[:10]
    return [
        {
            "kind": "submission",
            "schema_version": 1,
            "message_id": str(uuid.uuid4()),
            "sent_at": now,
            "channel": "upload",
            "received_on": today,
            "form": "2848",
            "taxpayer": {
                "tin": "123-45-6789",
                "tin_type": "SSN",
                "name": "Jordan Q Public",
                "entity_type": "individual",
                "signer_title": None,
                "address": {
                    "line1": "1 Main St",
                    "city": "Memphis",
                    "state": "TN",
                    "postal_code": "38103",
                    "country": "US",
                },
                "signature": {"date": today, "method": "electronic"},
            },
            "representatives": [
                {
                    "caf_number": "0301-12345R",
                    "name": "Avery Smith",
                    "designation": "b",
                    "jurisdiction": "TN",
                    "licence_number": "CPA-55102",
                    "ptin": "P01234567",
                    "receive_notices": True,
                    "student_letter_attached": False,
                    "signature": {"date": today, "method": "electronic"},
                }
            ],
            "tax_matters": [
                {"tax_type": "Income", "form_number": "1040", "periods": ["2023", "2024", "2025"]}
            ],
            "specific_use": False,
            "retain_prior": False,
            "prior_copies_attached": 0,
        },
        {
            "kind": "withdrawal",
            "schema_version": 1,
            "message_id": str(uuid.uuid4()),
            "sent_at": now,
            "caf_number": "0301-12345R",
            "taxpayer": {"tin": "987-65-4321", "tin_type": "SSN"},
            "form": "2848",
            "tax_matters": None,
            "signature": {"date": today, "method": "checkbox"},
        },
    ]


async def run_demo(settings: ServiceSettings, intake_group: str) -> int:
    servers = settings.kafka_bootstrap_servers
    inbound = settings.topic(topics.INBOUND)
    producer = AIOKafkaProducer(bootstrap_servers=servers, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        for message in sample_workload():
            await producer.send_and_wait(
                inbound,
                json.dumps(message).encode(),
                key=str(message["message_id"]).encode(),
                headers=[("content-type", b"application/json")],
            )
        await producer.send_and_wait(inbound, b"{this is not json", key=None)
    finally:
        await producer.stop()
    print(f"published 3 messages to {inbound} (2 well-formed, 1 malformed)")

    lag = await _wait_for_zero_lag(servers, inbound, intake_group)
    print(f"intake group {intake_group!r}: lag {lag} on {inbound}")
    events = await _read_all(servers, settings.topic(topics.EVENTS))
    print(f"{len(events)} events on {settings.topic(topics.EVENTS)}")
    for event in events:
        print("  " + event)
    return 0 if lag == 0 else 1


async def _wait_for_zero_lag(servers: str, topic: str, group: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=servers)
    consumer = AIOKafkaConsumer(bootstrap_servers=servers)
    await admin.start()
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DEADLINE_S
        while True:
            ends = await consumer.end_offsets(partitions)
            committed = await admin.list_consumer_group_offsets(group, partitions=partitions)
            lag: int = sum(
                ends[tp] - (committed[tp].offset if tp in committed else 0) for tp in partitions
            )
            if lag == 0 or loop.time() > deadline:
                return lag
            await asyncio.sleep(0.2)
    finally:
        await consumer.stop()
        await admin.close()


async def _read_all(servers: str, topic: str) -> list[str]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=servers, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    try:
        batches = await consumer.getmany(timeout_ms=2000)
        return [
            record.value.decode()
            for records in batches.values()
            for record in records
            if record.value is not None
        ]
    finally:
        await consumer.stop()


def main() -> int:
    intake_group = str(IntakeSettings.model_fields["group_id"].default)
    return asyncio.run(run_demo(ServiceSettings(), intake_group))


if __name__ == "__main__":
    sys.exit(main())
