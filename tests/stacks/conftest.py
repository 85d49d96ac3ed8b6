"""One synthesis of every catalog model in every region it is hosted in, shared by the tests.

Synthesizing ~260 stacks in-process takes a few seconds; doing it once per session keeps the
suite quick while every (model, region) pair is still really synthesized, nag-checked and linted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import aws_cdk as cdk
import pytest

from stacks.catalog import Model, load_catalog
from stacks.config import resolve_environment
from stacks.endpoint_stack import EndpointStack
from stacks.nag import enable_nag


@dataclass(frozen=True)
class Matrix:
    outdir: Path
    templates: dict[tuple[str, str], dict]
    files: dict[tuple[str, str], Path]
    report: dict


def stack_id(model: Model, region: str) -> str:
    return f"{model.id.removeprefix('huggingface-llm-')}-{region}"


@pytest.fixture(scope="session")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> Matrix:
    outdir = tmp_path_factory.mktemp("matrix")
    app = cdk.App(outdir=str(outdir))
    pairs: dict[tuple[str, str], str] = {}
    for model in load_catalog().models.values():
        for region in model.regions:
            config = resolve_environment(
                "t", {"model_id": model.id, "region": region, "relay": {"enabled": False}}
            )
            pairs[(model.id, region)] = EndpointStack(
                app, stack_id(model, region), config=config
            ).artifact_id
    enable_nag(app)
    assembly = app.synth()
    files = {
        key: outdir / assembly.get_stack_artifact(aid).template_file for key, aid in pairs.items()
    }
    templates = {key: json.loads(path.read_text()) for key, path in files.items()}
    report = json.loads((outdir / "validation-report.json").read_text())
    return Matrix(outdir=outdir, templates=templates, files=files, report=report)
