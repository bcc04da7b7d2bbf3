"""The shape the services' code and cafctl keep (issue 21): no function longer than a screen."""

from __future__ import annotations

import ast
import importlib
import sys
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


def test_no_function_in_the_services_the_runtime_or_cafctl_is_longer_than_60_lines() -> None:
    assert long_functions(ROOT, "services", "caf_runtime", "cafctl") == []


def test_the_length_check_finds_a_long_function_and_only_it(tmp_path: Path) -> None:
    body = "\n".join(f"    x{n} = {n}" for n in range(MAX_LINES))
    source = tmp_path / "pkg" / "long.py"
    source.parent.mkdir()
    source.write_text(f"def short():\n    return 1\n\n\nasync def long():\n{body}\n")
    assert long_functions(tmp_path, "pkg") == [f"pkg/long.py:long ({MAX_LINES + 1})"]


def test_the_packages_other_teams_import_are_typed_and_say_what_they_export() -> None:
    """PEP 561 `py.typed`, and in every module an `__all__` naming each public class, function
    and constant it defines, and nothing it does not have."""
    missing = []
    for package in ("schemas", "caf_client"):
        assert (ROOT / package / "py.typed").exists(), package
        for path in sorted((ROOT / package).glob("*.py")):
            module = f"{package}.{path.stem}" if path.stem != "__init__" else package
            exported = getattr(importlib.import_module(module), "__all__", None)
            if exported is None:
                missing.append(f"{module}: no __all__")
                continue
            unknown = [name for name in exported if not hasattr(sys.modules[module], name)]
            unlisted = sorted(set(public_definitions(path)) - set(exported))
            missing.extend(f"{module}: {name} unknown" for name in unknown)
            missing.extend(f"{module}: {name} not in __all__" for name in unlisted)
    assert missing == []


def public_definitions(path: Path) -> list[str]:
    """The public names a module defines at its top level (not those it imports)."""
    names: list[str] = []
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            names.append(node.name)
        elif isinstance(node, ast.Assign):
            names.extend(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.append(node.target.id)
    return [name for name in names if not name.startswith("_") and name != "log"]


STATEFUL_SERVICES = ("intake", "validator", "caf_poster", "monitor", "caf_query")


def store_protocols(store: Path) -> list[str]:
    """Classes of a store module that are Protocols."""
    tree = ast.parse(store.read_text(), str(store))
    return [
        node.name
        for node in tree.body
        if isinstance(node, ast.ClassDef)
        and any(isinstance(base, ast.Name) and base.id == "Protocol" for base in node.bases)
    ]


def concrete_store_imports(module: Path) -> list[str]:
    """Names a module imports from its service's store that are the DynamoDB implementation."""
    tree = ast.parse(module.read_text(), str(module))
    return [
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").endswith(".store")
        for alias in node.names
        if alias.name.startswith("Dynamo")
    ]


def test_every_stateful_service_keeps_its_state_behind_a_protocol_its_handlers_depend_on() -> None:
    """The handlers see a Protocol (which the tests' fakes implement), never the DynamoDB
    class; only the composition root (`app.py`) builds that."""
    for service in STATEFUL_SERVICES:
        folder = ROOT / "services" / service
        assert store_protocols(folder / "store.py"), f"{service}/store.py has no Protocol"
        for module in folder.glob("*.py"):
            if module.name not in {"app.py", "store.py"}:
                assert concrete_store_imports(module) == [], module.relative_to(ROOT)


def test_the_protocol_check_tells_a_protocol_from_a_plain_class(tmp_path: Path) -> None:
    store = tmp_path / "store.py"
    store.write_text("class A(Protocol): ...\nclass B: ...\nclass C(A): ...\n")
    assert store_protocols(store) == ["A"]
    handlers = tmp_path / "handlers.py"
    handlers.write_text("from services.x.store import A, DynamoA\n")
    assert concrete_store_imports(handlers) == ["DynamoA"]
