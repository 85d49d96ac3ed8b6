"""One synthesis of a representative set of endpoint stacks, shared by the tests.

Every model x region x instance type fact is checked by pure functions (test_availability.py,
test_catalog.py, test_endpoint_template.py's catalog tests); what only a template can show (the
construct wires those facts into CloudFormation, cdk-nag and cfn-lint accept it) is checked on a
set chosen so that each model appears once, each ECR registry account and each partition once,
and each instance family once, and each of the models on LMI but SEA-LION (Llama 3.1 8B's spec
on another artifact) once, the gated ones among them. The
shipped environments are synthesized in test_relay_template.py. Adding a model or a region adds
pure checks, not stacks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import aws_cdk as cdk
import pytest

from stacks.catalog import load_catalog
from stacks.config import resolve_environment
from stacks.endpoint_stack import EndpointStack
from stacks.nag import enable_nag

# (model id, region, instance type): what each entry adds to the set's coverage.
REPRESENTATIVE = [
    # default ECR account, partition aws, g5, an uncompressed prefix
    ("huggingface-llm-falcon-7b-bf16", "us-east-1", "ml.g5.2xlarge"),
    # ECR account 871362719292
    ("huggingface-llm-falcon-7b-instruct-bf16", "ap-east-1", "ml.g5.4xlarge"),
    # partition aws-us-gov, ECR account 442386744353, p4d (the only GPU type offered there)
    ("huggingface-llm-falcon-40b-bf16", "us-gov-west-1", "ml.p4d.24xlarge"),
    # the per-instance batch limits of g5.12xlarge
    ("huggingface-llm-falcon-40b-instruct-bf16", "eu-west-1", "ml.g5.12xlarge"),
    # p4de, a .tar.gz artifact
    ("huggingface-llm-falcon-180b-bf16", "us-east-1", "ml.p4de.24xlarge"),
    # p5
    ("huggingface-llm-falcon-180b-chat-bf16", "us-east-2", "ml.p5.48xlarge"),
    # partition aws-cn, ECR account 727897471807, amazonaws.com.cn
    ("huggingface-llm-mistral-7b", "cn-north-1", "ml.g5.2xlarge"),
    # ECR account 907027046896
    ("huggingface-llm-mistral-7b-instruct", "ap-southeast-3", "ml.g5.12xlarge"),
    # ECR account 780543022126
    ("huggingface-llm-rinna-3-6b-instruction-ppo-bf16", "il-central-1", "ml.g5.xlarge"),
    # the deprecated model
    ("huggingface-llm-bilingual-rinna-4b-instruction-ppo-bf16", "ap-northeast-1", "ml.g5.2xlarge"),
]
# The models on LMI, each in one of its real regions (test_engine_endpoints.py).
ENGINE_REPRESENTATIVE = [
    # gated (private bucket, the licence accepted), LMI 11
    ("meta-textgeneration-llama-3-1-8b-instruct", "us-west-2", "ml.g5.4xlarge"),
    # LMI 10 on 4 GPUs, ECR account 871362719292
    ("huggingface-llm-qwen2-7b-instruct", "ap-east-1", "ml.g5.12xlarge"),
    # p5, where no p4de is offered
    ("huggingface-llm-mistralai-mixtral-8x22B-instruct-v0-1", "us-east-2", "ml.p5.48xlarge"),
    # g6 (its default ml.g6.xlarge), gated under another licence, LMI 11
    ("meta-textgeneration-llama-3-2-3b-instruct", "eu-central-1", "ml.g6.xlarge"),
]


@dataclass(frozen=True)
class Matrix:
    outdir: Path
    templates: dict[tuple[str, str], dict]
    files: dict[tuple[str, str], Path]
    report: dict
    stacks: dict[tuple[str, str], EndpointStack]


def stack_id(model_id: str, region: str) -> str:
    return f"{model_id.removeprefix('huggingface-llm-')}-{region}"


@pytest.fixture(scope="session")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> Matrix:
    outdir = tmp_path_factory.mktemp("matrix")
    app = cdk.App(outdir=str(outdir))
    stacks: dict[tuple[str, str], EndpointStack] = {}
    catalog = load_catalog()
    for model_id, region, instance_type in [*REPRESENTATIVE, *ENGINE_REPRESENTATIVE]:
        config = resolve_environment(
            "t",
            {
                "model_id": model_id,
                "region": region,
                "instance_type": instance_type,
                "relay": {"enabled": False},
                # A gated model's environment accepts its licence, or synth refuses it.
                **({"accept_eula": True} if catalog.get(model_id).gated else {}),
            },
        )
        stacks[(model_id, region)] = EndpointStack(app, stack_id(model_id, region), config=config)
    enable_nag(app)
    assembly = app.synth()
    files = {
        key: outdir / assembly.get_stack_artifact(stack.artifact_id).template_file
        for key, stack in stacks.items()
    }
    templates = {key: json.loads(path.read_text()) for key, path in files.items()}
    report = json.loads((outdir / "validation-report.json").read_text())
    return Matrix(outdir=outdir, templates=templates, files=files, report=report, stacks=stacks)
