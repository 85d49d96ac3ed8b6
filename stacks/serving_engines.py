"""The servers a JumpStart model can run on, as the catalog and its tools know them.

One entry per engine of `contract.ENGINES`: the Deep Learning Containers repository its image
comes from and how its tag names the engine's version, the environment variables that say how
many GPUs one copy of the model shards over and how long a context it takes, and whether it can
lay out chats with the model's own template. The catalog (stacks/catalog.py) checks its facts
against this table; `catalog refresh` and `catalog add` (jumpstream/catalog_facts.py) read a
JumpStart spec's image with it. Standard library only, like the rest of the catalog.

Where each fact comes from:
- TGI: `SM_NUM_GPUS` shards the model (JumpStart's specs set it per instance type);
  `MAX_TOTAL_TOKENS` and `MAX_INPUT_LENGTH` (`MAX_INPUT_TOKENS` in newer TGIs) bound the context.
- LMI (DJL Serving, `djl-inference:<djl>-lmi<version>-<cuda>`): `OPTION_TENSOR_PARALLEL_DEGREE`
  (LMI's `option.tensor_parallel_degree`), else `TENSOR_PARALLEL_DEGREE`, else `max`, i.e. every
  GPU of the instance (djl-serving's LmiConfigRecommender.setTensorParallelDegree in 0.28.0 and
  0.29.0, LMI 10 and 11); `OPTION_MAX_MODEL_LEN` bounds the context (LMI has no plain
  MAX_MODEL_LEN). Other djl-inference images (DeepSpeed, TensorRT-LLM, Neuron) are not LMI's
  vLLM-based rolling batch and are refused. LMI lays out a chat with
  `tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)` from LMI
  11 (djl-serving 0.29.0, commit b6ec736f); LMI 10 (0.28.0) leaves out `add_generation_prompt`,
  so a ChatML model's prompt ends after the user's `<|im_end|>` with no `<|im_start|>assistant`
  turn to answer in (djl_python/chat_completions/chat_utils.py in both).
- vLLM (AWS's vLLM container for SageMaker, `vllm:<version>-...-sagemaker`): every `SM_VLLM_*`
  variable becomes a vLLM flag, so `SM_VLLM_TENSOR_PARALLEL_SIZE` (default 1) shards the model
  and `SM_VLLM_MAX_MODEL_LEN` bounds the context (AWS's DLC documentation, "Configuration").
  Moving tags such as `server-sagemaker-cuda-v1` name no version and are refused: a pinned
  catalog pins its image. Its chat completions add the generation prompt unless a request asks
  otherwise (`add_generation_prompt`, default true), in every version AWS's container ships.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from streamer.contract import ENGINES

__all__ = ["ENGINE_TABLE", "ServingEngine", "engine_of_image", "serving_engine"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ServingEngine:
    """One engine: where its image lives and which of the container's variables it reads."""

    #: Its name in the catalog and in the function's SERVING_ENGINE setting (contract.ENGINES).
    name: str
    #: How the README's model table and messages call it.
    label: str
    #: The Deep Learning Containers ECR repository of its images.
    repository: str
    #: Finds the engine's version in an image tag (group 1).
    tag_version: re.Pattern[str]
    #: The variables that say how many GPUs one copy of the model shards over, first one wins.
    gpu_variables: tuple[str, ...]
    #: Unset, a copy shards over every GPU of its instance (True) or over one (False).
    all_gpus_by_default: bool
    #: The variable holding the most prompt + answer tokens the engine takes, if any.
    context_variable: str | None
    #: The engine can lay out chat messages with the model's own chat template.
    applies_chat_template: bool
    #: The first version whose chat layout ends with the template's generation prompt (the
    #: assistant's turn, which the model answers in); None where every version's does.
    generation_prompt_since: str | None = None
    #: Why versions before `generation_prompt_since` cannot lay out chats, for the refusal.
    generation_prompt_missing: str = ""

    def version(self, tag: str) -> str | None:
        """The engine's version named by an image tag of its repository, or None."""
        found = self.tag_version.search(tag)
        return found.group(1) if found else None

    def chat_template_problem(self, version: str) -> str | None:
        """Why this engine at `version` cannot lay out a model's chats with its own template,
        in one clause, or None when it can."""
        if not self.applies_chat_template:
            able = " and ".join(e.label for e in ENGINE_TABLE.values() if e.applies_chat_template)
            return f"{self.label} does not apply the model's chat template ({able} do)"
        since = self.generation_prompt_since
        if since is not None and _version(version) < _version(since):
            return (
                f"{self.label} {version} {self.generation_prompt_missing}; {self.label} {since} "
                "and later end it with the assistant's turn"
            )
        return None

    def lays_out_chats(self, version: str) -> bool:
        """This engine at `version` lays out chats with the model's own template, ending them
        with the assistant's turn for the model to answer in."""
        return self.chat_template_problem(version) is None


ENGINE_TABLE: dict[str, ServingEngine] = {
    engine.name: engine
    for engine in (
        ServingEngine(
            name="tgi",
            label="TGI",
            repository="huggingface-pytorch-tgi-inference",
            tag_version=re.compile(r"-tgi(\d+\.\d+\.\d+)-"),
            gpu_variables=("SM_NUM_GPUS",),
            all_gpus_by_default=False,
            context_variable="MAX_TOTAL_TOKENS",
            applies_chat_template=False,
        ),
        ServingEngine(
            name="lmi",
            label="LMI",
            repository="djl-inference",
            tag_version=re.compile(r"^\d+\.\d+\.\d+-lmi(\d+\.\d+\.\d+)-"),
            gpu_variables=("OPTION_TENSOR_PARALLEL_DEGREE", "TENSOR_PARALLEL_DEGREE"),
            all_gpus_by_default=True,
            context_variable="OPTION_MAX_MODEL_LEN",
            applies_chat_template=True,
            generation_prompt_since="11.0.0",
            generation_prompt_missing=(
                "(djl-serving 0.28.0) renders a chat with the model's template but without its "
                "generation prompt, so the prompt ends after the user's turn"
            ),
        ),
        ServingEngine(
            name="vllm",
            label="vLLM",
            repository="vllm",
            tag_version=re.compile(r"^(\d+\.\d+\.\d+)-\S*sagemaker"),
            gpu_variables=("SM_VLLM_TENSOR_PARALLEL_SIZE",),
            all_gpus_by_default=False,
            context_variable="SM_VLLM_MAX_MODEL_LEN",
            applies_chat_template=True,
        ),
    )
}
assert tuple(ENGINE_TABLE) == ENGINES, "one entry per contract.ENGINES, in its order"


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def serving_engine(name: str) -> ServingEngine:
    """The engine called `name` (one of contract.ENGINES); KeyError otherwise."""
    return ENGINE_TABLE[name]


def engine_of_image(repository: str, tag: str) -> tuple[ServingEngine, str]:
    """The engine an image `repository:tag` runs and its version; ValueError saying why not."""
    for engine in ENGINE_TABLE.values():
        if repository != engine.repository:
            continue
        version = engine.version(tag)
        if version is None:
            raise ValueError(
                f"{repository}:{tag} is no {engine.label} image jumpstream streams from (its "
                f"tag names no {engine.label} version)"
            )
        return engine, version
    known = ", ".join(f"{e.label} ({e.repository})" for e in ENGINE_TABLE.values())
    raise ValueError(
        f"{repository}:{tag} runs none of the engines jumpstream streams from: {known}"
    )
