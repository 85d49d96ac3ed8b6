"""Sans-I/O decoder for OpenAI's streamed chunks (chat and completion) in SageMaker PayloadParts.

Two engines answer in OpenAI's objects: AWS's vLLM container (chat and completions, as SSE:
`data: {chunk}` and a blank line each, then a usage chunk, then `data: [DONE]`) and LMI asked
for `messages` (JSON lines of `chat.completion.chunk` objects, no `data:`, no `[DONE]`).
line_decoder.LineDecoder reads either framing line by line. A chunk's text is
`choices[0].delta.content` (chat; the first chunk's is the role's `""`) or `choices[0].text`
(completion); the relay asks for one choice, so any other index is a protocol error.

The events are TGI's, so every writer works unchanged:
- `finish_reason` `stop` is TGI's `stop_sequence` when `stop_reason` is the matched string, else
  `eos_token` (the end of the text, or a stop token's id); `length` is `length`; LMI on rolling
  batch already says `eos_token` (for a stop sequence too: it cannot tell them apart). `error`
  and `abort` end the answer with the engine's error instead.
- The usage chunk (`"choices": []`, `"usage": {"prompt_tokens", "completion_tokens"}`) gives
  `input_length` and `generated_tokens`. Without one, `chunk_per_token` streams (LMI's rolling
  batch writes one chunk per generated token, the end-of-sequence token's with empty text) give
  `generated_tokens` as the number of chunks; the prompt's length stays unknown.
- `GenerationEnd` comes at the usage chunk, at `[DONE]`, or at the end of input (JSON lines have
  no end marker), once a finish_reason came; a stream that ends without one was cut off, and no
  `GenerationEnd` is made up for it.
Errors are the engine's own (`errors`: vllm_errors or lmi_errors), as is what they mean.
"""

from __future__ import annotations

from typing import Any, Protocol

from .line_decoder import LineDecoder
from .model_errors import ErrorShapeError
from .stream_lines import (
    DEFAULT_MAX_LINE_BYTES,
    FAILED_FINISH_REASONS,
    GenerationEnd,
    StreamProtocolError,
    new_token,
    optional_int,
)

__all__ = ["ChunkErrors", "OpenAIChunkDecoder"]


class ChunkErrors(Protocol):
    """An engine's error shapes in an OpenAI stream (lmi_errors and vllm_errors are such)."""

    def is_error(self, obj: dict[str, Any]) -> bool: ...

    def parse_error(self, obj: dict[str, Any]) -> Any: ...

    def stopped(self, reason: str) -> Any: ...


class OpenAIChunkDecoder(LineDecoder):
    """Turn the bytes of SageMaker PayloadParts carrying OpenAI chunks into events."""

    __slots__ = (
        "_chunk_per_token",
        "_chunks",
        "_errors",
        "_finish_reason",
        "_generated_tokens",
        "_input_length",
    )

    stream_name = "an OpenAI chunk stream"

    def __init__(
        self,
        *,
        errors: ChunkErrors,
        chunk_per_token: bool = False,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    ) -> None:
        super().__init__(max_line_bytes=max_line_bytes)
        self._errors = errors
        self._chunk_per_token = chunk_per_token
        self._chunks = 0  # choices seen: the tokens generated, where each chunk is one
        self._finish_reason: str | None = None
        self._generated_tokens: int | None = None
        self._input_length: int | None = None

    def _handle_object(self, obj: dict[str, Any], events: list[Any]) -> None:
        if self._errors.is_error(obj):
            try:
                events.append(self._errors.parse_error(obj))
            except ErrorShapeError as exc:
                raise StreamProtocolError(str(exc)) from None
            self._finish()
            return
        choices = obj.get("choices")
        if type(choices) is not list:
            raise StreamProtocolError(
                f"a chunk has no 'choices' list, not an OpenAI chunk (choices {choices!r})"
            )
        for choice in choices:
            if self._choice(choice, events):
                return
        usage = obj.get("usage")
        if usage is None:
            return
        if type(usage) is not dict:
            raise StreamProtocolError(f"usage is not an object: {usage!r}")
        self._generated_tokens = optional_int(usage, "completion_tokens", "usage.completion_tokens")
        self._input_length = optional_int(usage, "prompt_tokens", "usage.prompt_tokens")
        if not choices:
            self._end(events)  # the usage chunk, which follows the last choice

    def _choice(self, choice: object, events: list[Any]) -> bool:
        """Add one choice's events; True if it ended the answer with an error."""
        if type(choice) is not dict:
            raise StreamProtocolError(f"a choice is not an object: {choice!r}")
        self._chunks += 1
        index = choice.get("index", 0)
        if index != 0 or type(index) is not int:
            raise StreamProtocolError(f"a choice has index {index!r}: the relay asks for one")
        delta = choice.get("delta")
        if delta is None:
            text = choice.get("text")  # a completion's chunk
        elif type(delta) is dict:
            text = delta.get("content")
        else:
            raise StreamProtocolError(f"delta is not an object: {delta!r}")
        if text is not None:
            if type(text) is not str:
                raise StreamProtocolError(f"a chunk's text is not a string: {text!r}")
            if text:
                events.append(new_token(text, False, None, None))
        reason = choice.get("finish_reason")
        if reason is None:
            return False
        if type(reason) is not str:
            raise StreamProtocolError(f"finish_reason is not a string: {reason!r}")
        if reason in FAILED_FINISH_REASONS:
            events.append(self._errors.stopped(reason))
            self._finish()
            return True
        if reason == "stop":
            reason = "stop_sequence" if type(choice.get("stop_reason")) is str else "eos_token"
        self._finish_reason = reason
        return False

    def _handle_done(self, events: list[Any]) -> None:
        self._end(events)

    def _handle_close(self, events: list[Any]) -> None:
        self._end(events)

    def _end(self, events: list[Any]) -> None:
        """The answer's end, once: only after a finish_reason, and never after an error."""
        if self._finish_reason is None or self._finished:
            return
        generated_tokens = self._generated_tokens
        if generated_tokens is None and self._chunk_per_token:
            generated_tokens = self._chunks
        events.append(
            GenerationEnd(
                generated_text=None,
                finish_reason=self._finish_reason,
                generated_tokens=generated_tokens,
                input_length=self._input_length,
            )
        )
        self._finish()
