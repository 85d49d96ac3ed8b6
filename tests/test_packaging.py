"""The project as an installed package (pyproject.toml): the `jumpstream` command works without
activating the venv, and a wheel built from the repository carries the client, the contract it
reads and the catalog, and runs with only the dependencies it declares."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from jumpstream.bench.packages import bare_interpreter, link_packages

ROOT = Path(__file__).resolve().parent.parent
COMMAND = Path(sys.executable).parent / "jumpstream"


def _outside_the_venv() -> dict[str, str]:
    """An environment as a fresh shell has it: the venv neither activated nor on PATH."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"VIRTUAL_ENV", "PYTHONPATH"} and not k.startswith("AWS_")
    }
    env.update(
        PATH="/usr/bin:/bin",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
    )
    return env


def _installed_command(*arguments: str) -> subprocess.CompletedProcess[str]:
    """The console script, run from / with the virtualenv neither active nor on PATH."""
    return subprocess.run(
        [str(COMMAND), *arguments],
        env=_outside_the_venv(),
        cwd="/",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_installed_command_runs_without_activation() -> None:
    result = _installed_command("--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: jumpstream ")


def test_the_installed_command_reads_an_environment_outside_the_venv() -> None:
    result = _installed_command("cost", "--env", "dev")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("jumpstream-dev-g5-2xlarge: ")
    # Without credentials, only the note that with them it would read prices.
    assert result.stderr == (
        "jumpstream cost: with AWS credentials it also reads the prices from the AWS Price List\n"
    )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel `pip install` would build from the repository."""
    tmp_path = tmp_path_factory.mktemp("wheel")
    # Built from a copy: setuptools leaves a build/ directory in the tree it builds.
    source = tmp_path / "source"
    for path in ("pyproject.toml", "jumpstream", "stacks", "lambda/streamer/streamer"):
        copy = shutil.copytree if (ROOT / path).is_dir() else shutil.copy2
        (source / path).parent.mkdir(parents=True, exist_ok=True)
        copy(ROOT / path, source / path)  # type: ignore[operator]
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path), "."],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    (built_wheel,) = tmp_path.glob("jumpstream-*.whl")
    return built_wheel


def test_a_wheel_of_the_repository_carries_the_client_its_contract_and_the_catalog(
    wheel: Path,
) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in (
        "jumpstream/client.py",
        "jumpstream/cli.py",
        "streamer/contract.py",
        "streamer/static/chat.html",
        "streamer/static/vendor/purify.min.js",
        "streamer/static/vendor/dompurify.LICENSE",
        "stacks/config.py",
        "stacks/models.json",
        "stacks/availability.json",
    ):
        assert needed in names, needed
    assert not any(name.startswith("tests/") for name in names)
    (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    scripts = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "jumpstream = jumpstream.cli:main" in scripts


def test_the_installed_command_needs_only_the_dependencies_the_wheel_declares(
    wheel: Path, tmp_path: Path
) -> None:
    """Installed elsewhere, with nothing but what its metadata asks pip for: every command
    starts, and `ask --url` gets as far as calling the URL. (The dev venv holds much more, so
    a missing dependency would go unnoticed in every other test.)"""
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(tmp_path / "site")
        (metadata,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        requires = [
            line.removeprefix("Requires-Dist: ")
            for line in archive.read(metadata).decode().splitlines()
            if line.startswith("Requires-Dist: ")
        ]
    declared = [Requirement(line).name for line in requires]
    # Only the declared distributions and what they require, linked from this environment.
    packages = link_packages(declared, tmp_path / "dependencies")
    python = bare_interpreter(tmp_path) / "python"
    env = _outside_the_venv()
    env["PYTHONPATH"] = f"{tmp_path / 'site'}:{packages}"

    def run(*arguments: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(python), "-m", "jumpstream", *arguments],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    for command in ("ask", "proxy", "cost", "local"):
        result = run(command, "--help")
        assert result.returncode == 0, (command, result.stderr)
    # Nothing listens on port 9: the answer cannot come, and the command says so (exit 1).
    result = run("ask", "--url", "http://127.0.0.1:9", "--no-sign", "hello")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "127.0.0.1:9" in result.stderr
