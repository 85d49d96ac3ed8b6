"""The relay's asset, bundled for real the way `cdk synth` bundles it: for Lambda's arm64
Python 3.14, without Docker, small, and with nothing the function does not run."""

from __future__ import annotations

import subprocess
import sys
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


def test_the_tokenizer_is_bundled_alone_and_only_where_asked(tmp_path: Path) -> None:
    """For a model whose TGI does not count prompt tokens: `tokenizers`, without
    huggingface_hub (only Tokenizer.from_pretrained needs it), importable and working on its own."""
    bundle = tmp_path / "bundle"
    assert PipLocalBundling(STREAMER_SOURCE, architecture="x86_64", prompt_tokens=True).try_bundle(
        str(bundle), None
    )
    names = {p.name for p in bundle.iterdir()}
    assert "tokenizers" in names
    assert not {name for name in names if name.startswith("huggingface_hub")}
    tokenizer = (
        '{"version": "1.0", "truncation": null, "padding": null, "added_tokens": [],'
        ' "normalizer": null, "pre_tokenizer": {"type": "WhitespaceSplit"},'
        ' "post_processor": null, "decoder": null,'
        ' "model": {"type": "WordLevel", "vocab": {"[UNK]": 0}, "unk_token": "[UNK]"}}'
    )
    # -S: no site-packages, so nothing but the bundle (and the standard library) can be imported.
    script = (
        f"import sys; sys.path.insert(0, {str(bundle)!r}); import tokenizers;"
        f"t = tokenizers.Tokenizer.from_str({tokenizer!r});"
        "print(len(t.encode('three words here').ids), tokenizers.__file__)"
    )
    counted = subprocess.run(
        [sys.executable, "-S", "-c", script],
        capture_output=True,
        text=True,
        check=True,
    )
    count, imported_from = counted.stdout.split()
    assert count == "3"
    assert imported_from.startswith(str(bundle))
