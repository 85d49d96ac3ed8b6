"""Chat messages as an engine that applies the model's own chat template takes them (LMI, vLLM).

The stand-in model has no tokenizer and so no chat template of its own: :func:`render` lays the
turns out in one fixed, ChatML-like way, so that the prompt the model answers (and its length in
tokens) is a function of the messages that a test can compute too. What each engine refuses in a
message, and in which words, stays with the engine; this module only reads the common shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jumpstream.emulator.reply import NotEmulated

__all__ = ["ChatMessage", "MessageError", "read_messages", "render"]


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: str
    text: str


class MessageError(ValueError):
    """``messages`` is not a list of ``{"role", "content"}`` objects."""


def read_messages(value: Any) -> list[ChatMessage]:
    """The turns of ``messages``: each a role and a content that is a string, a list of text
    parts, or null (an assistant turn that only called tools)."""
    if not isinstance(value, list) or not value:
        raise MessageError("messages must be a non-empty list of messages")
    turns: list[ChatMessage] = []
    for position, message in enumerate(value):
        if not isinstance(message, dict) or "role" not in message or "content" not in message:
            raise MessageError(
                f"messages[{position}] must be an object with a 'role' and a 'content' key"
            )
        role = message["role"]
        if not isinstance(role, str):
            raise MessageError(f"messages[{position}].role must be a string")
        turns.append(ChatMessage(role, _text(message["content"], position)))
    return turns


def _text(content: Any, position: int) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if not isinstance(part, dict) or not isinstance(part.get("type"), str):
                raise MessageError(f"messages[{position}].content holds a part without a type")
            if part["type"] != "text":
                raise NotEmulated(f"a {part['type']!r} content part (only text parts are)")
            if not isinstance(part.get("text"), str):
                raise MessageError(f"messages[{position}].content holds a text part without text")
            texts.append(part["text"])
        return "".join(texts)
    raise MessageError(f"messages[{position}].content must be a string or a list of parts")


def render(messages: list[ChatMessage]) -> str:
    """The prompt the stand-in model is given for a chat: every turn under its role's header,
    then the assistant's header it answers after."""
    turns = "".join(f"<|{message.role}|>\n{message.text}\n" for message in messages)
    return f"{turns}<|assistant|>\n"
