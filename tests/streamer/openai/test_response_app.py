"""`POST /v1/responses` on the relay app: what reaches TGI, and every way an answer can end.

The `openai` package drives the route end to end in tests/e2e/test_e2e_responses.py; these
tests pin the edges it does not reach.
"""

from __future__ import annotations

import json
from typing import Any

from streamer.errors import UpstreamError

from tests.streamer.support import (
    ScriptedUpstream,
    answer_events,
    call,
    catalog_template,
    error_event,
    make_app,
    token_event,
)

FALCON_CHAT = "huggingface-llm-falcon-180b-chat-bf16"


def _app(upstream: ScriptedUpstream) -> object:
    return make_app(upstream, prompt_template=catalog_template(FALCON_CHAT), model_id=FALCON_CHAT)


def _events(text: str) -> list[dict[str, Any]]:
    return [json.loads(block.split("\ndata: ", 1)[1]) for block in text.split("\n\n") if block]


def test_the_input_reaches_tgi_in_the_models_layout_with_the_chat_routes_parameters() -> None:
    upstream = ScriptedUpstream(answer_events(["Hel", "lo"]))
    body = {"model": "x", "instructions": "Be brief.", "input": "Hi", "max_output_tokens": 9}
    response = call(_app(upstream), path="/v1/responses", json_body=body)
    assert response.status_code == 200
    assert response.json()["output"][0]["content"][0]["text"] == "Hello"
    assert response.json()["model"] == FALCON_CHAT
    sent = upstream.bodies[0]
    assert sent["inputs"] == "System: Be brief.\nUser: Hi\nFalcon:"
    assert sent["parameters"]["max_new_tokens"] == 9
    assert sent["parameters"]["stop"] == ["\nUser:"]


def test_a_failure_mid_stream_ends_with_an_error_event_and_the_failed_response() -> None:
    script = [token_event("Hel"), error_event("boom", "generation")]
    body = {"input": "Hi", "stream": True}
    response = call(_app(ScriptedUpstream(script)), path="/v1/responses", json_body=body)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = _events(response.text)
    assert [e["type"] for e in events[-3:]] == [
        "response.output_text.delta",
        "error",
        "response.failed",
    ]
    assert events[-3]["delta"] == "Hel"
    assert events[-2]["error"]["type"] == "server_error"
    assert events[-1]["response"]["error"]["code"] == events[-2]["code"]
    assert "[DONE]" not in response.text


def test_a_failure_before_any_text_is_an_http_error_even_when_streaming() -> None:
    throttled = UpstreamError(kind="throttled", message="Slow down.")
    upstream = ScriptedUpstream(open_error=throttled)
    body = {"input": "Hi", "stream": True}
    response = call(_app(upstream), path="/v1/responses", json_body=body)
    assert response.status_code == 429
    assert response.headers["retry-after"]
    assert response.json()["error"]["type"] == "rate_limit_exceeded"


def test_a_failure_after_text_without_streaming_is_an_http_error() -> None:
    script = [token_event("Hel"), error_event("boom", "generation")]
    response = call(_app(ScriptedUpstream(script)), path="/v1/responses", json_body={"input": "x"})
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "model_error"


def test_a_refusal_is_openais_400_naming_the_parameter_and_tgi_is_never_called() -> None:
    upstream = ScriptedUpstream(answer_events(["never"]))
    body = {"input": "Hi", "previous_response_id": "resp_1"}
    response = call(_app(upstream), path="/v1/responses", json_body=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["type"], error["param"]) == ("invalid_request_error", "previous_response_id")
    assert upstream.bodies == []
    assert call(_app(upstream), "GET", "/v1/responses").status_code == 405
