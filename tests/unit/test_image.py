"""The service image (Dockerfile), checked without a Docker engine: its base is pinned by digest,
it installs the runtime lock with hashes, runs as a user other than root, and carries neither the
local stack (devstack/) nor a development tool, which the code it does carry never needs."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from cafctl.devkeys import NO_DEVSTACK

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


@dataclass
class Stage:
    image: str  # the FROM reference, ARGs substituted
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)  # (INSTRUCTION, arguments)

    def arguments(self, instruction: str) -> list[str]:
        return [args for name, args in self.instructions if name == instruction]


def stages(text: str) -> list[Stage]:
    """The stages of a Dockerfile, with the global ARGs' defaults substituted in FROM lines."""
    logical = re.sub(
        r"\\\n",
        " ",
        "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")),
    )
    defaults: dict[str, str] = {}
    found: list[Stage] = []
    for line in logical.splitlines():
        if not line.strip():
            continue
        instruction, _, arguments = line.strip().partition(" ")
        instruction, arguments = instruction.upper(), arguments.strip()
        if instruction == "ARG" and not found:
            name, _, default = arguments.partition("=")
            defaults[name] = default
        elif instruction == "FROM":
            words = [w for w in arguments.split() if not w.startswith("--platform")]
            image = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: defaults[m[1] or m[2]], words[0])
            named = words[2] if len(words) > 2 and words[1].upper() == "AS" else None
            found.append(Stage(image, named))
        elif found:
            found[-1].instructions.append((instruction, arguments))
    return found


def sources(copy: str) -> list[str]:
    """What a COPY or ADD copies (its flags and destination left out)."""
    return [w for w in copy.split() if not w.startswith("--")][:-1]


IMAGE = stages((ROOT / "Dockerfile").read_text())
FINAL = IMAGE[-1]


def test_every_stage_is_built_on_a_base_image_pinned_by_digest() -> None:
    names = {stage.name for stage in IMAGE if stage.name}
    for stage in IMAGE:
        assert stage.image in names or DIGEST.search(stage.image), stage.image


def test_the_image_copies_no_devstack_and_its_final_stage_only_the_built_environment() -> None:
    for stage in IMAGE:
        for copy in stage.arguments("COPY") + stage.arguments("ADD"):
            assert not any("devstack" in source for source in sources(copy)), copy
    assert FINAL.arguments("ADD") == []
    for copy in FINAL.arguments("COPY"):
        assert copy.startswith("--from="), f"the final stage copies from the context: {copy}"
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [line for line in ignore if line.strip() and not line.startswith("#")]
    assert patterns[0] == "*"  # the context holds only what .dockerignore lets in ...
    assert not any("devstack" in p for p in patterns if p.startswith("!"))  # ... not devstack


def test_the_image_runs_as_a_user_other_than_root() -> None:
    users = FINAL.arguments("USER")
    assert users, "no USER: the process would run as root"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}
    assert not user.isdigit() or int(user) > 0


def test_every_package_comes_from_a_lock_with_hashes_or_is_our_own_wheel() -> None:
    installs = [run for stage in IMAGE for run in stage.arguments("RUN") if "pip install" in run]
    locks = []
    for run in installs:
        for command in run.split("&&"):
            if "pip install" not in command:
                continue
            if "--no-index" in command:  # our own wheel, built in the image: nothing downloaded
                assert "--no-deps" in command
                continue
            assert "--require-hashes" in command, command
            lock = re.search(r"-r\s+(\S+\.lock)", command)
            assert lock, command
            locks.append(lock[1])
    assert "requirements/runtime.lock" in locks
    assert all((ROOT / lock).exists() for lock in locks)


def packages_in_the_image() -> list[str]:
    """Our packages the build stage copies into the image (and so into our wheel)."""
    copied = [s for stage in IMAGE for c in stage.arguments("COPY") for s in sources(c)]
    return [s for s in copied if (ROOT / s / "__init__.py").exists()]


def development_only_modules() -> list[str]:
    """Top-level modules of the packages dev.lock installs and runtime.lock does not: the image
    has none of them (besides devstack)."""
    pinned = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", re.M)

    def names(lock: str) -> set[str]:
        text = (ROOT / "requirements" / lock).read_text()
        return {canonicalize_name(name) for name in pinned.findall(text)}

    development = names("dev.lock") - names("runtime.lock")
    return sorted(
        module
        for module, distributions in importlib.metadata.packages_distributions().items()
        if distributions and {canonicalize_name(d) for d in distributions} <= development
    )


# With devstack and the development-only modules made unimportable: import every module of the
# packages named (but their __main__, which would run a process), or run `python -m cafctl.cli`.
WITHOUT = """
import importlib, importlib.abc, pkgutil, runpy, sys

blocked = set(sys.argv[1].split(","))

class NotInTheImage(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in blocked:
            raise ModuleNotFoundError(f"No module named {name!r} (not in the image)", name=name)
        return None

sys.meta_path.insert(0, NotInTheImage())
try:
    import devstack
except ModuleNotFoundError:
    pass
else:
    raise SystemExit("devstack was importable")
if sys.argv[2] == "import":
    for package in sys.argv[3:]:
        for info in pkgutil.walk_packages(importlib.import_module(package).__path__, package + "."):
            if not info.name.endswith(".__main__"):
                importlib.import_module(info.name)
else:
    sys.argv = ["cafctl", *sys.argv[3:]]
    runpy.run_module("cafctl.cli", run_name="__main__", alter_sys=True)
"""


def without_devstack(*argv: str) -> subprocess.CompletedProcess[str]:
    """`WITHOUT` run with `argv`: `import PACKAGE...` or `cafctl ARG...`."""
    blocked = ["devstack", *development_only_modules()]
    return subprocess.run(  # noqa: S603 - this interpreter and this file's script
        [sys.executable, "-c", WITHOUT, ",".join(blocked), *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def test_the_image_s_packages_import_and_cafctl_runs_without_devstack_or_development_tools() -> (
    None
):
    assert set(packages_in_the_image()) >= {
        "caf_client",
        "caf_runtime",
        "cafctl",
        "schemas",
        "services",
    }
    assert {"yaml", "pytest", "testcontainers"} <= set(development_only_modules())

    imported = without_devstack("import", *packages_in_the_image())
    assert imported.returncode == 0, imported.stderr

    done = without_devstack("cafctl", "--help")
    assert done.returncode == 0, done.stderr
    assert "Usage: cafctl" in done.stdout


def test_a_command_that_needs_the_local_stack_s_keys_says_so_in_the_image() -> None:
    done = without_devstack("cafctl", "token", "--role", "system")

    assert done.returncode == 1, done.stderr
    assert done.stderr.strip() == NO_DEVSTACK
