"""A model scaled to zero, as callers meet it: the emulator's inference component refuses with
SageMaker's "no capacity" for a few seconds after the first call (real relay), then
answers. Callers get a 503 with Retry-After and a sentence in every format; `ask --wait` and
`proxy --wait` keep trying until the answer starts."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator

import httpx
import pytest

from jumpstream.ask import AskOptions, run_ask
from jumpstream.local import LocalStack, StackConfig, start_stack
from jumpstream.procs import LineBuffer
from jumpstream.proxy import ProxyOptions, create_proxy_app
from tests.e2e.support import HANG_GUARD_SECONDS, PROMPT, expected_answer, generate_body
from tests.serving import serving

COLD_SECONDS = 3.0
STARTING = "The model is starting (no copy of it can take this request yet); try again in about"


def _cold_stack() -> Iterator[LocalStack]:
    config = StackConfig(
        relay_port=0,
        tokens_per_second=0,
        first_token_delay=0,
        inference_component="jumpstream-local-ic",
        cold_start=COLD_SECONDS,
    )
    with start_stack(config, sink=LineBuffer()) as stack:
        yield stack


@pytest.fixture
def cold_stack() -> Iterator[LocalStack]:
    yield from _cold_stack()


def test_every_format_says_the_model_is_starting_then_it_answers(cold_stack: LocalStack) -> None:
    started = time.monotonic()
    refused_at: list[float] = []
    with httpx.Client(base_url=cold_stack.relay_url, timeout=HANG_GUARD_SECONDS) as client:
        for accept in ("text/plain", "text/event-stream", "application/x-ndjson"):
            response = client.post("/", json=generate_body(PROMPT), headers={"accept": accept})
            # The component's cold start runs from the emulator's first call, which came
            # before this answer and after `started` (the machine's one monotonic clock).
            refused_at.append(time.monotonic())
            assert response.status_code == 503
            assert int(response.headers["retry-after"]) > 0
            assert response.json()["type"] == "no_capacity"
            assert response.json()["error"].startswith(STARTING)
        openai_route = client.post(
            "/v1/chat/completions", json={"messages": [{"role": "user", "content": PROMPT}]}
        )
        assert openai_route.status_code == 503
        assert openai_route.json()["error"]["code"] == "no_capacity"
        assert openai_route.json()["error"]["message"].startswith(STARTING)
        assert time.monotonic() - started < COLD_SECONDS  # all of it while still cold
        time.sleep(max(0.0, refused_at[0] + COLD_SECONDS - time.monotonic()) + 0.2)
        warm = client.post("/", json=generate_body(PROMPT))
    assert warm.status_code == 200
    assert warm.text == expected_answer(PROMPT)


def test_ask_wait_keeps_trying_until_the_answer_starts(cold_stack: LocalStack) -> None:
    stdout, stderr = io.StringIO(), io.StringIO()
    options = AskOptions(url=cold_stack.relay_url + "/", prompt=PROMPT, sign=False)
    assert run_ask(options, stdout=stdout, stderr=stderr) == 1  # without --wait: the 503
    assert STARTING in stderr.getvalue()
    started = time.monotonic()
    stdout, stderr = io.StringIO(), io.StringIO()
    waiting = AskOptions(url=cold_stack.relay_url + "/", prompt=PROMPT, sign=False, wait=60)
    assert run_ask(waiting, stdout=stdout, stderr=stderr) == 0
    assert stdout.getvalue() == expected_answer(PROMPT)
    assert stderr.getvalue() == ""  # progress only on a terminal
    assert time.monotonic() - started < COLD_SECONDS + 10  # backoff starts at 1 s, not 60


def test_proxy_wait_holds_the_callers_request_until_the_model_answers(
    cold_stack: LocalStack,
) -> None:
    app = create_proxy_app(
        ProxyOptions(url=cold_stack.relay_url, sign=False, wait=60), signing=None
    )
    with serving(app) as url, httpx.Client(base_url=url, timeout=HANG_GUARD_SECONDS) as client:
        response = client.post("/", json=generate_body(PROMPT))
    assert response.status_code == 200
    assert response.text == expected_answer(PROMPT)


def test_progress_is_shown_on_a_terminal(cold_stack: LocalStack) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stdout, stderr = io.StringIO(), Terminal()
    options = AskOptions(url=cold_stack.relay_url + "/", prompt=PROMPT, sign=False, wait=60)
    assert run_ask(options, stdout=stdout, stderr=stderr) == 0
    assert stderr.getvalue().startswith("waiting 1 s: The model is starting")
    assert "(no_capacity, HTTP 503, retry after 60 s" in stderr.getvalue()


@pytest.mark.cdk
def test_a_component_environment_as_synthesized_wakes_up_and_answers() -> None:
    """Both stacks as `cdk synth` writes them for an inference-component environment: the
    emulator serves the endpoint and component the endpoint stack creates, cold; the relay runs
    with exactly the settings the relay stack gives the function. The names the function asks
    SageMaker for are the ones that exist, and the caller's side of a cold start holds."""
    import aws_cdk as cdk
    from aws_cdk.assertions import Template

    from stacks.config import resolve_environment
    from stacks.environment import add_environment

    environment = resolve_environment(
        "dev",
        {
            "region": "us-east-1",
            "model_id": "huggingface-llm-mistral-7b-instruct",
            "instance_type": "ml.g5.2xlarge",
            "hosting": "inference-component",
        },
    )
    # The relay's asset is bundled in its own test; only its settings matter here.
    app = cdk.App(context={"aws:cdk:bundling-stacks": []})
    endpoint_stack, relay_stack = add_environment(app, environment)
    created = Template.from_stack(endpoint_stack)
    (endpoint,) = created.find_resources("AWS::SageMaker::Endpoint").values()
    (component,) = created.find_resources("AWS::SageMaker::InferenceComponent").values()
    (function,) = Template.from_stack(relay_stack).find_resources("AWS::Lambda::Function").values()
    synthesized = function["Properties"]["Environment"]["Variables"]
    # Lambda's and the Web Adapter's own settings are what local.py plays itself.
    settings = {
        k: v for k, v in synthesized.items() if not k.startswith(("AWS_LAMBDA_", "AWS_LWA_"))
    }
    config = StackConfig(
        relay_port=0,
        tokens_per_second=0,
        first_token_delay=0,
        model_id=settings["MODEL_ID"],
        endpoint_name=endpoint["Properties"]["EndpointName"],
        inference_component=component["Properties"]["InferenceComponentName"],
        cold_start=COLD_SECONDS,
        relay_env=settings,
    )
    with start_stack(config, sink=LineBuffer()) as stack:
        with httpx.Client(base_url=stack.relay_url, timeout=HANG_GUARD_SECONDS) as client:
            cold = client.post("/", json=generate_body(PROMPT))
        assert cold.status_code == 503
        assert cold.json()["type"] == "no_capacity"
        stdout, stderr = io.StringIO(), io.StringIO()
        waiting = AskOptions(url=stack.relay_url + "/", prompt=PROMPT, sign=False, wait=60)
        assert run_ask(waiting, stdout=stdout, stderr=stderr) == 0
    assert stdout.getvalue() == expected_answer(PROMPT)
