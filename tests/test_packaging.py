"""The pins: constraints.txt and environment.yml agree, and satisfy pyproject's ranges."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^\s*(?:-\s+)?([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([^\s#;]+)\s*(?:#.*)?$")
PROJECT_FILES = ["Makefile", "pyproject.toml", "constraints.txt", "environment.yml", ".ci/run"]


def pins(lines: list[str]) -> dict[str, str]:
    """``{canonical name: version}`` for every ``name==version`` line."""
    found: dict[str, str] = {}
    for line in lines:
        match = PIN.match(line)
        if match:
            name = canonicalize_name(match[1])
            assert name not in found, f"{name} is pinned twice"
            found[name] = match[2]
    return found


def constraint_pins() -> dict[str, str]:
    lines = [
        line
        for line in (ROOT / "constraints.txt").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    unpinned = [line for line in lines if not PIN.match(line)]
    assert not unpinned, f"constraints.txt lines that are not exact pins: {unpinned}"
    return pins(lines)


def environment_pins() -> dict[str, str]:
    """Pins in environment.yml's pip section (conda's python/pip lines use one '=')."""
    return pins((ROOT / "environment.yml").read_text().splitlines())


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def declared() -> list[Requirement]:
    project = pyproject()["project"]
    dev = project.get("optional-dependencies", {}).get("dev", [])
    return [Requirement(text) for text in [*project["dependencies"], *dev]]


def test_constraints_and_environment_pin_the_same() -> None:
    constraints, environment = constraint_pins(), environment_pins()
    assert constraints, "constraints.txt pins nothing"
    assert constraints == environment, (
        f"only in constraints.txt: {sorted(constraints.items() - environment.items())}; "
        f"only in environment.yml: {sorted(environment.items() - constraints.items())}"
    )


def test_torch_and_torchvision_pins() -> None:
    constraints = constraint_pins()
    assert constraints.get("torch") == "2.14.1"
    assert constraints.get("torchvision") == "0.29.1"


@pytest.mark.parametrize("requirement", declared(), ids=str)
def test_declared_dependency_is_pinned_within_range(requirement: Requirement) -> None:
    constraints = constraint_pins()
    name = canonicalize_name(requirement.name)
    assert name in constraints, f"{requirement} has no pin in constraints.txt"
    version = Version(constraints[name])
    assert requirement.specifier.contains(version, prereleases=True), (
        f"constraints.txt pins {name}=={version}, outside pyproject's {requirement}"
    )


def test_environment_python_satisfies_requires_python() -> None:
    match = re.search(
        r"^\s*-\s*python\s*=\s*([\d.]+)\s*$", (ROOT / "environment.yml").read_text(), re.MULTILINE
    )
    assert match, "environment.yml does not pin python"
    requires = SpecifierSet(pyproject()["project"]["requires-python"])
    assert requires.contains(match[1]), f"python={match[1]} is outside {requires}"


@pytest.mark.parametrize("name", PROJECT_FILES)
def test_no_custom_package_index(name: str) -> None:
    path = ROOT / name
    assert path.is_file(), f"{name} is missing"
    hits = [
        line.strip()
        for line in path.read_text().splitlines()
        if re.search(r"(extra[-_])?index[-_]url", line, re.IGNORECASE)
    ]
    assert not hits, f"{name} points pip at another package index: {hits}"
