"""Model bases and field helpers shared by every contract model.

Inbound models (what others publish to us) ignore unknown fields: the tolerant reader of the
contract. Outbound models (what we publish) forbid them, so a typo never reaches the wire.
Both are strict about types (a number is not a date) and bound every string's length, so a huge
or mistyped value is a contract violation rather than a surprise further down.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "MAX_TEXT",
    "InboundModel",
    "OutboundModel",
    "described",
]

MAX_TEXT = 1_000


class InboundModel(BaseModel):
    """A message or part of one that upstream systems publish: unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True, strict=True, str_max_length=MAX_TEXT)


class OutboundModel(BaseModel):
    """A message or part of one that we publish: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, str_max_length=MAX_TEXT)


def described(description: str, example: Any, **kwargs: Any) -> Any:
    """A field with its description and one example (both feed the JSON Schema and AsyncAPI)."""
    return Field(description=description, examples=[example], **kwargs)
