"""The relay's own routes: what POST / asks SageMaker, Accept, the health check.

The chat page's files: test_chat_page_files.py.
"""

from __future__ import annotations

import json

from tests.streamer.support import (
    PROMPT,
    CapturedLog,
    ScriptedUpstream,
    answer_events,
    call,
    error_body,
    final_event,
    make_app,
    settings,
    token_event,
)


def test_the_upstream_gets_tgis_streaming_body() -> None:
    upstream = ScriptedUpstream(answer_events(["ok"]))
    body = {"inputs": "質問", "parameters": {"temperature": 0.2, "stop": ["\n"]}}
    assert call(make_app(upstream), json_body=body).status_code == 200
    assert upstream.bodies == [
        {
            "inputs": "質問",
            "parameters": {
                "details": True,
                "temperature": 0.2,
                "stop": ["\n"],
                "max_new_tokens": 100,
                "return_full_text": False,
            },
            "stream": True,
        }
    ]


def test_the_largest_prompt_gets_its_whole_answer() -> None:
    """A valid prompt as large as the body limit, answered by a TGI that repeats the prompt in
    its final event (return_full_text set by the caller): the last token and `done` arrive."""
    body_limit = settings().max_body_bytes
    shell = json.dumps({"inputs": "", "parameters": {"return_full_text": True}})
    prompt = "p" * (body_limit - len(shell))
    script = [
        token_event("ok"),
        final_event("!", generated_text=prompt + "ok!", special=False, generated_tokens=2),
    ]
    upstream = ScriptedUpstream(script)
    app = make_app(upstream)
    body = {"inputs": prompt, "parameters": {"return_full_text": True}}
    assert len(json.dumps(body)) == body_limit
    response = call(app, json_body=body, headers={"accept": "application/x-ndjson"})
    assert [json.loads(line) for line in response.text.splitlines()] == [
        {"event": "token", "text": "ok"},
        {"event": "token", "text": "!"},
        {"event": "done", "finish_reason": "eos_token", "generated_tokens": 2},
    ]
    assert upstream.bodies[0]["parameters"]["return_full_text"] is True


def test_invalid_requests_never_reach_the_upstream() -> None:
    upstream = ScriptedUpstream(answer_events(["ok"]))
    app = make_app(upstream)
    assert call(app, json_body={"inputs": ""}).status_code == 422
    assert call(app, content=b"{").status_code == 400
    assert call(app, json_body=PROMPT, headers={"accept": "image/png"}).status_code == 406
    assert upstream.bodies == []


def test_unsupported_accept_is_406_json() -> None:
    response = call(
        make_app(ScriptedUpstream()), json_body=PROMPT, headers={"accept": "application/json"}
    )
    assert response.status_code == 406
    body = error_body(response)
    assert body["type"] == "not_acceptable"
    assert "text/event-stream" in body["error"]


def test_health_answers_without_sagemaker() -> None:
    upstream = ScriptedUpstream(open_error=RuntimeError("must not be called"))
    response = call(make_app(upstream), "GET", "/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert call(make_app(upstream), "HEAD", "/health").status_code == 200
    assert upstream.bodies == []


def test_the_web_adapters_after_restore_hook_restarts_the_upstream_and_counts_no_request() -> None:
    """With SnapStart the adapter posts here after Lambda restored the process, before any
    invocation; the platform's call is logged, never counted as a caller's request."""
    upstream = ScriptedUpstream(open_error=RuntimeError("must not be called"))
    log = CapturedLog()
    app = make_app(upstream, log, snapstart_hook=True)
    response = call(app, "POST", "/_lambda/after-restore")
    assert response.status_code == 204
    assert upstream.restores == 1
    assert upstream.bodies == []
    (line,) = log.request_lines()
    assert line["path"] == "/_lambda/after-restore"
    assert "_aws" not in line  # no metrics
    assert call(app, "GET", "/_lambda/after-restore").status_code == 405


def test_without_snapstart_the_hook_is_not_served() -> None:
    """Only the adapter of a SnapStart function knows the path (and keeps callers out of it);
    elsewhere nobody may make the function drop its credentials and connections."""
    upstream = ScriptedUpstream()
    response = call(make_app(upstream), "POST", "/_lambda/after-restore")
    assert response.status_code == 404
    assert upstream.restores == 0
