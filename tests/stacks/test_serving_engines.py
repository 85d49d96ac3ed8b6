"""Which images jumpstream streams from, and what their tags say: stacks/serving_engines.py."""

from __future__ import annotations

import pytest
from streamer.contract import ENGINES

from stacks.serving_engines import ENGINE_TABLE, engine_of_image


@pytest.mark.parametrize(
    ("repository", "tag", "engine", "version"),
    [
        ("huggingface-pytorch-tgi-inference", "2.1.1-tgi1.4.0-gpu-py310-cu121-ubuntu20.04", "tgi",
         "1.4.0"),
        ("huggingface-pytorch-tgi-inference", "2.4.0-tgi3.0.1-gpu-py311-cu124-ubuntu22.04", "tgi",
         "3.0.1"),
        ("djl-inference", "0.28.0-lmi10.0.0-cu124", "lmi", "10.0.0"),
        ("djl-inference", "0.29.0-lmi11.0.0-cu124", "lmi", "11.0.0"),
        ("vllm", "0.19.1-gpu-py312-cu129-ubuntu22.04-sagemaker", "vllm", "0.19.1"),
    ],
)  # fmt: skip
def test_an_engines_image_names_its_version(
    repository: str, tag: str, engine: str, version: str
) -> None:
    found, found_version = engine_of_image(repository, tag)
    assert (found.name, found_version) == (engine, version)
    assert found.repository == repository


@pytest.mark.parametrize(
    ("repository", "tag", "message"),
    [
        # LMI's other back ends stream otherwise, or not through rolling batch at all.
        ("djl-inference", "0.27.0-deepspeed0.12.6-cu121", "no LMI image"),
        ("djl-inference", "0.29.0-tensorrtllm0.11.0-cu124", "no LMI image"),
        ("djl-inference", "0.29.0-neuronx-sdk2.19.1", "no LMI image"),
        # A moving tag pins nothing; the EC2 image serves no /invocations.
        ("vllm", "server-sagemaker-cuda-v1", "no vLLM image"),
        ("vllm", "0.19.1-gpu-py312-cu129-ubuntu22.04-ec2", "no vLLM image"),
        ("huggingface-pytorch-tgi-inference", "latest", "no TGI image"),
        ("huggingface-pytorch-inference", "2.1.0-transformers4.37.0-gpu-py310-cu118-ubuntu20.04",
         "runs none of the engines jumpstream streams from: TGI"),
    ],
)  # fmt: skip
def test_other_images_are_refused_saying_why(repository: str, tag: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as refused:
        engine_of_image(repository, tag)
    assert str(refused.value).startswith(f"{repository}:{tag} ")


def test_one_entry_per_engine_of_the_contract() -> None:
    assert tuple(ENGINE_TABLE) == ENGINES
    assert [e.label for e in ENGINE_TABLE.values()] == ["TGI", "LMI", "vLLM"]
    # Who lays chats out with the model's own template: the OpenAI-speaking engines.
    assert [e.name for e in ENGINE_TABLE.values() if e.applies_chat_template] == ["lmi", "vllm"]
    # What one copy shards over when the spec says nothing (LMI: "max"; vLLM: 1; TGI: always set).
    assert [e.all_gpus_by_default for e in ENGINE_TABLE.values()] == [False, True, False]


def test_lmi_lays_out_chats_with_the_assistants_turn_only_from_lmi_11() -> None:
    """LMI 10 (djl-serving 0.28.0) calls apply_chat_template without add_generation_prompt, so a
    ChatML prompt ends after the user's <|im_end|>; LMI 11 (0.29.0) adds it. vLLM's chat
    completions add it by default; TGI lays out no chats at all."""
    lmi, vllm, tgi = (ENGINE_TABLE[name] for name in ("lmi", "vllm", "tgi"))
    assert [v for v in ("10.0.0", "10.9.9", "11.0.0", "12.0.1") if lmi.lays_out_chats(v)] == [
        "11.0.0", "12.0.1"
    ]  # fmt: skip
    assert lmi.chat_template_problem("10.0.0") == (
        "LMI 10.0.0 (djl-serving 0.28.0) renders a chat with the model's template but without "
        "its generation prompt, so the prompt ends after the user's turn; LMI 11.0.0 and later "
        "end it with the assistant's turn"
    )
    assert lmi.chat_template_problem("11.0.0") is None
    assert vllm.lays_out_chats("0.19.1")
    assert not tgi.lays_out_chats("2.4.0")
    assert tgi.chat_template_problem("2.4.0") == (
        "TGI does not apply the model's chat template (LMI and vLLM do)"
    )
