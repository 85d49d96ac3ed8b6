"""The system message's own replacements (`system_content_replacements`), on hand-made templates.

Some models' chat templates treat the system text apart from the turns: Falcon Instruct's folds
blank lines in every turn but only strips the system text. Without the key a template replaces
in the system text exactly as in the turns, as it always did.
"""

from __future__ import annotations

import pytest
from streamer.prompt_template import Message, PromptTemplate, TemplateError

FOLD = (("\n\n", "\n"),)
SYSTEM = Message("system", "one\n\ntwo")
ASK = Message("user", "three\n\nfour")


def test_without_the_key_the_system_text_is_replaced_like_the_turns() -> None:
    template = PromptTemplate(
        system="S:{content};",
        user="U:{content};",
        assistant="A:{content};",
        content_replacements=FOLD,
    )
    assert template.system_content_replacements is None
    assert template.render([SYSTEM, ASK]) == "S:one\ntwo;U:three\nfour;"


def test_the_system_turn_takes_its_own_replacements() -> None:
    template = PromptTemplate(
        system="S:{content};",
        user="U:{content};",
        assistant="A:{content};",
        content_replacements=FOLD,
        system_content_replacements=(),
    )
    assert template.render([SYSTEM, ASK]) == "S:one\n\ntwo;U:three\nfour;"


def test_a_folded_system_text_takes_its_own_replacements_and_the_joiner_the_turns() -> None:
    template = PromptTemplate(
        user="U:{content}",
        assistant="A:{content}",
        system_joiner="\n\n",
        content_replacements=FOLD,
        system_content_replacements=(("o", "0"),),
    )
    assert template.render([SYSTEM, ASK]) == "U:0ne\n\ntw0\nthree\nfour"


def test_strip_content_still_applies_to_the_system_text() -> None:
    template = PromptTemplate(
        system="S:{content};",
        user="U:{content};",
        assistant="A:{content};",
        strip_content=True,
        content_replacements=FOLD,
        system_content_replacements=(),
    )
    assert template.render([Message("system", "  a\n\nb  "), ASK]) == "S:a\n\nb;U:three\nfour;"


def test_the_key_is_read_from_the_catalogs_json() -> None:
    template = PromptTemplate.from_json(
        '{"user": "{content}", "assistant": "{content}", "system_content_replacements": []}'
    )
    assert template.system_content_replacements == ()


@pytest.mark.parametrize("value", ['"no"', '[["a"]]', '[["", "b"]]'])
def test_a_malformed_value_is_refused_with_the_keys_name(value: str) -> None:
    with pytest.raises(TemplateError, match="system_content_replacements"):
        PromptTemplate.from_json(
            f'{{"user": "{{content}}", "assistant": "{{content}}", '
            f'"system_content_replacements": {value}}}'
        )
