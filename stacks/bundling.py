"""Bundle the relay's Lambda asset on this machine, without Docker.

CDK's default Python bundling runs a Docker image, and no Docker engine runs on our machines or in
CI. pip can fetch wheels for another platform: `--platform manylinux2014_aarch64 --only-binary
:all: --python-version 3.14 --implementation cp` resolves exactly what Lambda's arm64 Python 3.14
runtime can import, then the function's own sources are copied beside them.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import jsii

LAMBDA_PYTHON = "3.14"
PLATFORMS = {"arm64": "manylinux2014_aarch64", "x86_64": "manylinux2014_x86_64"}
# Not shipped: byte code compiled here would be for this machine's Python, not Lambda's 3.14.
_SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", "tests", ".pytest_cache")
#: Top-level entries of the source that are not part of the function.
NOT_SHIPPED = frozenset({"requirements.txt", "requirements-tokenizer.txt", "__pycache__"})


@jsii.implements(cdk.ILocalBundling)
class PipLocalBundling:
    """`pip install --target` for the Lambda platform, then the sources (run.sh, the package)."""

    def __init__(
        self, source: Path, *, architecture: str = "arm64", prompt_tokens: bool = False
    ) -> None:
        """`prompt_tokens` adds the tokenizer the relay counts prompt tokens with, for a model
        whose TGI does not report them (requirements-tokenizer.txt)."""
        self.source = source
        self.platform = PLATFORMS[architecture]
        self.prompt_tokens = prompt_tokens

    def try_bundle(self, output_dir: str, options: Any) -> bool:  # jsii passes the options
        out = Path(output_dir)
        self._pip_install(out, self.source / "requirements.txt")
        if self.prompt_tokens:
            self._pip_install(out, self.source / "requirements-tokenizer.txt", "--no-deps")
        for item in self.source.iterdir():
            if item.name in NOT_SHIPPED:
                continue
            if item.is_dir():
                shutil.copytree(item, out / item.name, ignore=_SKIP, dirs_exist_ok=True)
            else:
                shutil.copy2(item, out / item.name)
        # pip installs console scripts (uvicorn) with this machine's interpreter path in the
        # shebang; they would not run in Lambda and run.sh does not use them.
        shutil.rmtree(out / "bin", ignore_errors=True)
        return True

    def _pip_install(self, out: Path, requirements: Path, *extra: str) -> None:
        subprocess.run(  # noqa: S603 (fixed argv, no shell)
            [
                sys.executable, "-m", "pip", "install",
                "--quiet", "--disable-pip-version-check", "--no-compile",
                "--requirement", str(requirements),
                "--target", str(out),
                "--platform", self.platform,
                "--implementation", "cp",
                "--python-version", LAMBDA_PYTHON,
                "--only-binary=:all:",
                *extra,
            ],
            check=True,
        )  # fmt: skip


def bundled_code(
    source: Path, *, architecture: str = "arm64", prompt_tokens: bool = False
) -> cdk.aws_lambda.Code:
    """The function's code asset, hashed from its sources and bundled locally.

    The asset's hash covers the bundling options: the environment below names what differs
    between bundles of the same sources, so an asset with the tokenizer never stands in for one
    without (or the reverse)."""
    return cdk.aws_lambda.Code.from_asset(
        str(source),
        bundling=cdk.BundlingOptions(
            # The image is never started: local bundling always succeeds or raises.
            image=cdk.DockerImage.from_registry("public.ecr.aws/sam/build-python3.14"),
            local=PipLocalBundling(source, architecture=architecture, prompt_tokens=prompt_tokens),
            environment={"ARCHITECTURE": architecture, "PROMPT_TOKENS": str(prompt_tokens)},
        ),
        exclude=["__pycache__", "*.pyc"],
    )
