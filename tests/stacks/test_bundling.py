"""The relay's asset, bundled for real the way `cdk synth` bundles it: for Lambda's arm64
Python 3.14, without Docker, small, and with nothing the function does not run."""

from __future__ import annotations

from pathlib import Path

from stacks.bundling import PipLocalBundling
from stacks.relay import STREAMER_SOURCE


def test_asset_holds_the_relay_and_its_pinned_deps_only(tmp_path: Path) -> None:
    assert PipLocalBundling(STREAMER_SOURCE).try_bundle(str(tmp_path), None) is True
    names = {p.name for p in tmp_path.iterdir()}
    assert {"run.sh", "streamer", "starlette", "uvicorn", "aws_lambda_powertools"} <= names
    assert (tmp_path / "streamer" / "__main__.py").is_file()
    # The Lambda runtime ships boto3; the asset carries no SDK and no CDK.
    assert not names & {"boto3", "botocore", "aws_cdk", "jsii", "bin", "requirements.txt"}
    assert not list(tmp_path.rglob("__pycache__"))
    pinned = {
        line.split("==")[0].replace("-", "_").lower(): line.split("==")[1]
        for line in (STREAMER_SOURCE / "requirements.txt").read_text().splitlines()
        if "==" in line
    }
    for package, version in pinned.items():
        assert (tmp_path / f"{package}-{version}.dist-info").is_dir(), package
    size = sum(p.stat().st_size for p in tmp_path.rglob("*") if p.is_file())
    assert size < 12 * 1024 * 1024, f"asset grew to {size / 2**20:.1f} MiB"
    run_sh = (tmp_path / "run.sh").read_text()
    assert "exec python" in run_sh
