"""Chat messages as the engine-templated engines read them, and the stand-in's chat template."""

from __future__ import annotations

from typing import Any

import pytest

from jumpstream.emulator.chat import ChatMessage, MessageError, read_messages, render
from jumpstream.emulator.reply import NotEmulated


def test_contents_may_be_strings_text_parts_or_null() -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [{"type": "text", "text": "Hi "}, {"type": "text", "text": "!"}],
        },
        {"role": "assistant", "content": None, "tool_calls": []},
    ]
    assert read_messages(messages) == [
        ChatMessage("system", "Be brief."),
        ChatMessage("user", "Hi !"),
        ChatMessage("assistant", ""),
    ]


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ([], "non-empty list"),
        ("hi", "non-empty list"),
        ([{"role": "user"}], "messages[0] must be an object with a 'role' and a 'content' key"),
        ([{"role": 1, "content": "x"}], "messages[0].role must be a string"),
        ([{"role": "user", "content": 5}], "a string or a list of parts"),
        ([{"role": "user", "content": [{"text": "x"}]}], "part without a type"),
        ([{"role": "user", "content": [{"type": "text"}]}], "text part without text"),
    ],
)
def test_what_is_not_a_list_of_messages_is_refused(value: Any, says: str) -> None:
    with pytest.raises(MessageError, match=says.replace("[", r"\[").replace("]", r"\]")):
        read_messages(value)


def test_parts_other_than_text_are_not_emulated() -> None:
    image = {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}
    with pytest.raises(NotEmulated, match="image_url"):
        read_messages([{"role": "user", "content": [image]}])


def test_the_template_puts_each_turn_under_its_role_and_ends_with_the_assistants_header() -> None:
    prompt = render([ChatMessage("system", "Be brief."), ChatMessage("user", "Hi")])
    assert prompt == "<|system|>\nBe brief.\n<|user|>\nHi\n<|assistant|>\n"
