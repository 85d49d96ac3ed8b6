"""Every output format on every engine, with the same contract as TGI's: the status waits for the
first text, a failure before it is a real HTTP error, a failure after it is written in the
stream (or, for OpenAI's `stream: false`, is the HTTP error), and usage is what the engine
reported, or unknown.

The upstream is faked in-process with each engine's own bytes (engine_streams.py, support.py), as
SageMaker carries them; the relay is the whole app, routes and writers included.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from streamer.prompt_template import PromptTemplate

from tests.serving import serving
from tests.streamer.engine_streams import (
    DONE,
    chat_chunk,
    completion_chunk,
    json_line,
    lmi_answer,
    lmi_chat_answer,
    lmi_failure,
    sse,
    vllm_chat_answer,
    vllm_completion_answer,
    vllm_error,
)
from tests.streamer.support import (
    HANG_GUARD_SECONDS,
    GatedUpstream,
    ScriptedUpstream,
    answer_events,
    call,
    error_event,
    make_app,
)

TEXTS = ["Deep", " learning", " 日本"]
ANSWER = "".join(TEXTS)
# A layout of the relay's own (PROMPT_TEMPLATE), for the engines that get a chat as a prompt.
TEMPLATE = PromptTemplate(
    user="User: {content}", assistant="Bot: {content}", separator="\n", generation="Bot:"
)
LAID_OUT = "User: Hi\nBot:"
MESSAGES = [{"role": "user", "content": "Hi"}]
ENGINE_DIED = vllm_error("EngineCore died", code=500, error_type="InternalServerError")


@dataclass(frozen=True)
class Setup:
    """A model on one engine, asked one kind of request, and the bytes its engine streams."""

    settings: dict[str, Any]
    #: Requests are chats (else prompts).
    chat: bool
    #: A complete answer of these texts, ending at the end of the text.
    answer: Callable[[list[str]], list[bytes]]
    #: The engine failing mid-answer (the caller's model_error).
    failure: list[bytes]
    #: The engine refusing the request in the stream, before any text (the caller's 422).
    refusal: list[bytes]
    #: What the engine reports of an answer of TEXTS: (prompt tokens, answer tokens).
    usage: tuple[int | None, int | None]
    #: What the upstream must have been sent (a subset of the body).
    sent: dict[str, Any] = field(default_factory=dict)


SETUPS = {
    "tgi-prompt": Setup(
        settings={},
        chat=False,
        answer=lambda texts: answer_events(texts, input_length=4),
        failure=[error_event("CUDA out of memory", "generation")],
        refusal=[error_event("Input validation error: too long", "validation")],
        usage=(4, len(TEXTS) + 1),
        sent={"inputs": "Hello"},
    ),
    "tgi-chat-laid-out-by-the-relay": Setup(
        settings={"prompt_template": TEMPLATE},
        chat=True,
        answer=lambda texts: answer_events(texts, input_length=4),
        failure=[error_event("CUDA out of memory", "generation")],
        refusal=[error_event("Input validation error: too long", "validation")],
        usage=(4, len(TEXTS) + 1),
        sent={"inputs": LAID_OUT},
    ),
    "lmi-prompt": Setup(
        settings={"serving_engine": "lmi"},
        chat=False,
        answer=lmi_answer,
        failure=[json_line(lmi_failure("CUDA out of memory"))],
        refusal=[json_line({"error": "Input too long", "code": 400})],
        usage=(None, len(TEXTS) + 1),  # LMI's rolling batch does not count the prompt
        sent={"inputs": "Hello"},
    ),
    "lmi-chat-laid-out-by-the-relay": Setup(
        settings={"serving_engine": "lmi", "prompt_template": TEMPLATE},
        chat=True,
        answer=lmi_answer,
        failure=[json_line(lmi_failure())],
        refusal=[json_line({"error": {"error_code": 422, "error_msg": "Input too long"}})],
        usage=(None, len(TEXTS) + 1),
        sent={"inputs": LAID_OUT},
    ),
    "lmi-chat-laid-out-by-lmi": Setup(
        settings={"serving_engine": "lmi", "engine_chat_template": True},
        chat=True,
        answer=lmi_chat_answer,
        failure=[json_line(chat_chunk("", finish_reason="error"))],
        refusal=[json_line({"error": "Input too long", "code": 400})],
        # No usage chunk on rolling batch: its chunks, one per token, count the answer.
        usage=(None, len(TEXTS)),
        sent={"messages": MESSAGES},
    ),
    "vllm-prompt": Setup(
        settings={"serving_engine": "vllm"},
        chat=False,
        answer=lambda texts: vllm_completion_answer(texts, prompt_tokens=5),
        failure=[
            sse(vllm_error("EngineCore died", code=500, error_type="InternalServerError")),
            DONE,
        ],
        refusal=[sse(vllm_error("prompt is too long", code=400)), DONE],
        usage=(5, len(TEXTS)),
        sent={"prompt": "Hello"},
    ),
    "vllm-chat-laid-out-by-the-relay": Setup(
        settings={"serving_engine": "vllm", "prompt_template": TEMPLATE},
        chat=True,
        answer=lambda texts: vllm_completion_answer(texts, prompt_tokens=5),
        failure=[sse(completion_chunk("", finish_reason="abort")), DONE],
        refusal=[sse(vllm_error("prompt is too long", code=400)), DONE],
        usage=(5, len(TEXTS)),
        sent={"prompt": LAID_OUT},
    ),
    "vllm-chat-laid-out-by-vllm": Setup(
        settings={"serving_engine": "vllm", "engine_chat_template": True},
        chat=True,
        answer=lambda texts: vllm_chat_answer(texts, prompt_tokens=7),
        failure=[
            sse(vllm_error("EngineCore died", code=500, error_type="InternalServerError")),
            DONE,
        ],
        refusal=[sse(vllm_error("messages are too long", code=400)), DONE],
        usage=(7, len(TEXTS)),
        sent={"messages": MESSAGES},
    ),
}


# --- The formats: how each is asked for, and read back ------------------------------------------


@dataclass
class Outcome:
    """What a caller read: the text, how it ended (in the format's words), the counts, the
    error kind written after the text."""

    text: str = ""
    finish: str | None = None
    usage: tuple[int | None, int | None] | None = None
    error: str | None = None


def _blocks(body: str) -> list[tuple[str | None, str]]:
    """SSE events as (event, data)."""
    blocks = []
    for block in body.split("\n\n"):
        if not block:
            continue
        event = None
        data = []
        for line in block.split("\n"):
            if line.startswith("event: "):
                event = line[len("event: ") :]
            elif line.startswith("data: "):
                data.append(line[len("data: ") :])
        blocks.append((event, "\n".join(data)))
    return blocks


def read_text(response: httpx.Response) -> Outcome:
    text, _, error = response.text.partition("[stream error] ")
    return Outcome(
        text=text.removesuffix("\n") if error else text,
        error=error.rsplit("(", 1)[1].rstrip(")\n") if error else None,
    )


def read_native(response: httpx.Response) -> Outcome:
    """The relay's own SSE and NDJSON: token, done, error events."""
    if response.headers["content-type"].startswith("text/event-stream"):
        events = [{"event": event, **json.loads(data)} for event, data in _blocks(response.text)]
    else:
        events = [json.loads(line) for line in response.text.splitlines()]
    outcome = Outcome()
    for event in events:
        if event["event"] == "token":
            outcome.text += event["text"]
        elif event["event"] == "done":
            outcome.finish = event["finish_reason"]
            outcome.usage = (None, event["generated_tokens"])
        else:
            outcome.error = event["type"]
    return outcome


def read_chunks(response: httpx.Response) -> Outcome:
    """OpenAI's streamed chunks, chat or completion."""
    outcome = Outcome()
    blocks = _blocks(response.text)
    assert blocks[-1] == (None, "[DONE]")
    for _, data in blocks[:-1]:
        chunk = json.loads(data)
        if "error" in chunk:
            outcome.error = chunk["error"]["code"]
            continue
        for choice in chunk["choices"]:
            outcome.text += (
                choice["delta"].get("content", "") if "delta" in choice else choice["text"]
            )
            outcome.finish = choice["finish_reason"] or outcome.finish
        if chunk.get("usage"):
            outcome.usage = (chunk["usage"]["prompt_tokens"], chunk["usage"]["completion_tokens"])
    return outcome


def read_document(response: httpx.Response) -> Outcome:
    """OpenAI's whole chat.completion or text_completion."""
    answer = response.json()
    choice = answer["choices"][0]
    text = choice["message"]["content"] if "message" in choice else choice["text"]
    usage = answer["usage"]
    return Outcome(
        text=text,
        finish=choice["finish_reason"],
        usage=(usage["prompt_tokens"], usage["completion_tokens"]),
    )


def _response_usage(response: dict[str, Any]) -> tuple[int | None, int | None]:
    usage = response["usage"]
    return (None, None) if usage is None else (usage["input_tokens"], usage["output_tokens"])


def read_response_events(response: httpx.Response) -> Outcome:
    outcome = Outcome()
    for event, data in _blocks(response.text):
        body = json.loads(data)
        assert body["type"] == event
        if event == "response.output_text.delta":
            outcome.text += body["delta"]
        elif event == "response.completed":
            outcome.finish = body["response"]["status"]
            outcome.usage = _response_usage(body["response"])
        elif event == "error":
            outcome.error = body["code"]
    return outcome


def read_response_document(response: httpx.Response) -> Outcome:
    answer = response.json()
    return Outcome(
        text=answer["output"][0]["content"][0]["text"],
        finish=answer["status"],
        usage=_response_usage(answer),
    )


@dataclass(frozen=True)
class Format:
    path: str
    body: Callable[[bool], dict[str, Any]]  # the request, for a chat or a prompt
    read: Callable[[httpx.Response], Outcome]
    accept: str | None = None
    #: The whole answer or nothing: a failure at any point is an HTTP error.
    whole: bool = False
    openai: bool = False
    #: How a complete answer that ended at the end of the text says so.
    finish: str = "eos_token"
    #: Whether it shows the prompt's tokens, the answer's, or both (when both are known).
    counts: str = "both"


def _native(chat: bool) -> dict[str, Any]:
    return {"messages": MESSAGES} if chat else {"inputs": "Hello"}


FORMATS = {
    "text": Format("/", _native, read_text, accept="text/plain", counts="none"),
    "sse": Format("/", _native, read_native, accept="text/event-stream", counts="answer"),
    "ndjson": Format("/", _native, read_native, accept="application/x-ndjson", counts="answer"),
    "chat-stream": Format(
        "/v1/chat/completions",
        lambda chat: {
            "messages": MESSAGES,
            "stream": True,
            "stream_options": {"include_usage": True},
        },
        read_chunks,
        openai=True,
        finish="stop",
    ),
    "chat-json": Format(
        "/v1/chat/completions",
        lambda chat: {"messages": MESSAGES},
        read_document,
        whole=True,
        openai=True,
        finish="stop",
    ),
    "responses-stream": Format(
        "/v1/responses",
        lambda chat: {"input": "Hi", "stream": True},
        read_response_events,
        openai=True,
        finish="completed",
        counts="both-or-none",
    ),
    "responses-json": Format(
        "/v1/responses",
        lambda chat: {"input": "Hi"},
        read_response_document,
        whole=True,
        openai=True,
        finish="completed",
        counts="both-or-none",
    ),
    "completion-stream": Format(
        "/v1/completions",
        lambda chat: {"prompt": "Hello", "stream": True, "stream_options": {"include_usage": True}},
        read_chunks,
        openai=True,
        finish="stop",
    ),
    "completion-json": Format(
        "/v1/completions",
        lambda chat: {"prompt": "Hello"},
        read_document,
        whole=True,
        openai=True,
        finish="stop",
    ),
}
CHAT_FORMATS = [
    "text",
    "sse",
    "ndjson",
    "chat-stream",
    "chat-json",
    "responses-stream",
    "responses-json",
]
PROMPT_FORMATS = ["text", "sse", "ndjson", "completion-stream", "completion-json"]
CASES = [
    pytest.param(setup, output, id=f"{setup}-{output}")
    for setup, config in SETUPS.items()
    for output in (CHAT_FORMATS if config.chat else PROMPT_FORMATS)
]


def ask(
    setup: Setup, output: Format, script: list[bytes]
) -> tuple[httpx.Response, ScriptedUpstream]:
    upstream = ScriptedUpstream(script)
    app = make_app(upstream, **setup.settings)
    headers = {"accept": output.accept} if output.accept else None
    response = call(app, path=output.path, json_body=output.body(setup.chat), headers=headers)
    return response, upstream


def through(parts: list[bytes], text: bytes) -> list[bytes]:
    """The parts of an answer up to the one that carries `text`."""
    end = next(index for index, part in enumerate(parts) if text in part)
    return parts[: end + 1]


def expected_usage(setup: Setup, output: Format) -> tuple[int | None, int | None] | None:
    prompt_tokens, answer_tokens = setup.usage
    if output.counts == "none":
        return None
    if output.counts == "answer":
        return (None, answer_tokens)
    if output.counts == "both-or-none" and (prompt_tokens is None or answer_tokens is None):
        return (None, None)
    return (prompt_tokens, answer_tokens)


# --- The contract, on every engine --------------------------------------------------------------


@pytest.mark.parametrize(("setup_name", "output_name"), CASES)
def test_a_complete_answer(setup_name: str, output_name: str) -> None:
    setup, output = SETUPS[setup_name], FORMATS[output_name]
    response, upstream = ask(setup, output, setup.answer(TEXTS))
    assert response.status_code == 200, response.text
    outcome = output.read(response)
    assert outcome.text == ANSWER
    assert outcome.error is None
    if output.counts != "none":
        assert outcome.finish == output.finish
    assert outcome.usage == expected_usage(setup, output)
    (sent,) = upstream.bodies
    assert {name: sent.get(name) for name in setup.sent} == setup.sent
    assert all(stream.closed.is_set() for stream in upstream.streams)


@pytest.mark.parametrize(("setup_name", "output_name"), CASES)
def test_a_refusal_before_any_text_is_a_real_http_error(setup_name: str, output_name: str) -> None:
    setup, output = SETUPS[setup_name], FORMATS[output_name]
    response, _ = ask(setup, output, setup.refusal)
    assert response.headers["content-type"] == "application/json"
    if output.openai:
        assert response.status_code == 400
        error = response.json()["error"]
        assert (error["type"], error["code"]) == ("invalid_request_error", "validation")
        message = error["message"]
    else:
        assert response.status_code == 422
        assert response.json()["type"] == "validation"
        message = response.json()["error"]
    assert message.startswith("The model rejected the request: ")
    assert "too long" in message


@pytest.mark.parametrize(("setup_name", "output_name"), CASES)
def test_a_failure_after_text(setup_name: str, output_name: str) -> None:
    setup, output = SETUPS[setup_name], FORMATS[output_name]
    response, _ = ask(setup, output, [*through(setup.answer(TEXTS), b"learning"), *setup.failure])
    if output.whole:
        assert response.status_code == 502
        assert response.json()["error"]["code"] == "model_error"
        return
    assert response.status_code == 200
    outcome = output.read(response)
    assert outcome.text == "Deep learning"  # the status went out with the first text
    assert outcome.error == "model_error"
    assert outcome.finish is None


@pytest.mark.parametrize(("setup_name", "output_name"), CASES)
def test_a_stream_that_stops_before_its_end_is_incomplete(
    setup_name: str, output_name: str
) -> None:
    setup, output = SETUPS[setup_name], FORMATS[output_name]
    response, _ = ask(setup, output, through(setup.answer(TEXTS), b"learning"))
    if output.whole:
        assert response.status_code == 502
        assert response.json()["error"]["code"] == "incomplete_stream"
        return
    outcome = output.read(response)
    assert outcome.text == "Deep learning"
    assert outcome.error == "incomplete_stream"


@pytest.mark.parametrize("setup_name", sorted(SETUPS))
def test_parts_cut_anywhere_give_the_same_answer(setup_name: str) -> None:
    """SageMaker's PayloadParts split the engine's bytes anywhere, a character included."""
    setup = SETUPS[setup_name]
    stream = b"".join(setup.answer(TEXTS))
    whole = FORMATS["ndjson"]
    for size in (1, 3, 7):
        parts = [stream[i : i + size] for i in range(0, len(stream), size)]
        response, _ = ask(setup, whole, parts)
        assert read_native(response).text == ANSWER


@pytest.mark.parametrize("setup_name", sorted(SETUPS))
def test_each_text_leaves_before_the_engine_sends_the_next(setup_name: str) -> None:
    """Over a real socket: the first text is sent while the upstream still holds the rest."""
    setup = SETUPS[setup_name]
    parts = setup.answer(TEXTS)
    first = next(i for i, part in enumerate(parts) if b"Deep" in part)
    upstream = GatedUpstream(b"".join(parts[: first + 1]), parts[first + 1 :])
    body = _native(setup.chat)
    with (
        serving(make_app(upstream, **setup.settings)) as url,
        httpx.Client(timeout=HANG_GUARD_SECONDS) as client,
        client.stream("POST", url, json=body) as response,
    ):
        chunks = response.iter_raw()
        assert response.status_code == 200
        assert next(chunks) == b"Deep"
        upstream.stream.release.set()
        assert b"".join(chunks).decode() == " learning 日本"
