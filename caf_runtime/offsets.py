"""Partition and offset look-ups shared by the registry barrier and the operator tools."""

from __future__ import annotations

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient


async def topic_partitions(admin: AIOKafkaAdminClient, topic: str) -> list[TopicPartition]:
    """Every partition of `topic` (none if it does not exist)."""
    described = await admin.describe_topics([topic])
    return [
        TopicPartition(topic, partition["partition"])
        for entry in described
        if entry.get("error_code", 0) == 0
        for partition in sorted(entry["partitions"], key=lambda p: p["partition"])
    ]
