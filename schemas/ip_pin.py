"""PT-05: the processor never receives, stores or prints an IP PIN.

The IRS never asks a taxpayer for their Identity Protection PIN, and neither may a portal. A
message carrying one is refused before anything else is done with it, and its bytes are kept
nowhere (no dead letter body, no ledger input, no log of where or what):

- a field whose name says IP PIN (`ip_pin`, `ipPin`, `IP-PIN`, `IPPIN`,
  `identity_protection_pin`, at any depth), whatever it holds;
- a text that writes a six-digit number next to the words "IP PIN" or "identity protection
  PIN", before or after them ("IP PIN: 123456", "123456 is my IP PIN", "IP_PIN_123456").

`IP_PIN_TEXT` is also what the notifier masks in every notice.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import NamedTuple

__all__ = [
    "IP_PIN_TEXT",
    "SIX_DIGITS",
    "Found",
    "carries_ip_pin",
    "pins_in",
]

_WORDS_OF_PIN = r"(?<![a-z])(?:ip|identity[\s_.-]{0,3}protection)[\s_.-]{0,3}pins?(?![a-z])"
_SIX = r"(?<!\d)\d{6}(?!\d)"
IP_PIN_TEXT = re.compile(
    rf"{_WORDS_OF_PIN}\D{{0,20}}{_SIX}|{_SIX}\D{{0,20}}{_WORDS_OF_PIN}", re.IGNORECASE
)
SIX_DIGITS = re.compile(_SIX)
_WORDS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
_NAMES = (("ip", "pin"), ("ippin",), ("identity", "protection", "pin"))


def _named_ip_pin(key: str) -> bool:
    words = tuple(w.lower() for w in _WORDS.findall(key))
    return any(words[i : i + len(name)] == name for name in _NAMES for i in range(len(words)))


class Found(NamedTuple):
    """A field name, or a text value."""

    text: str
    is_name: bool


def _found(document: object) -> Iterator[Found]:
    if isinstance(document, dict):
        for key, value in document.items():
            yield Found(str(key), is_name=True)
            yield from _found(value)
    elif isinstance(document, list):
        for value in document:
            yield from _found(value)
    elif isinstance(document, str):
        yield Found(document, is_name=False)


def _named_values(document: object) -> Iterator[str]:
    """The values (as text) of the fields named for an IP PIN, at any depth."""
    if isinstance(document, dict):
        for key, value in document.items():
            if _named_ip_pin(str(key)):
                yield json.dumps(value)
            yield from _named_values(value)
    elif isinstance(document, list):
        for value in document:
            yield from _named_values(value)


def pins_in(raw: bytes) -> frozenset[str]:
    """The six-digit numbers the message writes as an IP PIN (next to the words within one text,
    or as the value of a field named for one): what must not be kept anywhere, its message id
    included."""
    text = raw.decode(errors="replace")
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        document, texts = None, [text]
    else:
        try:
            texts = [found.text for found in _found(document)]
        except RecursionError:  # deeper than any message of ours: every six digits count
            return frozenset(SIX_DIGITS.findall(text))
    found = {
        digits
        for one in texts
        for match in IP_PIN_TEXT.finditer(one)
        for digits in SIX_DIGITS.findall(match.group(0))
    }
    if document is not None:
        try:
            found.update(d for value in _named_values(document) for d in SIX_DIGITS.findall(value))
        except RecursionError:
            return frozenset(SIX_DIGITS.findall(text))
    return frozenset(found)


def carries_ip_pin(raw: bytes) -> bool:
    """True when the message holds an IP PIN (a field named for one, or one written out). Where
    is not said: a field's name may itself be the PIN."""
    text = raw.decode(errors="replace")
    if IP_PIN_TEXT.search(text):
        return True
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        return False
    try:
        return any(
            _named_ip_pin(found.text) if found.is_name else bool(IP_PIN_TEXT.search(found.text))
            for found in _found(document)
        )
    except RecursionError:  # nested deeper than any message of ours: refuse it whole
        return True
