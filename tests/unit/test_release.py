"""One version: the package's, the production image's tag and the CHANGELOG's newest release."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def package_version() -> str:
    return str(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"])


def test_the_production_image_tag_is_the_package_version() -> None:
    overlay = yaml.safe_load((ROOT / "deploy/k8s/overlays/prod/kustomization.yaml").read_text())
    assert {image["newTag"] for image in overlay["images"]} == {package_version()}


def test_the_changelog_describes_the_package_version_as_its_newest_release() -> None:
    releases = re.findall(r"^## \[(\d+\.\d+\.\d+)\]", (ROOT / "CHANGELOG.md").read_text(), re.M)
    assert releases[0] == package_version()
    assert releases == sorted(releases, key=lambda v: tuple(map(int, v.split("."))), reverse=True)
