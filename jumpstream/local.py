"""The local stack: the SageMaker-runtime emulator and the real relay, started as Lambda would.

Why the real relay, started through ``run.sh``: the point of running locally is to exercise what
gets deployed, including the script the Web Adapter runs and the way the relay finds SageMaker
(``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME``, which botocore honours, points it at the emulator). Only
what AWS would provide differs: the credentials are dummies and the region is fixed.

The emulator picks its own port (it prints the URL it got); the relay cannot. With port 0 a free
port is chosen for it and, should another process take it first, the relay is started again
elsewhere; a fixed port (8080 by default) that is taken fails with PortInUse.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, MappingProxyType
from typing import Any, Final, TextIO
from urllib.parse import urlsplit

from streamer import contract

from jumpstream.emulator import options
from jumpstream.emulator.model_facts import (
    DEFAULT_ENGINE,
    chat_layout,
    engine_reports_prompt_tokens,
    serving_engine,
)
from jumpstream.emulator.server import DEFAULT_ENDPOINT_NAME
from jumpstream.emulator.tokenizer import stand_in_tokenizer_json
from jumpstream.keys import create_key
from jumpstream.local_dynamodb import LocalDynamoDB, start_local_dynamodb
from jumpstream.procs import Child, ChildExited, LineSink, PrefixedWriter, StartupTimeout
from stacks.catalog import load_catalog

__all__ = [
    "DEFAULT_MODEL_ID",
    "ENDPOINT_NAME",
    "REPO_ROOT",
    "LocalStack",
    "PortInUse",
    "StackConfig",
    "curl_example",
    "emulator_command",
    "emulator_streams",
    "free_port",
    "healthy_child",
    "relay_command",
    "relay_environment",
    "run_local",
    "start_stack",
    "wait_until_healthy",
]

REPO_ROOT: Final = Path(__file__).resolve().parents[1]
RELAY_ROOT: Final = REPO_ROOT / "lambda" / "streamer"
ENDPOINT_NAME: Final = DEFAULT_ENDPOINT_NAME
DEFAULT_MODEL_ID: Final = "huggingface-llm-mistral-7b-instruct"
LOOPBACK: Final = "127.0.0.1"
#: Dummy credentials: the emulator checks no signature, but botocore will not call without some.
DUMMY_CREDENTIAL: Final = "local"

_LISTENING: Final = re.compile(r"^emulator listening on (http://\S+)$")
#: Variables the relay reads that must not leak in from the caller's shell: AWS_LWA_PORT would
#: override PORT, a profile or config file could point botocore elsewhere.
_SCRUBBED: Final = (
    contract.AWS_LWA_PORT.name,
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "AWS_USE_FIPS_ENDPOINT",
    "AWS_USE_DUALSTACK_ENDPOINT",
    contract.INFERENCE_COMPONENT_NAME.name,
    contract.PROMPT_TEMPLATE.name,
    contract.SERVING_ENGINE.name,
    contract.ENGINE_CHAT_TEMPLATE.name,
    contract.HOST.name,
)
_RELAY_PORT_ATTEMPTS: Final = 3
_HEALTH_POLL_SECONDS: Final = 0.05
_HEALTH_REQUEST_TIMEOUT_SECONDS: Final = 2.0


@dataclass(frozen=True, slots=True, kw_only=True)
class StackConfig:
    """How to run the local stack; the defaults are what ``python -m jumpstream local`` does.

    The emulator's settings are named after its options (``jumpstream.emulator.options``), which
    say what each one does; None leaves a setting to the emulator's own default.
    """

    #: The relay's port; 0 picks a free one.
    relay_port: int = contract.DEFAULT_PORT
    #: The emulator's port; 0 picks a free one.
    emulator_port: int = 0
    endpoint_name: str = ENDPOINT_NAME
    model_id: str = DEFAULT_MODEL_ID
    #: The engine the emulated endpoint runs the model on; None: the catalog's for the model.
    engine: str | None = None
    region: str = "us-east-1"
    tokens_per_second: float = 25.0
    first_token_delay: float | None = None
    tgi_url: str | None = None
    #: Also the component the relay names in each call.
    inference_component: str | None = None
    cold_start: float = 0.0
    #: More settings for the relay, e.g. ``UPSTREAM_READ_TIMEOUT_SECONDS``; they win.
    relay_env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    #: Seconds each child may take to become ready.
    startup_timeout: float = 30.0
    #: The relay takes API keys, kept by a local DynamoDB-compatible server started with it.
    api_keys: bool = False

    @property
    def serving_engine(self) -> str:
        """The engine the endpoint runs the model on, which the relay is told as the stack
        tells a deployed function."""
        return serving_engine(self.model_id, self.engine)


def emulator_command(config: StackConfig) -> list[str]:
    """``python -m jumpstream.emulator`` on loopback with the stack's emulator settings."""
    command = [sys.executable, "-m", "jumpstream.emulator"]
    command += options.HOST.argv(LOOPBACK) + options.PORT.argv(config.emulator_port)
    for option in options.SETTINGS:
        command += option.argv(getattr(config, option.dest))
    return command


def relay_command() -> list[str]:
    """Exactly what the Web Adapter runs: the handler script, from the asset root."""
    return ["sh", str(RELAY_ROOT / "run.sh")]


def relay_environment(
    config: StackConfig,
    *,
    emulator_url: str,
    port: int,
    base: Mapping[str, str] | None = None,
    tokenizer_uri: str | None = None,
    keys_table: LocalDynamoDB | None = None,
) -> dict[str, str]:
    """The relay's environment: the caller's, scrubbed, plus what Lambda and the stack set.

    The interpreter's own directory goes first on PATH, so ``python`` in run.sh is the one
    running this code (the project's virtualenv), with the relay's dependencies.
    """
    env = {
        name: value
        for name, value in (os.environ if base is None else base).items()
        if name not in _SCRUBBED
    }
    interpreter_dir = str(Path(sys.executable).parent)
    # What the stack hands a deployed function: the model's engine and how its chats are laid
    # out (the engine left unset when it is the function's default, as for any setting).
    model = load_catalog().models.get(config.model_id)
    context = None if model is None else model.context_limits(model.default_instance_type)
    engine = config.serving_engine
    layout = chat_layout(config.model_id, engine)
    env.update(
        contract.function_environment(
            endpoint_name=config.endpoint_name,
            model_id=config.model_id,
            inference_component_name=config.inference_component,
            prompt_template=layout.prompt_template,
            serving_engine=None if engine == DEFAULT_ENGINE else engine,
            engine_chat_template=layout.engine_chat_template,
            model_max_total_tokens=None if context is None else context[0],
            model_max_input_tokens=None if context is None else context[1],
            region=config.region,
            port=port,
            tokenizer_uri=tokenizer_uri,
            api_keys_table=None if keys_table is None else keys_table.table_name,
        )
    )
    if keys_table is not None:
        env["AWS_ENDPOINT_URL_DYNAMODB"] = keys_table.endpoint_url
    env.update(
        PATH=os.pathsep.join(part for part in (interpreter_dir, env.get("PATH")) if part),
        # botocore 1.44 ignores AWS_REGION when it creates a client; it reads this one.
        AWS_DEFAULT_REGION=config.region,
        AWS_ACCESS_KEY_ID=DUMMY_CREDENTIAL,
        AWS_SECRET_ACCESS_KEY=DUMMY_CREDENTIAL,
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
        AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME=emulator_url,
        PYTHONUNBUFFERED="1",
    )
    env.update(config.relay_env)
    return env


def _emulator_environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        part for part in (str(REPO_ROOT), env.get("PYTHONPATH")) if part
    )
    env["PYTHONUNBUFFERED"] = "1"
    return env


def free_port(host: str = LOOPBACK) -> int:
    """A port nobody listens on right now (another process may still take it before we do)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def curl_example(relay_url: str, *, api_key: str | None = None) -> str:
    """A ready-to-paste command that streams an answer from the relay as server-sent events."""
    body = '{"inputs": "What is streaming?", "parameters": {"max_new_tokens": 64}}'
    key = "" if api_key is None else f"-H 'Authorization: Bearer {api_key}' "
    return f"curl -N {key}-H 'Accept: text/event-stream' -d '{body}' {relay_url}/"


def wait_until_healthy(url: str, child: Child, *, timeout: float) -> None:
    """Poll ``GET /health`` until it answers 200; ChildExited if the child ends meanwhile."""
    parts = urlsplit(url)
    deadline = time.monotonic() + timeout
    while True:
        returncode = child.poll()
        if returncode is not None:
            raise ChildExited(child.name, returncode)
        if _health_status(parts.hostname or LOOPBACK, parts.port or 80) == 200:
            return
        if time.monotonic() >= deadline:
            raise StartupTimeout(
                f"the {child.name} did not answer GET /health within {timeout:g} s"
            )
        time.sleep(_HEALTH_POLL_SECONDS)


@contextlib.contextmanager
def healthy_child(
    name: str,
    command: list[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    port: int,
    sink: LineSink,
    timeout: float,
) -> Iterator[Child]:
    """``command`` started and answering its first ``GET /health`` 200 on loopback ``port``;
    stopped (its whole process group) when the block ends, or if it never got there."""
    child = Child(name, command, cwd=cwd, env=env, sink=sink)
    try:
        wait_until_healthy(f"http://{LOOPBACK}:{port}", child, timeout=timeout)
        yield child
    finally:
        child.stop()


def emulator_streams(emulator_url: str, *, timeout: float = 10.0) -> list[dict[str, Any]]:
    """Every stream the emulator served (``GET /_emulator/streams``), oldest first."""
    parts = urlsplit(emulator_url)
    connection = http.client.HTTPConnection(parts.hostname or LOOPBACK, parts.port, timeout=timeout)
    try:
        connection.request("GET", "/_emulator/streams")
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    if response.status != 200:
        raise RuntimeError(f"the emulator's stream list answered HTTP {response.status}")
    records = json.loads(body)
    if not isinstance(records, list):
        raise RuntimeError("the emulator's stream list is not a JSON list")
    return records


def _health_status(host: str, port: int) -> int | None:
    connection = http.client.HTTPConnection(host, port, timeout=_HEALTH_REQUEST_TIMEOUT_SECONDS)
    try:
        connection.request("GET", contract.HEALTH_PATH)
        response = connection.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()


@dataclass(frozen=True, slots=True, kw_only=True)
class LocalStack:
    """The two running children and where they listen."""

    emulator: Child
    relay: Child
    emulator_url: str
    relay_url: str
    #: With API keys: the local DynamoDB-compatible server holding them.
    keys_table: LocalDynamoDB | None = None

    def children(self) -> tuple[Child, ...]:
        keys = () if self.keys_table is None else (self.keys_table.child,)
        return (self.relay, self.emulator, *keys)

    def check(self) -> None:
        """Raise ChildExited if either child has ended."""
        for child in self.children():
            returncode = child.poll()
            if returncode is not None:
                raise ChildExited(child.name, returncode)

    def wait(self, *, poll_seconds: float = 0.2) -> ChildExited:
        """Block until a child ends (it should not), and say which; Ctrl-C interrupts it."""
        while True:
            try:
                self.check()
            except ChildExited as exited:
                return exited
            time.sleep(poll_seconds)


@contextlib.contextmanager
def start_stack(config: StackConfig, *, sink: LineSink) -> Iterator[LocalStack]:
    """Start the emulator, then the relay; yield once the relay answers ``GET /health``.

    Both children are stopped when the block ends, however it ends. Raises PortInUse when the
    relay's port is taken, and ChildExited or StartupTimeout when a child fails to come up.
    """
    if config.relay_port:
        # Before anything starts: a server already there could answer /health for our relay.
        _check_port_free(config.relay_port)
    started: list[Child] = []
    scratch = tempfile.TemporaryDirectory(prefix="jumpstream-local-")
    keys_server = contextlib.ExitStack()
    try:
        tokenizer_uri = _stand_in_tokenizer(config, Path(scratch.name))
        keys_table = (
            keys_server.enter_context(
                start_local_dynamodb(sink=sink, timeout=config.startup_timeout)
            )
            if config.api_keys
            else None
        )
        emulator = Child(
            "emulator",
            emulator_command(config),
            cwd=REPO_ROOT,
            env=_emulator_environment(),
            sink=sink,
        )
        started.append(emulator)
        emulator_url = emulator.wait_for_line(_LISTENING, timeout=config.startup_timeout).group(1)
        relay, relay_url = _start_relay(
            config,
            emulator_url=emulator_url,
            sink=sink,
            tokenizer_uri=tokenizer_uri,
            keys_table=keys_table,
        )
        started.append(relay)
        yield LocalStack(
            emulator=emulator,
            relay=relay,
            emulator_url=emulator_url,
            relay_url=relay_url,
            keys_table=keys_table,
        )
    finally:
        # The relay first: it is the emulator's client (and the keys server's).
        for child in reversed(started):
            child.stop()
        keys_server.close()
        scratch.cleanup()


def _stand_in_tokenizer(config: StackConfig, scratch: Path) -> str | None:
    """For a model whose engine does not report prompt tokens, the tokenizer the relay counts
    them with, as the stack gives it the model's own: here, the emulator's (its file's path)."""
    reported = engine_reports_prompt_tokens(config.serving_engine, config.model_id)
    if config.tgi_url is not None or reported:
        return None
    path = scratch / "tokenizer.json"
    path.write_text(stand_in_tokenizer_json(), encoding="utf-8")
    return str(path)


class PortInUse(RuntimeError):
    """The port asked for is taken: whatever answers there is not our relay."""


def _check_port_free(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As uvicorn does: connections of a previous run still in TIME_WAIT do not count.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((LOOPBACK, port))
        except OSError as error:
            raise PortInUse(
                f"port {port} on {LOOPBACK} is in use ({error.strerror}); choose another one"
            ) from None


def _start_relay(
    config: StackConfig,
    *,
    emulator_url: str,
    sink: LineSink,
    tokenizer_uri: str | None,
    keys_table: LocalDynamoDB | None,
) -> tuple[Child, str]:
    attempts = 1 if config.relay_port else _RELAY_PORT_ATTEMPTS
    for attempt in range(1, attempts + 1):
        port = config.relay_port or free_port()
        relay = Child(
            "relay",
            relay_command(),
            cwd=RELAY_ROOT,
            env=relay_environment(
                config,
                emulator_url=emulator_url,
                port=port,
                tokenizer_uri=tokenizer_uri,
                keys_table=keys_table,
            ),
            sink=sink,
        )
        url = f"http://{LOOPBACK}:{port}"
        try:
            wait_until_healthy(url, relay, timeout=config.startup_timeout)
        except ChildExited:
            relay.stop()
            # A port picked for us may have been taken in the meantime: try another one.
            if attempt == attempts:
                raise
            continue
        except BaseException:
            relay.stop()
            raise
        return relay, url
    raise AssertionError("unreachable: the last attempt returns or raises")


class _StopRequested(Exception):
    """SIGINT or SIGTERM arrived: leave the serving loop and stop the children."""


def run_local(config: StackConfig, *, stdout: TextIO, stderr: TextIO) -> int:
    """``python -m jumpstream local``: serve until Ctrl-C or SIGTERM; return the exit status.

    Both signals get one handler that raises once and ignores repeats, so a second Ctrl-C
    cannot interrupt the stopping of the children and leave one running.
    """
    stopping = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        if not stopping:
            stopping = True
            raise _StopRequested(signal.Signals(signum).name)

    previous = {
        signum: signal.signal(signum, on_signal) for signum in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        with start_stack(config, sink=PrefixedWriter(stderr)) as stack:
            _print_ready(stack, config, stdout)
            exited = stack.wait()
            stopping = True
            _say(
                stderr,
                f"jumpstream local: the {exited.name} exited unexpectedly with status "
                f"{exited.returncode}; stopping",
            )
            return 1
    except _StopRequested as request:
        _say(stderr, f"jumpstream local: {request}, stopped the relay and the emulator")
        return 0
    except (ChildExited, StartupTimeout) as error:
        stopping = True
        _say(stderr, f"jumpstream local: {error} before it was ready (its output is above)")
        return 1
    except PortInUse as error:
        _say(stderr, f"jumpstream local: {error} with --port")
        return 1
    finally:
        stopping = True
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _print_ready(stack: LocalStack, config: StackConfig, stdout: TextIO) -> None:
    pace = (
        "as fast as it can"
        if config.tokens_per_second <= 0
        else (f"{config.tokens_per_second:g} tokens/s")
    )
    upstream = (
        f"forwarding to TGI at {config.tgi_url}"
        if config.tgi_url
        else (f"stand-in {config.model_id} on {config.serving_engine}, {pace}")
    )
    lines = [
        "jumpstream local stack is up:",
        f"  relay (lambda/streamer/run.sh)  {stack.relay_url}/  (pid {stack.relay.pid})",
        f"  emulated SageMaker endpoint     {stack.emulator_url}  ({upstream})",
        f"  chat page                       {stack.relay_url}/chat",
    ]
    if stack.keys_table is None:
        lines += ["Try:", f"  {curl_example(stack.relay_url)}"]
    else:
        lines += _api_key_lines(stack, stack.keys_table)
    lines.append("Press Ctrl-C to stop.")
    _say(stdout, "\n".join(lines))


def _api_key_lines(stack: LocalStack, keys_table: LocalDynamoDB) -> list[str]:
    """Make a key for this run and say how to call the relay with it."""
    key = create_key(keys_table.client(), keys_table.table_name, name="local").text
    where = f"--table {keys_table.table_name} --endpoint-url {keys_table.endpoint_url}"
    return [
        f"  API keys (local DynamoDB)       {keys_table.endpoint_url}  "
        f"(table {keys_table.table_name})",
        "A key for this run (every request but /health and the chat page's needs one):",
        f"  {key}",
        "Try:",
        f"  {curl_example(stack.relay_url, api_key=key)}",
        "  python -c 'from openai import OpenAI; "
        f'c = OpenAI(base_url="{stack.relay_url}/v1", api_key="{key}"); '
        'print(c.chat.completions.create(model="any", '
        'messages=[{"role": "user", "content": "Hi"}]).choices[0].message.content)\'',
        f"  python -m jumpstream keys create --name another {where}",
        f"  python -m jumpstream keys usage {where}",
    ]


def _say(stream: TextIO, line: str) -> None:
    with contextlib.suppress(OSError, ValueError):
        stream.write(line + "\n")
        stream.flush()
