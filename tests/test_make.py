"""The Makefile's own behaviour: what talks to AWS checks for credentials first and says how to
give them; `make destroy` never waits for a confirmation nobody can type."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def make(
    *args: str, env: dict[str, str], stdin: int | None = subprocess.DEVNULL
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=ROOT,
        env=env,
        stdin=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _without_credentials() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
    )
    return env


def test_deploy_without_credentials_says_how_to_give_them() -> None:
    for target in ("deploy", "destroy", "bootstrap"):
        result = make(target, "ENV=dev", env=_without_credentials())
        assert result.returncode != 0
        assert "no AWS credentials found; configure some: `aws configure sso`" in result.stderr
        assert "cdk" not in result.stdout  # CDK never ran


def test_destroy_without_a_terminal_refuses_at_once_unless_forced() -> None:
    env = {**_without_credentials(), "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y"}
    result = make("destroy", "ENV=dev", env=env)
    assert result.returncode != 0
    assert "no terminal to confirm the deletion on; FORCE=1 deletes without asking" in (
        result.stderr
    )
    dry = make("-n", "destroy", "ENV=dev", "FORCE=1", env=env)
    assert dry.returncode == 0, dry.stderr
    assert "destroy -c env=dev" in dry.stdout
    assert "--force 'jumpstream-dev-*'" in dry.stdout
