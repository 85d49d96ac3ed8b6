"""The /v1 routes on the relay app: OpenAI's shapes for answers and for every refusal.

The official `openai` package drives them end to end in tests/e2e/test_e2e_openai.py; these
tests pin the edges it does not reach.
"""

from __future__ import annotations

import json

from streamer.errors import UpstreamError
from streamer.streaming import DEADLINE_MARGIN_SECONDS

from tests.streamer.support import (
    CapturedLog,
    GatedUpstream,
    ScriptedUpstream,
    answer_events,
    call,
    catalog_template,
    final_event,
    lambda_context,
    make_app,
    token_event,
)

FALCON_CHAT = "huggingface-llm-falcon-180b-chat-bf16"
CHAT = {"model": "m", "messages": [{"role": "user", "content": "Hi"}]}


def _app(upstream: ScriptedUpstream) -> object:
    return make_app(upstream, prompt_template=catalog_template(FALCON_CHAT), model_id=FALCON_CHAT)


def test_stop_sequences_never_reach_an_openai_caller() -> None:
    script = [
        token_event(" Hello"),
        token_event(" END"),
        final_event("", generated_text=" Hello END", special=False, finish_reason="stop_sequence"),
    ]
    upstream = ScriptedUpstream(script)
    response = call(_app(upstream), path="/v1/chat/completions", json_body={**CHAT, "stop": "END"})
    assert response.status_code == 200
    answer = response.json()
    # Cut right before "END"; a chat turn, shown without the space the model put first.
    assert answer["choices"][0]["message"]["content"] == "Hello "
    assert answer["choices"][0]["finish_reason"] == "stop"
    assert answer["model"] == FALCON_CHAT
    assert upstream.bodies[0]["inputs"] == "User: Hi\nFalcon:"
    assert upstream.bodies[0]["parameters"]["stop"] == ["\nUser:", "END"]


def test_a_failure_after_text_without_streaming_is_an_openai_http_error() -> None:
    script = [token_event("Hel"), b'data: {"error": "boom", "error_type": "generation"}\n\n']
    response = call(_app(ScriptedUpstream(script)), path="/v1/chat/completions", json_body=CHAT)
    assert response.status_code == 502
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("server_error", "model_error")


def test_throttling_is_a_429_with_retry_after() -> None:
    throttled = UpstreamError(kind="throttled", message="Slow down.")
    upstream = ScriptedUpstream(open_error=throttled)
    response = call(_app(upstream), path="/v1/completions", json_body={"prompt": "x"})
    assert response.status_code == 429
    assert response.headers["retry-after"] == "2"
    assert response.json()["error"]["type"] == "rate_limit_exceeded"


def test_a_bad_body_and_an_unknown_path_answer_in_openais_shape() -> None:
    app = _app(ScriptedUpstream(answer_events(["never"])))
    bad = call(app, path="/v1/chat/completions", content=b"{nope")
    assert bad.status_code == 400
    assert bad.json()["error"]["type"] == "invalid_request_error"
    missing = call(app, "POST", "/v1/embeddings", json_body={})
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    wrong_method = call(app, "GET", "/v1/chat/completions")
    assert wrong_method.status_code == 405
    assert wrong_method.headers["allow"] == "POST"


def test_the_dialect_follows_the_mount_not_a_prefix() -> None:
    """Under /v1/ every refusal is OpenAI's, a trailing slash is another path rather than a
    redirect; /v1 itself is not under the mount and answers in the relay's own shape."""
    app = _app(ScriptedUpstream())
    for path in ("/v1/", "/v1/models/", "/v1/chat/completions/"):
        response = call(app, "GET", path)
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == "not_found"
    outside = call(app, "GET", "/v1")
    assert outside.status_code == 404
    assert outside.json()["type"] == "not_found"


def test_an_unexpected_failure_under_v1_is_openais_500_and_logged_once() -> None:
    log = CapturedLog()
    upstream = ScriptedUpstream(open_error=RuntimeError("bug"))
    app = make_app(upstream, log, prompt_template=catalog_template(FALCON_CHAT))
    response = call(app, path="/v1/completions", json_body={"prompt": "x"})
    assert response.status_code == 500
    assert response.json()["error"] == {
        "message": "The relay failed unexpectedly; the error was logged.",
        "type": "server_error",
        "param": None,
        "code": "internal_error",
    }
    assert response.headers["x-request-id"]
    (line,) = log.request_lines()
    assert (line["status"], line["error_type"]) == (500, "internal_error")
    assert "bug" in line["error_detail"]
    failures = [entry for entry in log.lines() if entry.get("level") == "ERROR"]
    assert len(failures) == 1


def test_streamed_chunks_are_server_sent_events_ending_with_done() -> None:
    upstream = ScriptedUpstream(answer_events(["a", "b"]))
    body = {**CHAT, "stream": True}
    response = call(_app(upstream), path="/v1/chat/completions", json_body=body)
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [block.removeprefix("data: ") for block in response.text.split("\n\n") if block]
    assert events[-1] == "[DONE]"
    deltas = [json.loads(e)["choices"][0]["delta"] for e in events[:-1]]
    assert deltas == [{"role": "assistant", "content": ""}, {"content": "a"}, {"content": "b"}, {}]


def test_the_deadline_while_collecting_is_a_504_and_nothing_half_written() -> None:
    upstream = GatedUpstream(token_event("abc"), [token_event("never sent")])
    headers = lambda_context(seconds_left=DEADLINE_MARGIN_SECONDS + 0.3)
    try:
        response = call(
            _app(upstream), path="/v1/completions", json_body={"prompt": "x"}, headers=headers
        )
    finally:
        upstream.stream.release.set()
    assert response.status_code == 504
    assert response.json()["error"]["code"] == "upstream_timeout"
    assert upstream.stream.closed.is_set()


def test_the_served_model_is_retrieved_by_its_id_and_any_other_is_openais_404() -> None:
    """`client.models.retrieve(id)`: the object /v1/models lists, for its id only."""
    app = _app(ScriptedUpstream())
    listed = call(app, "GET", "/v1/models").json()["data"]
    found = call(app, "GET", f"/v1/models/{FALCON_CHAT}")
    assert found.status_code == 200
    assert [found.json()] == listed
    for other in ("gpt-4o", FALCON_CHAT.upper(), "x" * 300):
        missing = call(app, "GET", f"/v1/models/{other}")
        assert missing.status_code == 404, other
        error = missing.json()["error"]
        assert (error["type"], error["param"], error["code"]) == (
            "invalid_request_error",
            "model",
            "not_found",
        )
        assert "does not exist" in error["message"]
    assert call(app, "POST", f"/v1/models/{FALCON_CHAT}").status_code == 405


def test_a_streamed_chat_answer_starts_without_the_models_space_and_a_completion_keeps_it() -> None:
    chat = call(
        _app(ScriptedUpstream(answer_events([" ", " Large", " models"]))),
        path="/v1/chat/completions",
        json_body={**CHAT, "stream": True},
    )
    events = [line.removeprefix("data: ") for line in chat.text.splitlines() if line]
    deltas = [json.loads(event)["choices"][0]["delta"] for event in events[:-1]]
    contents = [delta["content"] for delta in deltas if delta.get("content")]
    assert contents == ["Large", " models"]  # the first piece was only space: never sent
    completion = call(
        _app(ScriptedUpstream(answer_events([" Large", " models"]))),
        path="/v1/completions",
        json_body={"prompt": "Say:"},
    )
    assert completion.json()["choices"][0]["text"] == " Large models"
