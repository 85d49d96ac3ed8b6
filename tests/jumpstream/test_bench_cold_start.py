"""The cold start's pieces: a bare interpreter sees only the packages linked for it, the relay's
set is the asset's requirements, and the FastAPI baseline is a working app."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from jumpstream.bench.fastapi_baseline import FASTAPI_APP_DIR
from jumpstream.bench.packages import (
    asset_requirements,
    bare_interpreter,
    link_packages,
    requirement_closure,
)
from jumpstream.local import RELAY_ROOT


def test_the_relay_packages_are_the_assets_requirements() -> None:
    names = asset_requirements()
    assert {"starlette", "uvicorn", "aws-lambda-powertools", "httpcore", "orjson"} <= set(names)
    # Lambda's runtime provides botocore; the asset does not bundle it.
    assert not {"boto3", "botocore"} & set(names)
    text = (RELAY_ROOT / "requirements.txt").read_text()
    assert all(f"{name}==" in text for name in names)


def test_the_closure_follows_requirements() -> None:
    names = {
        distribution.metadata["Name"].lower() for distribution in requirement_closure(["httpx"])
    }
    assert {"httpx", "httpcore", "h11", "anyio", "certifi", "idna"} <= names
    assert "starlette" not in names


def test_a_bare_interpreter_imports_only_what_was_linked(tmp_path: Path) -> None:
    linked = link_packages(["h11"], tmp_path / "linked")
    assert (linked / "h11").is_symlink()
    assert not (linked / "httpx").exists()
    python = bare_interpreter(tmp_path) / "python"
    script = (
        "import importlib.util, h11; print(h11.__name__, importlib.util.find_spec('httpx') is None)"
    )
    result = subprocess.run(
        [str(python), "-c", script],
        env={"PYTHONPATH": str(linked), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["h11", "True"]


def test_the_fastapi_baseline_answers_health(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.syspath_prepend(str(FASTAPI_APP_DIR))
    monkeypatch.delitem(sys.modules, "fastapi_app", raising=False)
    module = importlib.import_module("fastapi_app")
    try:
        assert module.client.meta.service_model.service_name == "sagemaker-runtime"
        with TestClient(module.app) as client:
            response = client.get("/health")
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}
    finally:
        sys.modules.pop("fastapi_app", None)
