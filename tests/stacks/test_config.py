"""Each bad setting, in environments.toml or on the command line, fails with one clear line."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from stacks.config import resolve_environment, select_environments
from stacks.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
MISTRAL = "huggingface-llm-mistral-7b-instruct"
BASE = {"region": "us-east-1", "model_id": MISTRAL}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "environments.toml"
    path.write_text(text)
    return path


def test_shipped_environments_resolve() -> None:
    envs = {e.name: e for e in select_environments({})}
    assert set(envs) == {"dev", "prod"}
    assert envs["dev"].instance_type == "ml.g5.2xlarge"
    assert envs["prod"].instance_type == "ml.g5.12xlarge"  # the model's default
    # Named by environment and instance type: a new type is a new endpoint (docs/deploying.md).
    assert envs["dev"].endpoint_name == "jumpstream-dev-g5-2xlarge"
    assert envs["prod"].endpoint_name == "jumpstream-prod-g5-12xlarge"
    assert (envs["dev"].termination_protection, envs["prod"].termination_protection) == (
        False, True
    )  # fmt: skip


def test_context_overrides_apply_to_the_named_environment() -> None:
    (env,) = select_environments(
        {
            "env": "dev",
            "model_id": "huggingface-llm-falcon-7b-bf16",
            "region": "eu-west-1",
            "instance_type": "ml.g5.4xlarge",
            "instance_count": "3",
        }
    )
    assert (env.model.id, env.region, env.instance_type, env.instance_count) == (
        "huggingface-llm-falcon-7b-bf16", "eu-west-1", "ml.g5.4xlarge", 3
    )  # fmt: skip


def test_a_new_model_without_instance_type_gets_its_default() -> None:
    env = resolve_environment(
        "x", {"region": "us-east-1", "model_id": "huggingface-llm-falcon-180b-bf16"}
    )
    assert env.instance_type == "ml.p4de.24xlarge"


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"env": "nope"}, "unknown environment 'nope'; choose one of: dev, prod"),
        (
            {"env": "dev", "model_id": "gpt-5"},
            "unknown model_id 'gpt-5'; choose one of: huggingface-llm-",
        ),
        # An unknown region is called unknown (#19); a known one that does not host the model
        # says why (test_availability.py).
        ({"env": "dev", "region": "mars-1"}, "unknown region 'mars-1'; choose one of: "),
        (
            {"env": "dev", "instance_type": "ml.t3.medium"},
            "choose one of: ml.g5.2xlarge, ml.g5.4xlarge",
        ),
        ({"env": "dev", "instance_count": "0"}, "instance_count must be at least 1"),
        ({"env": "dev", "instance_count": "two"}, "instance_count must be a whole number"),
        ({"model_id": MISTRAL}, "needs an environment: add -c env=<name>"),
    ],
)
def test_bad_context_names_the_valid_choices(context: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        select_environments(context)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({**BASE, "instance_typ": "ml.g5.2xlarge"}, "unknown setting(s) instance_typ"),
        ({**BASE, "log_retention_days": 10}, "log_retention_days must be one of 1, 3, 5, 7"),
        ({**BASE, "account": "12345"}, "account must be a 12-digit string"),
        ({**BASE, "tags": {"a": 1}}, "tags must be a table of strings"),
        ({**BASE, "termination_protection": "yes"}, "termination_protection must be true or false"),
        ({"region": "us-east-1"}, "model_id is required"),
        ({**BASE, "region": "us-gov-west-1"}, "does not host huggingface-llm-mistral-7b-instruct"),
        ({**BASE, "relay": {"auth": "COGNITO"}}, "relay.auth must be one of AWS_IAM, NONE"),
        ({**BASE, "relay": {"reserved_concurrency": 0}}, "reserved_concurrency must be at least 1"),
        ({**BASE, "relay": {"max_new_tokens_limit": True}}, "must be a whole number"),
        ({**BASE, "relay": {"colour": "red"}}, "unknown setting(s) colour"),
        ({**BASE, "relay": "off"}, "environment 'dev'.relay must be a table, not 'off'"),
        (5, "environment 'dev' must be a table, not 5"),
        ("oops", "environment 'dev' must be a table, not 'oops'"),
        (
            {**BASE, "region": "cn-north-1"},
            "Lambda function URLs are not offered in cn-north-1",
        ),
        ({**BASE, "region": "il-central-1"}, "set relay.enabled = false"),
        (
            {
                "region": "us-gov-west-1",
                "model_id": "huggingface-llm-falcon-40b-bf16",
                "instance_type": "ml.p4d.24xlarge",
            },
            "the AWS Lambda Web Adapter 1.1.0 layer the relay runs on is not published in "
            "us-gov-west-1; set relay.enabled = false to deploy the endpoint alone",
        ),
        (
            {**BASE, "region": "me-south-1"},
            "region 'me-south-1' does not host huggingface-llm-mistral-7b-instruct: SageMaker "
            "hosting offers none of its instance types",
        ),
    ],
)
def test_bad_settings_fail_with_one_line(settings: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_environment("dev", settings)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_a_relay_can_be_turned_off_where_function_urls_do_not_exist() -> None:
    env = resolve_environment("cn", {**BASE, "region": "cn-north-1", "relay": {"enabled": False}})
    assert env.region == "cn-north-1"
    assert not env.relay.enabled


def test_bad_environment_names_and_files(tmp_path: Path) -> None:
    for bad in ("Dev_1", "dev-", "a--b", "1dev", "a" * 21):
        with pytest.raises(ConfigError, match="names are 1-20 lowercase"):
            resolve_environment(bad, BASE)
    assert resolve_environment("eu-2", BASE).endpoint_name == "jumpstream-eu-2-g5-12xlarge"
    with pytest.raises(ConfigError, match="declare at least one"):
        select_environments({}, write(tmp_path, "environments = {}\n"))
    with pytest.raises(ConfigError, match=r"environments\.toml: "):
        select_environments({}, write(tmp_path, "[environments.dev\n"))
    with pytest.raises(ConfigError, match="environment 'dev' must be a table, not 5"):
        select_environments({}, write(tmp_path, "[environments]\ndev = 5\n"))


def cdk(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real CDK CLI, as `make synth` runs it, with no AWS credentials anywhere."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    clean.update(
        PATH=f"{ROOT / '.venv' / 'bin'}:{clean['PATH']}",
        AWS_CONFIG_FILE="/nonexistent",
        AWS_SHARED_CREDENTIALS_FILE="/nonexistent",
        AWS_EC2_METADATA_DISABLED="true",
        **(env or {}),
    )
    return subprocess.run(
        [str(ROOT / "node_modules" / ".bin" / "cdk"), *args, "--no-notices"],
        cwd=ROOT, env=clean, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def test_cli_synth_works_without_aws_credentials(tmp_path: Path) -> None:
    result = cdk("synth", "-c", "env=dev", "--quiet", "--output", str(tmp_path))
    assert result.returncode == 0, result.stderr
    names = sorted(p.name for p in tmp_path.glob("*.template.json"))
    assert "jumpstream-dev-endpoint.template.json" in names
    assert all(n.startswith("jumpstream-dev-") for n in names)
    # One line says what it deploys, GPUs and idle cost included (#19), and who may call it.
    assert (
        "jumpstream: dev: huggingface-llm-mistral-7b-instruct on 1 x ml.g5.2xlarge (1 GPU each) "
        "in us-east-1, instance hosting; idle, 730 instance-hours a month; relay auth AWS_IAM"
    ) in result.stderr.splitlines()


def test_cli_bad_context_prints_one_clear_line_first(tmp_path: Path) -> None:
    result = cdk("synth", "-c", "env=dev", "-c", "region=mars-1", "--output", str(tmp_path))
    assert result.returncode != 0
    first = result.stderr.strip().splitlines()[0]
    assert first.startswith("jumpstream: error: environment 'dev': unknown region 'mars-1'")
    assert "choose one of: ap-east-1, ap-northeast-1" in first
    assert "Traceback" not in result.stderr
    assert "jsii" not in result.stderr.lower()


def test_reading_the_environments_loads_no_cdk_module() -> None:
    """The config and the commands that only read environments (cost, ask/proxy --env) import
    plain types: no jsii, no Node process."""
    import subprocess
    import sys

    probe = (
        "import sys, stacks.config, jumpstream.cost, jumpstream.deployed; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'aws_cdk', 'jsii', 'constructs', 'cdk_nag'}))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == "[]"


def test_each_table_takes_exactly_its_types_fields_with_their_defaults() -> None:
    """A setting is declared once, on its type: the table's keys and defaults come from it."""
    import dataclasses

    from stacks.deployment import AlarmThresholds, EnvironmentConfig, RelayConfig

    env = resolve_environment("t", {**BASE, "relay": {}, "alarms": {}})
    assert env.relay == RelayConfig()
    assert env.alarms == AlarmThresholds()
    defaults = {f.name: f.default for f in dataclasses.fields(EnvironmentConfig)}
    assert (env.instance_count, env.log_retention_days, env.hosting) == (
        defaults["instance_count"],
        defaults["log_retention_days"],
        defaults["hosting"],
    )
    for table, cls in (("relay", RelayConfig), ("alarms", AlarmThresholds)):
        with pytest.raises(ConfigError) as refused:
            resolve_environment("t", {**BASE, table: {"nope": 1}})
        valid = ", ".join(sorted(f.name for f in dataclasses.fields(cls)))
        assert str(refused.value).endswith(f"unknown setting(s) nope; valid settings: {valid}")


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        # A region's name slightly off.
        ({"region": "us-east1"}, "unknown region 'us-east1' (did you mean us-east-1?)"),
        # A model id slightly off.
        (
            {"model_id": "huggingface-llm-mistral-7b-instrct"},
            "unknown model_id 'huggingface-llm-mistral-7b-instrct' (did you mean "
            "huggingface-llm-mistral-7b-instruct?)",
        ),
        # An instance type without its "ml.".
        (
            {"instance_type": "g5.2xlarge"},
            "instance type 'g5.2xlarge' is not supported by huggingface-llm-mistral-7b-instruct "
            "(did you mean ml.g5.2xlarge?)",
        ),
        # Nothing close: no guess.
        ({"region": "mars-1"}, "unknown region 'mars-1'; choose one of"),
    ],
)
def test_a_near_miss_gets_a_did_you_mean(settings: dict, says: str) -> None:
    with pytest.raises(ConfigError) as refused:
        resolve_environment("t", {**BASE, **settings})
    assert says in str(refused.value)
    assert "\n" not in str(refused.value)


def test_the_regions_offered_are_where_the_whole_environment_deploys() -> None:
    """A region where the relay cannot run is offered only for an environment without it."""
    with pytest.raises(ConfigError) as refused:
        resolve_environment("t", {**BASE, "region": "mars-1"})
    offered, also = str(refused.value).split("choose one of: ")[1].split(" (with relay.enabled")
    assert "eu-west-1" in offered
    assert "il-central-1" not in offered
    assert "cn-north-1" not in offered
    assert also == " = false also: cn-north-1, il-central-1)"
    with pytest.raises(ConfigError) as without_relay:
        resolve_environment("t", {**BASE, "region": "mars-1", "relay": {"enabled": False}})
    assert "il-central-1" in str(without_relay.value)
    assert "with relay.enabled" not in str(without_relay.value)


def test_an_unknown_context_key_is_refused_with_the_valid_ones() -> None:
    """`-c modelid=...` must not deploy the default model in silence; CDK's own context (feature
    flags, its aws:cdk: settings) is not the user's and passes."""
    from stacks.config import check_context

    check_context(["env", "model_id", "@aws-cdk/core:newStyleStackSynthesis", "aws:cdk:x"])
    with pytest.raises(ConfigError) as refused:
        check_context(["env", "modelid"])
    assert str(refused.value) == (
        "unknown context key -c modelid (did you mean model_id?); the keys are: env, model_id, "
        "region, instance_type, instance_count, hosting"
    )


def test_cli_refuses_a_misspelt_context_key(tmp_path: Path) -> None:
    result = cdk("synth", "-c", "env=dev", "-c", "modelid=x", "--output", str(tmp_path))
    assert result.returncode != 0
    first = result.stderr.strip().splitlines()[0]
    assert first.startswith("jumpstream: error: unknown context key -c modelid")


def test_the_summary_says_gpus_counts_and_idle_hours_in_each_mode() -> None:
    envs = {e.name: e for e in select_environments({})}
    assert envs["prod"].summary() == (
        "prod: huggingface-llm-mistral-7b-instruct on 2 to 4 x ml.g5.12xlarge (4 GPUs each) in "
        "us-east-1, instance hosting; idle, 1,460 instance-hours a month; relay auth AWS_IAM"
    )
    component = resolve_environment("c", {**BASE, "hosting": "inference-component"})
    assert component.summary() == (
        "c: huggingface-llm-mistral-7b-instruct on 0 to 1 copies, one ml.g5.12xlarge (4 GPUs) "
        "each in us-east-1, inference-component hosting; idle, 0 instance-hours a month; "
        "relay auth AWS_IAM"
    )
    keyed = resolve_environment(
        "k", {**BASE, "relay": {"auth": "API_KEY", "reserved_concurrency": 2}}
    )
    assert keyed.summary().endswith("; relay auth API_KEY")
    alone = resolve_environment("e", {**BASE, "relay": {"enabled": False}})
    assert alone.summary().endswith("instance-hours a month; no relay")


LLAMA = "meta-textgeneration-llama-3-1-8b-instruct"
LLAMA_ENV = {"region": "us-west-2", "model_id": LLAMA}
REFUSED_LLAMA = (
    "environment 'x': meta-textgeneration-llama-3-1-8b-instruct is gated by the Llama 3.1 "
    "Community Licence (JumpStart's fmhMetadata/eula/llama3_1Eula.txt): read it, then set "
    "accept_eula = true in the environment to accept it"
)


def test_a_gated_model_is_refused_until_its_environment_accepts_its_licence() -> None:
    with pytest.raises(ConfigError) as refused:
        resolve_environment("x", LLAMA_ENV)
    assert str(refused.value) == REFUSED_LLAMA
    accepted = resolve_environment("x", {**LLAMA_ENV, "accept_eula": True})
    assert accepted.accept_eula
    assert accepted.summary().endswith("; accepts the Llama 3.1 Community Licence")
    with pytest.raises(ConfigError, match="accept_eula must be true or false"):
        resolve_environment("x", {**LLAMA_ENV, "accept_eula": "yes"})


def test_accepting_a_licence_for_a_model_without_one_grants_nothing_and_is_no_error() -> None:
    """An environment that accepts Llama's licence may still deploy another model for a while
    (`-c model_id=...`): the acceptance is kept, and says nothing about that model."""
    env = resolve_environment("x", {**BASE, "accept_eula": True})
    assert env.model.gated is None
    assert "accepts" not in env.summary()


def test_cli_synth_refuses_a_gated_model_in_one_line(tmp_path: Path) -> None:
    result = cdk(
        "synth", "-c", "env=dev", "-c", f"model_id={LLAMA}", "-c", "region=us-west-2",
        "-c", "instance_type=ml.g5.4xlarge", "--quiet", "--output", str(tmp_path),
    )  # fmt: skip
    assert result.returncode != 0
    first = result.stderr.strip().splitlines()[0]
    assert first == "jumpstream: error: " + REFUSED_LLAMA.replace("'x'", "'dev'")
    assert "Traceback" not in result.stderr


def test_an_lmi_model_hands_the_relay_its_engine_and_no_layout() -> None:
    """LMI 11 lays chats out with the model's own template; LMI 10 cannot (its chats would lack
    the assistant's turn), so its model takes prompts only and the relay lays out no chat either.
    The specs set no context length, so the relay is told none and its max_new_tokens_limit is
    bounded by nothing of the model's."""
    for model_id, engine_chat in (
        ("huggingface-llm-llama3-8b-sealionv21-instruct", True),
        ("huggingface-llm-qwen2-7b-instruct", False),
    ):
        env = resolve_environment(
            "x",
            {"region": "eu-west-1", "model_id": model_id, "relay": {"max_new_tokens_limit": 16384}},
        )
        target = env.relay_target
        assert (target.serving_engine, target.engine_chat_template) == ("lmi", engine_chat)
        assert (target.prompt_template, target.context_limits, target.tokenizer_uri) == (
            None, None, None
        )  # fmt: skip
    mistral = resolve_environment("x", BASE).relay_target
    assert (mistral.serving_engine, mistral.engine_chat_template) == ("tgi", False)
    assert mistral.prompt_template is not None
