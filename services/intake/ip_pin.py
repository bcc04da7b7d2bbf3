"""PT-05: the processor never receives, stores or prints an IP PIN.

The IRS never asks a taxpayer for their Identity Protection PIN, and neither may a portal. An
inbound message carrying one is refused before anything else is done with it, and its bytes are
kept nowhere (no dead letter body, no ledger input, no log of a value):

- a field whose name says IP PIN (`ip_pin`, `ipPin`, `IP-PIN`, `identity_protection_pin`, at any
  depth), whatever it holds;
- a text that writes a six-digit number next to the words "IP PIN" ("IP PIN: 123456",
  "ip pin is 123456").
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import NamedTuple

# "IP PIN", then up to 20 characters that are not digits, then six digits standing alone
IP_PIN_TEXT = re.compile(r"\bip[\s_.-]{0,3}pin\b\D{0,20}(?<!\d)\d{6}(?!\d)", re.IGNORECASE)
_WORDS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
_NAMES = (("ip", "pin"), ("ippin",), ("identity", "protection", "pin"))


def _named_ip_pin(key: str) -> bool:
    words = tuple(w.lower() for w in _WORDS.findall(key))
    return any(words[i : i + len(name)] == name for name in _NAMES for i in range(len(words)))


class Found(NamedTuple):
    """A field name, or a text value, and where it is in the message."""

    path: str
    text: str
    is_name: bool


def _found(document: object, path: str = "") -> Iterator[Found]:
    if isinstance(document, dict):
        for key, value in document.items():
            where = f"{path}.{key}" if path else str(key)
            yield Found(where, str(key), is_name=True)
            yield from _found(value, where)
    elif isinstance(document, list):
        for index, value in enumerate(document):
            yield from _found(value, f"{path}[{index}]")
    elif isinstance(document, str):
        yield Found(path, document, is_name=False)


def carried_ip_pin(raw: bytes) -> str | None:
    """Where the message holds an IP PIN (a field path, or `text` when it is not JSON), or None.
    The path is safe to log: it names keys only, never a value."""
    text = raw.decode(errors="replace")
    try:
        document = json.loads(text)
    except ValueError:
        return "text" if IP_PIN_TEXT.search(text) else None
    for found in _found(document):
        if _named_ip_pin(found.text) if found.is_name else IP_PIN_TEXT.search(found.text):
            return found.path[:200]
    return None
