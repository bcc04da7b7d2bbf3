"""`make lock`: the pinned, hashed requirement files the virtual environment, CI and the image
install from.

    python -m devstack.lock [--upgrade]

- `requirements/runtime.lock`: pyproject's `[project] dependencies`: what the service image
  installs;
- `requirements/build.lock`: the build backend (`[build-system] requires`): what builds our
  own package, the image's wheel and `make install`'s editable install;
- `requirements/dev.lock`: all of those and the `dev` extra: the development and CI virtual
  environment (`make install`), resolved within the pins of the other two, so that CI tests the
  very versions the image runs.

`uv pip compile` resolves each for CPython 3.11 on x86_64 Linux (what CI and the image run), with
the SHA-256 of every distribution (`pip install --require-hashes`). A lock keeps the versions it
has while the requirements allow them; `--upgrade` takes the newest they allow. Each file starts
with the requirements it was resolved from, and `tests/unit/test_lock.py` fails when
pyproject.toml's differ: a dependency changed without `make lock` does not pass CI.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"
FOLDER = ROOT / "requirements"
PYTHON_VERSION = "3.11"
PLATFORM = "x86_64-unknown-linux-gnu"
INPUTS = "# resolved from:"
_INPUT = "#   "


@dataclass(frozen=True)
class Lock:
    """One lock file: what it is for, which of pyproject's requirement lists it resolves (keys
    of `requirement_lists`), and which locks' pins it stays within."""

    name: str
    purpose: str
    lists: tuple[str, ...]
    within: tuple[str, ...] = ()

    @property
    def path(self) -> Path:
        return FOLDER / f"{self.name}.lock"

    def inputs(self, pyproject: Mapping[str, Any]) -> list[str]:
        """The requirements this lock is resolved from, sorted."""
        lists = requirement_lists(pyproject)
        return sorted({req for name in self.lists for req in lists[name]}, key=str.lower)


LOCKS = (
    Lock("runtime", "the service image", ("dependencies",)),
    Lock("build", "the build backend of our own package", ("build-system",)),
    Lock(
        "dev",
        "the development and CI virtual environment (make install)",
        ("dependencies", "dev", "build-system"),
        within=("runtime", "build"),
    ),
)


def requirement_lists(pyproject: Mapping[str, Any]) -> dict[str, list[str]]:
    """pyproject.toml's requirement lists, by the name a `Lock` gives them."""
    return {
        "dependencies": list(pyproject["project"]["dependencies"]),
        "dev": list(pyproject["project"]["optional-dependencies"]["dev"]),
        "build-system": list(pyproject["build-system"]["requires"]),
    }


def read_pyproject() -> dict[str, Any]:
    return tomllib.loads(PYPROJECT.read_text())


def recorded_inputs(text: str) -> list[str]:
    """The requirements a lock file says it was resolved from (its header)."""
    lines = text.splitlines()
    if INPUTS not in lines:
        return []
    found = []
    for line in lines[lines.index(INPUTS) + 1 :]:
        if not line.startswith(_INPUT):
            break
        found.append(line.removeprefix(_INPUT).strip())
    return found


def header(lock: Lock, inputs: list[str]) -> str:
    return "\n".join(
        [
            f"# requirements/{lock.name}.lock: {lock.purpose}.",
            "# Made by `make lock` (python -m devstack.lock: uv pip compile) for CPython"
            f" {PYTHON_VERSION} on",
            f"# {PLATFORM}; do not edit. Install: pip install --require-hashes -r <this file>",
            INPUTS,
            *(f"{_INPUT}{requirement}" for requirement in inputs),
            "",
        ]
    )


def compile_lock(lock: Lock, pyproject: Mapping[str, Any], *, upgrade: bool) -> None:
    """Resolve `lock` with uv into its file (keeping its pins unless `upgrade`), then head it
    with the requirements it was resolved from."""
    lists = requirement_lists(pyproject)
    sources: list[str] = []
    if "dependencies" in lock.lists or "dev" in lock.lists:
        sources.append(str(PYPROJECT))  # uv annotates these "via caf-processor (pyproject.toml)"
    extra = "\n".join(lists["build-system"]) if "build-system" in lock.lists else ""
    if extra:
        sources.append("-")  # the build backend, on stdin: no source file lists it alone
    command = [
        sys.executable,
        "-m",
        "uv",
        "pip",
        "compile",
        *sources,
        "--output-file",
        str(lock.path),
        "--generate-hashes",
        "--python-version",
        PYTHON_VERSION,
        "--python-platform",
        PLATFORM,
        "--no-header",
        "--quiet",
        *(["--extra", "dev"] if "dev" in lock.lists else []),
        *(arg for name in lock.within for arg in ("--constraints", str(FOLDER / f"{name}.lock"))),
        *(["--upgrade"] if upgrade else []),
    ]
    FOLDER.mkdir(exist_ok=True)
    subprocess.run(command, input=extra, text=True, check=True, cwd=ROOT)
    body = lock.path.read_text()
    lock.path.write_text(header(lock, lock.inputs(pyproject)) + body)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.lock", description=__doc__)
    parser.add_argument(
        "--upgrade", action="store_true", help="the newest versions allowed, not the locked ones"
    )
    args = parser.parse_args(argv)
    pyproject = read_pyproject()
    for lock in LOCKS:
        compile_lock(lock, pyproject, upgrade=args.upgrade)
        print(f"{lock.path.relative_to(ROOT)}: {len(lock.inputs(pyproject))} requirements")
    return 0


if __name__ == "__main__":
    sys.exit(main())
