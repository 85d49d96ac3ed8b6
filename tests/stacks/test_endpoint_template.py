"""The endpoint stacks carry exactly the facts JumpStart's specs give for each model.

Expected values are written out here from JumpStart's public specs, independently of
stacks/models.json, so a wrong edit to the catalog fails a test instead of a deploy. Facts of
every model in every region (image URI, artifact, environment per instance type) are checked on
the catalog's own functions, which the construct uses; the synthesized representative set
(conftest.py) shows the construct puts them into the template.
"""

from __future__ import annotations

import pytest

from stacks.catalog import load_catalog
from tests.stacks.conftest import ENGINE_REPRESENTATIVE, REPRESENTATIVE, Matrix

TAR = "huggingface-infer/prepack/{}/infer-prepack-huggingface-llm-{}.tar.gz"
TGI14 = "2.1.1-tgi1.4.0-gpu-py310-cu121-ubuntu20.04"
TGI20 = "2.1.1-tgi2.0.0-gpu-py310-cu121-ubuntu22.04"
TGI24 = "2.4.0-tgi2.4.0-gpu-py311-cu124-ubuntu22.04"


def prepack(name: str, version: str) -> str:
    return f"huggingface-llm/huggingface-llm-{name}/artifacts/inference-prepack/{version}/"


# model id: (image tag, artifact key, default instance type, GPUs on it)
SPEC = {
    "huggingface-llm-falcon-7b-bf16": (
        TGI14, prepack("falcon-7b-bf16", "v2.0.0"), "ml.g5.2xlarge", 1),
    "huggingface-llm-falcon-7b-instruct-bf16": (
        TGI24, prepack("falcon-7b-instruct-bf16", "v2.0.0"), "ml.g5.2xlarge", 1),
    "huggingface-llm-falcon-40b-bf16": (
        TGI14, prepack("falcon-40b-bf16", "v1.0.1"), "ml.g5.48xlarge", 8),
    "huggingface-llm-falcon-40b-instruct-bf16": (
        TGI14, prepack("falcon-40b-instruct-bf16", "v1.0.1"), "ml.g5.48xlarge", 8),
    "huggingface-llm-falcon-180b-bf16": (
        TGI24, TAR.format("v1.2.0", "falcon-180b-bf16"),
        "ml.p4de.24xlarge", 8),
    "huggingface-llm-falcon-180b-chat-bf16": (
        TGI24, TAR.format("v1.1.0", "falcon-180b-chat-bf16"),
        "ml.p4de.24xlarge", 8),
    "huggingface-llm-mistral-7b": (
        TGI20, prepack("mistral-7b", "v1.0.0"), "ml.g5.2xlarge", 1),
    "huggingface-llm-mistral-7b-instruct": (
        TGI20, prepack("mistral-7b-instruct", "v2.0.0"), "ml.g5.12xlarge", 4),
    "huggingface-llm-rinna-3-6b-instruction-ppo-bf16": (
        TGI14, prepack("rinna-3-6b-instruction-ppo-bf16", "v1.1.0"), "ml.g5.2xlarge", 1),
    "huggingface-llm-bilingual-rinna-4b-instruction-ppo-bf16": (
        TGI24, prepack("bilingual-rinna-4b-instruction-ppo-bf16", "v1.0.1"),
        "ml.g5.2xlarge", 1),
}  # fmt: skip

# region: (ECR account, DNS suffix, ARN partition), for every region a model deploys to.
DEFAULT = ("763104351884", "amazonaws.com", "aws")
REGIONS = {
    **{
        region: DEFAULT
        for region in (
            "ap-northeast-1", "ap-northeast-2", "ap-south-1", "ap-southeast-1",
            "ap-southeast-2", "ca-central-1", "eu-central-1", "eu-north-1", "eu-west-1",
            "eu-west-2", "eu-west-3", "sa-east-1", "us-east-1", "us-east-2", "us-west-2",
        )
    },
    "ap-east-1": ("871362719292", "amazonaws.com", "aws"),
    "ap-southeast-3": ("907027046896", "amazonaws.com", "aws"),
    "il-central-1": ("780543022126", "amazonaws.com", "aws"),
    "cn-north-1": ("727897471807", "amazonaws.com.cn", "aws-cn"),
    "us-gov-west-1": ("442386744353", "amazonaws.com", "aws-us-gov"),
}  # fmt: skip

CASES = [(model_id, region) for model_id, region, _ in REPRESENTATIVE]
INSTANCE = {
    (model_id, region): instance
    for model_id, region, instance in [*REPRESENTATIVE, *ENGINE_REPRESENTATIVE]
}


def endpoint_name(model_id: str, region: str) -> str:
    """Environment `t`'s endpoint, named by its instance type (ml.g5.2xlarge: -g5-2xlarge)."""
    return "jumpstream-t-" + INSTANCE[(model_id, region)].removeprefix("ml.").replace(".", "-")


def resources(template: dict, kind: str) -> list[dict]:
    return [r for r in template["Resources"].values() if r["Type"] == kind]


def one(template: dict, kind: str) -> dict:
    found = resources(template, kind)
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]["Properties"]


def test_the_ten_seed_models_are_in_the_catalog() -> None:
    """With the same facts as ever (this file); the catalog's others are on LMI
    (test_engine_endpoints.py)."""
    tgi = {m.id for m in load_catalog().models.values() if m.engine == "tgi"}
    assert tgi == set(SPEC)


def test_the_representative_set_covers_models_accounts_partitions_and_families() -> None:
    catalog = load_catalog()
    assert sorted(m for m, _, _ in REPRESENTATIVE) == sorted(SPEC)
    deployable_accounts = {REGIONS[r][0] for m in catalog.models.values() for r in m.regions}
    assert {REGIONS[r][0] for _, r, _ in REPRESENTATIVE} == deployable_accounts
    assert {REGIONS[r][2] for _, r, _ in REPRESENTATIVE} == {"aws", "aws-cn", "aws-us-gov"}
    families = {t.rsplit(".", 1)[0] for m in catalog.models.values() for t in m.instance_types}
    # g6 only the LMI models offer: Llama 3.2 3B's default covers it.
    synthesized = [*REPRESENTATIVE, *ENGINE_REPRESENTATIVE]
    assert {t.rsplit(".", 1)[0] for _, _, t in synthesized} == families


def test_every_model_names_its_image_in_every_region_it_deploys_to() -> None:
    catalog = load_catalog()
    checked = 0
    for model_id, (tag, key, _, _) in SPEC.items():
        model = catalog.get(model_id)
        for region in model.regions:
            account, suffix, _ = REGIONS[region]
            assert model.image_uri(region) == (
                f"{account}.dkr.ecr.{region}.{suffix}/huggingface-pytorch-tgi-inference:{tag}"
            )
            assert model.artifact_uri(region) == f"s3://jumpstart-cache-prod-{region}/{key}"
            checked += 1
    assert checked == 164


def test_every_model_and_instance_type_gets_the_specs_environment() -> None:
    catalog = load_catalog()
    for model_id, (_, _, default, gpus) in SPEC.items():
        model = catalog.get(model_id)
        assert (model.default_instance_type, GPUS[default]) == (default, gpus)
        for instance_type in model.instance_types:
            env = model.container_environment(instance_type)
            expected = expected_environment(model_id, instance_type)
            assert env == expected, (model_id, instance_type)


@pytest.mark.parametrize(("model_id", "region"), CASES)
def test_model_image_data_and_isolation(matrix: Matrix, model_id: str, region: str) -> None:
    tag, key, _, _ = SPEC[model_id]
    account, suffix, _ = REGIONS[region]
    model = one(matrix.templates[(model_id, region)], "AWS::SageMaker::Model")
    container = model["PrimaryContainer"]
    assert container["Image"] == (
        f"{account}.dkr.ecr.{region}.{suffix}/huggingface-pytorch-tgi-inference:{tag}"
    )
    uri = f"s3://jumpstart-cache-prod-{region}/{key}"
    if key.endswith("/"):
        assert "ModelDataUrl" not in container
        assert container["ModelDataSource"] == {
            "S3DataSource": {"S3Uri": uri, "S3DataType": "S3Prefix", "CompressionType": "None"}
        }
    else:
        assert "ModelDataSource" not in container
        assert container["ModelDataUrl"] == uri
    assert model["EnableNetworkIsolation"] is True
    env = container["Environment"]
    assert all(isinstance(v, str) for v in env.values()), env
    assert env["SM_NUM_GPUS"] == str(GPUS[INSTANCE[(model_id, region)]])
    assert "SAGEMAKER_SUBMIT_DIRECTORY" not in env


# SM_NUM_GPUS per instance type: TGI shards over every GPU the instance has.
GPUS = {
    "ml.g5.xlarge": 1, "ml.g5.2xlarge": 1, "ml.g5.4xlarge": 1, "ml.g5.8xlarge": 1,
    "ml.g5.16xlarge": 1, "ml.g5.12xlarge": 4, "ml.g5.24xlarge": 4, "ml.g5.48xlarge": 8,
    "ml.p4d.24xlarge": 8, "ml.p4de.24xlarge": 8, "ml.p5.48xlarge": 8,
}  # fmt: skip


def expected_environment(model_id: str, instance_type: str) -> dict[str, str]:
    mistral = "mistral" in model_id
    expected = {
        "HF_MODEL_ID": "/opt/ml/model",
        "MODEL_CACHE_ROOT": "/opt/ml/model",
        "MAX_INPUT_LENGTH": "8191" if mistral else "1024",
        "MAX_TOTAL_TOKENS": "8192" if mistral else "2048",
        "SAGEMAKER_PROGRAM": "inference.py",
        "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
        "SAGEMAKER_ENV": "1",
        "SAGEMAKER_MODEL_SERVER_TIMEOUT": "3600",
        "SAGEMAKER_MODEL_SERVER_WORKERS": "1",
        "ENDPOINT_SERVER_TIMEOUT": "1200" if "rinna" in model_id else "3600",
        "SM_NUM_GPUS": str(GPUS[instance_type]),
    }
    if mistral:
        expected["MAX_BATCH_PREFILL_TOKENS"] = "8191"
    if "40b" in model_id and instance_type in ("ml.g5.12xlarge", "ml.g5.24xlarge"):
        expected["MAX_BATCH_PREFILL_TOKENS"] = "2048"
        expected["MAX_BATCH_TOTAL_TOKENS"] = "2048"
    return expected


@pytest.mark.parametrize(("model_id", "region"), CASES)
def test_environment_matches_the_spec(matrix: Matrix, model_id: str, region: str) -> None:
    env = one(matrix.templates[(model_id, region)], "AWS::SageMaker::Model")["PrimaryContainer"][
        "Environment"
    ]
    assert env == expected_environment(model_id, INSTANCE[(model_id, region)])


@pytest.mark.parametrize(("model_id", "region"), CASES)
def test_variant_instance_and_timeouts(matrix: Matrix, model_id: str, region: str) -> None:
    config = one(matrix.templates[(model_id, region)], "AWS::SageMaker::EndpointConfig")
    (variant,) = config["ProductionVariants"]
    assert variant["VariantName"] == "AllTraffic"
    assert variant["InstanceType"] == INSTANCE[(model_id, region)]
    assert variant["InitialInstanceCount"] == 1
    startup = variant["ContainerStartupHealthCheckTimeoutInSeconds"]
    download = variant["ModelDataDownloadTimeoutInSeconds"]
    if "180b" in model_id:
        assert startup == download == 3600
    elif "40b" in model_id:
        assert startup >= 1800
        assert download >= 1800
    else:
        assert 600 <= startup <= 1200
        assert 600 <= download <= 1200
    assert "EndpointConfigName" not in config  # generated, so a change replaces it cleanly
    assert "ModelName" not in one(matrix.templates[(model_id, region)], "AWS::SageMaker::Model")


def _statements(template: dict) -> dict[str, dict]:
    policy = one(template, "AWS::IAM::Policy")
    return {s["Sid"]: s for s in policy["PolicyDocument"]["Statement"]}


def _flat(value: object) -> str:
    """A resource as text; CloudFormation intrinsics ({"Fn::Join": ...}) are rendered crudely."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        sep, parts = value["Fn::Join"]
        return sep.join(_flat(p) for p in parts)
    if isinstance(value, dict) and "Ref" in value:
        return "${" + value["Ref"] + "}"
    return str(value)


@pytest.mark.parametrize(("model_id", "region"), CASES)
def test_execution_role_is_least_privilege(matrix: Matrix, model_id: str, region: str) -> None:
    template = matrix.templates[(model_id, region)]
    _, key, _, _ = SPEC[model_id]
    account, _, part = REGIONS[region]
    bucket = f"arn:{part}:s3:::jumpstart-cache-prod-{region}"
    role = one(template, "AWS::IAM::Role")
    assert "ManagedPolicyArns" not in role
    principal = role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]
    assert principal == {"Service": "sagemaker.amazonaws.com"}
    st = _statements(template)
    read = st["ReadModelArtifact"]
    assert read["Action"] == "s3:GetObject"
    assert read["Resource"] == (f"{bucket}/{key}*" if key.endswith("/") else f"{bucket}/{key}")
    if key.endswith("/"):
        assert st["ListModelArtifact"]["Resource"] == bucket
        assert st["ListModelArtifact"]["Condition"] == {"StringLike": {"s3:prefix": [f"{key}*"]}}
    else:
        assert "ListModelArtifact" not in st
    pull = st["PullTgiImage"]
    assert pull["Resource"] == (
        f"arn:{part}:ecr:{region}:{account}:repository/huggingface-pytorch-tgi-inference"
    )
    assert sorted(pull["Action"]) == [
        "ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"
    ]  # fmt: skip
    logs = st["WriteEndpointLogs"]
    endpoint = endpoint_name(model_id, region)
    group = f"arn:{part}:logs:{region}:${{AWS::AccountId}}:log-group:"
    group += f"/aws/sagemaker/Endpoints/{endpoint}"
    assert sorted(_flat(r) for r in logs["Resource"]) == [group, f"{group}:log-stream:*"]
    assert sorted(logs["Action"]) == [
        "logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"
    ]  # fmt: skip
    # AWS's documented minimum: CreateLogGroup, on this endpoint's own group and nothing else.
    create = st["CreateEndpointLogGroup"]
    assert (create["Action"], _flat(create["Resource"])) == ("logs:CreateLogGroup", group)
    alarms = f"arn:{part}:cloudwatch:{region}:${{AWS::AccountId}}:alarm:{endpoint}-new-fleet-"
    describe = st["DescribeRollbackAlarms"]
    assert describe["Action"] == "cloudwatch:DescribeAlarms"
    assert sorted(_flat(r) for r in describe["Resource"]) == [
        f"{alarms}5xx-errors", f"{alarms}model-errors"
    ]  # fmt: skip
    # "*" only where IAM accepts nothing else, and never with a broad action.
    for sid, statement in st.items():
        resources = (
            statement["Resource"]
            if isinstance(statement["Resource"], list)
            else [statement["Resource"]]
        )
        if "*" in resources:
            assert sid in {"EcrLogin", "PutEndpointMetrics"}, sid
            actions = (
                statement["Action"]
                if isinstance(statement["Action"], list)
                else [statement["Action"]]
            )
            assert actions in (["ecr:GetAuthorizationToken"], ["cloudwatch:PutMetricData"])
        actions = (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
        assert not [a for a in actions if "*" in a], sid
    assert st["PutEndpointMetrics"]["Condition"] == {
        "StringEquals": {"cloudwatch:namespace": "/aws/sagemaker/Endpoints"}
    }


def test_the_construct_itself_refuses_what_cannot_deploy() -> None:
    """Used without the config, JumpStartEndpoint applies the same one-line check."""
    import aws_cdk as cdk

    from stacks.endpoint import JumpStartEndpoint
    from stacks.errors import ConfigError

    model = load_catalog().get("huggingface-llm-falcon-180b-chat-bf16")
    for region, instance_type, message in (
        ("eu-west-1", "ml.p4de.24xlarge", "cannot run in eu-west-1: SageMaker hosting offers none"),
        ("us-east-2", "ml.p4de.24xlarge", "does not offer ml.p4de.24xlarge in us-east-2"),
        ("us-east-1", "ml.g5.2xlarge", "'ml.g5.2xlarge' is not supported by"),
    ):
        stack = cdk.Stack(cdk.App(), "s", env=cdk.Environment(region=region))
        with pytest.raises(ConfigError, match=message):
            JumpStartEndpoint(
                stack, "E", model=model, endpoint_name="e", instance_type=instance_type
            )


def test_nothing_is_retained_or_snapshotted_and_logs_are_destroyed(matrix: Matrix) -> None:
    for key, template in matrix.templates.items():
        for logical_id, resource in template["Resources"].items():
            for policy in ("DeletionPolicy", "UpdateReplacePolicy"):
                assert resource.get(policy, "Delete") == "Delete", (key, logical_id, policy)
        log_group = one(template, "AWS::Logs::LogGroup")
        assert log_group["LogGroupName"] == f"/aws/sagemaker/Endpoints/{endpoint_name(*key)}"
        assert log_group["RetentionInDays"] == 30


def test_endpoint_waits_for_its_log_group_and_has_a_fixed_name(matrix: Matrix) -> None:
    template = matrix.templates[("huggingface-llm-falcon-7b-bf16", "us-east-1")]
    endpoints = [
        r for r in template["Resources"].values() if r["Type"] == "AWS::SageMaker::Endpoint"
    ]
    (endpoint,) = endpoints
    assert endpoint["Properties"]["EndpointName"] == "jumpstream-t-g5-2xlarge"
    log_ids = [k for k, r in template["Resources"].items() if r["Type"] == "AWS::Logs::LogGroup"]
    assert set(log_ids) <= set(endpoint["DependsOn"])
    outputs = {
        o["Value"] if isinstance(o["Value"], str) else None for o in template["Outputs"].values()
    }
    assert "jumpstream-t-g5-2xlarge" in outputs


def test_cdk_nag_finds_nothing_unacknowledged(matrix: Matrix) -> None:
    """Only the three wildcards IAM leaves no way around are acknowledged, each with a reason."""
    (nag,) = [r for r in matrix.report["pluginReports"] if r["pluginName"] == "AwsSolutions"]
    assert nag["conclusion"] == "success"
    assert nag["violations"] == []
    acknowledged: dict[str, set[str]] = {}
    for finding in nag["suppressedViolations"]:
        for construct in finding["violatingConstructs"]:
            stack = construct["constructPath"].split("/")[0]
            acknowledged.setdefault(stack, set()).add(finding["ruleName"])
        assert "supports no resource ARN" in finding["reason"] or "own" in finding["reason"]
    prefix = "AwsSolutions-IAM5[Resource::"
    falcon = acknowledged["falcon-7b-bf16-us-east-1"]
    assert falcon == {
        f"{prefix}*]",
        f"{prefix}arn:aws:s3:::jumpstart-cache-prod-us-east-1/"
        f"{prepack('falcon-7b-bf16', 'v2.0.0')}*]",
        f"{prefix}arn:aws:logs:us-east-1:<AWS::AccountId>:log-group:"
        "/aws/sagemaker/Endpoints/jumpstream-t-g5-2xlarge:log-stream:*]",
    }
    # A tarball is one object: no prefix wildcard to acknowledge.
    tarball = acknowledged["falcon-180b-bf16-us-east-1"]
    assert len(tarball) == 2
    assert not any("jumpstart-cache-prod" in rule for rule in tarball)


def test_the_deprecated_model_synthesizes_with_a_warning_saying_why(matrix: Matrix) -> None:
    from aws_cdk.assertions import Annotations, Match

    rinna = ("huggingface-llm-rinna-3-6b-instruction-ppo-bf16", "il-central-1")
    rinna4b = ("huggingface-llm-bilingual-rinna-4b-instruction-ppo-bf16", "ap-northeast-1")
    for model_id, region in (rinna, rinna4b):
        stack = matrix.stacks[(model_id, region)]
        warnings = Annotations.from_stack(stack).find_warning(
            "*", Match.string_like_regexp("is deprecated: JumpStart dropped this model")
        )
        deprecated = model_id == "huggingface-llm-bilingual-rinna-4b-instruction-ppo-bf16"
        assert len(warnings) == (1 if deprecated else 0), (model_id, region)


# What one step of an update may take: download the model, start it and bake.
STEP_SECONDS = {"7b": 900 + 900 + 600, "40b": 1800 + 1800 + 600, "180b": 3600 + 3600 + 600}


def _size(model_id: str) -> str:
    return "180b" if "180b" in model_id else "40b" if "40b" in model_id else "7b"


@pytest.mark.parametrize(("model_id", "region"), CASES)
def test_a_one_instance_fleet_updates_blue_green_and_rolls_back_on_the_new_fleets_errors(
    matrix: Matrix, model_id: str, region: str
) -> None:
    """Half of one instance is no valid rolling batch whichever way SageMaker rounds it: a
    one-instance environment (every one in the matrix) moves all traffic to a new instance,
    which bakes under the rollback alarms before the old one stops."""
    template = matrix.templates[(model_id, region)]
    endpoint = one(template, "AWS::SageMaker::Endpoint")
    deployment = endpoint["DeploymentConfig"]
    assert "RollingUpdatePolicy" not in deployment
    assert deployment["BlueGreenUpdatePolicy"] == {
        "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0},
        "TerminationWaitInSeconds": 600,
        "MaximumExecutionTimeoutInSeconds": STEP_SECONDS[_size(model_id)],
    }
    # A fixed count: an update starts what the file says (instance_count may change).
    assert "RetainAllVariantProperties" not in endpoint
    # The new fleet's alarms, named for the endpoint; the environment's others (monitoring.py)
    # watch the whole endpoint and must not roll an update back.
    alarms = {
        logical_id: r["Properties"]
        for logical_id, r in template["Resources"].items()
        if r["Type"] == "AWS::CloudWatch::Alarm"
        and "-new-fleet-" in str(r["Properties"].get("AlarmName", ""))
    }
    assert len(alarms) == 2
    rollback = deployment["AutoRollbackConfiguration"]["Alarms"]
    assert sorted(a["AlarmName"]["Ref"] for a in rollback) == sorted(alarms)
    (config_id,) = [
        k for k, r in template["Resources"].items() if r["Type"] == "AWS::SageMaker::EndpointConfig"
    ]
    by_metric = {a["MetricName"]: a for a in alarms.values()}
    assert set(by_metric) == {"Invocation5XXErrors", "InvocationModelErrors"}
    for metric, alarm in by_metric.items():
        # Metrics SageMaker emits for a real-time endpoint, on the newest config's fleet only.
        assert alarm["Namespace"] == "AWS/SageMaker"
        assert sorted(alarm["Dimensions"], key=lambda d: d["Name"]) == [
            {
                "Name": "EndpointConfigName",
                "Value": {"Fn::GetAtt": [config_id, "EndpointConfigName"]},
            },
            {"Name": "EndpointName", "Value": endpoint_name(model_id, region)},
            {"Name": "VariantName", "Value": "AllTraffic"},
        ]
        assert (alarm["Statistic"], alarm["Period"], alarm["EvaluationPeriods"]) == (
            "Average",
            60,
            3,
        )
        assert alarm["DatapointsToAlarm"] == 2
        assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
        assert alarm["Threshold"] == (0.05 if metric == "Invocation5XXErrors" else 0.25)
        assert alarm["TreatMissingData"] == "notBreaching"
    name = endpoint_name(model_id, region)
    assert by_metric["Invocation5XXErrors"]["AlarmName"] == f"{name}-new-fleet-5xx-errors"
    assert by_metric["InvocationModelErrors"]["AlarmName"] == f"{name}-new-fleet-model-errors"


@pytest.mark.parametrize(
    ("smallest", "largest", "steps"),
    [(2, 2, 2), (4, 4, 2), (6, 6, 2), (3, 3, 3), (2, 4, 3), (2, 6, 3), (5, 9, 3)],
)
def test_a_fleet_of_two_or_more_rolls_in_halves_whichever_way_sagemaker_rounds(
    smallest: int, largest: int, steps: int
) -> None:
    from stacks.deployment import Fleet, update_policy

    policy = update_policy(
        Fleet(smallest=smallest, largest=largest), download_seconds=900, startup_seconds=900
    )
    assert policy.rolling_steps == steps
    assert policy.timeout_seconds == steps * STEP_SECONDS["7b"]
    # 50% of any fleet the update may find is a batch of at least one instance, rounded down
    # or up, and no rounding needs more steps than the time limit allows for.
    for instances in range(smallest, largest + 1):
        for batch in (instances // 2, -(-instances // 2)):
            assert 1 <= batch <= instances
            assert -(-instances // batch) <= steps


@pytest.mark.parametrize(("smallest", "largest"), [(1, 1), (1, 4)])
def test_a_fleet_that_may_be_one_instance_updates_blue_green(smallest: int, largest: int) -> None:
    from stacks.deployment import Fleet, update_policy

    policy = update_policy(
        Fleet(smallest=smallest, largest=largest), download_seconds=900, startup_seconds=900
    )
    assert policy.rolling_steps is None
    assert policy.timeout_seconds == STEP_SECONDS["7b"]


def test_every_catalog_models_update_fits_sagemakers_time_limit_uncut() -> None:
    """Each step may download, start and bake; SageMaker allows 600-28800 s for the whole
    update. No model's worst case (three rolling steps) is cut short by that ceiling."""
    from stacks.deployment import Fleet, update_policy

    for model in load_catalog().models.values():
        step = model.download_timeout_seconds + model.health_check_timeout_seconds + 600
        for fleet in (Fleet(smallest=1, largest=8), Fleet(smallest=2, largest=8)):
            policy = update_policy(
                fleet,
                download_seconds=model.download_timeout_seconds,
                startup_seconds=model.health_check_timeout_seconds,
            )
            assert policy.timeout_seconds == (policy.rolling_steps or 1) * step <= 28800


def test_the_update_policy_and_retained_count_follow_the_fleet() -> None:
    """Fixed at two: rolling, the file's count. Autoscaled from two: rolling, and an update
    keeps the count autoscaling set (weight and data capture come from the new config).
    Autoscaled down to one at night: blue/green, count kept."""
    import aws_cdk as cdk

    from stacks.config import resolve_environment
    from stacks.endpoint_stack import EndpointStack

    base = {"region": "eu-west-1", "model_id": "huggingface-llm-mistral-7b-instruct"}
    night = {"name": "night", "cron": "cron(0 20 ? * MON-FRI *)", "min_instances": 1}
    cases = {
        "fixed": {**base, "instance_count": 2},
        "scaled": {
            **base,
            "instance_count": 2,
            "scaling": {"min_instances": 2, "max_instances": 4},
        },
        "night": {
            **base,
            "instance_count": 2,
            "scaling": {"min_instances": 2, "max_instances": 4, "schedules": [night]},
        },
    }
    app = cdk.App()
    stacks = {
        name: EndpointStack(app, name, config=resolve_environment("t", settings))
        for name, settings in cases.items()
    }
    endpoints = {
        name: one(
            app.synth().get_stack_by_name(stack.stack_name).template, "AWS::SageMaker::Endpoint"
        )
        for name, stack in stacks.items()
    }
    retained = [
        {"VariantPropertyType": "DesiredWeight"},
        {"VariantPropertyType": "DataCaptureConfig"},
    ]
    fixed, scaled, at_night = endpoints["fixed"], endpoints["scaled"], endpoints["night"]
    assert fixed["DeploymentConfig"]["RollingUpdatePolicy"]["MaximumExecutionTimeoutInSeconds"] == (
        2 * STEP_SECONDS["7b"]
    )
    assert "RetainAllVariantProperties" not in fixed
    rolling = scaled["DeploymentConfig"]["RollingUpdatePolicy"]
    assert rolling["MaximumBatchSize"] == {"Type": "CAPACITY_PERCENT", "Value": 50}
    assert rolling["RollbackMaximumBatchSize"] == {"Type": "CAPACITY_PERCENT", "Value": 50}
    assert rolling["MaximumExecutionTimeoutInSeconds"] == 3 * STEP_SECONDS["7b"]  # 3 may be odd
    assert scaled["RetainAllVariantProperties"] is True
    assert scaled["ExcludeRetainedVariantProperties"] == retained
    assert "RollingUpdatePolicy" not in at_night["DeploymentConfig"]
    assert at_night["DeploymentConfig"]["BlueGreenUpdatePolicy"]["TerminationWaitInSeconds"] == 600
    assert at_night["RetainAllVariantProperties"] is True
    for endpoint in endpoints.values():
        assert len(endpoint["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]) == 2
