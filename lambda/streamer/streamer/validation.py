"""Checking a generate request against TGI's schema before it costs a SageMaker call.

TGI rejects bad parameters too, but only after SageMaker has routed the call, inside a stream that
has already said 200, and in words about Rust types. Checking here gives the caller a real 400 or
422 at once, with a sentence naming the field and its valid range. The rules are a table, one per
parameter TGI knows, taken from TGI's own validation (`router/src/validation.rs`). They are the
relay's own request whatever the model runs on: engines.py writes each engine's body from it, and
refuses what an engine cannot honour.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from .errors import ApiError
from .prompt_template import Message, PromptTemplate, parse_messages

__all__ = [
    "KNOWN_PARAMETERS",
    "MAX_STOP_SEQUENCES",
    "GenerateRequest",
    "decode_body",
    "parse_request",
]

_TOP_LEVEL_KEYS: Final = ("inputs", "messages", "parameters", "stream")
MAX_STOP_SEQUENCES: Final = 4
_MAX_TOP_N_TOKENS: Final = 5
_I32_MAX: Final = 2**31 - 1
_U32_MAX: Final = 2**32 - 1
_U64_MAX: Final = 2**64 - 1
_GRAMMAR_TYPES: Final = ("json", "regex", "grammar")
_SHOWN_NAME_CHARS: Final = 40
# What TGI 1.4-2.4 (every model in the catalog) generates when max_new_tokens is not given. The
# relay sends it explicitly, capped by the limit, so a newer TGI's "whatever fits" default cannot
# run past the limit the function's timeout was sized for.
DEFAULT_MAX_NEW_TOKENS: Final = 100


@dataclass(frozen=True, slots=True, kw_only=True)
class GenerateRequest:
    """A request that passed every check, ready to forward (engines.py writes each engine's body).

    It is a prompt (`inputs`), or, for a model whose engine lays out chats with the model's own
    chat template (ENGINE_CHAT_TEMPLATE), the chat's `messages` as they are (`inputs` then
    empty). A chat the relay lays out itself (PROMPT_TEMPLATE) is a prompt.
    """

    inputs: str
    parameters: Mapping[str, object]
    #: A chat for the engine to lay out; empty for a prompt.
    messages: tuple[Message, ...] = ()
    default_max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS
    #: Stop sequences the relay added for a chat request, to be cut from the answer it streams.
    added_stop_sequences: tuple[str, ...] = ()
    #: The prompt is a chat laid out from messages, so the answer is the assistant's next turn:
    #: it is shown without the whitespace it starts with (model_text.LeadingSpaceTrimmer).
    chat_turn: bool = False

    @property
    def max_new_tokens(self) -> int:
        """The answer's length in tokens: the caller's, else the default within the limit."""
        given = self.parameters.get("max_new_tokens")
        return given if type(given) is int else self.default_max_new_tokens

    @property
    def prompt_text(self) -> str:
        """What the relay knows of the prompt's text: `inputs`, or the messages' texts in order
        (the engine lays them out, adding what its template adds)."""
        if not self.messages:
            return self.inputs
        return "\n\n".join(message.content for message in self.messages)

    def upstream_body(self) -> bytes:
        """TGI's body: always streaming; details, max_new_tokens and return_full_text as below
        unless the caller chose.

        `stream` must be at the top level (TGI ignores it inside parameters). `details` makes the
        final event carry finish_reason and generated_tokens, which the done event reports.
        `return_full_text` is true by default on SageMaker, which makes the final event's
        `generated_text` repeat the whole prompt: the relay never uses that text, and a
        megabyte prompt would make that one line a megabyte too.
        """
        parameters = {"details": True, **self.parameters}
        if parameters.get("max_new_tokens") is None:
            parameters["max_new_tokens"] = self.default_max_new_tokens
        if parameters.get("return_full_text") is None:
            parameters["return_full_text"] = False
        body = {"inputs": self.inputs, "parameters": parameters, "stream": True}
        return json.dumps(body, ensure_ascii=False, allow_nan=False).encode("utf-8")


def parse_request(
    body: bytes,
    *,
    max_new_tokens_limit: int,
    template: PromptTemplate | None = None,
    engine_chat: bool = False,
) -> GenerateRequest:
    """Decode and check a request body; raise ApiError (400 or 422) saying what is wrong.

    The prompt is either `inputs`, sent as it is, or chat `messages`: laid out with the deployed
    model's prompt template, or, with `engine_chat`, checked and sent as they are for the engine
    to lay out with the model's own. A template's stop sequences join the caller's, and are cut
    from the answer, since the caller never wrote them.
    """
    document = _decode(body)
    if not isinstance(document, dict):
        raise _invalid_body(
            f'The body must be a JSON object such as {{"inputs": "..."}} (got {_kind(document)}).'
        )
    for key in document:
        if key not in _TOP_LEVEL_KEYS:
            raise _invalid(
                f"Unknown field {_name(key)}: the body may only have inputs or messages, "
                "parameters and stream."
            )
    if "stream" in document and not isinstance(document["stream"], bool):
        raise _invalid(
            f"stream must be true or false (got {_kind(document['stream'])}); "
            "the relay always streams."
        )
    parameters = _parameters(document.get("parameters", {}), max_new_tokens_limit)
    added_stops: tuple[str, ...] = ()
    default_max_new_tokens = min(DEFAULT_MAX_NEW_TOKENS, max_new_tokens_limit)
    if "messages" in document and "inputs" in document:
        raise _invalid("Send either inputs (a prompt) or messages (a chat), not both.")
    if "messages" in document and engine_chat:
        return GenerateRequest(
            inputs="",
            messages=tuple(parse_messages(document["messages"], template=None)),
            parameters=parameters,
            default_max_new_tokens=default_max_new_tokens,
        )
    if "messages" in document:
        if template is None:
            raise _invalid(
                "This relay has no prompt template for its model, so it cannot lay out chat "
                "messages: send the prompt as inputs."
            )
        messages = parse_messages(document["messages"], template=template)
        inputs = template.render(messages)
        added_stops = tuple(stop for stop in template.stop if stop not in _stops(parameters))
        stops = [*added_stops, *_stops(parameters)]
        if len(stops) > MAX_STOP_SEQUENCES:
            room = MAX_STOP_SEQUENCES - len(added_stops)
            raise _invalid(
                f"parameters.stop may hold at most {room} sequences with chat messages: this "
                f"model's chat format adds {len(added_stops)} of TGI's {MAX_STOP_SEQUENCES}."
            )
        if added_stops:
            parameters["stop"] = stops
    else:
        inputs = _inputs(document)
    return GenerateRequest(
        inputs=inputs,
        parameters=parameters,
        default_max_new_tokens=default_max_new_tokens,
        added_stop_sequences=added_stops,
        chat_turn="messages" in document,
    )


def _inputs(document: Mapping[str, object]) -> str:
    if "inputs" not in document:
        raise _invalid(
            "inputs is missing: send the prompt as a non-empty string in inputs "
            "(or a chat as messages)."
        )
    inputs = document["inputs"]
    # Only "" is refused, as TGI does: a prompt of spaces or newlines is odd but valid.
    if not isinstance(inputs, str) or not inputs:
        got = "an empty string" if isinstance(inputs, str) else _kind(inputs)
        raise _invalid(f"inputs must be a non-empty string (got {got}).")
    return inputs


def _parameters(parameters: object, max_new_tokens_limit: int) -> dict[str, object]:
    if not isinstance(parameters, dict):
        raise _invalid(f"parameters must be an object (got {_kind(parameters)}).")
    for name, value in parameters.items():
        rule = _RULES.get(name)
        if rule is None:
            raise _invalid(
                f"Unknown parameter {_name(name)}: known parameters are "
                f"{', '.join(KNOWN_PARAMETERS)}."
            )
        if value is None and rule.nullable:
            continue
        problem = rule.check(value, max_new_tokens_limit)
        if problem is not None:
            raise _invalid(f"parameters.{name} must be {problem} (got {_shown(value)}).")
    return dict(parameters)


def _stops(parameters: Mapping[str, object]) -> list[str]:
    stops = parameters.get("stop", [])
    return [stop for stop in stops if isinstance(stop, str)] if isinstance(stops, list) else []


def decode_body(body: bytes) -> object:
    """The body's JSON, read strictly (no NaN, no lone surrogates); ApiError 400 if it is not."""
    return _decode(body)


def _decode(body: bytes) -> object:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise _invalid_body("The body is not valid UTF-8 text.") from None
    if not text.strip():
        raise _invalid_body('The body is empty: send a JSON object such as {"inputs": "..."}.')
    try:
        document = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except json.JSONDecodeError as error:
        raise _invalid_body(
            f"The body is not valid JSON (line {error.lineno}, column {error.colno}: {error.msg})."
        ) from None
    except _NonFiniteNumberError as error:
        raise _invalid_body(f"The body is not valid JSON: {error}") from None
    except ValueError:
        # Python refuses integers of more than 4300 digits.
        raise _invalid_body("The body holds a number too long to read.") from None
    except RecursionError:
        raise _invalid_body("The body is nested too deeply to read.") from None
    try:
        # A "\ud800" escape decodes to a lone surrogate that UTF-8 (and TGI) cannot carry.
        json.dumps(document, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise _invalid_body(
            "The body holds an unpaired UTF-16 surrogate escape (such as \\ud800); "
            "strings must be valid Unicode."
        ) from None
    except RecursionError:
        raise _invalid_body("The body is nested too deeply to read.") from None
    return document


class _NonFiniteNumberError(ValueError):
    pass


def _reject_constant(name: str) -> float:
    raise _NonFiniteNumberError(f"{name} is not a JSON number.")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NonFiniteNumberError(f"{text} is too large for a number.")
    return value


def _invalid_body(message: str) -> ApiError:
    return ApiError(kind="invalid_body", message=message)


def _invalid(message: str) -> ApiError:
    return ApiError(kind="invalid_request", message=message)


def _kind(value: object) -> str:
    """What a JSON value is, for messages that must not echo arbitrary caller data."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


def _shown(value: object) -> str:
    """Numbers are shown (they explain a range error); anything else only by its kind."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        text = repr(value)
        return text if len(text) <= _SHOWN_NAME_CHARS else text[:_SHOWN_NAME_CHARS] + "…"
    return _kind(value)


def _name(name: str) -> str:
    shown = name if len(name) <= _SHOWN_NAME_CHARS else name[:_SHOWN_NAME_CHARS] + "…"
    return json.dumps(shown, ensure_ascii=False)


# A check returns None when the value is fine, else the end of "parameters.X must be ...".
_Check = Callable[[object, int], str | None]


@dataclass(frozen=True, slots=True)
class _Rule:
    check: _Check
    # TGI's Option<T> fields take null as "use the default"; its plain bool and list fields don't.
    nullable: bool


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    # Integers compare exactly with floats; converting a huge one to float would overflow.
    if isinstance(value, float):
        return math.isfinite(value)
    return _is_int(value)


def _integer(low: int, high: int) -> _Check:
    def check(value: object, _limit: int) -> str | None:
        if _is_int(value) and low <= value <= high:  # type: ignore[operator]
            return None
        return f"an integer from {low} to {high}"

    return check


def _max_new_tokens(value: object, limit: int) -> str | None:
    if _is_int(value) and 1 <= value <= limit:  # type: ignore[operator]
        return None
    return f"an integer from 1 to {limit}"


def _positive(value: object, _limit: int) -> str | None:
    if _is_number(value) and value > 0:  # type: ignore[operator]
        return None
    return "a number greater than 0"


def _frequency_penalty(value: object, _limit: int) -> str | None:
    if _is_number(value) and -2 <= value <= 2:  # type: ignore[operator]
        return None
    return "a number from -2 to 2"


def _open_unit_interval(value: object, _limit: int) -> str | None:
    if _is_number(value) and 0 < value < 1:  # type: ignore[operator]
        return None
    return "a number greater than 0 and less than 1"


def _boolean(value: object, _limit: int) -> str | None:
    return None if isinstance(value, bool) else "true or false"


def _best_of(value: object, _limit: int) -> str | None:
    if _is_int(value) and value == 1:
        return None
    return "1 (TGI streams only with best_of 1)"


def _decoder_input_details(value: object, _limit: int) -> str | None:
    if value is False:
        return None
    return "false (TGI cannot stream decoder input details)"


def _stop(value: object, _limit: int) -> str | None:
    if (
        isinstance(value, list)
        and len(value) <= MAX_STOP_SEQUENCES
        and all(isinstance(item, str) and item for item in value)
    ):
        return None
    return f"a list of at most {MAX_STOP_SEQUENCES} non-empty strings"


def _string(value: object, _limit: int) -> str | None:
    return None if isinstance(value, str) else "a string"


def _grammar(value: object, _limit: int) -> str | None:
    expected = (
        'an object {"type": "json" | "regex" | "grammar", "value": ...} whose value is a '
        "JSON schema for json and a string otherwise"
    )
    if not isinstance(value, dict) or set(value) != {"type", "value"}:
        return expected
    kind, body = value["type"], value["value"]
    if kind not in _GRAMMAR_TYPES or body is None:
        return expected
    if kind != "json" and not isinstance(body, str):
        return expected
    if kind == "json" and not isinstance(body, dict | str):
        return expected
    return None


_RULES: Final[Mapping[str, _Rule]] = {
    "best_of": _Rule(_best_of, nullable=True),
    "temperature": _Rule(_positive, nullable=True),
    "repetition_penalty": _Rule(_positive, nullable=True),
    "frequency_penalty": _Rule(_frequency_penalty, nullable=True),
    "top_k": _Rule(_integer(1, _I32_MAX), nullable=True),
    "top_p": _Rule(_open_unit_interval, nullable=True),
    "typical_p": _Rule(_open_unit_interval, nullable=True),
    "do_sample": _Rule(_boolean, nullable=False),
    "max_new_tokens": _Rule(_max_new_tokens, nullable=True),
    "return_full_text": _Rule(_boolean, nullable=True),
    "stop": _Rule(_stop, nullable=False),
    "truncate": _Rule(_integer(1, _U32_MAX), nullable=True),
    "watermark": _Rule(_boolean, nullable=False),
    "details": _Rule(_boolean, nullable=False),
    "decoder_input_details": _Rule(_decoder_input_details, nullable=False),
    "seed": _Rule(_integer(0, _U64_MAX), nullable=True),
    "top_n_tokens": _Rule(_integer(0, _MAX_TOP_N_TOKENS), nullable=True),
    "grammar": _Rule(_grammar, nullable=True),
    "adapter_id": _Rule(_string, nullable=True),
}

KNOWN_PARAMETERS: Final = tuple(_RULES)
