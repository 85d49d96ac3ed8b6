"""LMI's and vLLM's streams and errors as SageMaker carries them, for the function's tests.

Written from the facts the decoders are built on (/work/notes' design of issue #18, LMI's
`output_formatter.py` and `lmi_vllm/request_response_utils.py` in deepjavalibrary/djl-serving,
vLLM's OpenAI server), independently of the emulator's own producers, so a test of the relay
against these bytes does not only check the emulator against itself. TGI's bytes are
support.py's.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

DONE = b"data: [DONE]\n\n"


# --- Framing ------------------------------------------------------------------------------------


def json_line(obj: Any) -> bytes:
    """One JSON line as LMI writes it (`application/jsonlines`): raw UTF-8, then a newline."""
    return json.dumps(obj, ensure_ascii=False).encode() + b"\n"


def sse(obj: Any) -> bytes:
    """One SSE event as vLLM (and LMI's SSE formatter) writes it."""
    return b"data: " + json.dumps(obj, ensure_ascii=False).encode() + b"\n\n"


# --- LMI's token lines (a prompt sent as `inputs`) ----------------------------------------------


def lmi_token(
    text: str,
    *,
    token_id: int | list[int] = 1,
    special: bool = False,
    index: int | None = None,
    logprob_key: str = "log_prob",
) -> dict[str, Any]:
    """A token line's object (rolling batch: `log_prob`, `special_token` only when true; the
    async mode: `logprob` and `index`)."""
    token: dict[str, Any] = {"id": token_id, "text": text, logprob_key: -0.05}
    if special:
        token["special_token"] = True
    obj: dict[str, Any] = {"token": token}
    if index is not None:
        obj = {"index": index, **obj, "generated_text": None, "details": None}
    return obj


def lmi_final(
    text: str,
    *,
    generated_text: str,
    finish_reason: str | None = "eos_token",
    generated_tokens: int = 3,
    inputs: str | None = "Hello",
    input_length: int | None = None,
    special: bool = False,
) -> dict[str, Any]:
    """The last line: the last token, the whole answer and (with `details`) why it ended."""
    obj = lmi_token(text, token_id=2, special=special)
    obj["generated_text"] = generated_text
    if finish_reason is not None:
        details: dict[str, Any] = {
            "finish_reason": finish_reason,
            "generated_tokens": generated_tokens,
        }
        if inputs is not None:
            details["inputs"] = inputs
        if input_length is not None:
            details["input_length"] = input_length
        obj["details"] = details
    return obj


def lmi_failure(error: Any = None) -> dict[str, Any]:
    """The line that ends an answer that failed: finish_reason "error", an empty special token,
    and the error's words where LMI gives them."""
    obj: dict[str, Any] = {
        "token": {"id": -1, "text": "", "log_prob": -1, "special_token": True},
        "generated_text": "",
        "details": {"finish_reason": "error"},
    }
    if error is not None:
        obj["error"] = error
    return obj


def lmi_answer(
    texts: Iterable[str], *, finish_reason: str = "eos_token", inputs: str = "Hello"
) -> list[bytes]:
    """A complete LMI answer in JSON lines: one line per text, then the EOS with details."""
    texts = list(texts)
    lines = [json_line(lmi_token(text, token_id=index)) for index, text in enumerate(texts, 1)]
    final = lmi_final(
        "",
        generated_text="".join(texts),
        finish_reason=finish_reason,
        generated_tokens=len(texts) + 1,
        inputs=inputs,
    )
    lines.append(json_line(final))
    return lines


# --- OpenAI chunks (vLLM always; LMI for a chat it lays out itself) ---------------------------


def chat_chunk(
    content: str | None = None,
    *,
    role: bool = False,
    finish_reason: str | None = None,
    stop_reason: str | int | None = None,
) -> dict[str, Any]:
    delta: dict[str, Any] = {}
    if role:
        delta["role"] = "assistant"
    if content is not None:
        delta["content"] = content
    choice: dict[str, Any] = {
        "index": 0,
        "delta": delta,
        "logprobs": None,
        "finish_reason": finish_reason,
    }
    if finish_reason is not None:
        choice["stop_reason"] = stop_reason
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [choice],
    }


def completion_chunk(
    text: str, *, finish_reason: str | None = None, stop_reason: str | int | None = None
) -> dict[str, Any]:
    return {
        "id": "cmpl-1",
        "object": "text_completion",
        "created": 1,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "text": text,
                "logprobs": None,
                "finish_reason": finish_reason,
                "stop_reason": stop_reason,
            }
        ],
    }


def usage_chunk(prompt_tokens: int, completion_tokens: int, *, chat: bool = True) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1" if chat else "cmpl-1",
        "object": "chat.completion.chunk" if chat else "text_completion",
        "created": 1,
        "model": "m",
        "choices": [],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def vllm_error(
    message: str, *, code: int = 400, error_type: str = "BadRequestError"
) -> dict[str, Any]:
    """vLLM's error object (newer servers), in the stream and as an HTTP error's body."""
    return {"error": {"message": message, "type": error_type, "param": None, "code": code}}


def vllm_chat_answer(
    texts: Iterable[str],
    *,
    finish_reason: str = "stop",
    stop_reason: str | int | None = None,
    prompt_tokens: int = 7,
) -> list[bytes]:
    """vLLM's chat stream: the role, one chunk per text, the finish, usage, `[DONE]`."""
    texts = list(texts)
    events = [sse(chat_chunk("", role=True))]
    events += [sse(chat_chunk(text)) for text in texts]
    events.append(sse(chat_chunk(finish_reason=finish_reason, stop_reason=stop_reason)))
    events.append(sse(usage_chunk(prompt_tokens, len(texts))))
    events.append(DONE)
    return events


def vllm_completion_answer(
    texts: Iterable[str],
    *,
    finish_reason: str = "stop",
    stop_reason: str | int | None = None,
    prompt_tokens: int = 5,
) -> list[bytes]:
    """vLLM's completions stream: one chunk per text, the finish, usage, `[DONE]`."""
    texts = list(texts)
    events = [sse(completion_chunk(text)) for text in texts]
    events.append(sse(completion_chunk("", finish_reason=finish_reason, stop_reason=stop_reason)))
    events.append(sse(usage_chunk(prompt_tokens, len(texts), chat=False)))
    events.append(DONE)
    return events


def lmi_chat_answer(texts: Iterable[str], *, finish_reason: str = "eos_token") -> list[bytes]:
    """LMI's chat stream on rolling batch: JSON lines, the role with the first text, the finish
    with the last, no usage, no `[DONE]`."""
    texts = list(texts)
    lines = []
    for position, text in enumerate(texts):
        last = position == len(texts) - 1
        chunk = chat_chunk(text, role=position == 0, finish_reason=finish_reason if last else None)
        chunk["choices"][0].pop("stop_reason", None)  # vLLM's field; LMI has none
        lines.append(json_line(chunk))
    return lines
