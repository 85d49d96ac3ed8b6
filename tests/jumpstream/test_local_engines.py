"""The local stack for a model served by LMI or vLLM: the emulator started on that engine, and the
relay told the engine and who lays out chats, as the stack tells a deployed function."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from streamer import contract

from jumpstream import cli, local
from jumpstream.emulator import __main__ as emulator_main
from jumpstream.emulator import model_facts
from jumpstream.local import StackConfig, emulator_command, relay_environment, start_stack
from jumpstream.procs import LineBuffer
from stacks.catalog import load_catalog
from tests.jumpstream.emulator.emulator_harness import (
    invoke_json,
    parse_json_lines,
    parse_openai_sse,
    payload_parts,
    sagemaker_client,
)

EMULATOR_URL = "http://127.0.0.1:41234"
MISTRAL = "huggingface-llm-mistral-7b-instruct"


def environment(config: StackConfig) -> dict[str, str]:
    return relay_environment(config, emulator_url=EMULATOR_URL, port=18080, base={})


@pytest.mark.parametrize("engine", ["lmi", "vllm"])
def test_an_lmi_or_vllm_endpoint_has_the_relay_send_chats_for_the_engine_to_lay_out(
    engine: str,
) -> None:
    env = environment(StackConfig(model_id=MISTRAL, engine=engine))
    assert env[contract.SERVING_ENGINE.name] == engine
    assert env[contract.ENGINE_CHAT_TEMPLATE.name] == "true"
    assert contract.PROMPT_TEMPLATE.name not in env  # the two are exclusive
    # The model's context is the catalog's whatever the engine.
    assert env[contract.MODEL_MAX_TOTAL_TOKENS.name] == "8192"


def test_a_tgi_endpoint_keeps_the_catalogs_layout_and_the_relays_default_engine() -> None:
    env = environment(StackConfig(model_id=MISTRAL))
    assert contract.SERVING_ENGINE.name not in env  # TGI is the function's default
    assert contract.ENGINE_CHAT_TEMPLATE.name not in env
    assert env[contract.PROMPT_TEMPLATE.name] == load_catalog().get(MISTRAL).prompt_template
    assert environment(StackConfig(model_id=MISTRAL, engine="tgi")) == env


def test_engine_settings_from_the_callers_shell_do_not_leak_into_the_relay() -> None:
    base = {"SERVING_ENGINE": "vllm", "ENGINE_CHAT_TEMPLATE": "true", "PATH": "/bin"}
    env = relay_environment(StackConfig(), emulator_url=EMULATOR_URL, port=1, base=base)
    assert "SERVING_ENGINE" not in env
    assert "ENGINE_CHAT_TEMPLATE" not in env


@pytest.fixture
def lmi_catalog_model(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An LMI model as the catalog states one (its engine, the engine's own chat template)."""
    model_id = "meta-textgeneration-llama-3-1-8b-instruct"
    mistral = load_catalog().get(MISTRAL)
    entry = SimpleNamespace(
        engine="lmi",
        chat="engine",
        prompt_template=None,
        default_instance_type=mistral.default_instance_type,
        context_limits=mistral.context_limits,
    )
    monkeypatch.setitem(load_catalog().models, model_id, entry)
    model_facts.catalog_engine.cache_clear()
    yield model_id
    model_facts.catalog_engine.cache_clear()


def test_the_catalogs_engine_is_used_when_none_is_chosen(lmi_catalog_model: str) -> None:
    config = StackConfig(model_id=lmi_catalog_model)
    assert config.serving_engine == "lmi"
    env = environment(config)
    assert env[contract.SERVING_ENGINE.name] == "lmi"
    assert env[contract.ENGINE_CHAT_TEMPLATE.name] == "true"
    # The emulator is not told: it reads the same catalog.
    assert "--engine" not in emulator_command(config)
    settings = emulator_main.settings_from(emulator_main.parse_args(emulator_command(config)[3:]))
    assert settings.served_by == "lmi"


def test_a_chosen_engine_is_passed_to_the_emulator() -> None:
    command = emulator_command(StackConfig(engine="vllm"))
    assert command[command.index("--engine") + 1] == "vllm"


def test_the_relay_counts_prompt_tokens_itself_where_the_engine_reports_none(
    tmp_path: Path,
) -> None:
    falcon = "huggingface-llm-falcon-7b-instruct-bf16"  # its TGI reports them
    stand_in = local._stand_in_tokenizer  # what start_stack hands the relay as TOKENIZER_URI
    assert stand_in(StackConfig(model_id=falcon), tmp_path) is None
    assert stand_in(StackConfig(model_id=MISTRAL, engine="vllm"), tmp_path) is None
    path = stand_in(StackConfig(model_id=falcon, engine="lmi"), tmp_path)
    assert path is not None
    assert json.loads(Path(path).read_text(encoding="utf-8"))["model"]["type"] == "WordLevel"


def run_cli(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> tuple[int, Any, str]:
    captured: dict[str, Any] = {}

    def record(config: StackConfig, *, stdout: Any, stderr: Any) -> int:
        captured["config"] = config
        return 0

    monkeypatch.setattr(local, "run_local", record)
    stderr = io.StringIO()
    status = cli.main(argv, stdout=io.StringIO(), stderr=stderr)
    return status, captured.get("config"), stderr.getvalue()


def test_local_takes_the_engine_option(monkeypatch: pytest.MonkeyPatch) -> None:
    status, config, _ = run_cli(["local", "--engine", "lmi"], monkeypatch)
    assert status == 0
    assert config.engine == "lmi"
    status, config, _ = run_cli(["local"], monkeypatch)
    assert config.engine is None


def test_local_refuses_a_tgi_server_for_a_model_served_by_another_engine(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    status, config, err = run_cli(
        ["local", "--engine", "vllm", "--tgi-url", "http://127.0.0.1:3000"], monkeypatch
    )
    assert status == 2
    assert config is None
    assert "--tgi-url forwards to a TGI server, but the model is served by vllm" in err


@pytest.mark.parametrize(
    ("engine", "body", "read"),
    [
        ("lmi", {"inputs": "hi", "parameters": {"max_new_tokens": 3}, "stream": True}, "lines"),
        ("vllm", {"prompt": "hi", "max_tokens": 3, "stream": True}, "sse"),
    ],
)
def test_the_stack_starts_the_emulator_on_the_engine(
    engine: str, body: dict[str, Any], read: str
) -> None:
    config = StackConfig(relay_port=0, tokens_per_second=0, first_token_delay=0, engine=engine)
    output = LineBuffer(keep=200)
    with start_stack(config, sink=output) as stack:
        response = invoke_json(sagemaker_client(stack.emulator_url), body)
        data = b"".join(payload_parts(response))
    events = parse_json_lines(data) if read == "lines" else parse_openai_sse(data)
    assert len(events) == (3 if read == "lines" else 4)
