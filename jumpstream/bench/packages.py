"""A bare interpreter and a directory of only the packages one app may import, linked from here.

Cold starts are compared as Lambda runs them: an interpreter with no packages of its own, and on
its path only what the app ships (for the relay, its asset's requirements and boto3 as Lambda's
runtime provides it). The dev environment holds more (test and lint tools): a package that imports
an optional one when it is there (httpx imports rich for its command line) would pay for it here
and not in Lambda.
"""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from jumpstream.local import RELAY_ROOT

__all__ = ["asset_requirements", "bare_interpreter", "link_packages", "requirement_closure"]

_NAME: Final = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*==")


def asset_requirements(path: Path = RELAY_ROOT / "requirements.txt") -> list[str]:
    """The distributions the Lambda asset bundles: every pinned line of its requirements."""
    names: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _NAME.match(line.strip())
        if match:
            names.append(match.group(1))
    return names


def requirement_closure(roots: Sequence[str]) -> list[importlib.metadata.Distribution]:
    """The installed distributions ``roots`` need, their requirements followed recursively."""
    from packaging.markers import Marker
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    found: dict[str, importlib.metadata.Distribution] = {}
    pending = list(roots)
    while pending:
        name = pending.pop()
        key = canonicalize_name(name)
        if key in found:
            continue
        distribution = importlib.metadata.distribution(name)
        found[key] = distribution
        for line in distribution.requires or []:
            requirement = Requirement(line)
            marker: Marker | None = requirement.marker
            if marker is None or marker.evaluate({"extra": ""}):
                pending.append(requirement.name)
    return list(found.values())


def link_packages(roots: Sequence[str], target: Path) -> Path:
    """A directory holding only the top-level modules ``roots`` need, linked from this
    environment (nothing is copied)."""
    target.mkdir(parents=True)
    for distribution in requirement_closure(roots):
        tops = {
            Path(str(file)).parts[0]
            for file in distribution.files or []
            if not Path(str(file)).parts[0].endswith((".dist-info", ".egg-info", ".data"))
            and Path(str(file)).parts[0] not in ("..", "bin", "__pycache__")
        }
        for top in tops:
            source = Path(str(distribution.locate_file(top)))
            if source.exists() and not (target / top).exists():
                (target / top).symlink_to(source)
    return target


def bare_interpreter(workdir: Path) -> Path:
    """The bin directory of a venv without pip: this Python with no packages, as Lambda's is."""
    subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-m", "venv", "--without-pip", str(workdir / "venv")],
        check=True,
        timeout=60,
    )
    return workdir / "venv" / "bin"
