"""`POST /v1/responses`'s body, for text in and text out, checked and translated.

The text subset of OpenAI's Responses API is the chat API under other names: `input` is the
conversation (a string is one user message), `instructions` a system message in front of it,
`max_output_tokens` the chat's `max_completion_tokens`. So the body is translated into a chat
body and parsed by the chat route's own parser (requests.py): one prompt layout, one set of
sampling rules and defaults for both routes. A refusal that parser raises is renamed back into
this API's words (`input[2]`, `max_output_tokens`) so the caller reads the field they sent.

What needs state the relay does not keep (`previous_response_id`, `conversation`, an
`item_reference`, `background`), tools, reasoning settings, non-text inputs or outputs and
truncation of the input are refused with a 400 naming the parameter. `store` is accepted and
nothing is stored (the response says `"store": false`), as are fields that change nothing
about the answer.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from ..errors import ApiError
from ..prompt_template import PromptTemplate
from .errors import ParameterError, error_param, invalid, unsupported
from .requests import IGNORED_FIELDS, OpenAIRequest, parse_chat_request

__all__ = ["ResponsesRequest", "parse_responses_request"]

# Fields that change nothing about a text answer from a relay that keeps no state: the chat
# routes' table, and the one the Responses API adds (tools are refused, so their cap means nothing).
_HARMLESS: Final = frozenset(IGNORED_FIELDS) | {"max_tool_calls"}
# Fields read below: translated, or accepted in their neutral values only.
_HANDLED: Final = frozenset(
    {
        "input",
        "instructions",
        "max_output_tokens",
        "temperature",
        "top_p",
        "stream",
        "stream_options",
        "tools",
        "tool_choice",
        "text",
        "reasoning",
        "include",
        "top_logprobs",
        "truncation",
        "background",
        "previous_response_id",
        "conversation",
        "prompt",
    }
)
_NO_STATE: Final = (
    "the relay keeps no responses or conversations: send the whole conversation in input"
)
_INPUT_ROLES: Final = frozenset({"user", "assistant", "system", "developer"})
# A message item as clients send it, or as the API returned it (id, status, phase).
_MESSAGE_FIELDS: Final = frozenset({"type", "role", "content", "id", "status", "phase"})
# The text parts of a message: what a caller writes, and what an answer returned carries.
_TEXT_PARTS: Final = frozenset({"input_text", "output_text"})
_PART_FIELDS: Final = frozenset({"type", "text", "annotations", "logprobs"})
# The chat parser's parameters that this API calls otherwise.
_CHAT_NAMES: Final[Mapping[str, str]] = {
    "max_completion_tokens": "max_output_tokens",
    "messages": "input",
}
_MESSAGE_INDEX: Final = re.compile(r"\bmessages\[(\d+)\]")


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponsesRequest:
    """A checked Responses request: the chat request it amounts to, and what the answer
    echoes back of the request, as OpenAI's response object does."""

    chat: OpenAIRequest
    instructions: str | None
    max_output_tokens: int | None
    temperature: float
    top_p: float
    metadata: dict[str, object]


def parse_responses_request(
    document: object,
    *,
    template: PromptTemplate | None,
    max_new_tokens_limit: int,
    engine_chat: bool = False,
) -> ResponsesRequest:
    """`POST /v1/responses`'s body; ApiError (kind invalid_request) names the problem."""
    if not isinstance(document, dict):
        raise ApiError(kind="invalid_body", message="The body must be a JSON object.")
    body: dict[str, object] = document
    if "input" not in body:
        raise invalid("Missing required parameter: input.", "input")
    for name in body:
        if name not in _HARMLESS and name not in _HANDLED:
            raise invalid(f"Unrecognized request argument supplied: {name}.", name)
    _refuse_unsupported(body)
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise invalid("instructions must be a string.", "instructions")
    metadata = body.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise invalid("metadata must be an object of string values.", "metadata")
    messages = _messages(body["input"])
    offset = 0
    if instructions:
        # OpenAI inserts the instructions as the first system message; the models here take
        # one, so a system message the input starts with follows them in the same message.
        if messages[0]["role"] in ("system", "developer"):
            messages[0] = {**messages[0], "content": f"{instructions}\n\n{messages[0]['content']}"}
        else:
            messages.insert(0, {"role": "system", "content": instructions})
            offset = 1
    chat_body: dict[str, object] = {"messages": messages}
    for name, chat_name in (
        ("max_output_tokens", "max_completion_tokens"),
        ("temperature", "temperature"),
        ("top_p", "top_p"),
        ("stream", "stream"),
    ):
        if body.get(name) is not None:
            chat_body[chat_name] = body[name]
    try:
        chat = parse_chat_request(
            chat_body,
            template=template,
            max_new_tokens_limit=max_new_tokens_limit,
            engine_chat=engine_chat,
        )
    except ApiError as error:
        raise _renamed(error, offset) from None
    temperature, top_p = body.get("temperature"), body.get("top_p")
    max_output_tokens = body.get("max_output_tokens")
    return ResponsesRequest(
        chat=chat,
        instructions=instructions,
        max_output_tokens=max_output_tokens if isinstance(max_output_tokens, int) else None,
        temperature=1.0 if temperature is None else float(temperature),  # type: ignore[arg-type]
        top_p=1.0 if top_p is None else float(top_p),  # type: ignore[arg-type]
        metadata=metadata or {},
    )


def _refuse_unsupported(body: Mapping[str, object]) -> None:
    for name in ("previous_response_id", "conversation"):
        if body.get(name) is not None:
            raise unsupported(name, _NO_STATE)
    if body.get("background") not in (None, False):
        raise unsupported(
            "background", "the relay answers while the caller waits and keeps no responses to poll"
        )
    if body.get("prompt") is not None:
        raise unsupported("prompt", "the relay has no stored prompts: send the text in input")
    if body.get("tools") not in (None, []):
        raise unsupported("tools", "these models do not call tools")
    if body.get("tool_choice") not in (None, "none", "auto"):
        raise unsupported("tool_choice", "these models do not call tools")
    if body.get("reasoning") not in (None, {}):
        raise unsupported("reasoning", "these models do not reason before they answer")
    if body.get("include") not in (None, []):
        raise unsupported("include", "the relay returns only the answer's text")
    if body.get("top_logprobs") not in (None, 0):
        raise unsupported("top_logprobs", "the relay does not return log probabilities")
    if body.get("truncation") not in (None, "disabled"):
        raise unsupported(
            "truncation", "the relay sends the whole input; shorten it to fit the context"
        )
    text = body.get("text")
    if text is not None:
        if not isinstance(text, dict) or set(text) - {"format", "verbosity"}:
            raise unsupported("text", 'only {"format": {"type": "text"}} is offered')
        if text.get("format") not in (None, {"type": "text"}):
            raise unsupported("text.format", "only text answers are offered")
        if text.get("verbosity") not in (None, "medium"):
            raise unsupported("text.verbosity", "these models cannot be told how much to write")
    options = body.get("stream_options")
    if options is not None:
        if body.get("stream") is not True:
            raise invalid("stream_options is only allowed when stream is true.", "stream_options")
        if not isinstance(options, dict) or set(options) - {"include_obfuscation"}:
            raise invalid(
                'stream_options must be {"include_obfuscation": true|false}.', "stream_options"
            )


def _messages(value: object) -> list[dict[str, str]]:
    """`input` as chat messages with string content, in order (indices match `input`'s)."""
    if isinstance(value, str):
        if not value.strip():
            raise invalid("input is empty: send the text to answer.", "input")
        return [{"role": "user", "content": value}]
    if not isinstance(value, list) or not value:
        raise invalid(
            'input must be a string or a non-empty list of {"role": ..., "content": ...} messages.',
            "input",
        )
    return [_message(index, item) for index, item in enumerate(value)]


def _message(index: int, item: object) -> dict[str, str]:
    where = f"input[{index}]"
    if not isinstance(item, dict):
        raise invalid(
            f'{where} must be a message such as {{"role": "user", "content": "..."}}.', "input"
        )
    kind = item.get("type", "message")
    if kind == "item_reference":
        raise invalid(
            f"{where} is an item_reference, but the relay keeps no responses: send the item "
            "itself (with the AI SDK, providerOptions: {openai: {store: false}}).",
            "input",
        )
    if kind != "message":
        raise invalid(
            f"{where} is a {_shown(kind)} item: the relay takes only text messages "
            "(these models do not call tools or reason).",
            "input",
        )
    role = item.get("role")
    if role not in _INPUT_ROLES:
        raise invalid(
            f"{where}.role must be user, assistant, system or developer (got {_shown(role)}).",
            "input",
        )
    unknown = sorted(set(item) - _MESSAGE_FIELDS)
    if unknown:
        raise invalid(f"{where} has fields the relay cannot honour: {', '.join(unknown)}.", "input")
    return {"role": role, "content": _content(where, item.get("content"))}


def _content(where: str, content: object) -> str:
    """A string, or the message's text parts joined; an image, a file or audio is refused."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise invalid(
            f"{where}.content must be a string or a list of input_text parts "
            f"(got {_shown(content)}).",
            "input",
        )
    texts: list[str] = []
    for part_index, part in enumerate(content):
        part_where = f"{where}.content[{part_index}]"
        if not isinstance(part, dict) or part.get("type") not in _TEXT_PARTS:
            kind = part.get("type") if isinstance(part, dict) else part
            raise invalid(
                f"{part_where} is {_shown(kind)}: these models read text only "
                '({"type": "input_text", "text": "..."}).',
                "input",
            )
        text = part.get("text")
        if not isinstance(text, str):
            raise invalid(f"{part_where}.text must be a string.", "input")
        # An answer sent back carries its empty annotations and logprobs: accepted as absent.
        unknown = sorted(set(part) - _PART_FIELDS) + [
            name for name in ("annotations", "logprobs") if part.get(name)
        ]
        if unknown:
            raise invalid(
                f"{part_where} has fields the relay cannot honour: {', '.join(unknown)}.",
                "input",
            )
        texts.append(text)
    return "".join(texts)


def _renamed(error: ApiError, offset: int) -> ApiError:
    """A refusal of the chat parser in this API's words: `messages[3]` is `input[3 - offset]`
    (the instructions' own message has no place in `input`), `max_completion_tokens` is
    `max_output_tokens`."""
    if error.kind != "invalid_request":
        return error

    def index(match: re.Match[str]) -> str:
        return f"input[{max(int(match.group(1)) - offset, 0)}]"

    message = _MESSAGE_INDEX.sub(index, error.message)
    message = message.replace("max_completion_tokens", _CHAT_NAMES["max_completion_tokens"])
    # The chat parser names a parameter where one is wrong; its other refusals (parse_messages)
    # are about the conversation, which is `input` here.
    param = error_param(error) or "messages"
    return ParameterError(message, param=_CHAT_NAMES.get(param, param))


def _shown(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        return f'"{value[:40]}"'
    return type(value).__name__
