"""The catalog's per-instance facts and the invariants it refuses to load without."""

from __future__ import annotations

import copy
import json

import pytest
from streamer.contract import MAX_NEW_TOKENS_LIMIT

from stacks.catalog import CATALOG_PATH, load_catalog, parse_catalog
from stacks.errors import ConfigError

F40 = "huggingface-llm-falcon-40b-bf16"
MI = "huggingface-llm-mistral-7b-instruct"


@pytest.mark.parametrize(
    ("model_id", "instance_type", "gpus", "batch_env"),
    [
        (F40, "ml.g5.12xlarge", "4", True),
        (F40, "ml.g5.24xlarge", "4", True),
        (F40, "ml.g5.48xlarge", "8", False),
        (F40, "ml.p4d.24xlarge", "8", False),
        (MI, "ml.g5.2xlarge", "1", False),
        (MI, "ml.g5.16xlarge", "1", False),
        (MI, "ml.g5.24xlarge", "4", False),
        (MI, "ml.p4d.24xlarge", "8", False),
        ("huggingface-llm-rinna-3-6b-instruction-ppo-bf16", "ml.g5.xlarge", "1", False),
        ("huggingface-llm-falcon-180b-chat-bf16", "ml.p5.48xlarge", "8", False),
    ],
)
def test_gpus_and_batch_limits_per_instance_type(
    model_id: str, instance_type: str, gpus: str, batch_env: bool
) -> None:
    env = load_catalog().get(model_id).container_environment(instance_type)
    assert env["SM_NUM_GPUS"] == gpus
    if batch_env:
        assert env["MAX_BATCH_PREFILL_TOKENS"] == "2048"
        assert env["MAX_BATCH_TOTAL_TOKENS"] == "2048"
    elif "mistral" not in model_id:
        assert "MAX_BATCH_PREFILL_TOKENS" not in env
    assert "MAX_BATCH_TOTAL_TOKENS" not in env or batch_env


def test_supported_instance_types_match_the_specs() -> None:
    catalog = load_catalog()
    g5 = ["ml.g5.2xlarge", "ml.g5.4xlarge", "ml.g5.8xlarge", "ml.g5.16xlarge"]
    assert list(catalog.get("huggingface-llm-falcon-7b-bf16").instance_types) == g5
    assert list(catalog.get("huggingface-llm-mistral-7b").instance_types) == g5
    assert list(catalog.get("huggingface-llm-rinna-3-6b-instruction-ppo-bf16").instance_types) == [
        "ml.g5.xlarge", "ml.g5.2xlarge", "ml.g5.4xlarge"
    ]  # fmt: skip
    assert list(catalog.get("huggingface-llm-falcon-180b-bf16").instance_types) == [
        "ml.p4de.24xlarge", "ml.p5.48xlarge"
    ]  # fmt: skip
    assert len(catalog.get(MI).instance_types) == 8


def test_regions_and_pinned_spec_versions() -> None:
    catalog = load_catalog()
    assert {m.id: m.spec_version for m in catalog.models.values()} == {
        "huggingface-llm-falcon-7b-bf16": "4.1.23",
        "huggingface-llm-falcon-7b-instruct-bf16": "4.6.16",
        "huggingface-llm-falcon-40b-bf16": "2.4.21",
        "huggingface-llm-falcon-40b-instruct-bf16": "2.3.22",
        "huggingface-llm-falcon-180b-bf16": "1.7.17",
        "huggingface-llm-falcon-180b-chat-bf16": "1.6.17",
        "huggingface-llm-mistral-7b": "2.5.0",
        "huggingface-llm-mistral-7b-instruct": "3.1.0",
        "huggingface-llm-rinna-3-6b-instruction-ppo-bf16": "2.1.22",
        "huggingface-llm-bilingual-rinna-4b-instruction-ppo-bf16": "2.2.13",
    }
    # Where the pinned specs name an image (JumpStart hosts the artifacts): 27 regions, but the
    # Mistral specs have none in GovCloud nor in cn-northwest-1.
    for model in catalog.models.values():
        gov = {r for r in model.image_regions if r.startswith("us-gov-")}
        assert len(model.image_regions) == (24 if "mistral" in model.id else 27)
        assert gov == (set() if "mistral" in model.id else {"us-gov-east-1", "us-gov-west-1"})
        assert ("cn-northwest-1" in model.image_regions) == ("mistral" not in model.id)
        assert "cn-north-1" in model.image_regions
        assert set(model.regions) <= set(model.image_regions)


def _doc() -> dict:
    return json.loads(CATALOG_PATH.read_text())


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda m: m.update(default_instance_type="ml.t3.medium"), "default instance type"),
        (lambda m: m.update(artifact_key="model.zip"), "must end in '/' (prefix) or '.tar.gz'"),
        (lambda m: m.update(image_tag="2.1.1-tgi9.9.9-gpu"), "does not carry TGI"),
        (lambda m: m["instance_types"]["ml.g5.2xlarge"].update(gpus=0), "at least one GPU"),
        (lambda m: m["startup"].update(model_data_download_timeout_seconds=7200), "60..3600"),
        (lambda m: m["environment"].update(MAX_TOTAL_TOKENS=[1]), "string or a number"),
        (lambda m: m.update(image_regions=[]), "no regions"),
        (lambda m: m.update(image_regions=["eu-west-3", "af-south-1"]), "no regions"),
    ],
)
def test_a_broken_catalog_is_refused(mutate, message: str) -> None:
    doc = copy.deepcopy(_doc())
    mutate(doc["models"][0])
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_catalog(doc)


def test_a_duplicate_model_is_refused() -> None:
    doc = _doc()
    doc["models"].append(doc["models"][0])
    with pytest.raises(ConfigError, match="listed twice"):
        parse_catalog(doc)


def test_every_model_hands_the_relay_its_context() -> None:
    """The relay sizes an answer without max_tokens by these (streamer/answer_room.py). Where it
    has no tokenizer (TGI counts the prompt), the default limit fits after any prompt TGI takes,
    so no answer is sized by the prompt's bytes unless an environment raises its limit."""
    for model in load_catalog().models.values():
        for instance_type in model.instance_types:
            limits = model.context_limits(instance_type)
            assert limits is not None, model.id
            total, prompt = limits
            assert limits == (
                int(model.environment["MAX_TOTAL_TOKENS"]),
                int(model.environment["MAX_INPUT_LENGTH"]),
            )
            assert 0 < prompt < total
            if model.reports_prompt_tokens:
                assert MAX_NEW_TOKENS_LIMIT.default <= total - prompt, model.id
