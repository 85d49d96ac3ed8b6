"""Each catalog model's own chat template, pinned as found, with where it was found.

`OWN` templates are the model's `tokenizer_config.json` `chat_template` (Jinja) as public copies
quote it; `DOCUMENTED` ones are the model card's (or its authors' blog's) documented layout,
transcribed here to Jinja because the model ships no template. They are test fixtures only:
tests/stacks/test_chat_templates.py renders them as transformers does, side by side with the
relay's renderer. The base models (Falcon 7B/40B/180B, Mistral 7B) have no chat layout at all:
their cards document plain text to be continued, pinned in that test.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal


@dataclass(frozen=True, slots=True)
class ChatTemplate:
    """One model's chat template and the facts needed to render it as its tokenizer does."""

    #: Where the text was found (repository, path, commit or stored-file id).
    source: str
    #: "own": the model's tokenizer chat_template; "documented": the card's layout, transcribed.
    kind: Literal["own", "documented"]
    jinja: str
    bos_token: str
    eos_token: str
    #: How a system message reaches a model whose template has no system role, as the
    #: documented convention does it: in front of the first user message, joined by this text.
    #: None where the template has a system role of its own.
    system_joiner: str | None
    #: What TGI puts in front of the relay's `inputs` itself: the BOS its tokenizer adds
    #: (TGI tokenizes `inputs` with add_special_tokens=True; see test_chat_templates.py).
    tgi_prefix: str = ""


# tiiuae/falcon-7b-instruct's tokenizer_config.json chat_template, as quoted (the first,
# original entry) in openvinotoolkit/openvino.genai src/cpp/src/chat_template_fallback_map.hpp
# @ 0ace1aa091999f83dc71ec31453d57fcc2dc0971 ("// tiiuae/falcon-7b-instruct"; the map's second
# entry is OpenVINO's own rewrite without the .replace calls). The turns are stripped and have
# blank lines folded; the system text is only stripped. tiiuae/falcon-40b-instruct carries the
# same template (issue #17's comparison; no separate stored copy of its tokenizer_config.json
# was found, so the 40B fixture is this text).
FALCON_INSTRUCT: Final = (
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
    "{% set system_message = messages[0]['content'] %}{% else %}"
    "{% set loop_messages = messages %}{% set system_message = '' %}{% endif %}"
    "{% for message in loop_messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{% endif %}{% if loop.index0 == 0 %}{{ system_message.strip() }}{% endif %}"
    "{% if message['role'] == 'user' %}"
    "{{ '\\n\\nUser: ' + message['content'].strip().replace('\\r\\n', '\\n')"
    ".replace('\\n\\n', '\\n') }}"
    "{% elif message['role'] == 'assistant' %}"
    "{{ '\\n\\nAssistant: ' + message['content'].strip().replace('\\r\\n', '\\n')"
    ".replace('\\n\\n', '\\n') }}"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '\\n\\nAssistant:' }}{% endif %}"
)

# mistralai/Mistral-7B-Instruct-v0.1's tokenizer_config.json chat_template (the v0.1 release),
# as quoted under "TheBloke/Mistral-7B-Instruct-v0.1-GPTQ" in huggingface/huggingface.js
# packages/jinja/test/templates.test.js @ 2353d0f46a55745fa7f89824909a847dc6eb4816, whose expected
# rendering is "<s>[INST] Hello, how are you? [/INST]I'm doing great. How can I help you
# today?</s> [INST] I'd like to show off how chat templating works! [/INST]"; the same text is
# in openvinotoolkit/openvino.genai tests/python_tests/tokenizer_configs.py @ e042d0f9, and
# huggingface/transformers.js packages/transformers/tests/tokenizers.test.js @ 5ed4c5c0 expects
# that rendering (and token ids [1, 733, ...]: one BOS) from Xenova/mistral-tokenizer-v1. It has
# no system role (raise_exception). The model card documents the same layout ("...</s> [INST]").
MISTRAL_INSTRUCT_V01: Final = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{% endif %}{% if message['role'] == 'user' %}"
    "{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token + ' ' }}"
    "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}"
    "{% endif %}{% endfor %}"
)

# tiiuae/falcon-180B-chat ships no chat template; its layout is documented in huggingface/blog
# falcon-180b.md @ 04b7bec7ae9a32de93dff6a1d9e691ae7d71ffa8 ("Prompt format": "System: ...\nUser:
# ...\nFalcon: ...\nUser: ...\nFalcon: and so on") with the demo Space's format_prompt:
#     prompt = ""
#     if system_prompt:
#         prompt += f"System: {system_prompt}\n"
#     for user_prompt, bot_response in history:
#         prompt += f"User: {user_prompt}\n"
#         prompt += f"Falcon: {bot_response}\n"
#     prompt += f"User: {message}\nFalcon:"
# (the blog's copy indents the last line into the loop, a typo: the Space's app.py has it after
# the loop). Transcribed: history is (user, answer) pairs, so the turns alternate.
FALCON_180B_CHAT: Final = (
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
    "{% if messages[0]['content'] %}{{ 'System: ' + messages[0]['content'] + '\\n' }}{% endif %}"
    "{% else %}{% set loop_messages = messages %}{% endif %}"
    "{% for message in loop_messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('format_prompt takes (user, answer) pairs, then the message') }}"
    "{% endif %}{% if message['role'] == 'user' %}{{ 'User: ' + message['content'] + '\\n' }}"
    "{% else %}{{ 'Falcon: ' + message['content'] + '\\n' }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Falcon:' }}{% endif %}"
)

# rinna/japanese-gpt-neox-3.6b-instruction-ppo ships no chat template; its model card's "I/O
# Format" (README.md @ 60ed51e4c5b8f267fef9fc04baca27d1d2e04158, the same section in the
# instruction-sft-v2 card, stored file id 71326188863): utterances "ユーザー: {text}" /
# "システム: {text}", every newline in a text written "<NL>", utterances joined by "<NL>", the
# prompt ending with "<NL>システム: ". No system speaker. Transcribed; a CRLF counts as one newline.
RINNA_3_6B: Final = (
    "{% for message in messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('ユーザー and システム take turns, ユーザー first') }}{% endif %}"
    "{% if not loop.first %}{{ '<NL>' }}{% endif %}"
    "{{ ('ユーザー' if message['role'] == 'user' else 'システム') + ': '"
    " + message['content'].replace('\\r\\n', '\\n').replace('\\n', '<NL>') }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<NL>システム: ' }}{% endif %}"
)

# rinna/bilingual-gpt-neox-4b-instruction-ppo ships no chat template; its model card's "I/O
# Format" (README.md @ 86b9caf688a9be20e09b324f7e6be96ed0166984): the same "ユーザー: " /
# "システム: " utterances separated by a newline "\n", ending with "システム: ". Transcribed.
RINNA_BILINGUAL_4B: Final = (
    "{% for message in messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('ユーザー and システム take turns, ユーザー first') }}{% endif %}"
    "{% if not loop.first %}{{ '\\n' }}{% endif %}"
    "{{ ('ユーザー' if message['role'] == 'user' else 'システム') + ': ' + message['content'] }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '\\nシステム: ' }}{% endif %}"
)

_FALCON_INSTRUCT_SOURCE: Final = (
    "tiiuae/falcon-7b-instruct tokenizer_config.json chat_template, quoted in "
    "openvinotoolkit/openvino.genai src/cpp/src/chat_template_fallback_map.hpp @ 0ace1aa0"
)

CHAT_TEMPLATES: Final[dict[str, ChatTemplate]] = {
    "huggingface-llm-falcon-7b-instruct-bf16": ChatTemplate(
        _FALCON_INSTRUCT_SOURCE, "own", FALCON_INSTRUCT, "", "<|endoftext|>", None
    ),
    "huggingface-llm-falcon-40b-instruct-bf16": ChatTemplate(
        _FALCON_INSTRUCT_SOURCE + " (40B Instruct: the same template)",
        "own",
        FALCON_INSTRUCT,
        "",
        "<|endoftext|>",
        None,
    ),
    "huggingface-llm-falcon-180b-chat-bf16": ChatTemplate(
        "huggingface/blog falcon-180b.md @ 04b7bec7 (Prompt format, format_prompt)",
        "documented",
        FALCON_180B_CHAT,
        "",
        "<|endoftext|>",
        None,
    ),
    # Mistral's own later templates (and mistral-common) put a system message in front of the
    # first instruction, followed by a blank line: the relay's convention for v0.1 too.
    "huggingface-llm-mistral-7b-instruct": ChatTemplate(
        "mistralai/Mistral-7B-Instruct-v0.1 tokenizer_config.json chat_template, quoted in "
        "huggingface/huggingface.js packages/jinja/test/templates.test.js @ 2353d0f4",
        "own",
        MISTRAL_INSTRUCT_V01,
        "<s>",
        "</s>",
        "\n\n",
        tgi_prefix="<s>",
    ),
    "huggingface-llm-rinna-3-6b-instruction-ppo-bf16": ChatTemplate(
        "rinna/japanese-gpt-neox-3.6b-instruction-ppo README.md (I/O Format) @ 60ed51e4",
        "documented",
        RINNA_3_6B,
        "",
        "</s>",
        "\n",
    ),
    "huggingface-llm-bilingual-rinna-4b-instruction-ppo-bf16": ChatTemplate(
        "rinna/bilingual-gpt-neox-4b-instruction-ppo README.md (I/O Format) @ 86b9caf6",
        "documented",
        RINNA_BILINGUAL_4B,
        "",
        "</s>",
        "\n",
    ),
}

#: The base models: no chat template; their text is continued as it stands.
BASE_MODELS: Final = (
    "huggingface-llm-falcon-7b-bf16",
    "huggingface-llm-falcon-40b-bf16",
    "huggingface-llm-falcon-180b-bf16",
    "huggingface-llm-mistral-7b",
)
