"""Settings: defaults, and one clear line per bad value (run.sh showing it: tests/e2e)."""

from __future__ import annotations

import pytest
from streamer.answer_room import ContextWindow
from streamer.prompt_template import Message
from streamer.settings import Settings, SettingsError, load_settings

REQUIRED = {"ENDPOINT_NAME": "jumpstart-rinna-endpoint", "AWS_REGION": "ap-northeast-1"}


def load(**overrides: str) -> Settings:
    return load_settings({**REQUIRED, **overrides})


def problem(environ: dict[str, str]) -> str:
    with pytest.raises(SettingsError) as caught:
        load_settings(environ)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_defaults() -> None:
    settings = load()
    assert settings == Settings(
        endpoint_name="jumpstart-rinna-endpoint",
        region="ap-northeast-1",
        inference_component_name=None,
        model_id=None,
        max_new_tokens_limit=1024,
        max_body_bytes=1024 * 1024,
        upstream_read_timeout_seconds=60.0,
        upstream_connect_timeout_seconds=5.0,
        log_prompts=False,
        host="127.0.0.1",
        port=8080,
    )


@pytest.mark.parametrize("engine", ["tgi", "lmi", "vllm"])
def test_the_serving_engine_is_read(engine: str) -> None:
    settings = load(SERVING_ENGINE=engine)
    assert (settings.serving_engine, settings.engine_chat_template) == (engine, False)


@pytest.mark.parametrize("engine", ["lmi", "vllm"])
@pytest.mark.parametrize("value", ["true", "1", "yes", "ON"])
def test_an_engine_that_lays_out_chats_may_be_told_to(engine: str, value: str) -> None:
    settings = load(SERVING_ENGINE=engine, ENGINE_CHAT_TEMPLATE=value)
    assert settings.engine_chat_template is True
    assert load(SERVING_ENGINE=engine, ENGINE_CHAT_TEMPLATE="false").engine_chat_template is False


@pytest.mark.parametrize("value", ["TGI", "vLLM", "djl", "tgi lmi", "huggingface"])
def test_an_unknown_engine_is_one_line_naming_the_engines(value: str) -> None:
    message = problem({**REQUIRED, "SERVING_ENGINE": value})
    assert message.startswith("SERVING_ENGINE must be one of tgi, lmi, vllm")
    assert repr(value) in message


def test_tgi_cannot_lay_out_chats_itself() -> None:
    message = problem({**REQUIRED, "ENGINE_CHAT_TEMPLATE": "true"})
    assert message.startswith("ENGINE_CHAT_TEMPLATE needs an engine that lays out chats")
    assert "PROMPT_TEMPLATE" in message
    assert load(ENGINE_CHAT_TEMPLATE="false").engine_chat_template is False


def test_an_engines_chat_template_and_a_prompt_template_exclude_each_other() -> None:
    template = '{"user": "U: {content}", "assistant": "A: {content}"}'
    message = problem(
        {
            **REQUIRED,
            "SERVING_ENGINE": "vllm",
            "ENGINE_CHAT_TEMPLATE": "true",
            "PROMPT_TEMPLATE": template,
        }
    )
    assert "ENGINE_CHAT_TEMPLATE and PROMPT_TEMPLATE exclude each other" in message
    # Either alone is fine on an engine that speaks prompts: the relay lays out the chat.
    assert load(SERVING_ENGINE="lmi", PROMPT_TEMPLATE=template).prompt_template is not None


def test_a_bad_engine_chat_template_value_is_one_line() -> None:
    message = problem({**REQUIRED, "SERVING_ENGINE": "lmi", "ENGINE_CHAT_TEMPLATE": "maybe"})
    assert message == "ENGINE_CHAT_TEMPLATE must be true or false (got 'maybe')."


def test_every_setting_is_read() -> None:
    settings = load(
        INFERENCE_COMPONENT_NAME="rinna-ic-1",
        MODEL_ID="huggingface-llm-rinna-3-6b-instruction-ppo-bf16",
        MAX_NEW_TOKENS_LIMIT="256",
        MAX_BODY_BYTES="65536",
        UPSTREAM_READ_TIMEOUT_SECONDS="30.5",
        UPSTREAM_CONNECT_TIMEOUT_SECONDS="2",
        LOG_PROMPTS="TRUE",
        HOST="0.0.0.0",
        PORT="9000",
    )
    assert settings.inference_component_name == "rinna-ic-1"
    assert settings.model_id == "huggingface-llm-rinna-3-6b-instruction-ppo-bf16"
    assert settings.max_new_tokens_limit == 256
    assert settings.max_body_bytes == 65536
    assert settings.upstream_read_timeout_seconds == 30.5
    assert settings.upstream_connect_timeout_seconds == 2.0
    assert settings.log_prompts is True
    assert (settings.host, settings.port) == ("0.0.0.0", 9000)


def test_host_takes_either_address_family() -> None:
    assert load(HOST="::1").host == "::1"
    assert load(HOST=" 127.0.0.1 ").host == "127.0.0.1"


def test_the_adapters_own_port_variable_wins() -> None:
    assert load(AWS_LWA_PORT="7000", PORT="9000").port == 7000
    assert load(AWS_LWA_PORT=" ", PORT="9000").port == 9000


def test_blank_optional_values_are_unset() -> None:
    settings = load(INFERENCE_COMPONENT_NAME="", MODEL_ID="  ", MAX_NEW_TOKENS_LIMIT="")
    assert settings.inference_component_name is None
    assert settings.model_id is None
    assert settings.max_new_tokens_limit == 1024


@pytest.mark.parametrize(
    ("raw", "value"), [("1", True), ("yes", True), ("off", False), ("False", False)]
)
def test_log_prompts_spellings(raw: str, value: bool) -> None:
    assert load(LOG_PROMPTS=raw).log_prompts is value


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"ENDPOINT_NAME": ""}, "ENDPOINT_NAME is not set"),
        ({"ENDPOINT_NAME": "has space"}, "ENDPOINT_NAME must be a SageMaker name"),
        ({"ENDPOINT_NAME": "-leading"}, "ENDPOINT_NAME must be a SageMaker name"),
        ({"ENDPOINT_NAME": "a" * 64}, "ENDPOINT_NAME must be a SageMaker name"),
        ({"AWS_REGION": ""}, "AWS_REGION is not set"),
        ({"AWS_REGION": "US East"}, "AWS_REGION must be a region name"),
        ({"INFERENCE_COMPONENT_NAME": "bad_name"}, "INFERENCE_COMPONENT_NAME must be"),
        ({"MAX_NEW_TOKENS_LIMIT": "0"}, "MAX_NEW_TOKENS_LIMIT must be a whole number from 1"),
        ({"MAX_NEW_TOKENS_LIMIT": "1.5"}, "MAX_NEW_TOKENS_LIMIT must be a whole number"),
        ({"MAX_NEW_TOKENS_LIMIT": "lots"}, "MAX_NEW_TOKENS_LIMIT must be a whole number"),
        ({"MAX_BODY_BYTES": "0"}, "MAX_BODY_BYTES must be a whole number from 1 to 6000000"),
        ({"MAX_BODY_BYTES": "7000000"}, "MAX_BODY_BYTES must be a whole number from 1 to 6000000"),
        ({"UPSTREAM_READ_TIMEOUT_SECONDS": "0"}, "UPSTREAM_READ_TIMEOUT_SECONDS must be"),
        ({"UPSTREAM_READ_TIMEOUT_SECONDS": "nan"}, "UPSTREAM_READ_TIMEOUT_SECONDS must be"),
        ({"UPSTREAM_READ_TIMEOUT_SECONDS": "inf"}, "UPSTREAM_READ_TIMEOUT_SECONDS must be"),
        ({"UPSTREAM_READ_TIMEOUT_SECONDS": "901"}, "at most 900"),
        ({"UPSTREAM_CONNECT_TIMEOUT_SECONDS": "-1"}, "UPSTREAM_CONNECT_TIMEOUT_SECONDS must be"),
        ({"UPSTREAM_CONNECT_TIMEOUT_SECONDS": "soon"}, "UPSTREAM_CONNECT_TIMEOUT_SECONDS must be"),
        ({"LOG_PROMPTS": "maybe"}, "LOG_PROMPTS must be true or false (got 'maybe')"),
        ({"HOST": "bad host"}, "HOST must be an IP address to listen on"),
        ({"HOST": "localhost"}, "HOST must be an IP address to listen on"),
        ({"PORT": "0"}, "PORT must be a whole number from 1 to 65535"),
        ({"PORT": "http"}, "PORT must be a whole number from 1 to 65535"),
        ({"AWS_LWA_PORT": "70000"}, "AWS_LWA_PORT must be a whole number from 1 to 65535"),
        ({"PROMPT_TEMPLATE": "{"}, "PROMPT_TEMPLATE is not valid JSON"),
        ({"JUMPSTREAM_ENVIRONMENT": "dév"}, "JUMPSTREAM_ENVIRONMENT must be 1 to 255 printable"),
        ({"POWERTOOLS_METRICS_NAMESPACE": "x" * 256}, "POWERTOOLS_METRICS_NAMESPACE must be"),
        ({"PROMPT_TEMPLATE": '{"user": "{content}"}'}, "PROMPT_TEMPLATE needs 'assistant'."),
        ({"MODEL_MAX_TOTAL_TOKENS": "0"}, "MODEL_MAX_TOTAL_TOKENS must be a whole number"),
        ({"MODEL_MAX_INPUT_TOKENS": "1024"}, "MODEL_MAX_INPUT_TOKENS needs MODEL_MAX_TOTAL"),
        (
            {"MODEL_MAX_TOTAL_TOKENS": "2048", "MODEL_MAX_INPUT_TOKENS": "2048"},
            "MODEL_MAX_INPUT_TOKENS must be less than MODEL_MAX_TOTAL_TOKENS (got 2048 and 2048)",
        ),
    ],
)
def test_each_bad_value_is_named_in_one_line(overrides: dict[str, str], words: str) -> None:
    assert words in problem({**REQUIRED, **overrides})


def test_the_prompt_template_is_read_from_its_json_setting() -> None:
    template = load(PROMPT_TEMPLATE='{"user": "U: {content}", "assistant": "A: {content}"}')
    assert template.prompt_template is not None
    assert template.prompt_template.render([Message("user", "hi")]) == "U: hi"
    assert load().prompt_template is None


def test_metrics_go_where_the_stack_says() -> None:
    settings = load(POWERTOOLS_METRICS_NAMESPACE="team/llm", JUMPSTREAM_ENVIRONMENT="prod")
    assert (settings.metrics_namespace, settings.environment_name) == ("team/llm", "prod")
    assert (load().metrics_namespace, load().environment_name) == ("jumpstream", "local")


def test_missing_required_variables() -> None:
    assert "ENDPOINT_NAME is not set" in problem({"AWS_REGION": "us-east-1"})
    assert "AWS_REGION is not set" in problem({"ENDPOINT_NAME": "e"})


def test_bad_values_are_quoted_safely_on_their_one_line() -> None:
    assert "'multi\\nline'" in problem({**REQUIRED, "LOG_PROMPTS": "multi\nline"})


def test_the_models_context_is_read_from_its_two_limits() -> None:
    context = {"MODEL_MAX_TOTAL_TOKENS": "2048", "MODEL_MAX_INPUT_TOKENS": "1024"}
    window = load_settings({**REQUIRED, **context}).context_window
    assert window == ContextWindow(max_total_tokens=2048, max_input_tokens=1024)
    assert window.room_after_any_prompt == 1024
    assert load_settings(REQUIRED).context_window is None
