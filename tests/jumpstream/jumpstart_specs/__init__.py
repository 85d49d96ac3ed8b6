"""Real JumpStart specs, in JumpStart's own schema, of the catalog's five LMI models.

Transcribed from the offline copy of JumpStart's us-east-1 specs that awslabs/
generative-ai-cdk-constructs keeps (src/patterns/gen-ai/aws-model-deployment-sagemaker/
jumpstart-models.json at commit 9d49b9d3261598abaffec56914062ab3fa99214a, regenerated 2026-07-31
by commit f162fdac; a raw-deflate buffer of each spec's model id, version, instance types,
artifact keys, gated bucket, EULA key, environment defaults, per-region image aliases and
per-instance variants). Each file holds exactly those facts under the names JumpStart's specs
give them (`default_inference_instance_type`, `hosting_instance_type_variants`, ...). The copy
keeps no deploy_kwargs, no environment variable scopes (all are the container's here) and no
hosting_ecr_specs, so neither do these files. `_source` says where each came from; `publishable()`
drops it, as a spec in JumpStart's bucket has none.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

__all__ = ["load", "load_all", "publishable"]


def load(model_id: str, version: str) -> dict[str, Any]:
    return json.loads((HERE / f"{model_id}-{version}.json").read_text(encoding="utf-8"))


def load_all() -> list[dict[str, Any]]:
    return [json.loads(path.read_text(encoding="utf-8")) for path in sorted(HERE.glob("*.json"))]


def publishable(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec as JumpStart's bucket holds it (without `_source`)."""
    return {key: value for key, value in spec.items() if key != "_source"}
