"""The prompt template interpreter and its message checks, on small hand-made templates.

Each model's real template is pinned against its model card in
tests/stacks/test_prompt_templates.py;
these tests prove the rules of the interpreter itself.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from streamer.errors import ApiError
from streamer.prompt_template import (
    MAX_MESSAGES,
    Message,
    PromptTemplate,
    TemplateError,
    parse_messages,
)

DIALOGUE = PromptTemplate(
    begin="<b>",
    system="S:{content};",
    user="U:{content};",
    assistant="A:{content};",
    separator="|",
    generation="A:",
)
NO_SYSTEM_TURN = PromptTemplate(user="U:{content}", assistant="A:{content}", system_joiner="+")
CONTINUATION = PromptTemplate(
    user="{content}", assistant="{content}", separator="\n", alternating=False
)


def _messages(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    return [{"role": role, "content": content} for role, content in pairs]


def test_turns_are_joined_by_the_separator_and_end_with_the_generation_prompt() -> None:
    messages = parse_messages(
        _messages(("system", "s"), ("user", "u1"), ("assistant", "a1"), ("user", "u2")),
        template=DIALOGUE,
    )
    assert DIALOGUE.render(messages) == "<b>S:s;|U:u1;|A:a1;|U:u2;|A:"


def test_without_a_system_turn_the_system_text_leads_the_first_message() -> None:
    messages = parse_messages(_messages(("system", "s"), ("user", "u")), template=NO_SYSTEM_TURN)
    assert NO_SYSTEM_TURN.render(messages) == "U:s+u"


def test_braces_in_content_are_text_not_placeholders() -> None:
    assert DIALOGUE.render([Message("user", "{content} {0} {x}")]) == "<b>U:{content} {0} {x};|A:"


def test_openai_text_parts_are_joined() -> None:
    parts = [{"type": "text", "text": "Hello, "}, {"type": "text", "text": "world"}]
    (message,) = parse_messages([{"role": "user", "content": parts}], template=DIALOGUE)
    assert message == Message("user", "Hello, world")


def test_developer_is_openais_name_for_the_system_role() -> None:
    messages = parse_messages(_messages(("developer", "d"), ("user", "u")), template=DIALOGUE)
    assert messages[0] == Message("system", "d")


def test_continuation_templates_take_any_order() -> None:
    messages = parse_messages(
        _messages(("user", "a"), ("user", "b"), ("assistant", "c")), template=CONTINUATION
    )
    assert CONTINUATION.render(messages) == "a\nb\nc"


@pytest.mark.parametrize(
    ("messages", "says"),
    [
        ([], "non-empty array"),
        ("hi", "non-empty array"),
        (None, "non-empty array"),
        (["hi"], "messages[0] must be an object"),
        ([{"role": "tool", "content": "x"}], "messages[0].role must be system, user or assistant"),
        ([{"content": "x"}], "messages[0].role must be"),
        ([{"role": "user"}], "messages[0].content must be a string"),
        ([{"role": "user", "content": 3}], "messages[0].content must be a string"),
        ([{"role": "user", "content": "  "}], "a user message needs text"),
        (
            [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}],
            "must be a text part",
        ),
        ([{"role": "user", "content": "x", "tool_calls": []}], "cannot honour: tool_calls"),
        (_messages(("system", "s")), "at least one user message"),
        (_messages(("user", "u"), ("system", "s")), "messages[1] is a system message"),
        (_messages(("assistant", "a"), ("user", "u")), "messages[0] should be a user message"),
        (_messages(("user", "u"), ("user", "u")), "messages[1] should be a assistant message"),
        (_messages(("system", "s"), ("assistant", "a")), "messages[1] should be a user message"),
        (_messages(("user", "u"), ("assistant", "a")), "The last message must be a user message"),
    ],
)
def test_bad_messages_are_a_422_naming_the_problem(messages: object, says: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse_messages(messages, template=DIALOGUE)
    assert caught.value.status == 422
    assert caught.value.kind == "invalid_request"
    assert says in caught.value.message


def test_too_many_messages_are_refused() -> None:
    messages = _messages(*[("user", "u")] * (MAX_MESSAGES + 1))
    with pytest.raises(ApiError, match=f"at most {MAX_MESSAGES}"):
        parse_messages(messages, template=CONTINUATION)


@pytest.mark.parametrize(
    ("setting", "says"),
    [
        ("{", "not valid JSON"),
        ("[]", "must be a JSON object"),
        ('{"user": "{content}"}', "needs 'assistant'"),
        ('{"user": "x", "assistant": "{content}"}', "'user' must contain {content} exactly once"),
        (
            '{"user": "{content}{content}", "assistant": "{content}"}',
            "'user' must contain {content} exactly once",
        ),
        ('{"user": "{content}", "assistant": "{content}", "system": "S"}', "'system' must"),
        ('{"user": "{content}", "assistant": "{content}", "colour": 1}', "unknown keys: colour"),
        ('{"user": "{content}", "assistant": "{content}", "stop": [""]}', "non-empty strings"),
        ('{"user": "{content}", "assistant": "{content}", "alternating": 1}', "true or false"),
        (
            '{"user": "{content}", "assistant": "{content}", "content_replacements": [["a"]]}',
            "[old, new] string pairs",
        ),
        (
            '{"user": "{content}", "assistant": "{content}", "output_replacements": [["", "x"]]}',
            "cannot replace an empty string",
        ),
    ],
)
def test_a_bad_template_setting_says_what_is_wrong(setting: str, says: str) -> None:
    with pytest.raises(TemplateError, match=None) as caught:
        PromptTemplate.from_json(setting)
    assert says in str(caught.value)


def test_a_template_round_trips_through_its_json_setting() -> None:
    setting = json.dumps(
        {
            "begin": "<s>",
            "user": "[INST] {content} [/INST]",
            "assistant": "{content}</s>",
            "content_replacements": [["\n", "<NL>"]],
            "output_replacements": [["<NL>", "\n"]],
            "stop": ["\nUser:"],
        }
    )
    template = PromptTemplate.from_json(setting)
    assert template.begin == "<s>"
    assert template.content_replacements == (("\n", "<NL>"),)
    assert template.stop == ("\nUser:",)
    assert template.alternating is True


@given(
    st.lists(
        st.tuples(st.sampled_from(["user", "assistant"]), st.text(min_size=1).filter(str.strip)),
        min_size=1,
        max_size=6,
    )
)
def test_every_content_appears_in_the_prompt_in_order(pairs: list[tuple[str, str]]) -> None:
    messages = [Message(role, content) for role, content in pairs]  # type: ignore[arg-type]
    prompt = CONTINUATION.render(messages)
    position = 0
    for message in messages:
        position = prompt.index(message.content, position) + len(message.content)


def test_an_assistant_message_as_an_sdk_returned_it_is_history_on_every_route() -> None:
    """`POST /`'s messages and the chat routes read messages alike: OpenAI's empty fields on a
    returned assistant message are accepted, the same fields on a user message are not."""
    returned = {
        "role": "assistant",
        "content": "a",
        "refusal": None,
        "tool_calls": [],
        "function_call": None,
        "annotations": [],
        "audio": None,
        "parsed": None,
        "provider_specific_fields": {"refusal": None},  # LiteLLM's
    }
    messages = parse_messages(
        [{"role": "user", "content": "u"}, returned, {"role": "user", "content": "v"}],
        template=DIALOGUE,
    )
    assert messages[1] == Message("assistant", "a")
    with pytest.raises(ApiError, match="cannot honour: refusal"):
        parse_messages([{"role": "user", "content": "u", "refusal": None}], template=DIALOGUE)
    said = {**returned, "provider_specific_fields": {"refusal": "No."}}
    with pytest.raises(ApiError, match="cannot honour: provider_specific_fields"):
        parse_messages(
            [{"role": "user", "content": "u"}, said, {"role": "user", "content": "v"}],
            template=DIALOGUE,
        )
