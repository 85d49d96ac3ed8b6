"""AWS's LMI container (DJL Serving's rolling batch, LMI 10 and 11) as the emulated engine.

Two bodies, two streams, both JSON lines (``application/jsonlines``: one JSON document per line,
no ``data:``, no ``[DONE]``; djl_python's output_formatter.py and request_io.py):

- ``{"inputs", "parameters", "stream": true}``: one ``{"token": {"id", "text", "log_prob"}}`` per
  token, the last adding ``generated_text`` and, with ``parameters.details``, ``details``
  ``{"finish_reason", "generated_tokens", "inputs"}``. The EOS token's text is empty (vLLM, which
  runs inside, skips special tokens when it decodes).
- an OpenAI chat body (``messages``, laid out with the model's chat template): one
  ``chat.completion.chunk`` per token, the first delta with the assistant's role, the last with
  ``finish_reason`` in LMI's words (``length``, ``eos_token``); no usage chunk.

A stop sequence ends the answer as vLLM, inside, ends it: cut from the text
(``include_stop_str_in_output`` is off), and reported as ``eos_token``, since rolling batch maps
vLLM's ``stop`` to it whether a stop sequence or the end of the text ended the answer
(``FINISH_REASON_MAPPER``, rolling_batch_vllm_utils.py).

A body without ``"stream": true`` gets one JSON document once the generation is done.

Failures. A body LMI cannot read is refused before the stream: HTTP 424,
``{"error": "Input Parsing failed. ...", "code": 424}``; a crash before the stream is
``{"code": 424, "message": "invoke handler failure", "error": ...}``. What fails once the request
runs (vLLM refusing a parameter, a prompt too long, the faults the engine owns) ends the stream
with an error line: the token ``{"id": -1, "text": "", "log_prob": -1, "special_token": true,
"error_msg": ...}`` and ``details.finish_reason`` "error" (for a chat, a chunk whose
finish_reason is "error"), with an ``error`` member that tells the kind of failure apart:
``{"error_code": 400 | 429, "error_msg": ...}`` for a refused request or a full engine, the bare
message for a failed generation. A body that did not stream gets them as an HTTP error instead.
"""

from __future__ import annotations

import json
from typing import Any, Final

from jumpstream.emulator import openai_objects
from jumpstream.emulator.chat import MessageError, read_messages, render
from jumpstream.emulator.directives import ENGINE_FAULTS, Directives
from jumpstream.emulator.engine_vllm import shown_texts
from jumpstream.emulator.model import Generation, StandInModel, Token
from jumpstream.emulator.playback import Emission
from jumpstream.emulator.reply import ContainerError, Reply
from jumpstream.emulator.sampling import (
    LMI_NAMES,
    OPENAI_NAMES,
    Names,
    Sampling,
    SamplingTypeError,
    generate,
    read_sampling,
)
from jumpstream.emulator.sse import SseStyle
from jumpstream.emulator.tokenizer import estimate_input_tokens

__all__ = [
    "ERROR_CODES",
    "JSON_LINES",
    "LMI_ERRORS",
    "answer",
    "error_member",
    "error_token",
    "input_error",
    "line",
    "model_failure",
    "shown_text",
    "token_object",
    "unreadable_body",
]

JSON_LINES: Final = "application/jsonlines"
_JSON: Final = "application/json"
#: LMI's max_new_tokens when a request gives none.
DEFAULT_MAX_NEW_TOKENS: Final = 30
_INPUT_PARSING: Final = "Input Parsing failed. Ensure that the request payload is valid. "
#: The errors LMI reports for the fault kinds the engine owns (ENGINE_FAULTS).
LMI_ERRORS: Final[dict[str, str]] = {
    "validation": "Input prompt (8300 tokens) is too long and exceeds limit of 8192",
    "overloaded": "Too many requests: the rolling batch is full. Try again later.",
    "generation": "CUDA out of memory. Tried to allocate 20.00 MiB",
}
#: The code LMI's ``error`` member gives each kind of failure; a failed generation has none.
ERROR_CODES: Final[dict[str, int]] = {"validation": 400, "overloaded": 429}
#: The HTTP status a body that did not stream gets for each kind of failure.
_STATUS: Final[dict[str, int]] = {"validation": 400, "overloaded": 429, "generation": 424}


def answer(
    body: Any, *, model: StandInModel, directives: Directives, style: SseStyle
) -> Reply | ContainerError:
    """LMI's answer to ``body`` (directives already stripped from its prompt)."""
    if not isinstance(body, dict):
        return input_error(f"the payload must be a JSON object, got {type(body).__name__}")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        return input_error(f"stream must be true or false, got {stream!r}")
    if "messages" in body:
        try:
            prompt = render(read_messages(body["messages"]))
        except MessageError as error:
            return input_error(f"1 validation error for ChatProperties: {error}")
        return _answer(body, prompt, OPENAI_NAMES, stream, model, directives, style, chat=True)
    if "inputs" not in body:
        return input_error("Invalid Request Property: 'inputs'")
    if not isinstance(body["inputs"], str):
        return input_error(f"inputs must be a string, got {type(body['inputs']).__name__}")
    parameters = body.get("parameters") or {}
    if not isinstance(parameters, dict):
        return input_error("parameters must be an object")
    return _answer(
        parameters, body["inputs"], LMI_NAMES, stream, model, directives, style, chat=False
    )


def _answer(
    raw: dict[str, Any],
    prompt: str,
    names: Names,
    stream: bool,
    model: StandInModel,
    directives: Directives,
    style: SseStyle,
    *,
    chat: bool,
) -> Reply | ContainerError:
    """The answer once the body is read: ``raw`` holds the sampling parameters."""
    checked = _checked(raw, prompt, names, model, chat=chat)
    if isinstance(checked, ContainerError):
        return checked
    sampling, problem = checked
    # Chats always carry details (chat_utils sets them); `return_full_text` is for prompts.
    wire = _Wire(
        prompt=prompt,
        chat=chat,
        details=chat or bool(raw.get("details")),
        full_text=not chat and bool(raw.get("return_full_text")),
        style=style,
        stop=sampling.stop,
    )
    fault = directives.stream_fault
    if not stream and problem is not None:
        return _error("validation", problem)
    if not stream and fault is not None and fault.kind in ENGINE_FAULTS:
        return _error(fault.kind, LMI_ERRORS[fault.kind])
    if problem is not None:
        refusal = Emission(data=wire.error_line("validation", problem, []))
        return wire.reply((refusal,), streamed=True, generation=None)
    room = model.profile.limits.max_total_tokens - estimate_input_tokens(prompt)
    limit = min(sampling.max_tokens or DEFAULT_MAX_NEW_TOKENS, room)
    generation = generate(
        model, prompt, sampling, max_tokens=limit, directives=directives, chat_turn=chat
    )
    if stream:
        return wire.reply(wire.stream(generation), streamed=True, generation=generation)
    data = dump(wire.document(generation, estimate_input_tokens(prompt))).encode("utf-8")
    whole = Emission(data=data, tokens=len(generation.tokens))
    return wire.reply((whole,), streamed=False, generation=generation)


def _checked(
    raw: dict[str, Any], prompt: str, names: Names, model: StandInModel, *, chat: bool
) -> tuple[Sampling, str | None] | ContainerError:
    """The request's sampling parameters and what vLLM, inside, will refuse once it runs; or
    LMI's refusal before anything runs (a chat's parameters are checked up front)."""
    try:
        sampling = read_sampling(raw, names)
    except SamplingTypeError as error:
        if chat:  # ChatProperties (pydantic) refuses it before anything runs
            return input_error(f"1 validation error for ChatProperties: {error}")
        return Sampling(), str(error)
    refused = _chat_refusal(sampling) if chat else None
    if refused is not None:
        return input_error(f"1 validation error for ChatProperties: {refused}")
    prompt_tokens = estimate_input_tokens(prompt)
    context = model.profile.limits.max_total_tokens
    if prompt_tokens >= context:
        too_long = (
            f"Input prompt ({prompt_tokens} tokens) is too long and exceeds limit of {context}"
        )
        return sampling, sampling.problem() or too_long
    return sampling, sampling.problem()


def _chat_refusal(sampling: Sampling) -> str | None:
    """What LMI's ChatProperties refuses before vLLM sees the request."""
    if sampling.temperature is not None and not 0.0 <= sampling.temperature <= 2.0:
        return "temperature must be between 0 and 2."
    for name in ("frequency_penalty", "presence_penalty"):
        value = getattr(sampling, name)
        if value is not None and not -2.0 <= value <= 2.0:
            return f"{name} must be between -2.0 and 2.0."
    return None


class _Wire:
    """LMI's lines for one request: token lines or chat chunks, and its error line."""

    def __init__(
        self,
        *,
        prompt: str,
        chat: bool,
        details: bool,
        full_text: bool,
        style: SseStyle,
        stop: tuple[str, ...],
    ) -> None:
        self.prompt = prompt
        self.stop = stop
        self.chat = chat
        self.details = details
        #: generated_text starts with the prompt (``return_full_text``).
        self.prefix = prompt if full_text else ""
        self.style = style
        self.chunk_id = openai_objects.completion_id("chatcmpl", prompt)

    def reply(
        self, emissions: tuple[Emission, ...], *, streamed: bool, generation: Generation | None
    ) -> Reply:
        tokens = [] if generation is None else list(generation.tokens)

        def failure(kind: str, sent: int) -> bytes:
            return self.error_line(kind, LMI_ERRORS[kind], tokens[:sent])

        return Reply(
            content_type=JSON_LINES if streamed else _JSON,
            emissions=emissions,
            streamed=streamed,
            prompt=self.prompt,
            failure=failure,
            keepalive=self.style.newline,
        )

    def stream(self, generation: Generation) -> tuple[Emission, ...]:
        tokens = generation.tokens
        texts, _ = shown_texts(generation, self.stop)
        finish_reason = _finish_reason(generation)
        lines = []
        for position, token in enumerate(tokens):
            last = position == len(tokens) - 1
            if self.chat:
                delta = {"content": texts[position]}
                if position == 0:
                    delta["role"] = "assistant"
                finish = finish_reason if last else None
                value = openai_objects.chat_chunk(self.chunk_id, delta, finish_reason=finish)
            else:
                value = {"token": token_object(token, texts[position])}
                if last:
                    value["generated_text"] = self.prefix + "".join(texts)
                    if self.details:
                        value["details"] = self._details(finish_reason, len(tokens))
            lines.append(Emission(data=line(value, self.style), tokens=1))
        return tuple(lines)

    def document(self, generation: Generation, prompt_tokens: int) -> Any:
        """What a body that did not stream gets: the whole answer as one JSON document."""
        tokens = generation.tokens
        texts, _ = shown_texts(generation, self.stop)
        finish_reason = _finish_reason(generation)
        if self.chat:
            return openai_objects.chat_completion(
                self.chunk_id,
                "".join(texts),
                finish_reason=finish_reason,
                counts=openai_objects.usage(prompt_tokens, len(tokens)),
            )
        document: dict[str, Any] = {"generated_text": self.prefix + "".join(texts)}
        if self.details:
            details = self._details(finish_reason, len(tokens))
            shown = [token_object(t, text) for t, text in zip(tokens, texts, strict=True)]
            document["details"] = {**details, "tokens": shown}
        return document

    def error_line(self, kind: str, message: str, sent: list[Token]) -> bytes:
        """The line LMI ends a stream with when the request fails after ``sent`` tokens."""
        if self.chat:
            delta = {"content": ""} if sent else {"content": "", "role": "assistant"}
            value = openai_objects.chat_chunk(self.chunk_id, delta, finish_reason="error")
        else:
            value = {
                "token": error_token(message),
                "generated_text": _text(sent, self.prefix),
                "details": (
                    self._details("error", len(sent) + 1)
                    if self.details
                    else {"finish_reason": "error"}
                ),
            }
        return line({**value, "error": error_member(kind, message)}, self.style)

    def _details(self, finish_reason: str, generated_tokens: int) -> dict[str, Any]:
        return {
            "finish_reason": finish_reason,
            "generated_tokens": generated_tokens,
            "inputs": self.prompt,
        }


def token_object(token: Token, text: str | None = None) -> dict[str, Any]:
    """LMI's Token: ``{"id", "text", "log_prob"}`` (``special_token`` only on an error); `text`
    where the answer shows less of it (a stop sequence cut from its end)."""
    shown = shown_text(token) if text is None else text
    return {"id": token.id, "text": shown, "log_prob": token.logprob}


def _finish_reason(generation: Generation) -> str:
    """LMI's word: rolling batch reports vLLM's ``stop`` (a stop sequence or the end of the
    text) as ``eos_token``."""
    return "eos_token" if generation.finish_reason == "stop_sequence" else generation.finish_reason


def error_token(message: str) -> dict[str, Any]:
    """The token LMI's rolling batch reports a failure with (``stop_on_any_exception``)."""
    return {"id": -1, "text": "", "log_prob": -1, "special_token": True, "error_msg": message}


def shown_text(token: Token) -> str:
    """A token's text as LMI shows it: special tokens (EOS) are decoded to nothing."""
    return "" if token.special else token.text


def _text(tokens: Any, prefix: str) -> str:
    return prefix + "".join(shown_text(token) for token in tokens)


def error_member(kind: str, message: str) -> Any:
    """The ``error`` member of an error line: coded for a refused request or a full engine."""
    code = ERROR_CODES.get(kind)
    return message if code is None else {"error_code": code, "error_msg": message}


def dump(value: Any) -> str:
    """JSON as djl_python writes it: Python's separators, raw UTF-8."""
    return json.dumps(value, ensure_ascii=False)


def line(value: Any, style: SseStyle) -> bytes:
    """One JSON line (``style`` gives its line ending)."""
    return dump(value).encode("utf-8") + style.newline


def input_error(detail: str) -> ContainerError:
    """LMI refusing a body it cannot parse, before anything runs."""
    return ContainerError(status=424, body=dump({"error": _INPUT_PARSING + detail, "code": 424}))


def _error(kind: str, message: str) -> ContainerError:
    status = _STATUS[kind]
    return ContainerError(status=status, body=dump({"error": message, "code": status}))


def model_failure() -> ContainerError:
    """LMI's handler failing before it streams (``[[fault:model_error]]``)."""
    body = {"code": 424, "message": "invoke handler failure", "error": LMI_ERRORS["generation"]}
    return ContainerError(status=424, body=dump(body))


def unreadable_body(detail: str) -> ContainerError:
    """LMI given a body that is not JSON."""
    return input_error(detail)
