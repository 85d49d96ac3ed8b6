"""How the local stack starts its children: the relay's environment and the emulator's command."""

from __future__ import annotations

import io
import os
import shlex
import socket
import sys
from pathlib import Path

import pytest
from streamer import contract
from streamer.contract import Variable, function_environment

from jumpstream.emulator import __main__ as emulator_main
from jumpstream.emulator import options as emulator_options
from jumpstream.emulator.server import EmulatorSettings
from jumpstream.local import (
    ENDPOINT_NAME,
    RELAY_ROOT,
    PortInUse,
    StackConfig,
    curl_example,
    emulator_command,
    free_port,
    relay_command,
    relay_environment,
    run_local,
    start_stack,
)
from jumpstream.procs import LineBuffer
from stacks.catalog import load_catalog

EMULATOR_URL = "http://127.0.0.1:41234"


def test_relay_environment_is_what_lambda_and_the_brief_set() -> None:
    config = StackConfig(
        model_id="huggingface-llm-rinna-3-6b-instruction-ppo-bf16", region="eu-west-1"
    )
    env = relay_environment(config, emulator_url=EMULATOR_URL, port=18080, base={"PATH": "/bin"})
    assert env["PORT"] == "18080"
    assert env["ENDPOINT_NAME"] == ENDPOINT_NAME == "jumpstream-local"
    assert env["MODEL_ID"] == "huggingface-llm-rinna-3-6b-instruction-ppo-bf16"
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert env["AWS_ACCESS_KEY_ID"] == env["AWS_SECRET_ACCESS_KEY"] == "local"
    assert env["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"] == EMULATOR_URL
    # The chat layout the stack would hand the deployed function, from the catalog.
    rinna = load_catalog().get("huggingface-llm-rinna-3-6b-instruction-ppo-bf16")
    assert env["PROMPT_TEMPLATE"] == rinna.prompt_template
    # `python` in run.sh must be this interpreter (the project's virtualenv).
    assert env["PATH"].split(os.pathsep) == [str(Path(sys.executable).parent), "/bin"]


def test_the_relays_own_settings_are_what_the_contract_renders() -> None:
    """The same function writes them as writes the deployed function's (stacks/relay.py)."""
    config = StackConfig(inference_component="ic-1", region="eu-west-1")
    env = relay_environment(config, emulator_url=EMULATOR_URL, port=18080, base={})
    rendered = function_environment(
        endpoint_name=config.endpoint_name,
        model_id=config.model_id,
        inference_component_name="ic-1",
        prompt_template=load_catalog().get(config.model_id).prompt_template,
        # Mistral 7B Instruct's context, as the stack hands it over: the emulator's too.
        model_max_total_tokens=8192,
        model_max_input_tokens=8191,
        region="eu-west-1",
        port=18080,
    )
    assert {name: env[name] for name in rendered} == rendered
    # Nothing else the function reads is set: the rest is botocore's and the interpreter's.
    read = {value.name for value in vars(contract).values() if isinstance(value, Variable)}
    assert read & set(env) == set(rendered)


def test_relay_environment_drops_what_would_redirect_the_relay() -> None:
    base = {
        "PATH": "/bin",
        "AWS_LWA_PORT": "9999",
        "AWS_PROFILE": "production",
        "AWS_SESSION_TOKEN": "real-token",
        "AWS_ENDPOINT_URL": "https://example.com",
        "INFERENCE_COMPONENT_NAME": "ic",
        "PROMPT_TEMPLATE": "{}",
        "HOST": "0.0.0.0",
        "LANG": "C.UTF-8",
    }
    env = relay_environment(StackConfig(), emulator_url=EMULATOR_URL, port=1, base=base)
    for name in ("AWS_LWA_PORT", "AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        assert name not in env
    assert "INFERENCE_COMPONENT_NAME" not in env
    assert "HOST" not in env
    assert env["PROMPT_TEMPLATE"] == load_catalog().get(StackConfig().model_id).prompt_template
    assert env["LANG"] == "C.UTF-8"  # everything else is inherited
    assert env["AWS_CONFIG_FILE"] == env["AWS_SHARED_CREDENTIALS_FILE"] == os.devnull


def test_extra_relay_settings_win() -> None:
    config = StackConfig(relay_env={"UPSTREAM_READ_TIMEOUT_SECONDS": "2", "PORT": "1"})
    env = relay_environment(config, emulator_url=EMULATOR_URL, port=2, base={})
    assert env["UPSTREAM_READ_TIMEOUT_SECONDS"] == "2"
    assert env["PORT"] == "1"


def test_relay_command_is_the_lambda_handler_script() -> None:
    assert relay_command() == ["sh", str(RELAY_ROOT / "run.sh")]
    assert (RELAY_ROOT / "run.sh").is_file()


def test_emulator_command_carries_the_stack_settings() -> None:
    config = StackConfig(
        emulator_port=0,
        model_id="m",
        tokens_per_second=0,
        first_token_delay=0,
        tgi_url="http://127.0.0.1:3000",
    )
    command = emulator_command(config)
    assert command[:3] == [sys.executable, "-m", "jumpstream.emulator"]
    options = dict(zip(command[3::2], command[4::2], strict=True))
    assert options == {
        "--host": "127.0.0.1",
        "--port": "0",
        "--endpoint-name": ENDPOINT_NAME,
        "--model-id": "m",
        "--tokens-per-second": "0.0",
        "--first-token-delay": "0.0",
        "--tgi-url": "http://127.0.0.1:3000",
    }


def test_emulator_command_leaves_optional_settings_to_the_emulator() -> None:
    command = emulator_command(StackConfig())
    assert "--first-token-delay" not in command
    assert "--tgi-url" not in command


@pytest.mark.parametrize(
    "config",
    [
        StackConfig(),
        StackConfig(
            emulator_port=9001,
            model_id="huggingface-llm-falcon-7b-instruct-bf16",
            tokens_per_second=0,
            first_token_delay=0.5,
            tgi_url="http://127.0.0.1:3000",
            inference_component="ic",
            cold_start=30,
        ),
    ],
    ids=["defaults", "every-setting"],
)
def test_the_emulator_reads_its_command_as_the_stack_means_it(config: StackConfig) -> None:
    """The command `local` builds, read by the emulator's own parser, gives the stack's settings
    (a setting left out is the emulator's default)."""
    args = emulator_main.parse_args(emulator_command(config)[3:])
    assert (args.host, args.port) == ("127.0.0.1", config.emulator_port)
    settings = emulator_main.settings_from(args)
    defaults = EmulatorSettings()
    for option in emulator_options.SETTINGS:
        meant = getattr(config, option.dest)
        expected = getattr(defaults, option.dest) if meant is None else meant
        assert getattr(settings, option.dest) == expected, option.flag


def test_curl_example_is_a_valid_shell_line_that_asks_for_sse() -> None:
    words = shlex.split(curl_example("http://127.0.0.1:8080"))
    assert words[:4] == ["curl", "-N", "-H", "Accept: text/event-stream"]
    assert words[4] == "-d"
    assert words[5].startswith('{"inputs": ')
    assert words[-1] == "http://127.0.0.1:8080/"


def test_free_port_can_be_bound() -> None:
    port = free_port()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))


def test_a_taken_relay_port_is_refused_before_anything_starts() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        output = LineBuffer()
        with (
            pytest.raises(PortInUse, match=f"port {port} on 127.0.0.1 is in use"),
            start_stack(StackConfig(relay_port=port), sink=output),
        ):
            pass
    assert output.lines() == []  # the emulator was never started


def test_run_local_reports_a_taken_port_and_exits_1() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        stdout, stderr = io.StringIO(), io.StringIO()
        assert run_local(StackConfig(relay_port=port), stdout=stdout, stderr=stderr) == 1
    assert stdout.getvalue() == ""
    assert stderr.getvalue() == (
        f"jumpstream local: port {port} on 127.0.0.1 is in use (Address already in use); "
        "choose another one with --port\n"
    )
