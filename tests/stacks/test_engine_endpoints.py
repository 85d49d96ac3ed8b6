"""The endpoint stacks of the models on LMI carry what JumpStart's specs give, and the gated ones
read their artifacts only with their licences accepted.

Expected values are written out here from the specs (tests/jumpstream/jumpstart_specs: JumpStart's
of 2026-07-31), not read from stacks/models.json. The templates are the shared representative
synthesis (conftest.py: ENGINE_REPRESENTATIVE), which cfn-lint (test_lint.py) and cdk-nag
(test_endpoint_template.py) check with the others.
"""

from __future__ import annotations

import aws_cdk as cdk
import pytest

from stacks.catalog import load_catalog
from stacks.endpoint import JumpStartEndpoint
from stacks.errors import ConfigError
from tests.stacks.conftest import ENGINE_REPRESENTATIVE, Matrix, stack_id

LLAMA = "meta-textgeneration-llama-3-1-8b-instruct"
QWEN = "huggingface-llm-qwen2-7b-instruct"
MIXTRAL = "huggingface-llm-mistralai-mixtral-8x22B-instruct-v0-1"
LLAMA32 = "meta-textgeneration-llama-3-2-3b-instruct"
# The gated models' cases: their artifacts in JumpStart's private bucket, their licences accepted.
GATED = [(LLAMA, "us-west-2"), (LLAMA32, "eu-central-1")]
CASES = [(model_id, region) for model_id, region, _ in ENGINE_REPRESENTATIVE]
INSTANCE = {(model_id, region): instance for model_id, region, instance in ENGINE_REPRESENTATIVE}
LMI10 = "djl-inference:0.28.0-lmi10.0.0-cu124"
LMI11 = "djl-inference:0.29.0-lmi11.0.0-cu124"
COMMON = {
    "MODEL_CACHE_ROOT": "/opt/ml/model",
    "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
    "SAGEMAKER_ENV": "1",
    "SAGEMAKER_MODEL_SERVER_TIMEOUT": "3600",
    "SAGEMAKER_MODEL_SERVER_WORKERS": "1",
    "SAGEMAKER_PROGRAM": "inference.py",
}
# model id: (image, artifact key, container environment, startup timeouts in seconds)
SPEC = {
    LLAMA: (
        LMI11,
        "meta-textgeneration/meta-textgeneration-llama-3-1-8b-instruct/artifacts/"
        "inference-prepack/v2.0.0/",
        {
            **COMMON,
            "ENDPOINT_SERVER_TIMEOUT": "3600",
            "HF_MODEL_ID": "/opt/ml/model",
            "OPTION_ENABLE_CHUNKED_PREFILL": "true",
        },
        1800,
    ),
    QWEN: (
        LMI10,
        "huggingface-llm/huggingface-llm-qwen2-7b-instruct/artifacts/inference-prepack/v1.0.0/",
        {**COMMON, "OPTION_TGI_COMPAT": "True"},
        1800,
    ),
    MIXTRAL: (
        LMI10,
        "huggingface-llm/huggingface-llm-mistralai-mixtral-8x22B-instruct-v0-1/artifacts/"
        "inference-prepack/v1.0.0/",
        COMMON,
        3600,
    ),
    LLAMA32: (
        LMI11,
        "meta-textgeneration/meta-textgeneration-llama-3-2-3b-instruct/artifacts/"
        "inference-prepack/v1.0.0/",
        {
            **COMMON,
            "ENDPOINT_SERVER_TIMEOUT": "3600",
            "HF_MODEL_ID": "/opt/ml/model",
            "OPTION_ENABLE_CHUNKED_PREFILL": "true",
        },
        1800,
    ),
}
# region: ECR account
ACCOUNTS = {
    "us-west-2": "763104351884", "ap-east-1": "871362719292", "us-east-2": "763104351884",
    "eu-central-1": "763104351884",
}  # fmt: skip


def _resources(template: dict, kind: str) -> list[dict]:
    return [r["Properties"] for r in template["Resources"].values() if r["Type"] == kind]


def _one(template: dict, kind: str) -> dict:
    (found,) = _resources(template, kind)
    return found


def _statements(template: dict) -> dict[str, dict]:
    policy = _one(template, "AWS::IAM::Policy")
    return {s["Sid"]: s for s in policy["PolicyDocument"]["Statement"]}


def _bucket(model_id: str, region: str) -> str:
    private = "private-" if (model_id, region) in GATED else ""
    return f"jumpstart-{private}cache-prod-{region}"


@pytest.mark.parametrize(("model_id", "region"), CASES)
def test_the_lmi_image_the_artifact_and_the_specs_environment(
    matrix: Matrix, model_id: str, region: str
) -> None:
    image, key, environment, _ = SPEC[model_id]
    model = _one(matrix.templates[(model_id, region)], "AWS::SageMaker::Model")
    container = model["PrimaryContainer"]
    assert container["Image"] == f"{ACCOUNTS[region]}.dkr.ecr.{region}.amazonaws.com/{image}"
    source = {
        "S3Uri": f"s3://{_bucket(model_id, region)}/{key}",
        "S3DataType": "S3Prefix",
        "CompressionType": "None",
    }
    if (model_id, region) in GATED:
        # The acceptance of the Llama licence, where SageMaker takes it for S3 model data.
        source["ModelAccessConfig"] = {"AcceptEula": True}
    assert container["ModelDataSource"] == {"S3DataSource": source}
    assert "ModelDataUrl" not in container
    # The spec's variables as strings; nothing of TGI's (LMI takes every GPU by itself).
    assert container["Environment"] == environment
    assert model["EnableNetworkIsolation"] is True


@pytest.mark.parametrize(("model_id", "region"), CASES)
def test_the_variant_waits_as_long_as_the_model_may_take(
    matrix: Matrix, model_id: str, region: str
) -> None:
    config = _one(matrix.templates[(model_id, region)], "AWS::SageMaker::EndpointConfig")
    (variant,) = config["ProductionVariants"]
    assert variant["InstanceType"] == INSTANCE[(model_id, region)]
    seconds = SPEC[model_id][3]
    assert variant["ContainerStartupHealthCheckTimeoutInSeconds"] == seconds
    assert variant["ModelDataDownloadTimeoutInSeconds"] == seconds


@pytest.mark.parametrize(("model_id", "region"), CASES)
def test_the_execution_role_reads_this_artifact_and_pulls_this_image_only(
    matrix: Matrix, model_id: str, region: str
) -> None:
    template = matrix.templates[(model_id, region)]
    _, key, _, _ = SPEC[model_id]
    bucket = f"arn:aws:s3:::{_bucket(model_id, region)}"
    st = _statements(template)
    assert st["ReadModelArtifact"]["Action"] == "s3:GetObject"
    assert st["ReadModelArtifact"]["Resource"] == f"{bucket}/{key}*"
    assert st["ListModelArtifact"]["Action"] == "s3:ListBucket"
    assert st["ListModelArtifact"]["Resource"] == bucket
    assert st["ListModelArtifact"]["Condition"] == {"StringLike": {"s3:prefix": [f"{key}*"]}}
    pull = st["PullLmiImage"]
    assert pull["Resource"] == f"arn:aws:ecr:{region}:{ACCOUNTS[region]}:repository/djl-inference"
    assert "PullTgiImage" not in st
    # No other bucket, and for the gated model not the public one.
    text = str(_one(template, "AWS::IAM::Policy"))
    assert text.count("arn:aws:s3:::") == 2  # the prefix's objects, the bucket to list it
    if (model_id, region) in GATED:
        assert "jumpstart-cache-prod" not in text


@pytest.mark.parametrize(("model_id", "region"), GATED)
def test_the_gated_models_private_prefix_is_the_only_wildcard_it_adds(
    matrix: Matrix, model_id: str, region: str
) -> None:
    (nag,) = [r for r in matrix.report["pluginReports"] if r["pluginName"] == "AwsSolutions"]
    stack = stack_id(model_id, region)
    acknowledged = {
        finding["ruleName"]: finding["reason"]
        for finding in nag["suppressedViolations"]
        for construct in finding["violatingConstructs"]
        if construct["constructPath"].split("/")[0] == stack
    }
    prefix = f"AwsSolutions-IAM5[Resource::arn:aws:s3:::jumpstart-private-cache-prod-{region}/"
    (artifact,) = [rule for rule in acknowledged if rule.startswith(prefix)]
    assert artifact == f"{prefix}{SPEC[model_id][1]}*]"
    assert "JumpStart's private bucket" in acknowledged[artifact]
    assert len(acknowledged) == 3  # the artifact, ECR's token, the log streams


def test_the_construct_refuses_a_gated_model_without_its_licence_accepted() -> None:
    """Used without the config, JumpStartEndpoint says the same one line."""
    model = load_catalog().get(LLAMA)
    stack = cdk.Stack(cdk.App(), "s", env=cdk.Environment(region="us-west-2"))
    with pytest.raises(ConfigError) as refused:
        JumpStartEndpoint(stack, "E", model=model, endpoint_name="e", instance_type="ml.g5.4xlarge")
    assert str(refused.value) == (
        "meta-textgeneration-llama-3-1-8b-instruct is gated by the Llama 3.1 Community Licence "
        "(JumpStart's fmhMetadata/eula/llama3_1Eula.txt): read it, then set accept_eula = true "
        "in the environment to accept it"
    )
