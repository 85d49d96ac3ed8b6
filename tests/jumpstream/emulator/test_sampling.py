"""The vLLM-based engines' sampling parameters: read by each body's names, refused in vLLM's
words."""

from __future__ import annotations

from typing import Any

import pytest

from jumpstream.emulator.sampling import (
    LMI_NAMES,
    OPENAI_NAMES,
    Sampling,
    SamplingTypeError,
    read_sampling,
)


def test_each_body_names_the_length_and_the_stop_strings_its_own_way() -> None:
    lmi = read_sampling({"max_new_tokens": 7, "stop_sequences": ["\n"], "seed": 3}, LMI_NAMES)
    assert (lmi.max_tokens, lmi.stop, lmi.seed) == (7, ("\n",), 3)
    openai = read_sampling({"max_tokens": 9, "stop": "END", "temperature": 1}, OPENAI_NAMES)
    assert (openai.max_tokens, openai.stop, openai.temperature) == (9, ("END",), 1.0)
    assert openai.samples
    assert not read_sampling({"temperature": 0}, OPENAI_NAMES).samples


@pytest.mark.parametrize(
    ("raw", "names", "says"),
    [
        ({"max_new_tokens": "7"}, LMI_NAMES, "max_new_tokens must be an integer"),
        ({"stop_sequences": "x"}, LMI_NAMES, "stop_sequences must be a list of strings"),
        ({"stop": [1]}, OPENAI_NAMES, "stop must be a list of strings"),
        ({"temperature": True}, OPENAI_NAMES, "temperature must be a number"),
        ({"seed": 1.5}, OPENAI_NAMES, "seed must be an integer"),
    ],
)
def test_parameters_of_the_wrong_type_are_named(raw: dict[str, Any], names: Any, says: str) -> None:
    with pytest.raises(SamplingTypeError, match=says):
        read_sampling(raw, names)


@pytest.mark.parametrize(
    ("sampling", "says"),
    [
        (Sampling(max_tokens=0), "max_tokens must be at least 1, got 0."),
        (Sampling(temperature=-1.0), "temperature must be non-negative, got -1.0."),
        (Sampling(top_p=0.0), "top_p must be in (0, 1], got 0.0."),
        (Sampling(top_k=-2), "top_k must be -1 (disable), or at least 1, got -2."),
        (Sampling(repetition_penalty=0.0), "repetition_penalty must be in (0, 2], got 0.0."),
        (Sampling(frequency_penalty=2.5), "frequency_penalty must be in [-2, 2], got 2.5."),
        (Sampling(presence_penalty=-3.0), "presence_penalty must be in [-2, 2], got -3.0."),
    ],
)
def test_values_vllm_refuses(sampling: Sampling, says: str) -> None:
    assert sampling.problem() == says


def test_values_vllm_takes() -> None:
    taken = Sampling(max_tokens=1, temperature=0.0, top_p=1.0, top_k=-1, repetition_penalty=2.0)
    assert taken.problem() is None
    assert Sampling(top_k=0).problem() is None
