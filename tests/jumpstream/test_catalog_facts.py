"""The rules `catalog refresh` and `catalog add` share (jumpstream/catalog_facts.py), on specs
parsed by sagemaker-core's JumpStartModelSpecs as the commands parse them, without S3."""

from __future__ import annotations

import copy
import json
from importlib import resources
from typing import Any

import pytest
from sagemaker.core.jumpstart.types import JumpStartModelSpecs

from jumpstream.catalog_facts import (
    DEFAULT_STARTUP_SECONDS,
    ENTRY_ORDER,
    chat_from_tokenizer,
    eos_from_tokenizer,
    facts_from_spec,
    licence_from_eula,
    tokenizer_config,
    tokenizer_config_key,
    version_key,
)
from jumpstream.catalog_sources import GPUS_NOT_IN_SAGEMAKER_CORE, instance_gpu_counts
from stacks.serving_engines import ENGINE_TABLE
from tests.jumpstream import jumpstart_specs
from tests.jumpstream.jumpstart_bucket import catalog_doc

QWEN = "huggingface-llm-qwen2-7b-instruct"
ACCOUNTS = catalog_doc()["image"]
GPUS = instance_gpu_counts()
NEW = {"id": QWEN, "name": "Qwen2 7B Instruct", "deprecated": None}


def qwen() -> dict[str, Any]:
    return jumpstart_specs.publishable(jumpstart_specs.load(QWEN, "1.0.6"))


def facts(spec: dict[str, Any], current: dict[str, Any] | None = None):
    return facts_from_spec(
        JumpStartModelSpecs(spec), current or NEW, accounts=ACCOUNTS, gpu_counts=GPUS
    )


def with_instance_env(spec: dict[str, Any], instance_type: str, env: dict[str, str]) -> None:
    spec["hosting_instance_type_variants"]["variants"][instance_type] = {
        "properties": {"environment_variables": env}
    }


def test_the_sdks_instance_table_knows_the_gpus_of_the_catalogs_types() -> None:
    assert {t: GPUS[t] for t in ("ml.g5.2xlarge", "ml.g5.12xlarge", "ml.g5.48xlarge")} == {
        "ml.g5.2xlarge": 1, "ml.g5.12xlarge": 4, "ml.g5.48xlarge": 8
    }  # fmt: skip
    assert GPUS["ml.p4d.24xlarge"] == GPUS["ml.p4de.24xlarge"] == GPUS["ml.p5.48xlarge"] == 8
    # G6 (and the g5.xlarge) the SDK's table lacks: AWS's instance pages fill them in, so the
    # Llama specs' g6 types (Llama 3.2 3B's default, ml.g6.xlarge, among them) are kept.
    assert {t: GPUS[t] for t in ("ml.g6.xlarge", "ml.g6.12xlarge", "ml.g6.48xlarge")} == {
        "ml.g6.xlarge": 1, "ml.g6.12xlarge": 4, "ml.g6.48xlarge": 8
    }  # fmt: skip
    # ... only those: where the SDK's table learns one, it is dropped from ours.
    table = json.loads(
        resources.files("sagemaker.core")
        .joinpath("image_uri_config", "instance_gpu_info.json")
        .read_text(encoding="utf-8")
    )
    sdk_types = {t for region_table in table.values() for t in region_table}
    assert "ml.g5.2xlarge" in sdk_types
    assert not sdk_types & set(GPUS_NOT_IN_SAGEMAKER_CORE)


def test_lmi_shards_over_what_its_settings_say_else_every_gpu() -> None:
    spec = qwen()
    spec["inference_environment_variables"].append(
        {"name": "TENSOR_PARALLEL_DEGREE", "type": "text", "default": "max", "scope": "container"}
    )
    # OPTION_TENSOR_PARALLEL_DEGREE (LMI's option.tensor_parallel_degree) wins over the plain one.
    with_instance_env(spec, "ml.g5.48xlarge", {"OPTION_TENSOR_PARALLEL_DEGREE": "4"})
    with_instance_env(spec, "ml.g5.24xlarge", {"TENSOR_PARALLEL_DEGREE": "2"})
    built = facts(spec).entry["instance_types"]
    assert built["ml.g5.48xlarge"] == {
        "gpus": 4, "environment": {"OPTION_TENSOR_PARALLEL_DEGREE": "4"}
    }  # fmt: skip
    assert built["ml.g5.24xlarge"]["gpus"] == 2
    assert built["ml.g5.12xlarge"] == {"gpus": 4}  # "max": all four
    assert built["ml.g5.2xlarge"] == {"gpus": 1}


def test_an_instance_type_of_unknown_gpus_is_left_out_and_the_default_must_stay() -> None:
    spec = qwen()
    assert "ml.g6e.12xlarge" not in GPUS
    spec["supported_inference_instance_types"].append("ml.g6e.12xlarge")
    result = facts(spec)
    assert "ml.g6e.12xlarge" not in result.entry["instance_types"]
    assert any(note.startswith("left out ml.g6e.12xlarge: LMI") for note in result.notes)
    spec["default_inference_instance_type"] = "ml.g6e.12xlarge"
    with pytest.raises(ValueError, match=r"its default instance type ml\.g6e\.12xlarge is left"):
        facts(spec)


def test_an_instance_type_that_runs_another_image_is_left_out() -> None:
    spec = qwen()
    spec["hosting_instance_type_variants"]["regional_aliases"]["us-east-1"]["neuron"] = (
        "763104351884.dkr.ecr.us-east-1.amazonaws.com/djl-inference:0.28.0-neuronx-sdk2.18.2"
    )
    spec["hosting_instance_type_variants"]["variants"]["p4d"] = {
        "regional_properties": {"image_uri": "$neuron"}
    }
    result = facts(spec)
    assert "ml.p4d.24xlarge" not in result.entry["instance_types"]
    (note,) = [n for n in result.notes if n.startswith("left out ml.p4d.24xlarge: ")]
    assert note.startswith(
        "left out ml.p4d.24xlarge: it runs 763104351884.dkr.ecr.us-east-1.amazonaws.com/"
        "djl-inference:0.28.0-neuronx-sdk2.18.2 (no image in af-south-1, ap-east-1, "
    )  # its alias exists in us-east-1 only


def test_a_region_whose_image_is_not_from_the_catalogs_account_is_left_out() -> None:
    spec = qwen()
    aliases = spec["hosting_instance_type_variants"]["regional_aliases"]
    aliases["eu-west-1"]["alias_ecr_uri_1"] = aliases["eu-west-1"]["alias_ecr_uri_1"].replace(
        "763104351884", "111122223333"
    )
    result = facts(spec)
    assert "eu-west-1" not in result.entry["image_regions"]
    assert len(result.entry["image_regions"]) == 26
    assert result.notes[0].startswith("left out eu-west-1: the spec runs another image there")


def test_the_hand_kept_facts_are_kept_and_the_entry_is_in_the_files_order() -> None:
    current = copy.deepcopy(next(m for m in catalog_doc()["models"] if m["id"] == QWEN))
    result = facts(qwen(), current)
    assert tuple(result.entry) == ENTRY_ORDER
    assert result.entry == current  # the catalog's entry is this spec's
    assert result.notes == []  # its startup timeouts are kept: the spec gives none


def test_startup_timeouts_come_from_the_spec_else_a_default_said_so() -> None:
    result = facts(qwen())
    assert result.entry["startup"] == {
        "container_startup_health_check_timeout_seconds": DEFAULT_STARTUP_SECONDS,
        "model_data_download_timeout_seconds": DEFAULT_STARTUP_SECONDS,
    }
    assert result.notes == [
        "the spec gives no container_startup_health_check_timeout nor "
        "model_data_download_timeout: 1800 s (check against the model's size)"
    ]
    spec = qwen()
    spec["deploy_kwargs"] = {"model_data_download_timeout": 600}
    result = facts(spec)
    assert result.entry["startup"]["model_data_download_timeout_seconds"] == 600
    assert result.notes == [
        "the spec gives no container_startup_health_check_timeout: 1800 s (check against the "
        "model's size)"
    ]


def test_a_gated_spec_needs_its_licence_text_named() -> None:
    llama = jumpstart_specs.publishable(
        jumpstart_specs.load("meta-textgeneration-llama-3-1-8b-instruct", "2.2.4")
    )
    current = {**NEW, "id": llama["model_id"]}
    gated = facts(llama, current).entry["gated"]
    assert gated == {"eula_key": "fmhMetadata/eula/llama3_1Eula.txt", "licence": None}
    kept = {"eula_key": "fmhMetadata/eula/llama3_1Eula.txt", "licence": "Llama 3.1 Licence"}
    assert facts(llama, {**current, "gated": kept}).entry["gated"] == kept
    del llama["hosting_eula_key"]
    with pytest.raises(ValueError, match="keeps its artifact gated but names no licence"):
        facts(llama, current)


def test_the_licence_is_named_by_its_texts_first_line() -> None:
    assert licence_from_eula("\n\n  LLAMA 3.1   COMMUNITY LICENSE AGREEMENT \nMore\n") == (
        "LLAMA 3.1 COMMUNITY LICENSE AGREEMENT"
    )
    assert licence_from_eula(None) == "licence JumpStart publishes with it"
    assert licence_from_eula("   \n") == "licence JumpStart publishes with it"


def test_the_eos_token_and_chat_template_come_from_the_tokenizer_settings() -> None:
    assert eos_from_tokenizer({"eos_token": "</s>"}) == "</s>"
    assert eos_from_tokenizer({"eos_token": {"content": "<|im_end|>", "lstrip": False}}) == (
        "<|im_end|>"
    )
    assert eos_from_tokenizer({"eos_token": None}) is None
    assert eos_from_tokenizer(None) is None
    assert tokenizer_config('{"eos_token": "</s>"}') == {"eos_token": "</s>"}
    assert tokenizer_config("not json") is None
    assert tokenizer_config("[1, 2]") is None
    lmi, tgi = ENGINE_TABLE["lmi"], ENGINE_TABLE["tgi"]
    template = {"chat_template": "{{ x }}"}
    assert chat_from_tokenizer(lmi, "11.0.0", template, "m") == ("engine", None)
    assert chat_from_tokenizer(lmi, "11.0.0", {"eos_token": "</s>"}, "m-instruct") == (None, None)
    assert chat_from_tokenizer(lmi, "11.0.0", None, "org-model-7b-it")[0] == "engine"
    assert chat_from_tokenizer(lmi, "11.0.0", None, "org-model-7b") == (
        None,
        "its tokenizer could not be read: no chat, as a base model by its id",
    )
    assert chat_from_tokenizer(tgi, "2.4.0", template, "m")[0] is None
    # LMI 10 renders a chat without the template's generation prompt: prompts only, said why.
    chat, note = chat_from_tokenizer(lmi, "10.0.0", template, "m-instruct")
    assert chat is None
    assert note == (
        "chat null (prompts only): LMI 10.0.0 (djl-serving 0.28.0) renders a chat with the "
        "model's template but without its generation prompt, so the prompt ends after the "
        "user's turn; LMI 11.0.0 and later end it with the assistant's turn"
    )


def test_the_tokenizer_settings_are_read_only_where_anyone_may_read_them() -> None:
    prefix = {"artifact_key": "a/b/", "gated": None}
    assert tokenizer_config_key(prefix) == "a/b/tokenizer_config.json"
    assert tokenizer_config_key({**prefix, "gated": {"eula_key": "k", "licence": "l"}}) is None
    assert tokenizer_config_key({"artifact_key": "a/b.tar.gz", "gated": None}) is None


def test_versions_are_ordered_as_numbers() -> None:
    assert sorted(["1.10.0", "1.9.0", "1.0.6", "2.0.0"], key=version_key) == [
        "1.0.6", "1.9.0", "1.10.0", "2.0.0"
    ]  # fmt: skip
