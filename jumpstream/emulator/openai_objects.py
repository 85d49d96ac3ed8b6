"""OpenAI's completion objects as the OpenAI-speaking engines build them (LMI's chat, vLLM).

The one builder of these shapes in the project: the LMI and vLLM engine modules put them on the
wire in their own spelling (LMI as JSON lines, vLLM as server-sent events), and tests that script
such a stream build their objects here too. Ids and ``created`` are derived, not random: the same
request gets the same bytes, as everything the emulator sends.
"""

from __future__ import annotations

from typing import Any, Final

from jumpstream.emulator.tokenizer import stable_hash

__all__ = [
    "CREATED",
    "chat_chunk",
    "chat_completion",
    "completion_chunk",
    "completion_id",
    "text_completion",
    "usage",
    "usage_chunk",
]

#: The emulated clock: every answer is made at this instant (2026-01-01T00:00:00Z).
CREATED: Final = 1_767_225_600
CHAT_CHUNK: Final = "chat.completion.chunk"
TEXT_COMPLETION: Final = "text_completion"


def completion_id(prefix: str, prompt: str) -> str:
    """``chatcmpl-…`` or ``cmpl-…``, fixed for a prompt."""
    return f"{prefix}-{stable_hash('id', prompt):08x}"


def _head(object_id: str, kind: str, model: str | None) -> dict[str, Any]:
    head: dict[str, Any] = {"id": object_id, "object": kind, "created": CREATED}
    if model is not None:
        head["model"] = model
    return head


def chat_chunk(
    object_id: str,
    delta: dict[str, Any],
    *,
    finish_reason: str | None = None,
    model: str | None = None,
    **choice: Any,
) -> dict[str, Any]:
    """One ``chat.completion.chunk`` with one choice; ``choice`` adds members to it (vLLM's
    ``stop_reason``). LMI leaves ``model`` out."""
    return {
        **_head(object_id, CHAT_CHUNK, model),
        "choices": [
            {
                "index": 0,
                "delta": delta,
                "logprobs": None,
                "finish_reason": finish_reason,
                **choice,
            }
        ],
    }


def completion_chunk(
    object_id: str,
    text: str,
    *,
    model: str,
    finish_reason: str | None = None,
    stop_reason: str | None = None,
) -> dict[str, Any]:
    """One streamed ``text_completion`` with one choice."""
    return {
        **_head(object_id, TEXT_COMPLETION, model),
        "choices": [_text_choice(text, finish_reason, stop_reason)],
    }


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "completion_tokens": completion_tokens,
    }


def usage_chunk(object_id: str, kind: str, *, model: str, counts: dict[str, int]) -> dict[str, Any]:
    """The chunk ``stream_options.include_usage`` adds after the last choice: no choices."""
    return {**_head(object_id, kind, model), "choices": [], "usage": counts}


def chat_completion(
    object_id: str,
    content: str,
    *,
    finish_reason: str,
    counts: dict[str, int],
    model: str | None = None,
    **choice: Any,
) -> dict[str, Any]:
    """A whole ``chat.completion`` with one choice."""
    return {
        **_head(object_id, "chat.completion", model),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "logprobs": None,
                "finish_reason": finish_reason,
                **choice,
            }
        ],
        "usage": counts,
    }


def text_completion(
    object_id: str,
    text: str,
    *,
    model: str,
    finish_reason: str,
    stop_reason: str | None,
    counts: dict[str, int],
) -> dict[str, Any]:
    """A whole ``text_completion`` with one choice."""
    return {
        **_head(object_id, TEXT_COMPLETION, model),
        "choices": [_text_choice(text, finish_reason, stop_reason)],
        "usage": counts,
    }


def _text_choice(text: str, finish_reason: str | None, stop_reason: str | None) -> dict[str, Any]:
    """A completion's one choice, streamed or whole (vLLM writes the same fields in both)."""
    return {
        "index": 0,
        "text": text,
        "logprobs": None,
        "finish_reason": finish_reason,
        "stop_reason": stop_reason,
    }
