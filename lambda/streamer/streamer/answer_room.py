"""How long an OpenAI answer may run when the caller set no max_tokens: as long as the model's
context allows, within the environment's MAX_NEW_TOKENS_LIMIT.

OpenAI's default is "as long as the context allows"; LangChain, LiteLLM and the AI SDK send no
max_tokens unless told to, so TGI's own default (100 tokens) cut their answers short. What TGI
does with a longer one (router/src/validation.rs, the same in TGI 1.4.0, 2.0.0 and 2.4.0):
- prompt tokens + max_new_tokens above MAX_TOTAL_TOKENS is refused before any token (`inputs`
  tokens + `max_new_tokens` must be <= ...): TGI never lowers max_new_tokens to the room left;
- a prompt above MAX_INPUT_LENGTH tokens is refused whatever max_new_tokens is;
- max_new_tokens left out is 100 (router/src/lib.rs, `default_max_new_tokens`); sent as null it
  is exactly the room left, but unbounded by the relay's limit, which the function's timeout was
  sized for, so the relay never sends null.
So the relay must ask for no more than the room the prompt leaves, and it does not know the
prompt's tokens before the call unless it has the model's tokenizer (prompt_tokens.py). In order:
- every prompt TGI takes leaves MAX_TOTAL_TOKENS - MAX_INPUT_LENGTH: a limit within that is
  asked for as it is, with nothing to count (every 2048-token model in the catalog);
- with the tokenizer, the prompt is counted as TGI counts it, and the room is exact;
- without, the prompt's UTF-8 length bounds its tokens (each token of a byte-level BPE or a
  sentencepiece vocabulary, the catalog's kinds, covers at least one byte of the text, and the
  tokenizer adds a few special tokens), so the room is not overestimated; a long prompt then
  gets less room than it may have had, not a refusal. (Not proven for text a normaliser
  expands, such as NFKC's one-character `㍿` into four: such prompts are not seen in practice.)
A caller who sets max_tokens gets exactly that, and TGI's word if it does not fit.

LMI and vLLM enforce their context the same way (MAX_MODEL_LEN, the catalog's total), and a chat
they lay out with the model's own chat template is longer than its messages by what the template
adds (role headers, a default system prompt), which the relay never sees: each message is allowed
_TEMPLATE_TOKENS_PER_TURN of it, and the template _TEMPLATE_TOKENS besides (Llama 3.1's date
header and Qwen's default system prompt are about 25 tokens, a turn's header about 5). An
allowance, not a count: a template that adds more than that leaves the engine to refuse, in its
words, a chat that fills the context.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from .prompt_tokens import PromptCounter

__all__ = ["AnswerRoom", "ContextWindow"]

# Special tokens a tokenizer adds around a prompt (BOS, EOS, a sentencepiece word start), with
# room to spare: the byte bound's margin.
_ADDED_TOKENS: Final = 8
# What an engine's chat template may add to a chat, per message and once.
_TEMPLATE_TOKENS_PER_TURN: Final = 8
_TEMPLATE_TOKENS: Final = 64


@dataclass(frozen=True, slots=True, kw_only=True)
class ContextWindow:
    """The model's context as its engine enforces it (TGI's MAX_TOTAL_TOKENS and
    MAX_INPUT_LENGTH; LMI's and vLLM's max model length, with no limit of the prompt's own)."""

    max_total_tokens: int
    max_input_tokens: int

    @property
    def room_after_any_prompt(self) -> int:
        """The new tokens there is room for after the longest prompt TGI takes."""
        return self.max_total_tokens - self.max_input_tokens

    def room_after(self, prompt_tokens: int) -> int:
        """The new tokens there is room for after a prompt of `prompt_tokens` tokens (at least
        one: a prompt too long for any answer is TGI's to refuse, in its words)."""
        return max(1, self.max_total_tokens - min(prompt_tokens, self.max_input_tokens))


class AnswerRoom:
    """The max_new_tokens for an OpenAI request that set none."""

    def __init__(
        self, *, limit: int, window: ContextWindow | None, counter: PromptCounter | None
    ) -> None:
        """`limit` is MAX_NEW_TOKENS_LIMIT; `window` the model's context, if the relay knows it;
        `counter` the model's tokenizer, where the relay has it."""
        self._limit = limit
        self._window = window
        self._counter = counter

    async def max_new_tokens(self, inputs: str, *, engine_turns: int = 0) -> int:
        """As many new tokens as the limit allows and `inputs` leaves room for; `engine_turns`
        is how many messages of a chat the engine lays out (`inputs` is then their text)."""
        window = self._window
        if window is None or self._limit <= window.room_after_any_prompt:
            return self._limit
        prompt_tokens = None if self._counter is None else await self._counter.count(inputs)
        if prompt_tokens is None:
            prompt_tokens = len(inputs.encode("utf-8")) + _ADDED_TOKENS
        if engine_turns:
            prompt_tokens += _TEMPLATE_TOKENS + _TEMPLATE_TOKENS_PER_TURN * engine_turns
        return min(self._limit, window.room_after(prompt_tokens))
