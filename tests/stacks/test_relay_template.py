"""The relay stack: a streaming, IAM-authenticated function URL allowed to invoke one endpoint."""

from __future__ import annotations

import json
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Annotations, Match, Template
from streamer.contract import (
    LAMBDA_MAX_TIMEOUT_SECONDS,
    METRIC_NAMESPACE,
    SERVICE_NAME,
    UPSTREAM_READ_TIMEOUT_SECONDS,
    function_environment,
)

from stacks.availability import load_availability
from stacks.catalog import load_catalog
from stacks.config import resolve_environment, select_environments
from stacks.deployment import API_KEYS_TABLE_OUTPUT, AUTH_TYPE_OUTPUT, RelayConfig, RelayTarget
from stacks.environment import add_environment
from stacks.errors import ConfigError
from stacks.nag import enable_nag
from stacks.relay import StreamingRelay, function_timeout_seconds
from stacks.relay_stack import RelayStack
from tests.stacks.test_lint import lint

BASE = {"region": "eu-west-1", "model_id": "huggingface-llm-mistral-7b-instruct"}


def skip_bundling_app(outdir: Path | None = None) -> cdk.App:
    """Bundling is tested once on its own (test_bundling.py); here the asset is not built."""
    return cdk.App(context={"aws:cdk:bundling-stacks": []}, outdir=str(outdir) if outdir else None)


def relay_template(settings: dict, name: str = "t") -> tuple[RelayStack, Template]:
    app = skip_bundling_app()
    stack = RelayStack(app, "relay", config=resolve_environment(name, settings))
    return stack, Template.from_stack(stack)


def test_function_runs_the_web_adapter_on_python_314_arm64() -> None:
    _, template = relay_template({**BASE, "relay": {"max_new_tokens_limit": 2048}})
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Runtime": "python3.14",
            "Architectures": ["arm64"],
            "Handler": "run.sh",
            "Layers": ["arn:aws:lambda:eu-west-1:753240598075:layer:LambdaAdapterLayerArm64:30"],
            "Timeout": 265,  # 60 s to start and prefill + 2048 tokens at 10 tokens/s
            "Environment": {
                "Variables": Match.object_like(
                    {
                        "AWS_LAMBDA_EXEC_WRAPPER": "/opt/bootstrap",
                        "AWS_LWA_INVOKE_MODE": "response_stream",
                        "AWS_LWA_READINESS_CHECK_PATH": "/health",
                        "AWS_LWA_PORT": "8080",
                        "ENDPOINT_NAME": "jumpstream-t-g5-12xlarge",
                        "MODEL_ID": "huggingface-llm-mistral-7b-instruct",
                        "MAX_NEW_TOKENS_LIMIT": "2048",
                        # The catalog's MAX_TOTAL_TOKENS / MAX_INPUT_LENGTH for the container.
                        "MODEL_MAX_TOTAL_TOKENS": "8192",
                        "MODEL_MAX_INPUT_TOKENS": "8191",
                    }
                )
            },
        },
    )
    # Every variable is written by the contract's one function, whose output the function reads
    # back as the same values (tests/streamer/test_contract.py).
    model = load_catalog().get(BASE["model_id"])
    (function,) = template.find_resources("AWS::Lambda::Function").values()
    assert function["Properties"]["Environment"]["Variables"] == function_environment(
        endpoint_name="jumpstream-t-g5-12xlarge",
        model_id=model.id,
        prompt_template=model.prompt_template,
        serving_engine="tgi",  # the catalog's engine for it, said explicitly
        max_new_tokens_limit=2048,
        model_max_total_tokens=8192,
        model_max_input_tokens=8191,
        upstream_read_timeout_seconds=UPSTREAM_READ_TIMEOUT_SECONDS.default,
        service_name=SERVICE_NAME,
        metrics_namespace=METRIC_NAMESPACE,
        environment_name="t",
        web_adapter=True,
        snap_start=True,  # on where Lambda offers it (below)
        # Mistral 7B Instruct's TGI (2.0.0) does not report prompt tokens: the relay counts them.
        tokenizer_uri=model.tokenizer_uri("eu-west-1"),
    )


def test_an_lmi_models_function_is_told_its_engine_and_gets_no_prompt_layout() -> None:
    """Llama 3.1 on LMI: the function sends chats as messages (the engine lays them out), so
    it gets no PROMPT_TEMPLATE; no context (the spec sets none) and no tokenizer (a TGI fact)."""
    settings = {
        "region": "us-west-2",
        "model_id": "meta-textgeneration-llama-3-1-8b-instruct",
        "accept_eula": True,
    }
    _, template = relay_template(settings)
    (function,) = template.find_resources("AWS::Lambda::Function").values()
    assert function["Properties"]["Environment"]["Variables"] == function_environment(
        endpoint_name="jumpstream-t-g5-4xlarge",
        model_id="meta-textgeneration-llama-3-1-8b-instruct",
        serving_engine="lmi",
        engine_chat_template=True,
        max_new_tokens_limit=1024,
        upstream_read_timeout_seconds=UPSTREAM_READ_TIMEOUT_SECONDS.default,
        service_name=SERVICE_NAME,
        metrics_namespace=METRIC_NAMESPACE,
        environment_name="t",
        web_adapter=True,
        snap_start=True,
    )
    variables = function["Properties"]["Environment"]["Variables"]
    assert (variables["SERVING_ENGINE"], variables["ENGINE_CHAT_TEMPLATE"]) == ("lmi", "true")
    assert "PROMPT_TEMPLATE" not in variables


def test_the_function_gets_the_catalogs_prompt_template_for_its_model() -> None:
    _, template = relay_template(BASE)
    (function,) = template.find_resources("AWS::Lambda::Function").values()
    setting = function["Properties"]["Environment"]["Variables"]["PROMPT_TEMPLATE"]
    assert json.loads(setting) == {
        "user": "[INST] {content} [/INST]",
        "assistant": "{content}</s> ",
        "system_joiner": "\n\n",
    }
    assert setting == load_catalog().get("huggingface-llm-mistral-7b-instruct").prompt_template


def test_timeout_covers_the_longest_answer_any_model_allows() -> None:
    assert function_timeout_seconds(1024) == 163
    # Mistral's MAX_TOTAL_TOKENS leaves at most 8191 new tokens: still inside Lambda's 900 s.
    assert function_timeout_seconds(8191) == 880
    assert function_timeout_seconds(100_000) == 900 == LAMBDA_MAX_TIMEOUT_SECONDS


def test_url_streams_and_requires_iam_by_default() -> None:
    stack, template = relay_template(BASE)
    template.has_resource_properties(
        "AWS::Lambda::Url", {"AuthType": "AWS_IAM", "InvokeMode": "RESPONSE_STREAM"}
    )
    template.has_output("Url", {})
    Annotations.from_stack(stack).has_no_warning("*", Match.string_like_regexp("PUBLIC"))


def test_a_public_url_must_be_chosen_and_is_warned_about() -> None:
    stack, template = relay_template({**BASE, "relay": {"auth": "NONE", "reserved_concurrency": 3}})
    template.has_resource_properties("AWS::Lambda::Url", {"AuthType": "NONE"})
    Annotations.from_stack(stack).has_warning("*", Match.string_like_regexp("is PUBLIC"))


def test_cors_comes_from_config() -> None:
    _, template = relay_template({**BASE, "relay": {"cors_allow_origins": ["https://a.example"]}})
    template.has_resource_properties(
        "AWS::Lambda::Url",
        {"Cors": Match.object_like({"AllowOrigins": ["https://a.example"]})},
    )
    _, template = relay_template(BASE)
    template.has_resource_properties("AWS::Lambda::Url", {"Cors": Match.absent()})


def test_role_may_invoke_this_endpoint_and_nothing_else() -> None:
    _, template = relay_template(BASE, name="dev")
    (policy,) = template.find_resources("AWS::IAM::Policy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    sagemaker = [s for s in statements if any(a.startswith("sagemaker:") for a in s["Action"])]
    assert len(sagemaker) == 1
    assert sorted(sagemaker[0]["Action"]) == [
        "sagemaker:InvokeEndpoint",
        "sagemaker:InvokeEndpointWithResponseStream",
    ]
    arn = json.dumps(sagemaker[0]["Resource"])
    assert '"arn:aws:sagemaker:eu-west-1:"' in arn
    assert '":endpoint/jumpstream-dev-g5-12xlarge"' in arn
    for statement in statements:
        assert statement["Resource"] != "*"
        assert all("*" not in action for action in statement["Action"])
    (role,) = template.find_resources("AWS::IAM::Role").values()
    assert "ManagedPolicyArns" not in role["Properties"]


def test_log_group_has_retention_and_is_destroyed_with_the_stack() -> None:
    _, template = relay_template({**BASE, "log_retention_days": 14})
    template.has_resource(
        "AWS::Logs::LogGroup",
        {"Properties": {"RetentionInDays": 14}, "DeletionPolicy": "Delete"},
    )
    template.has_resource_properties(
        "AWS::Lambda::Function", {"LoggingConfig": {"LogGroup": Match.any_value()}}
    )


def test_reserved_concurrency_from_config() -> None:
    _, template = relay_template({**BASE, "relay": {"reserved_concurrency": 7}})
    template.has_resource_properties("AWS::Lambda::Function", {"ReservedConcurrentExecutions": 7})
    _, template = relay_template(BASE)
    template.has_resource_properties(
        "AWS::Lambda::Function", {"ReservedConcurrentExecutions": Match.absent()}
    )


def test_grant_invoke_url_gives_both_permissions_a_caller_needs() -> None:
    stack = RelayStack(skip_bundling_app(), "relay", config=resolve_environment("t", BASE))
    caller = iam.Role(stack, "Caller", assumed_by=iam.AccountRootPrincipal())
    stack.relay.grant_invoke_url(caller)
    template = Template.from_stack(stack)
    actions = set()
    for policy in template.find_resources("AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            action = statement["Action"]
            actions.update(action if isinstance(action, list) else [action])
    assert {"lambda:InvokeFunctionUrl", "lambda:InvokeFunction"} <= actions


def standalone_relay(region: str, *, platform_region: str | None = None) -> StreamingRelay:
    """The construct used without the config: its platform comes from Availability, which
    refuses what the relay cannot run on, as the config does."""
    stack = cdk.Stack(skip_bundling_app(), "s", env=cdk.Environment(region=region))
    return StreamingRelay(
        stack,
        "Relay",
        config=RelayConfig(),
        target=RelayTarget(endpoint_name="e", model_id="m"),
        platform=load_availability().relay_platform(platform_region or region),
        environment_name="t",
    )


def test_the_construct_refuses_a_platform_of_another_region() -> None:
    """A platform says what exists in its region only: the layer's ARN is regional."""
    with pytest.raises(ConfigError, match="platform is eu-west-1's, its stack is in us-east-1"):
        standalone_relay("us-east-1", platform_region="eu-west-1")


def test_a_standalone_relay_gets_no_platform_in_a_partition_without_the_adapter_layer() -> None:
    with pytest.raises(ConfigError, match=r"Lambda Web Adapter 1\.1\.0 layer .* not published"):
        standalone_relay("us-gov-west-1")


def test_shipped_environments_synthesize_nag_and_lint_clean(tmp_path: Path) -> None:
    app = skip_bundling_app(tmp_path)
    stacks = [s for env in select_environments({}) for s in add_environment(app, env)]
    enable_nag(app)
    app.synth()
    names = sorted(s.stack_name for s in stacks)
    assert names == [
        "jumpstream-dev-endpoint", "jumpstream-dev-relay",
        "jumpstream-prod-endpoint", "jumpstream-prod-relay",
    ]  # fmt: skip
    # prod ships with termination protection on, dev without: what the cloud assembly tells
    # `cdk deploy` to set on each stack.
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    protected = {
        name: artifact["properties"].get("terminationProtection", False)
        for name, artifact in manifest["artifacts"].items()
        if artifact["type"] == "aws:cloudformation:stack"
    }
    assert protected == {
        "jumpstream-dev-endpoint": False, "jumpstream-dev-relay": False,
        "jumpstream-prod-endpoint": True, "jumpstream-prod-relay": True,
    }  # fmt: skip
    report = json.loads((tmp_path / "validation-report.json").read_text())
    (nag,) = [r for r in report["pluginReports"] if r["pluginName"] == "AwsSolutions"]
    assert nag["violations"] == []
    assert lint([str(tmp_path / f"{n}.template.json") for n in names], "us-east-1") == []
    relay = json.loads((tmp_path / "jumpstream-dev-relay.template.json").read_text())
    assert relay["Resources"]
    assert all(r.get("DeletionPolicy", "Delete") == "Delete" for r in relay["Resources"].values())
    # Without API keys: no table, no key rules, no table output (tests/stacks/test_api_keys.py).
    kinds = {r["Type"] for r in relay["Resources"].values()}
    assert not kinds & {"AWS::DynamoDB::Table", "AWS::CloudWatch::InsightRule"}
    assert API_KEYS_TABLE_OUTPUT not in relay["Outputs"]
    assert relay["Outputs"][AUTH_TYPE_OUTPUT]["Value"] == "AWS_IAM"


def test_an_environment_with_its_account_written_in_is_nag_and_lint_clean(tmp_path: Path) -> None:
    """A configured account appears literally in ARNs, where cdk-nag's finding ids differ from
    those of the account token: every acknowledgment must still match its finding."""
    app = skip_bundling_app(tmp_path)
    config = resolve_environment("acct", {**BASE, "account": "123456789012"})
    stacks = add_environment(app, config)
    enable_nag(app)
    app.synth()
    report = json.loads((tmp_path / "validation-report.json").read_text())
    (nag,) = [r for r in report["pluginReports"] if r["pluginName"] == "AwsSolutions"]
    assert (nag["conclusion"], nag["violations"]) == ("success", [])
    acknowledged = {finding["ruleName"] for finding in nag["suppressedViolations"]}
    assert any(":123456789012:log-group:" in rule for rule in acknowledged)
    files = [str(tmp_path / f"{s.stack_name}.template.json") for s in stacks]
    assert len(files) == 2
    assert lint(files, "eu-west-1") == []


def test_relay_synthesizes_in_every_region_that_can_host_it() -> None:
    """Each region a model deploys to either gets a relay with that region's adapter layer, or
    is refused at config time with a sentence that says why."""
    from stacks.catalog import load_catalog

    falcon = load_catalog().get("huggingface-llm-falcon-40b-instruct-bf16")
    built, refused = [], []
    for region in falcon.regions:
        settings = {"region": region, "model_id": falcon.id, "instance_type": "ml.p4d.24xlarge"}
        if region not in ("us-gov-west-1",):
            settings["instance_type"] = "ml.g5.48xlarge"
        if region in ("cn-north-1", "il-central-1", "us-gov-west-1"):
            with pytest.raises(ConfigError, match=r"; set relay\.enabled = false to deploy"):
                resolve_environment("r", settings)
            refused.append(region)
            continue
        config = resolve_environment("r", settings)
        stack = RelayStack(skip_bundling_app(), f"relay-{region}", config=config)
        Template.from_stack(stack).has_resource_properties(
            "AWS::Lambda::Function",
            {"Layers": [f"arn:aws:lambda:{region}:753240598075:layer:LambdaAdapterLayerArm64:30"]},
        )
        built.append(region)
    assert sorted(refused) == ["cn-north-1", "il-central-1", "us-gov-west-1"]
    assert len(built) == 16


def test_invokers_from_config_get_both_permissions_on_the_function() -> None:
    role = "arn:aws:iam::123456789012:role/app"
    _, template = relay_template({**BASE, "relay": {"invoker_arns": [role]}})
    permissions = template.find_resources("AWS::Lambda::Permission")
    granted = {
        (p["Properties"]["Action"], p["Properties"]["Principal"]) for p in permissions.values()
    }
    assert granted == {("lambda:InvokeFunctionUrl", role), ("lambda:InvokeFunction", role)}
    for permission in permissions.values():
        props = permission["Properties"]
        if props["Action"] == "lambda:InvokeFunctionUrl":
            assert props["FunctionUrlAuthType"] == "AWS_IAM"
        else:
            assert props["InvokedViaFunctionUrl"] is True


def test_invoker_arns_must_be_iam_principals() -> None:
    with pytest.raises(ConfigError, match="invoker_arns must be a list of IAM role"):
        resolve_environment("t", {**BASE, "relay": {"invoker_arns": ["*"]}})


@pytest.mark.parametrize(
    ("relay", "message"),
    [
        ({"auth": "NONE"}, "a public URL .* needs reserved_concurrency"),
        (
            {"auth": "NONE", "reserved_concurrency": 2, "invoker_arns": ["arn:aws:iam::1:root"]},
            "invoker_arns must be a list",
        ),
        (
            {
                "auth": "NONE",
                "reserved_concurrency": 2,
                "invoker_arns": ["arn:aws:iam::123456789012:role/app"],
            },
            "a public URL .* does not check",
        ),
        ({"max_new_tokens_limit": 8192}, "more than huggingface-llm-mistral-7b-instruct can"),
    ],
)
def test_relay_settings_that_cannot_work_are_refused(relay: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        resolve_environment("t", {**BASE, "relay": relay})


def test_falcon_limits_new_tokens_to_its_smaller_context() -> None:
    falcon = {"region": "eu-west-1", "model_id": "huggingface-llm-falcon-7b-bf16"}
    assert resolve_environment("t", {**falcon, "relay": {"max_new_tokens_limit": 2047}})
    with pytest.raises(ConfigError, match="use at most 2047"):
        resolve_environment("t", {**falcon, "relay": {"max_new_tokens_limit": 2048}})


def test_a_standalone_relay_gets_no_platform_where_function_urls_are_not_offered() -> None:
    with pytest.raises(ConfigError, match="function URLs are not offered in ap-south-2"):
        standalone_relay("ap-south-2")


def test_environment_wiring_tags_both_stacks_and_orders_them() -> None:
    app = skip_bundling_app()
    (prod,) = select_environments({"env": "prod"})
    endpoint, relay = add_environment(app, prod)
    assert relay.dependencies == [endpoint]
    for stack in (endpoint, relay):
        template = Template.from_stack(stack)
        for resource in template.to_json()["Resources"].values():
            assert resource.get("UpdateReplacePolicy", "Delete") == "Delete"
            assert resource.get("DeletionPolicy", "Delete") == "Delete"
        tagged = template.find_resources("AWS::Lambda::Function") or template.find_resources(
            "AWS::SageMaker::Endpoint"
        )
        (resource,) = tagged.values()
        assert {"Key": "environment", "Value": "prod"} in resource["Properties"]["Tags"]
    endpoint_template = Template.from_stack(endpoint)
    endpoint_template.has_resource_properties(
        "AWS::SageMaker::EndpointConfig",
        {"ProductionVariants": [Match.object_like({"InitialInstanceCount": 2})]},
    )
    # Both stacks name the same endpoint ARN: the output and the relay's permission.
    arn = json.dumps(endpoint_template.to_json()["Outputs"]["EndpointArn"]["Value"])
    (policy,) = Template.from_stack(relay).find_resources("AWS::IAM::Policy").values()
    statement = policy["Properties"]["PolicyDocument"]["Statement"][0]
    assert json.dumps(statement["Resource"]) == arn


def _lambda(template: Template, kind: str) -> list[dict]:
    return [r for r in template.find_resources(f"AWS::Lambda::{kind}").values()]


def test_snap_start_publishes_a_version_whose_alias_carries_the_url() -> None:
    """On by default where Lambda offers it: the snapshot is taken when a version is published,
    and only a version (through an alias) starts from it."""
    _, template = relay_template(
        {**BASE, "relay": {"invoker_arns": ["arn:aws:iam::123456789012:role/app"]}}
    )
    (function,) = _lambda(template, "Function")
    assert function["Properties"]["SnapStart"] == {"ApplyOn": "PublishedVersions"}
    # The adapter tells the function when Lambda restored it (it forgets credentials then).
    variables = function["Properties"]["Environment"]["Variables"]
    assert variables["AWS_LWA_SNAPSTART_AFTER_RESTORE_PATH"] == "/_lambda/after-restore"
    versions = template.find_resources("AWS::Lambda::Version")
    assert len(versions) == 1
    ((version_id, version),) = versions.items()
    assert (version["DeletionPolicy"], version["UpdateReplacePolicy"]) == ("Delete", "Delete")
    (alias_id,) = template.find_resources("AWS::Lambda::Alias")
    template.has_resource_properties(
        "AWS::Lambda::Alias",
        {"Name": "live", "FunctionVersion": {"Fn::GetAtt": [version_id, "Version"]}},
    )
    (url_id,) = template.find_resources("AWS::Lambda::Url")
    (url,) = _lambda(template, "Url")
    assert url["Properties"]["Qualifier"] == "live"
    assert url["Properties"]["InvokeMode"] == "RESPONSE_STREAM"
    template.has_output("Url", {"Value": {"Fn::GetAtt": [url_id, "FunctionUrl"]}})
    # A caller's two permissions are on the alias the URL invokes.
    permissions = _lambda(template, "Permission")
    assert sorted(p["Properties"]["Action"] for p in permissions) == [
        "lambda:InvokeFunction",
        "lambda:InvokeFunctionUrl",
    ]
    assert all(p["Properties"]["FunctionName"] == {"Ref": alias_id} for p in permissions)


def test_without_snap_start_the_url_invokes_the_function_itself() -> None:
    _, template = relay_template({**BASE, "relay": {"snap_start": False}})
    (function,) = _lambda(template, "Function")
    assert "SnapStart" not in function["Properties"]
    assert (
        "AWS_LWA_SNAPSTART_AFTER_RESTORE_PATH"
        not in function["Properties"]["Environment"]["Variables"]
    )
    template.resource_count_is("AWS::Lambda::Version", 0)
    template.resource_count_is("AWS::Lambda::Alias", 0)
    (url,) = _lambda(template, "Url")
    assert "Qualifier" not in url["Properties"]


def test_snap_start_where_lambda_does_not_offer_it() -> None:
    """Asked for: refused in one line. Not asked for: the relay starts without it, and synth
    says so."""
    from dataclasses import replace

    from stacks.catalog import Catalog

    catalog = load_catalog()
    without = replace(
        catalog.availability,
        snapstart_unsupported_regions=catalog.availability.snapstart_unsupported_regions
        | {"eu-west-1"},
    )
    patched = Catalog(catalog.models, without)
    with pytest.raises(ConfigError) as refused:
        resolve_environment("t", {**BASE, "relay": {"snap_start": True}}, catalog=patched)
    assert str(refused.value) == (
        "environment 't': Lambda SnapStart is not offered in eu-west-1; drop relay.snap_start "
        "to start without it"
    )
    app = skip_bundling_app()
    stack = RelayStack(app, "relay", config=resolve_environment("t", BASE, catalog=patched))
    template = Template.from_stack(stack)
    (function,) = _lambda(template, "Function")
    assert "SnapStart" not in function["Properties"]
    template.resource_count_is("AWS::Lambda::Alias", 0)
    notes = Annotations.from_stack(stack).find_warning(
        "*", Match.string_like_regexp("SnapStart is not offered in eu-west-1")
    )
    assert len(notes) == 1


def test_snap_start_is_true_or_false() -> None:
    with pytest.raises(ConfigError, match=r"relay\.snap_start must be true or false"):
        resolve_environment("t", {**BASE, "relay": {"snap_start": "yes"}})


def test_where_tgi_does_not_count_prompt_tokens_the_role_reads_the_models_tokenizer_only() -> None:
    _, counted_template = relay_template(BASE)
    _, reported_template = relay_template(
        {**BASE, "model_id": "huggingface-llm-falcon-7b-instruct-bf16"}
    )
    model = load_catalog().get(BASE["model_id"])
    uri = model.tokenizer_uri("eu-west-1")
    assert uri is not None
    assert uri.endswith("/inference-prepack/v2.0.0/tokenizer.json")
    (policy,) = counted_template.find_resources("AWS::IAM::Policy").values()
    (s3,) = [
        statement
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if "s3:" in json.dumps(statement["Action"])
    ]
    assert s3["Action"] == "s3:GetObject"
    assert s3["Resource"] == "arn:aws:s3:::" + uri.removeprefix("s3://")
    (function,) = counted_template.find_resources("AWS::Lambda::Function").values()
    assert function["Properties"]["Environment"]["Variables"]["TOKENIZER_URI"] == uri
    # A model whose TGI reports them: no tokenizer, no S3 access, and another asset (the
    # tokenizer is bundled only where it is used).
    (policy,) = reported_template.find_resources("AWS::IAM::Policy").values()
    actions = json.dumps(policy["Properties"]["PolicyDocument"]["Statement"])
    assert "s3:" not in actions
    (other,) = reported_template.find_resources("AWS::Lambda::Function").values()
    assert "TOKENIZER_URI" not in other["Properties"]["Environment"]["Variables"]
    assert function["Properties"]["Code"] != other["Properties"]["Code"]
