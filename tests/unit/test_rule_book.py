"""docs/rules.md is the rule book of the code: every rule ID and reason code of
`schemas/codes.py` appears in its tables, and nothing else does."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from schemas.codes import ReasonCode, RuleId

pytestmark = pytest.mark.unit

RULE_BOOK = Path(__file__).resolve().parents[2] / "docs" / "rules.md"
CODE = re.compile(r"(?<![\w-])((?:REJ|NP|HOLD|EXP|PART|REV|DELAY)-[A-Z0-9]+(?:-[A-Z0-9]+)*)")


def table_rows() -> list[str]:
    return [line for line in RULE_BOOK.read_text().splitlines() if line.startswith("| ")]


def test_every_rule_id_of_the_code_has_a_row_in_the_rule_book_and_no_other() -> None:
    ids = {m.group(1) for row in table_rows() if (m := re.match(r"^\| ([A-Z]{2}-\d{2}) \|", row))}
    assert ids == {rule.value for rule in RuleId}


def test_every_reason_code_of_the_code_is_in_the_rule_book_tables_and_no_other() -> None:
    found = {code for row in table_rows() for code in CODE.findall(row)}
    assert found == {code.value for code in ReasonCode}


ALIASES = {
    "intake/": "services/intake/",
    "validator/": "services/validator/",
    "poster/": "services/caf_poster/",
    "notifier/": "services/notifier/",
    "monitor/": "services/monitor/",
}


def source(path: str) -> Path:
    """The file a rule book path names (`poster/rules.py` is `services/caf_poster/rules.py`)."""
    for alias, real in ALIASES.items():
        if path.startswith(alias):
            return RULE_BOOK.parents[1] / (real + path.removeprefix(alias))
    return RULE_BOOK.parents[1] / path


def test_every_file_the_rule_book_names_exists() -> None:
    named = re.findall(r"`([a-z_/]+\.py)(?::\w+)?`", RULE_BOOK.read_text())
    assert [path for path in named if not source(path).exists()] == []


def test_every_function_the_rule_book_names_is_defined_in_its_file() -> None:
    named = re.findall(r"`([a-z_/]+\.py):(\w+)`", RULE_BOOK.read_text())
    definition = r"^\s*(?:async def|def|class) {name}\b|^{name}\b[^=]*="
    missing = [
        f"{path}:{name}"
        for path, name in named
        if not re.search(definition.format(name=name), source(path).read_text(), re.M)
    ]
    assert missing == []
