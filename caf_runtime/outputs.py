"""What a handler emits, as plain values: recorded with the state change, then published.

An `Output` is a message for a contract topic (un-prefixed name). Handlers record the outputs of a
decision atomically with its state change, publish them, wait for the broker's acks, and only then
let the offset be committed. A redelivered message re-publishes the recorded outputs unchanged.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from faststream.kafka import KafkaBroker
from pydantic import BaseModel

from caf_runtime.config import ServiceSettings
from caf_runtime.metrics import count_published
from schemas.codec import CONTENT_TYPE, encode


@dataclass(frozen=True)
class Output:
    """One message to publish: topic (contract name), key, value bytes, extra headers.

    `secret`: the value holds what may be written nowhere else (a Designated Official's PIN in
    its CP311 letter): the ledger keeps such outputs only sealed (`caf_runtime.ledger`)."""

    topic: str
    key: str | None
    value: bytes
    headers: dict[str, str] = field(default_factory=dict)
    secret: bool = False

    @classmethod
    def of(cls, topic: str, key: str | None, model: BaseModel) -> Output:
        return cls(topic, key, encode(model))


Publish = Callable[[list[Output]], Awaitable[None]]
"""Publishes outputs and returns once the broker acknowledged every one."""


def dump_outputs(outputs: Sequence[Output]) -> str:
    """A compact text form of outputs, for storing with the state change."""
    return json.dumps(
        [
            {"t": o.topic, "k": o.key, "v": o.value.decode(), "h": o.headers}
            | ({"s": True} if o.secret else {})
            for o in outputs
        ],
        separators=(",", ":"),
    )


def load_outputs(text: str) -> list[Output]:
    return [
        Output(o["t"], o["k"], o["v"].encode(), o["h"], secret=bool(o.get("s")))
        for o in json.loads(text)
    ]


async def publish_all(
    broker: KafkaBroker, settings: ServiceSettings, outputs: list[Output]
) -> None:
    """Publish in order and wait for every ack (the producer is idempotent with acks=all).

    All sends are queued first and awaited together: the idempotent producer keeps their order
    per partition, and one slow ack does not serialize the rest.
    """
    pending = [
        await broker.publish(
            output.value,
            topic=settings.topic(output.topic),
            key=output.key.encode() if output.key is not None else None,
            headers={"content-type": CONTENT_TYPE, **output.headers},
            no_confirm=True,
        )
        for output in outputs
    ]
    # a real broker returns the ack futures; the in-memory test broker has delivered already
    await asyncio.gather(*(ack for ack in pending if inspect.isawaitable(ack)))
    count_published((output.topic, output.value) for output in outputs)
