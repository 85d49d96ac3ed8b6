"""Sans-I/O decoder for LMI's token lines (a prompt sent as `inputs`) in SageMaker PayloadParts.

LMI (DJL Serving) answers `{"inputs": ..., "stream": true}` with one JSON object per line
(`application/jsonlines`, no `data:` prefix, no `[DONE]`), or the same objects as SSE events when
the model is set to LMI's SSE formatter: line_decoder.LineDecoder takes either, line by line.

- A token: `{"token": {"id": 304, "text": "Deep ", "log_prob": -0.05}}`. Older documentation
  and the async mode say `logprob`, and the async mode adds `index`; `id` may be a list of ids
  (several tokens decoded as one piece of text), which no event needs, so it becomes None.
  `special_token` (TGI-compatible output: `special`) is there only when true.
- The last line adds `"generated_text"` (the answer, after the prompt with
  `return_full_text`) and, with `parameters.details`, `"details": {"finish_reason",
  "generated_tokens", "inputs"}` (the async mode: `input_length` instead of `inputs`).
  `finish_reason` is LMI's word (`length`, `eos_token`; its documentation also names
  `stop_sequence`, but rolling batch maps vLLM's `stop` to `eos_token` whether a stop sequence or
  the end of the text ended the answer) on rolling batch, and vLLM's (`stop`, `length`) in the
  async mode: `stop` is then TGI's `eos_token` too. LMI cannot tell a stop sequence from the end.
- A failure mid-stream is a last line whose `details.finish_reason` is `"error"`, possibly with
  `"error"` beside it, or `"abort"` (vLLM dropped the request); the async mode passes vLLM's
  `{"error": {...}}` through (lmi_errors.py).

Each line is decoded whole, so memory is bounded by the longest line: the last one, which holds
the answer and, in `details.inputs`, the prompt (pump.max_line_bytes_for).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, TypeAlias

from .line_decoder import LineDecoder
from .lmi_errors import LmiError, failed_line, parse_error, stopped
from .model_errors import ErrorShapeError
from .stream_lines import (
    FAILED_FINISH_REASONS,
    GenerationEnd,
    StreamProtocolError,
    Token,
    new_token,
    optional_int,
)

__all__ = ["LmiEvent", "LmiTokenDecoder"]

LmiEvent: TypeAlias = Token | GenerationEnd | LmiError

# LMI's async mode speaks vLLM's finish reasons; `stop` (no stop_reason on these lines) is TGI's
# `eos_token`. LMI's own words are TGI's already.
_FINISH_REASONS: Final = {"stop": "eos_token"}
# A line of the wrong shape is named by its first keys, never quoted.
_SHOWN_KEYS: Final = 10


class LmiTokenDecoder(LineDecoder):
    """Turn the bytes of SageMaker PayloadParts carrying LMI's token lines into events."""

    __slots__ = ()

    stream_name = "an LMI token stream"

    def _handle_object(self, obj: dict[str, Any], events: list[Any]) -> None:
        if obj.get("error") is not None:
            # An error wins over anything else in the line: losing it would make a failed
            # answer look complete.
            events.append(_error(parse_error, obj))
            self._finish()
            return
        token = obj.get("token")
        if type(token) is not dict:
            if "token" in obj:
                raise StreamProtocolError(f"'token' is not an object: {token!r}")
            raise StreamProtocolError(
                f"a line has neither 'token' nor 'error', not an LMI token line "
                f"(keys {sorted(obj)[:_SHOWN_KEYS]})"
            )
        details = obj.get("details")
        if details is not None and type(details) is not dict:
            raise StreamProtocolError(f"details is not an object: {details!r}")
        reason = None if details is None else details.get("finish_reason")
        if type(reason) is str and reason in FAILED_FINISH_REASONS:
            # LMI's error token, or vLLM's `abort` passed on: the answer was cut, not finished.
            events.append(_error(failed_line, obj) if reason == "error" else stopped(reason))
            self._finish()
            return
        events.append(_token(obj, token))
        generated_text = obj.get("generated_text")
        if generated_text is None:
            return
        if not isinstance(generated_text, str):
            raise StreamProtocolError(f"generated_text is not a string: {generated_text!r}")
        details = details or {}
        events.append(
            GenerationEnd(
                generated_text=generated_text,
                finish_reason=_finish_reason(details.get("finish_reason")),
                generated_tokens=optional_int(
                    details, "generated_tokens", "details.generated_tokens"
                ),
                input_length=optional_int(details, "input_length", "details.input_length"),
            )
        )
        self._finish()


def _token(obj: dict[str, Any], token: dict[str, Any]) -> Token:
    text = token.get("text")
    if not isinstance(text, str):
        raise StreamProtocolError(f"token.text is not a string: {text!r}")
    special = token.get("special_token", token.get("special"))
    if special is None:
        special = False
    elif not isinstance(special, bool):
        raise StreamProtocolError(f"token.special_token is not a boolean: {special!r}")
    token_id = token.get("id")
    if isinstance(token_id, list) and all(
        isinstance(item, int) and not isinstance(item, bool) for item in token_id
    ):
        token_id = None  # several ids for one piece of text: no one id to give
    elif token_id is not None and (not isinstance(token_id, int) or isinstance(token_id, bool)):
        raise StreamProtocolError(f"token.id is neither an integer nor a list: {token_id!r}")
    return new_token(text, special, token_id, optional_int(obj, "index", "index"))


def _finish_reason(value: object) -> str | None:
    """TGI's word for the reason LMI gave; a stop token's id (the async mode's stop_reason, when
    it stands in for finish_reason) is the end of the text."""
    if value is None:
        return None
    if isinstance(value, str):
        return _FINISH_REASONS.get(value, value)
    if isinstance(value, int) and not isinstance(value, bool):
        return "eos_token"
    raise StreamProtocolError(f"details.finish_reason is not a string: {value!r}")


def _error(read: Callable[[dict[str, Any]], LmiError], obj: dict[str, Any]) -> LmiError:
    """LMI's error in a line; a line that says it is an error but is none of LMI's shapes is
    not an LMI stream."""
    try:
        return read(obj)
    except ErrorShapeError as exc:
        raise StreamProtocolError(str(exc)) from None
