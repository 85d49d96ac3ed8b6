"""A deterministic stand-in LLM that produces exactly what TGI would put in its token stream.

Why: the relay and its tests need a model whose every byte is reproducible and that behaves like
TGI at the edges that matter to a streamer: the special EOS token at the end, ``max_new_tokens``
cutting the answer ("length"), stop sequences, ``details`` only when asked, ``return_full_text``,
Japanese characters held back over an empty token, and validation errors inside the stream.

The answer is picked from canned paragraphs by a stable hash of the prompt: Japanese when the
prompt contains kana or kanji, English otherwise. ``answer_length`` (the ``[[length:N]]``
directive) stretches or shortens the natural answer to exactly N tokens before EOS. ``markdown``
(``[[markdown]]``) answers ``answers.MARKDOWN`` instead, for pages that render Markdown.

The tokens are the same whichever engine serves the model; LMI and vLLM only show them their own
way (engine_lmi.py, engine_vllm.py), with TGI's stream shapes below.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jumpstream.emulator import answers
from jumpstream.emulator.model_facts import reports_prompt_tokens
from jumpstream.emulator.request import GenerateRequest, Limits, input_tokens, validation_error
from jumpstream.emulator.sse import stream_response
from jumpstream.emulator.tokenizer import (
    Piece,
    english_pieces,
    is_japanese,
    japanese_pieces,
    stable_hash,
)

DEFAULT_MODEL_ID = "huggingface-llm-falcon-7b-instruct-bf16"
#: Paragraphs in an answer when no length is asked for: short enough to end with EOS well
#: within TGI's default of 100 new tokens.
NATURAL_PARAGRAPHS = 2
_VOCAB_SIZE = 65024
_FIRST_TEXT_ID = 300
#: Byte-fallback tokens (``<0xE3>`` and so on) start at id 3 in Llama-style vocabularies.
_FIRST_BYTE_ID = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelProfile:
    """What differs between the JumpStart models this project deploys."""

    model_id: str
    eos_text: str
    eos_id: int
    #: rinna's 3.6b model writes its newlines as the literal ``<NL>``.
    newline: str = "\n"
    limits: Limits = field(default_factory=Limits)
    #: Whether its TGI reports the prompt's length in tokens (the catalog's fact; a model the
    #: catalog does not know is taken to run a current TGI).
    reports_prompt_tokens: bool = True


def profile_for(model_id: str) -> ModelProfile:
    """Falcon ends with ``<|endoftext|>``; Mistral and rinna with ``</s>``."""
    lowered = model_id.lower()
    reports = reports_prompt_tokens(model_id)
    if "mistral" in lowered:
        return ModelProfile(
            model_id=model_id,
            eos_text="</s>",
            eos_id=2,
            limits=Limits(max_input_length=8191, max_total_tokens=8192),
            reports_prompt_tokens=reports,
        )
    if "rinna" in lowered:
        newline = "\n" if "bilingual" in lowered else "<NL>"
        return ModelProfile(
            model_id=model_id,
            eos_text="</s>",
            eos_id=2,
            newline=newline,
            reports_prompt_tokens=reports,
        )
    return ModelProfile(
        model_id=model_id, eos_text="<|endoftext|>", eos_id=11, reports_prompt_tokens=reports
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Token:
    """TGI's ``Token``: id, text (possibly ``""``), logprob, special."""

    id: int
    text: str
    logprob: float
    special: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "text": self.text, "logprob": self.logprob, "special": self.special}


@dataclass(frozen=True, slots=True, kw_only=True)
class Generation:
    """One finished generation: the tokens TGI streams and what its final event reports."""

    tokens: tuple[Token, ...]
    finish_reason: str
    generated_text: str
    #: None where the model's TGI does not report it (before 2.3).
    input_length: int | None
    seed: int | None


class StandInModel:
    """Produces a :class:`Generation` for a request; pure, no I/O, no clock."""

    def __init__(self, model_id: str = DEFAULT_MODEL_ID) -> None:
        self.profile = profile_for(model_id)

    def validation_error(self, request: GenerateRequest) -> str | None:
        """TGI's ``Input validation error: ...`` for this request, or None."""
        return validation_error(request, self.profile.limits)

    def answer(
        self,
        prompt: str,
        *,
        answer_length: int | None = None,
        markdown: bool = False,
        chat_turn: bool = False,
    ) -> list[Token]:
        """The whole natural answer to ``prompt``, ending with the EOS special token.

        ``chat_turn``: the prompt ends with a chat template's assistant header, after which a
        model starts its turn without the space it starts a continued text with.
        """
        pieces = (
            self._markdown_pieces(answer_length)
            if markdown
            else self._pieces(prompt, answer_length)
        )
        if chat_turn and pieces and pieces[0].text.lstrip(" "):
            pieces[0] = Piece(text=pieces[0].text.lstrip(" "))
        seed = stable_hash(prompt)
        tokens: list[Token] = []
        for position, piece in enumerate(pieces):
            if piece.held_back:
                following = pieces[position + 1].text.encode("utf-8")
                token_id = _FIRST_BYTE_ID + following[0]
            else:
                token_id = _FIRST_TEXT_ID + stable_hash(piece.text) % (_VOCAB_SIZE - _FIRST_TEXT_ID)
            tokens.append(
                Token(id=token_id, text=piece.text, logprob=_logprob(seed, position, piece.text))
            )
        eos_logprob = _logprob(seed, len(pieces), self.profile.eos_text)
        tokens.append(
            Token(
                id=self.profile.eos_id,
                text=self.profile.eos_text,
                logprob=eos_logprob,
                special=True,
            )
        )
        return tokens

    def generate(
        self,
        request: GenerateRequest,
        *,
        answer_length: int | None = None,
        markdown: bool = False,
        chat_turn: bool = False,
    ) -> Generation:
        """Apply TGI's stopping criteria, in TGI's order, to the natural answer (the other
        engines stop on the same: the token limit, the EOS token, a stop sequence)."""
        limit = request.new_tokens_limit
        produced: list[Token] = []
        text = ""
        finish_reason = "eos_token"
        answer = self.answer(
            request.inputs, answer_length=answer_length, markdown=markdown, chat_turn=chat_turn
        )
        for count, token in enumerate(answer, 1):
            produced.append(token)
            # TGI checks the length first: an EOS that lands on the limit still reports "length".
            if count >= limit:
                finish_reason = "length"
                break
            if token.special:
                finish_reason = "eos_token"
                break
            text += token.text
            if any(text.endswith(stop) for stop in request.stop):
                finish_reason = "stop_sequence"
                break
        generated = "".join(token.text for token in produced if not token.special)
        full_text = True if request.return_full_text is None else request.return_full_text
        seed: int | None = None
        if request.do_sample:
            seed = request.seed if request.seed is not None else stable_hash("seed", request.inputs)
        return Generation(
            tokens=tuple(produced),
            finish_reason=finish_reason,
            generated_text=request.inputs + generated if full_text else generated,
            input_length=input_tokens(request) if self.profile.reports_prompt_tokens else None,
            seed=seed,
        )

    def _markdown_pieces(self, answer_length: int | None) -> list[Piece]:
        """``answers.MARKDOWN`` line by line, in the model's newlines, cut at ``answer_length``."""
        pieces: list[Piece] = []
        for line in answers.MARKDOWN.splitlines():
            pieces += [*english_pieces(line), Piece(text=self.profile.newline)]
        return pieces[:answer_length]

    def _pieces(self, prompt: str, answer_length: int | None) -> list[Piece]:
        japanese = is_japanese(prompt)
        paragraphs = answers.JAPANESE if japanese else answers.ENGLISH
        start = stable_hash(prompt)
        pieces: list[Piece] = []
        paragraph = 0
        while True:
            if answer_length is None and paragraph == NATURAL_PARAGRAPHS:
                break
            if answer_length is not None and len(pieces) >= answer_length:
                pieces = pieces[:answer_length]
                break
            text = paragraphs[(start + paragraph) % len(paragraphs)]
            if paragraph:
                pieces += [Piece(text=self.profile.newline), Piece(text=self.profile.newline)]
            if japanese:
                pieces += japanese_pieces(text, start + paragraph)
            else:
                pieces += english_pieces(text if paragraph else " " + text)
            paragraph += 1
        # Never end on a held-back piece: its character would never arrive.
        if pieces and pieces[-1].held_back:
            pieces[-1] = Piece(text=self.profile.newline)
        return pieces


def _logprob(seed: int, position: int, text: str) -> float:
    return -round((stable_hash(seed, position, text) % 2500) / 1000 + 0.0001, 4)


def stream_events(generation: Generation, request: GenerateRequest) -> list[dict[str, Any]]:
    """TGI's ``StreamResponse`` objects, one per token; the last carries the full text."""
    events: list[dict[str, Any]] = []
    last = len(generation.tokens)
    for index, token in enumerate(generation.tokens, 1):
        final = index == last
        events.append(
            stream_response(
                token.to_json(),
                index=index,
                generated_text=generation.generated_text if final else None,
                details=stream_details(generation) if final and request.details else None,
            )
        )
    return events


def stream_details(generation: Generation) -> dict[str, Any]:
    """TGI's ``StreamDetails`` (``input_length`` exists since TGI 2.3)."""
    details: dict[str, Any] = {
        "finish_reason": generation.finish_reason,
        "generated_tokens": len(generation.tokens),
        "seed": generation.seed,
    }
    if generation.input_length is not None:
        details["input_length"] = generation.input_length
    return details


def generate_response(generation: Generation, request: GenerateRequest) -> list[dict[str, Any]]:
    """What TGI's SageMaker route answers to a body without ``"stream": true``."""
    response: dict[str, Any] = {"generated_text": generation.generated_text}
    if request.details:
        response["details"] = {
            "finish_reason": generation.finish_reason,
            "generated_tokens": len(generation.tokens),
            "seed": generation.seed,
            "prefill": [],
            "tokens": [token.to_json() for token in generation.tokens],
        }
    return [response]
