"""Chat messages rendered into the one prompt string a deployed model was trained on.

The pinned TGI containers take only a plain `inputs` string on every version the catalog uses, so
the relay lays out a conversation itself. How a model wants it laid out is a fact of the model:
it lives in the catalog (`stacks/models.json`, `prompt_template`), the stack hands it to the
function as the `PROMPT_TEMPLATE` setting, and this module only interprets that data. It never
names a model. (An LMI or vLLM model whose engine has the model's own chat template gets its
messages as they are instead, ENGINE_CHAT_TEMPLATE: engines.py; `parse_messages` then checks
them without a template.)

A template describes turns, not a program:

    prompt = begin + separator.join(turns) [+ separator + generation]

where each turn is its role's template with `{content}` replaced by the message's text (after the
template's content replacements, e.g. rinna's newline as `<NL>`). A system message either has a
turn of its own, or, for models whose documentation has no system turn, goes in front of the
first message's text; its text takes `system_content_replacements` where a model's template
treats it apart (Falcon Instruct folds blank lines in the turns but only strips the system text).
Templates that need strict user/assistant alternation say so, and a conversation that breaks it
is refused before SageMaker is called: a model given a layout it was not trained on answers
worse, silently.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from .errors import ApiError

__all__ = ["Message", "PromptTemplate", "TemplateError", "parse_messages"]

Role = Literal["system", "user", "assistant"]

_PLACEHOLDER: Final = "{content}"
# OpenAI's newer name for the system role; tools and function results have no place in a prompt
# these models were trained on.
_ROLE_ALIASES: Final[Mapping[str, Role]] = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "assistant": "assistant",
}
# Fields OpenAI clients put on an assistant message they return, which a caller sends back as
# history (Python's `message.model_dump()`, the Node helper's `finalChatCompletion()`, LiteLLM's
# Message): when empty they say nothing, so they are accepted; with a value, what they carry (a
# refusal, a tool call, an audio answer, citations, parsed output, another provider's reasoning)
# has no place in these models' prompts.
_EMPTY_ASSISTANT_FIELDS: Final = frozenset(
    {
        # OpenAI's ChatCompletionMessage, and the Node helpers' `parsed`.
        "refusal",
        "tool_calls",
        "function_call",
        "annotations",
        "audio",
        "parsed",
        # LiteLLM's Message.
        "provider_specific_fields",
        "reasoning_content",
        "thinking_blocks",
        "reasoning_items",
        "images",
    }
)
_MESSAGE_FIELDS: Final = frozenset({"role", "content", "name"})
# A conversation longer than this is a client bug, not a chat: each turn costs prompt tokens and
# no model here has a context of more than 8192.
MAX_MESSAGES: Final = 1000
_TEMPLATE_KEYS: Final = frozenset(
    {
        "begin",
        "system",
        "system_joiner",
        "user",
        "assistant",
        "separator",
        "generation",
        "strip_content",
        "content_replacements",
        "system_content_replacements",
        "output_replacements",
        "stop",
        "alternating",
    }
)


class TemplateError(ValueError):
    """The PROMPT_TEMPLATE setting is not a valid template; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class Message:
    """One checked chat message."""

    role: Role
    content: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PromptTemplate:
    """How one model's conversation is laid out, as the catalog describes it."""

    user: str
    assistant: str
    begin: str = ""
    #: A turn of its own for the system message, or None: it then goes before the first
    #: message's text, joined by `system_joiner`.
    system: str | None = None
    system_joiner: str = "\n\n"
    separator: str = ""
    #: What follows the last turn so that the model answers as the assistant ("" for none).
    generation: str = ""
    strip_content: bool = False
    content_replacements: tuple[tuple[str, str], ...] = ()
    #: Replacements on the system message's text where they differ from `content_replacements`;
    #: None: the same ones.
    system_content_replacements: tuple[tuple[str, str], ...] | None = None
    #: Replacements on the text the model streams back (rinna writes newlines as `<NL>`).
    output_replacements: tuple[tuple[str, str], ...] = ()
    #: Stop sequences the model needs so it does not write the user's next turn itself.
    stop: tuple[str, ...] = ()
    #: True where the format is a dialogue: user first and last, user and assistant alternating.
    alternating: bool = True

    @classmethod
    def from_json(cls, text: str) -> PromptTemplate:
        """Parse the PROMPT_TEMPLATE setting; TemplateError names what is wrong."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise TemplateError(f"is not valid JSON ({error.msg})") from None
        return cls.from_mapping(data)

    @classmethod
    def from_mapping(cls, data: object) -> PromptTemplate:
        """Build and check a template from the catalog's JSON object."""
        if not isinstance(data, dict):
            raise TemplateError("must be a JSON object")
        unknown = sorted(set(data) - _TEMPLATE_KEYS)
        if unknown:
            raise TemplateError(f"has unknown keys: {', '.join(unknown)}")
        for key in ("user", "assistant"):
            if key not in data:
                raise TemplateError(f"needs {key!r}")
        template = cls(
            user=_text(data, "user"),
            assistant=_text(data, "assistant"),
            begin=_text(data, "begin", ""),
            system=None if data.get("system") is None else _text(data, "system"),
            system_joiner=_text(data, "system_joiner", "\n\n"),
            separator=_text(data, "separator", ""),
            generation=_text(data, "generation", ""),
            strip_content=_flag(data, "strip_content", default=False),
            content_replacements=_pairs(data, "content_replacements"),
            system_content_replacements=(
                _pairs(data, "system_content_replacements")
                if "system_content_replacements" in data
                else None
            ),
            output_replacements=_pairs(data, "output_replacements"),
            stop=_strings(data, "stop"),
            alternating=_flag(data, "alternating", default=True),
        )
        for key, turn in (("user", template.user), ("assistant", template.assistant)):
            _check_placeholder(key, turn)
        if template.system is not None:
            _check_placeholder("system", template.system)
        return template

    def render(self, messages: Sequence[Message]) -> str:
        """The prompt for `messages`, which `parse_messages` has checked against this template."""
        turns: list[str] = []
        pending_system: str | None = None
        for message in messages:
            content = self._content(message.content, system=message.role == "system")
            if message.role == "system":
                if self.system is not None:
                    turns.append(self.system.replace(_PLACEHOLDER, content))
                else:
                    pending_system = content
                continue
            if pending_system is not None:
                content = f"{pending_system}{self._replace(self.system_joiner)}{content}"
                pending_system = None
            role_template = self.user if message.role == "user" else self.assistant
            turns.append(role_template.replace(_PLACEHOLDER, content))
        prompt = self.begin + self.separator.join(turns)
        if self.generation:
            prompt += self.separator + self.generation
        return prompt

    def _content(self, text: str, *, system: bool = False) -> str:
        text = text.strip() if self.strip_content else text
        if system and self.system_content_replacements is not None:
            return _replaced(text, self.system_content_replacements)
        return self._replace(text)

    def _replace(self, text: str) -> str:
        return _replaced(text, self.content_replacements)


def _replaced(text: str, replacements: Sequence[tuple[str, str]]) -> str:
    for old, new in replacements:
        text = text.replace(old, new)
    return text


def parse_messages(value: object, *, template: PromptTemplate | None) -> list[Message]:
    """Check a `messages` field; ApiError 422 names the first problem.

    With the model's prompt template, the conversation must also have the shape that layout
    needs. Without one (the engine lays the chat out with the model's own chat template, which
    has rules of its own and says so in its refusal), each message is checked, and there must be
    a user message to answer.
    """
    if not isinstance(value, list) or not value:
        raise _invalid(
            'messages must be a non-empty array of {"role": ..., "content": ...} objects.'
        )
    if len(value) > MAX_MESSAGES:
        raise _invalid(f"messages may hold at most {MAX_MESSAGES} messages (got {len(value)}).")
    messages = [_message(index, item) for index, item in enumerate(value)]
    if template is None:
        if all(message.role != "user" for message in messages):
            raise _invalid("messages need a user message: the model answers it.")
        return messages
    for index, message in enumerate(messages):
        if message.role == "system" and index != 0:
            raise _invalid(
                f"messages[{index}] is a system message: only the first message may be one."
            )
    dialogue = messages[1:] if messages[0].role == "system" else messages
    if not dialogue:
        raise _invalid("messages need at least one user message after the system message.")
    if template.alternating:
        for index, message in enumerate(dialogue):
            expected = "user" if index % 2 == 0 else "assistant"
            if message.role != expected:
                position = index + len(messages) - len(dialogue)
                raise _invalid(
                    f"messages[{position}] should be a {expected} message: this model's prompt "
                    "format needs user and assistant messages in turn, starting with a user "
                    "message."
                )
        if dialogue[-1].role != "user":
            raise _invalid("The last message must be a user message: the model answers it.")
    return messages


def _message(index: int, item: object) -> Message:
    if not isinstance(item, dict):
        raise _invalid(f'messages[{index}] must be an object such as {{"role": "user", ...}}.')
    role = item.get("role")
    if not isinstance(role, str) or role not in _ROLE_ALIASES:
        raise _invalid(
            f"messages[{index}].role must be system, user or assistant (got {_shown(role)})."
        )
    canonical = _ROLE_ALIASES[role]
    unknown = sorted(
        name
        for name in set(item) - _MESSAGE_FIELDS
        if not (
            canonical == "assistant"
            and name in _EMPTY_ASSISTANT_FIELDS
            and _says_nothing(item[name])
        )
    )
    if unknown:
        raise _invalid(
            f"messages[{index}] has fields the relay cannot honour: {', '.join(unknown)}."
        )
    content = item.get("content")
    # An assistant turn returned without text (content null) is an empty turn, as OpenAI's
    # own clients send it back.
    content = _content_text(index, "" if content is None and canonical == "assistant" else content)
    if canonical == "user" and not content.strip():
        raise _invalid(f"messages[{index}].content is empty: a user message needs text.")
    return Message(canonical, content)


def _says_nothing(value: object) -> bool:
    """Null, empty, or an object of such values (LiteLLM's `{"refusal": null}`)."""
    if isinstance(value, dict):
        return all(_says_nothing(inner) for inner in value.values())
    return value is None or value == "" or value == []


def _content_text(index: int, content: object) -> str:
    """A string, or OpenAI's list of text parts joined; any other part is refused."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts: list[str] = []
        for part_index, part in enumerate(content):
            if (
                not isinstance(part, dict)
                or part.get("type") != "text"
                or not isinstance(part.get("text"), str)
            ):
                raise _invalid(
                    f"messages[{index}].content[{part_index}] must be a text part "
                    '{"type": "text", "text": "..."}: these models read text only.'
                )
            texts.append(part["text"])
        return "".join(texts)
    raise _invalid(
        f"messages[{index}].content must be a string or a list of text parts "
        f"(got {_shown(content)})."
    )


def _invalid(message: str) -> ApiError:
    return ApiError(kind="invalid_request", message=message)


def _shown(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        return json.dumps(value[:40], ensure_ascii=False)
    return type(value).__name__ if not isinstance(value, bool) else str(value).lower()


def _text(data: Mapping[str, object], key: str, default: str | None = None) -> str:
    value = data.get(key, default)
    if not isinstance(value, str):
        raise TemplateError(f"{key!r} must be a string")
    return value


def _flag(data: Mapping[str, object], key: str, *, default: bool) -> bool:
    value = data.get(key, default)
    if not isinstance(value, bool):
        raise TemplateError(f"{key!r} must be true or false")
    return value


def _pairs(data: Mapping[str, object], key: str) -> tuple[tuple[str, str], ...]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(
        isinstance(pair, list) and len(pair) == 2 and all(isinstance(s, str) for s in pair)
        for pair in value
    ):
        raise TemplateError(f"{key!r} must be a list of [old, new] string pairs")
    if any(not old for old, _ in value):
        raise TemplateError(f"{key!r} cannot replace an empty string")
    return tuple((old, new) for old, new in value)


def _strings(data: Mapping[str, object], key: str) -> tuple[str, ...]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(s, str) and s for s in value):
        raise TemplateError(f"{key!r} must be a list of non-empty strings")
    return tuple(value)


def _check_placeholder(key: str, turn: str) -> None:
    if turn.count(_PLACEHOLDER) != 1:
        raise TemplateError(f"{key!r} must contain {_PLACEHOLDER} exactly once")
