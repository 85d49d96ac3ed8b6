"""AWS's vLLM container for SageMaker as the emulated engine: OpenAI's API on ``/invocations``.

vLLM routes a SageMaker invocation by its body: ``messages`` is a chat completion (laid out with
the model's chat template), ``prompt`` a completion; anything else, TGI's or LMI's ``inputs``
among them, is refused with 400 "Cannot find suitable handler for request". A streamed answer is
server-sent events: one ``data: {chunk}`` per token (a chat's first chunk announces the
assistant's role with empty content), ``finish_reason`` ``stop`` | ``length`` on the last, with
``stop_reason`` the stop string that matched (null for the EOS token), then the usage chunk
(``"choices": []``) when ``stream_options.include_usage``, then ``data: [DONE]``. The EOS token's
text is never shown, and a matched stop string is cut from the answer (vLLM's
``include_stop_str_in_output`` is false). A body without ``"stream": true`` gets one JSON
``chat.completion`` or ``text_completion``.

Errors are ``{"error": {"message", "type", "param", "code"}}``: the HTTP body of a refusal
(400 for a request vLLM cannot take, checked before anything streams; 500 when the engine fails),
and, once the stream has begun, one ``data:`` event followed by ``data: [DONE]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from jumpstream.emulator import openai_objects
from jumpstream.emulator.chat import MessageError, read_messages, render
from jumpstream.emulator.directives import ENGINE_FAULTS, Directives
from jumpstream.emulator.model import Generation, StandInModel
from jumpstream.emulator.playback import Emission
from jumpstream.emulator.reply import ContainerError, NotEmulated, Reply
from jumpstream.emulator.sampling import (
    OPENAI_NAMES,
    Sampling,
    SamplingTypeError,
    generate,
    read_sampling,
)
from jumpstream.emulator.sse import SseStyle, data_event, done, dump_json, keepalive
from jumpstream.emulator.tokenizer import estimate_input_tokens

__all__ = [
    "SERVED_MODEL_NAME",
    "VLLM_ERRORS",
    "answer",
    "error_object",
    "model_failure",
    "shown_texts",
    "unreadable_body",
]

#: vLLM names the model by the path it loaded, which is where SageMaker puts a JumpStart model.
SERVED_MODEL_NAME: Final = "/opt/ml/model"
EVENT_STREAM: Final = "text/event-stream; charset=utf-8"
_JSON: Final = "application/json"
_NO_HANDLER: Final = (
    "Cannot find suitable handler for request. "
    "Expected one of: ['ChatCompletionRequest', 'CompletionRequest']"
)
#: The errors vLLM reports for the fault kinds the engine owns: (message, type, code).
VLLM_ERRORS: Final[dict[str, tuple[str, str, int]]] = {
    "validation": (
        "This model's maximum context length is 8192 tokens. However, you requested 8300 "
        "tokens (8200 in the messages, 100 in the completion). Please reduce the length of the "
        "messages or completion.",
        "BadRequestError",
        400,
    ),
    "overloaded": (
        "The server is overloaded: too many requests are waiting. Try again later.",
        "ServiceUnavailableError",
        503,
    ),
    "generation": (
        "EngineCore encountered an issue. See stack trace (above) for the root cause.",
        "InternalServerError",
        500,
    ),
}


def answer(
    body: Any, *, model: StandInModel, directives: Directives, style: SseStyle
) -> Reply | ContainerError:
    """vLLM's answer to ``body`` (directives already stripped from its prompt)."""
    request = _read(body)
    if isinstance(request, ContainerError):
        return request
    prompt_tokens = estimate_input_tokens(request.prompt)
    context = model.profile.limits.max_total_tokens
    max_tokens = request.sampling.max_tokens
    problem = request.sampling.problem() or _context_problem(prompt_tokens, max_tokens, context)
    if problem is not None:
        return _bad_request(problem)
    fault = directives.stream_fault
    if not request.stream and fault is not None and fault.kind in ENGINE_FAULTS:
        return _failed(fault.kind)
    generation = generate(
        model,
        request.prompt,
        request.sampling,
        max_tokens=context - prompt_tokens if max_tokens is None else max_tokens,
        directives=directives,
        chat_turn=request.chat,
    )
    wire = _Wire(prompt=request.prompt, chat=request.chat, stop=request.sampling.stop, style=style)
    if request.stream:
        emissions = wire.stream(generation, prompt_tokens, include_usage=request.include_usage)
    else:
        data = dump_json(wire.document(generation, prompt_tokens)).encode("utf-8")
        emissions = (Emission(data=data, tokens=len(generation.tokens)),)
    return Reply(
        content_type=EVENT_STREAM if request.stream else _JSON,
        emissions=emissions,
        streamed=request.stream,
        prompt=request.prompt,
        failure=lambda kind, sent: (
            data_event(error_object(*VLLM_ERRORS[kind]), style) + done(style)
        ),
        keepalive=keepalive(style),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class _Request:
    """A body vLLM has a handler for: a chat laid out into its prompt, or a completion."""

    prompt: str
    chat: bool
    stream: bool
    include_usage: bool
    sampling: Sampling


def _read(body: Any) -> _Request | ContainerError:
    """The request in ``body``, or vLLM's refusal of a body no handler validates (pydantic's
    types: a field of the wrong type is no handler's either)."""
    if not isinstance(body, dict):
        return _bad_request(_NO_HANDLER)
    chat = "messages" in body
    if chat:
        try:
            prompt = render(read_messages(body["messages"]))
        except MessageError:
            return _bad_request(_NO_HANDLER)
    elif isinstance(body.get("prompt"), str):
        prompt = body["prompt"]
    elif isinstance(body.get("prompt"), list):
        raise NotEmulated("a list of prompts (a batch)")
    else:
        return _bad_request(_NO_HANDLER)
    stream = body.get("stream")
    options = body.get("stream_options")
    try:
        sampling = read_sampling(body, OPENAI_NAMES)
    except SamplingTypeError:
        return _bad_request(_NO_HANDLER)
    if (stream is not None and not isinstance(stream, bool)) or not _usage_options(options):
        return _bad_request(_NO_HANDLER)
    if body.get("n") not in (None, 1):
        raise NotEmulated("more than one choice (n)")
    if options is not None and not stream:
        return _bad_request("Stream options can only be defined when `stream=True`.")
    return _Request(
        prompt=prompt,
        chat=chat,
        stream=bool(stream),
        include_usage=bool(options and options.get("include_usage")),
        sampling=sampling,
    )


def _context_problem(prompt_tokens: int, max_tokens: int | None, context: int) -> str | None:
    """vLLM's refusal of a request that does not fit the model's context (max_model_len)."""
    if max_tokens is None and prompt_tokens >= context:
        return (
            f"This model's maximum context length is {context} tokens. However, your messages "
            f"resulted in {prompt_tokens} tokens. Please reduce the length of the messages."
        )
    if max_tokens is not None and prompt_tokens + max_tokens > context:
        return (
            f"This model's maximum context length is {context} tokens. However, you requested "
            f"{prompt_tokens + max_tokens} tokens ({prompt_tokens} in the messages, {max_tokens} "
            "in the completion). Please reduce the length of the messages or completion."
        )
    return None


def _usage_options(options: Any) -> bool:
    """Whether ``stream_options`` is of the type vLLM's StreamOptions takes."""
    if options is None:
        return True
    return isinstance(options, dict) and all(
        isinstance(options.get(name, False), bool)
        for name in ("include_usage", "continuous_usage_stats")
    )


class _Wire:
    """vLLM's chunks or document for one request."""

    def __init__(self, *, prompt: str, chat: bool, stop: tuple[str, ...], style: SseStyle) -> None:
        self.chat = chat
        self.stop = stop
        self.style = style
        self.id = openai_objects.completion_id("chatcmpl" if chat else "cmpl", prompt)
        self.kind = openai_objects.CHAT_CHUNK if chat else openai_objects.TEXT_COMPLETION

    def stream(
        self, generation: Generation, prompt_tokens: int, *, include_usage: bool
    ) -> tuple[Emission, ...]:
        texts, stop_reason = shown_texts(generation, self.stop)
        finish = _finish_reason(generation)
        chunks: list[Emission] = []
        if self.chat:
            first = {"role": "assistant", "content": ""}
            chunks.append(self._emission(self._chat_chunk(first), tokens=0))
        for position, text in enumerate(texts):
            last = position == len(texts) - 1
            if self.chat:
                end = {"finish_reason": finish, "stop_reason": stop_reason} if last else {}
                chunk = self._chat_chunk({"content": text}, **end)
            else:
                chunk = openai_objects.completion_chunk(
                    self.id,
                    text,
                    model=SERVED_MODEL_NAME,
                    finish_reason=finish if last else None,
                    stop_reason=stop_reason if last else None,
                )
            chunks.append(self._emission(chunk, tokens=1))
        if include_usage:
            counts = openai_objects.usage(prompt_tokens, len(texts))
            usage = openai_objects.usage_chunk(
                self.id, self.kind, model=SERVED_MODEL_NAME, counts=counts
            )
            chunks.append(self._emission(usage, tokens=0))
        chunks.append(Emission(data=done(self.style)))
        return tuple(chunks)

    def document(self, generation: Generation, prompt_tokens: int) -> dict[str, Any]:
        texts, stop_reason = shown_texts(generation, self.stop)
        counts = openai_objects.usage(prompt_tokens, len(texts))
        if self.chat:
            return openai_objects.chat_completion(
                self.id,
                "".join(texts),
                finish_reason=_finish_reason(generation),
                counts=counts,
                model=SERVED_MODEL_NAME,
                stop_reason=stop_reason,
            )
        return openai_objects.text_completion(
            self.id,
            "".join(texts),
            model=SERVED_MODEL_NAME,
            finish_reason=_finish_reason(generation),
            stop_reason=stop_reason,
            counts=counts,
        )

    def _chat_chunk(self, delta: dict[str, Any], **end: Any) -> dict[str, Any]:
        return openai_objects.chat_chunk(self.id, delta, model=SERVED_MODEL_NAME, **end)

    def _emission(self, chunk: dict[str, Any], *, tokens: int) -> Emission:
        return Emission(data=data_event(chunk, self.style), tokens=tokens)


def shown_texts(generation: Generation, stop: tuple[str, ...]) -> tuple[list[str], str | None]:
    """Each token's text as vLLM streams it, and the stop string that ended the answer: the
    EOS token shows nothing, and a matched stop string is cut from the end of the answer."""
    texts = ["" if token.special else token.text for token in generation.tokens]
    if generation.finish_reason != "stop_sequence":
        return texts, None
    answer_text = "".join(texts)
    matched = next(s for s in stop if answer_text.endswith(s))
    room = len(answer_text) - len(matched)
    shown = []
    for text in texts:
        shown.append(text[: max(0, room)])
        room -= len(text)
    return shown, matched


def _finish_reason(generation: Generation) -> str:
    return "length" if generation.finish_reason == "length" else "stop"


def error_object(message: str, error_type: str, code: int) -> dict[str, Any]:
    """vLLM's ErrorResponse."""
    return {"error": {"message": message, "type": error_type, "param": None, "code": code}}


def _bad_request(message: str) -> ContainerError:
    return ContainerError(status=400, body=dump_json(error_object(message, "BadRequestError", 400)))


def _failed(kind: str) -> ContainerError:
    message, error_type, code = VLLM_ERRORS[kind]
    return ContainerError(status=code, body=dump_json(error_object(message, error_type, code)))


def model_failure() -> ContainerError:
    """vLLM failing before it streams (``[[fault:model_error]]``): its engine is dead."""
    return _failed("generation")


def unreadable_body(detail: str) -> ContainerError:
    """vLLM given a body that is not JSON (its handler of HTTPException)."""
    body = error_object(f"JSON decode error: {detail}", "Bad Request", 400)
    return ContainerError(status=400, body=dump_json(body))
