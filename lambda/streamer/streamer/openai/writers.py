"""The model's answer written as OpenAI's objects: streamed chunks, or one whole document.

The answer arrives in TGI's words whatever the engine (engines.py), so the finish reasons below
are TGI's.

Each class is a StreamWriter (formats.py): the streaming response hands it the answer's text
pieces, its end and a failure after the status went out. The chunk writers send server-sent
events ending `data: [DONE]`; the collectors send nothing until the end, then the whole answer.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Final

from ..errors import render_json
from .errors import openai_error_body

__all__ = [
    "ChatChunkWriter",
    "ChatCompletionCollector",
    "CompletionChunkWriter",
    "CompletionCollector",
    "finish_reason",
    "model_object",
    "models_list",
    "usage",
]

# TGI's finish reasons in OpenAI's words: a stop sequence is a stop, as it is for OpenAI.
_FINISH_REASONS: Final[Mapping[str, str]] = {
    "eos_token": "stop",
    "stop_sequence": "stop",
    "length": "length",
}


def finish_reason(tgi_reason: str | None) -> str:
    """OpenAI's finish_reason for TGI's; an answer that ended without details ended normally."""
    return _FINISH_REASONS.get(tgi_reason or "", "stop")


def new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(12)}"


def usage(*, prompt_tokens: int | None, completion_tokens: int | None) -> dict[str, int | None]:
    """Token counts as the engine reported them; one it did not report stays null, never
    guessed."""
    total = (
        None
        if prompt_tokens is None or completion_tokens is None
        else prompt_tokens + completion_tokens
    )
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": total,
    }


def _event(data: object) -> bytes:
    return b"data: " + render_json(data) + b"\n\n"


_DONE: Final = b"data: [DONE]\n\n"


class _ChunkWriter:
    """A StreamWriter of OpenAI's streamed objects as server-sent events, ending `data: [DONE]`."""

    content_type = "text/event-stream; charset=utf-8"
    _object: str
    _id_prefix: str

    def __init__(self, *, model: str, include_usage: bool, created: int) -> None:
        self.id = new_id(self._id_prefix)
        self._model = model
        self._include_usage = include_usage
        self._created = created
        self._started = False

    def text(self, text: str) -> bytes:
        return self._start() + self._chunk([self._piece(text)])

    def done(
        self,
        *,
        finish_reason: str | None,
        generated_tokens: int | None,
        input_length: int | None = None,
    ) -> bytes:
        last = self._start() + self._chunk([self._last(finish_reason)])
        if self._include_usage:
            counts = usage(prompt_tokens=input_length, completion_tokens=generated_tokens)
            last += self._chunk([], usage=counts)
        return last + _DONE

    def error(self, *, message: str, kind: str) -> bytes:
        """A failure after the stream began: the error event the openai client raises on."""
        return _event(openai_error_body(message=message, kind=kind)) + _DONE

    def _start(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        return self._first()

    def _chunk(self, choices: list[dict[str, object]], **extra: object) -> bytes:
        chunk: dict[str, object] = {
            "id": self.id,
            "object": self._object,
            "created": self._created,
            "model": self._model,
            "choices": choices,
        }
        if self._include_usage:
            chunk["usage"] = None
        chunk.update(extra)
        return _event(chunk)

    def _first(self) -> bytes:
        return b""

    def _piece(self, text: str) -> dict[str, object]:
        raise NotImplementedError

    def _last(self, tgi_reason: str | None) -> dict[str, object]:
        raise NotImplementedError


class ChatChunkWriter(_ChunkWriter):
    """`chat.completion.chunk` events: the role first, then content, then the finish reason."""

    _object = "chat.completion.chunk"
    _id_prefix = "chatcmpl"

    def _first(self) -> bytes:
        return self._chunk([_choice(delta={"role": "assistant", "content": ""})])

    def _piece(self, text: str) -> dict[str, object]:
        return _choice(delta={"content": text})

    def _last(self, tgi_reason: str | None) -> dict[str, object]:
        return _choice(delta={}, finish_reason=finish_reason(tgi_reason))


class CompletionChunkWriter(_ChunkWriter):
    """`text_completion` events: each carries a piece of text, the last the finish reason."""

    _object = "text_completion"
    _id_prefix = "cmpl"

    def _piece(self, text: str) -> dict[str, object]:
        return _text_choice(text)

    def _last(self, tgi_reason: str | None) -> dict[str, object]:
        return _text_choice("", finish_reason=finish_reason(tgi_reason))


class _Collector:
    """A StreamWriter for `stream: false`: nothing until the end, then the whole answer.

    The relay sends it only once the answer is complete (a failure anywhere becomes an HTTP
    error instead), so `error` is never part of a 200.
    """

    content_type = "application/json"
    _object: str
    _id_prefix: str

    def __init__(self, *, model: str, created: int) -> None:
        self._model = model
        self._created = created
        self._texts: list[str] = []

    def text(self, text: str) -> bytes:
        self._texts.append(text)
        return b""

    def done(
        self,
        *,
        finish_reason: str | None,
        generated_tokens: int | None,
        input_length: int | None = None,
    ) -> bytes:
        answer = {
            "id": new_id(self._id_prefix),
            "object": self._object,
            "created": self._created,
            "model": self._model,
            "choices": [self._choice("".join(self._texts), finish_reason)],
            "usage": usage(prompt_tokens=input_length, completion_tokens=generated_tokens),
        }
        return render_json(answer)

    def error(self, *, message: str, kind: str) -> bytes:
        return render_json(openai_error_body(message=message, kind=kind))

    def _choice(self, text: str, tgi_reason: str | None) -> dict[str, object]:
        raise NotImplementedError


class ChatCompletionCollector(_Collector):
    """One `chat.completion` object."""

    _object = "chat.completion"
    _id_prefix = "chatcmpl"

    def _choice(self, text: str, tgi_reason: str | None) -> dict[str, object]:
        return {
            "index": 0,
            "message": {"role": "assistant", "content": text},
            "logprobs": None,
            "finish_reason": finish_reason(tgi_reason),
        }


class CompletionCollector(_Collector):
    """One `text_completion` object."""

    _object = "text_completion"
    _id_prefix = "cmpl"

    def _choice(self, text: str, tgi_reason: str | None) -> dict[str, object]:
        return _text_choice(text, finish_reason=finish_reason(tgi_reason))


def _choice(*, delta: dict[str, str], finish_reason: str | None = None) -> dict[str, object]:
    return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}


def _text_choice(text: str, *, finish_reason: str | None = None) -> dict[str, object]:
    return {"index": 0, "text": text, "logprobs": None, "finish_reason": finish_reason}


def model_object(model: str, *, created: int) -> dict[str, object]:
    """`GET /v1/models/{model}`: OpenAI's model object for the model this relay serves."""
    return {"id": model, "object": "model", "created": created, "owned_by": "jumpstream"}


def models_list(model: str, *, created: int) -> dict[str, object]:
    """`GET /v1/models`: the one model this relay serves."""
    return {"object": "list", "data": [model_object(model, created=created)]}
