"""The lock files (requirements/*.lock, `make lock`) match pyproject.toml: a dependency changed
without regenerating them fails here, before CI or the image installs something else."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from devstack.lock import LOCKS, Lock, read_pyproject, recorded_inputs

pytestmark = pytest.mark.unit

# where the locks are installed: CPython 3.11 on x86_64 Linux (CI and the image)
TARGET = {
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "python_version": "3.11",
    "python_full_version": "3.11.0",
    "os_name": "posix",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "extra": "",
}
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)")


def normalized(requirements: list[str]) -> set[str]:
    """Requirements compared as requirements, not as text (name case, spaces, order)."""
    found = set()
    for text in requirements:
        requirement = Requirement(text)
        requirement.name = canonicalize_name(requirement.name)
        requirement.extras = {canonicalize_name(extra) for extra in requirement.extras}
        found.add(str(requirement))
    return found


def pins(text: str) -> dict[str, tuple[Version, int]]:
    """Each package a lock pins: its version and how many hashes it carries."""
    found: dict[str, tuple[Version, int]] = {}
    current = ""
    for line in text.splitlines():
        pinned = _PIN.match(line)
        if pinned:
            current = canonicalize_name(pinned[1])
            found[current] = (Version(pinned[2]), 0)
        elif line.strip().startswith("--hash=sha256:") and current:
            version, hashes = found[current]
            found[current] = (version, hashes + 1)
    return found


def problems(lock: Lock, pyproject: Mapping[str, Any], text: str) -> list[str]:
    """Why `text` is not the lock `lock` should be for `pyproject` (empty: it is)."""
    found = []
    expected, recorded = lock.inputs(pyproject), recorded_inputs(text)
    if normalized(expected) != normalized(recorded):
        added = sorted(normalized(expected) - normalized(recorded))
        dropped = sorted(normalized(recorded) - normalized(expected))
        found.append(f"resolved from other requirements: new {added}, gone {dropped}")
    pinned = pins(text)
    for requirement in map(Requirement, expected):
        if requirement.marker is not None and not requirement.marker.evaluate(TARGET):
            continue
        name = canonicalize_name(requirement.name)
        if name not in pinned:
            found.append(f"{requirement}: not pinned")
        elif not requirement.specifier.contains(pinned[name][0], prereleases=True):
            found.append(f"{requirement}: pinned {pinned[name][0]}")
    found.extend(f"{name}=={version}: no hash" for name, (version, n) in pinned.items() if not n)
    return found


@pytest.mark.parametrize("lock", LOCKS, ids=[lock.name for lock in LOCKS])
def test_each_lock_is_resolved_from_what_pyproject_requires_now_and_pins_it_with_hashes(
    lock: Lock,
) -> None:
    assert problems(lock, read_pyproject(), lock.path.read_text()) == [], (
        f"{lock.path.name} is stale: run `make lock`"
    )


def test_the_dev_lock_pins_the_versions_the_image_and_the_build_pin() -> None:
    """CI tests the versions the image runs (dev.lock is resolved within the other two)."""
    development = pins(next(lock for lock in LOCKS if lock.name == "dev").path.read_text())
    for lock in LOCKS:
        for name, (version, _) in pins(lock.path.read_text()).items():
            assert development.get(name, (None, 0))[0] == version, f"{lock.name}: {name}"


def test_a_requirement_added_changed_or_unmet_without_a_new_lock_is_caught() -> None:
    pyproject = read_pyproject()
    runtime = next(lock for lock in LOCKS if lock.name == "runtime")
    text = runtime.path.read_text()
    assert problems(runtime, pyproject, text) == []

    added = _with_dependencies(pyproject, [*pyproject["project"]["dependencies"], "left-pad>=1"])
    assert problems(runtime, added, text) == [
        "resolved from other requirements: new ['left-pad>=1'], gone []",
        "left-pad>=1: not pinned",
    ]
    bumped = [
        "aioboto3==99.0" if d.startswith("aioboto3") else d
        for d in pyproject["project"]["dependencies"]
    ]
    found = problems(runtime, _with_dependencies(pyproject, bumped), text)
    assert len(found) == 2
    assert found[1].startswith("aioboto3==99.0: pinned ")
    assert problems(runtime, pyproject, text + "left-pad==1.3.0\n") == ["left-pad==1.3.0: no hash"]
    # spelling is not a change: case, spaces, the order of specifiers
    respelled = [d.upper().replace(",", ", ") for d in pyproject["project"]["dependencies"]]
    assert problems(runtime, _with_dependencies(pyproject, respelled), text) == []


def _with_dependencies(pyproject: Mapping[str, Any], dependencies: list[str]) -> dict[str, Any]:
    return {**pyproject, "project": {**pyproject["project"], "dependencies": dependencies}}
