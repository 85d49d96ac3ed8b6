"""The model's answer written as OpenAI's Responses API: semantic events, or one response.

Both are StreamWriters (formats.py). The answer is always one output item, an assistant message
with one `output_text` part. Streamed, every event is `event: <type>` and one JSON `data:` line
carrying the same `type` and a `sequence_number` counting from 0; the stream has no `[DONE]`:

    response.created, response.in_progress, response.output_item.added,
    response.content_part.added, response.output_text.delta ..., response.output_text.done,
    response.content_part.done, response.output_item.done, then
    response.completed, or response.incomplete when max_output_tokens cut the answer.

A failure after the status went out is an `error` event and then `response.failed`, whose
response holds the text that came before it. The `error` event carries its fields both at the
top level (the API reference's shape) and in a nested `error` object (what OpenAI sends, and
what makes the `openai` package raise in the caller's loop, as it does on the chat routes).
"""

from __future__ import annotations

import secrets
from typing import Final

from ..errors import render_json
from .errors import openai_error_body
from .response_requests import ResponsesRequest

__all__ = ["ResponseCollector", "ResponseEventWriter", "response_usage"]

# TGI's finish reason that means the answer was cut: OpenAI's response is then incomplete.
_CUT: Final = "length"


def response_usage(
    *, input_tokens: int | None, output_tokens: int | None
) -> dict[str, object] | None:
    """The Responses API's usage, or None when the engine did not report a count: its fields are
    numbers, never null, and a count is never guessed."""
    if input_tokens is None or output_tokens is None:
        return None
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input_tokens + output_tokens,
    }


class _Response:
    """The response object one request's writer builds up: OpenAI's fields, the request's
    settings echoed back, the one message the answer is."""

    def __init__(self, request: ResponsesRequest, *, model: str, created: int) -> None:
        self.id = f"resp_{secrets.token_hex(24)}"
        self.message_id = f"msg_{secrets.token_hex(24)}"
        self._request = request
        self._model = model
        self._created = created
        self.texts: list[str] = []

    @property
    def text(self) -> str:
        return "".join(self.texts)

    def part(self, text: str) -> dict[str, object]:
        return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}

    def message(self, status: str, *, content: bool = True) -> dict[str, object]:
        return {
            "id": self.message_id,
            "type": "message",
            "status": status,
            "role": "assistant",
            "content": [self.part(self.text)] if content else [],
        }

    def document(
        self,
        status: str,
        *,
        output: list[dict[str, object]],
        usage: dict[str, object] | None = None,
        error: dict[str, object] | None = None,
    ) -> dict[str, object]:
        request = self._request
        return {
            "id": self.id,
            "object": "response",
            "created_at": self._created,
            "status": status,
            "background": False,
            "error": error,
            "incomplete_details": (
                {"reason": "max_output_tokens"} if status == "incomplete" else None
            ),
            "instructions": request.instructions,
            "max_output_tokens": request.max_output_tokens,
            "metadata": request.metadata,
            "model": self._model,
            "output": output,
            "parallel_tool_calls": False,
            "previous_response_id": None,
            "reasoning": {"effort": None, "summary": None},
            "store": False,
            "temperature": request.temperature,
            "text": {"format": {"type": "text"}},
            "tool_choice": "none",
            "tools": [],
            "top_p": request.top_p,
            "truncation": "disabled",
            "usage": usage,
        }

    def finished(
        self, *, finish_reason: str | None, generated_tokens: int | None, input_length: int | None
    ) -> tuple[str, dict[str, object]]:
        """(the item's status, the finished response) for the answer's end."""
        status = "incomplete" if finish_reason == _CUT else "completed"
        usage = response_usage(input_tokens=input_length, output_tokens=generated_tokens)
        return status, self.document(status, output=[self.message(status)], usage=usage)


class ResponseEventWriter:
    """The Responses API's server-sent events for one answer (`stream: true`)."""

    content_type = "text/event-stream; charset=utf-8"

    def __init__(self, request: ResponsesRequest, *, model: str, created: int) -> None:
        self._response = _Response(request, model=model, created=created)
        self._sequence = 0
        self._started = False

    def text(self, text: str) -> bytes:
        start = self._start()
        if not text:
            return start
        self._response.texts.append(text)
        return start + self._event(
            "response.output_text.delta", **self._at_part(), delta=text, logprobs=[]
        )

    def done(
        self,
        *,
        finish_reason: str | None,
        generated_tokens: int | None,
        input_length: int | None = None,
    ) -> bytes:
        response = self._response
        status, document = response.finished(
            finish_reason=finish_reason,
            generated_tokens=generated_tokens,
            input_length=input_length,
        )
        final = "response.incomplete" if status == "incomplete" else "response.completed"
        return b"".join(
            (
                self._start(),
                self._event(
                    "response.output_text.done",
                    **self._at_part(),
                    text=response.text,
                    logprobs=[],
                ),
                self._event(
                    "response.content_part.done",
                    **self._at_part(),
                    part=response.part(response.text),
                ),
                self._event(
                    "response.output_item.done", output_index=0, item=response.message(status)
                ),
                self._event(final, response=document),
            )
        )

    def error(self, *, message: str, kind: str) -> bytes:
        """A failure after the stream began: `error`, then the failed response so far."""
        response = self._response
        body = openai_error_body(message=message, kind=kind)
        failed = response.document(
            "failed",
            output=[response.message("incomplete")],
            error={"code": kind, "message": message},
        )
        return b"".join(
            (
                self._start(),
                self._event("error", code=kind, message=message, param=None, **body),
                self._event("response.failed", response=failed),
            )
        )

    def _start(self) -> bytes:
        """The events that open the stream, before its first text (or its end)."""
        if self._started:
            return b""
        self._started = True
        response = self._response
        in_progress = response.document("in_progress", output=[])
        return b"".join(
            (
                self._event("response.created", response=in_progress),
                self._event("response.in_progress", response=in_progress),
                self._event(
                    "response.output_item.added",
                    output_index=0,
                    item=response.message("in_progress", content=False),
                ),
                self._event(
                    "response.content_part.added", **self._at_part(), part=response.part("")
                ),
            )
        )

    def _at_part(self) -> dict[str, object]:
        return {"item_id": self._response.message_id, "output_index": 0, "content_index": 0}

    def _event(self, event_type: str, **fields: object) -> bytes:
        data: dict[str, object] = {"type": event_type, "sequence_number": self._sequence}
        data.update(fields)
        self._sequence += 1
        return b"event: " + event_type.encode("ascii") + b"\ndata: " + render_json(data) + b"\n\n"


class ResponseCollector:
    """One `response` object once the answer is complete (`stream: false`).

    The relay sends it only then (a failure anywhere becomes an HTTP error instead), so `error`
    is never part of a 200.
    """

    content_type = "application/json"

    def __init__(self, request: ResponsesRequest, *, model: str, created: int) -> None:
        self._response = _Response(request, model=model, created=created)

    def text(self, text: str) -> bytes:
        self._response.texts.append(text)
        return b""

    def done(
        self,
        *,
        finish_reason: str | None,
        generated_tokens: int | None,
        input_length: int | None = None,
    ) -> bytes:
        _, document = self._response.finished(
            finish_reason=finish_reason,
            generated_tokens=generated_tokens,
            input_length=input_length,
        )
        return render_json(document)

    def error(self, *, message: str, kind: str) -> bytes:
        return render_json(openai_error_body(message=message, kind=kind))
