"""The shape the services' code keeps (issue 21): no function longer than a screen."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 60


def long_functions(root: Path, *packages: str) -> list[str]:
    """`path:name (lines)` of every function or method under `root`/`packages` over MAX_LINES
    lines, its decorators and docstring included."""
    found = []
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                    lines = (node.end_lineno or node.lineno) - start + 1
                    if lines > MAX_LINES:
                        found.append(f"{path.relative_to(root)}:{node.name} ({lines})")
    return found


def test_no_function_in_the_services_or_the_runtime_is_longer_than_60_lines() -> None:
    assert long_functions(ROOT, "services", "caf_runtime") == []


def test_the_length_check_finds_a_long_function_and_only_it(tmp_path: Path) -> None:
    body = "\n".join(f"    x{n} = {n}" for n in range(MAX_LINES))
    source = tmp_path / "pkg" / "long.py"
    source.parent.mkdir()
    source.write_text(f"def short():\n    return 1\n\n\nasync def long():\n{body}\n")
    assert long_functions(tmp_path, "pkg") == [f"pkg/long.py:long ({MAX_LINES + 1})"]
