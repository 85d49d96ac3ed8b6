"""The catalog's per-instance facts and the invariants it refuses to load without."""

from __future__ import annotations

import copy
import json
import re

import pytest
from streamer.contract import MAX_NEW_TOKENS_LIMIT

from stacks.catalog import CATALOG_PATH, Gated, licence_problem, load_catalog, parse_catalog
from stacks.errors import ConfigError
from tests.jumpstream import jumpstart_specs

F40 = "huggingface-llm-falcon-40b-bf16"
MI = "huggingface-llm-mistral-7b-instruct"
LLAMA = "meta-textgeneration-llama-3-1-8b-instruct"
QWEN = "huggingface-llm-qwen2-7b-instruct"
MIXTRAL = "huggingface-llm-mistralai-mixtral-8x22B-instruct-v0-1"
LLAMA32 = "meta-textgeneration-llama-3-2-3b-instruct"
SEALION = "huggingface-llm-llama3-8b-sealionv21-instruct"


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


#: The ten TGI models the catalog started with, at their pinned spec versions.
SEED_VERSIONS = {
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


def test_regions_and_pinned_spec_versions() -> None:
    catalog = load_catalog()
    assert {m.id: m.spec_version for m in catalog.models.values()} == {
        **SEED_VERSIONS,
        LLAMA: "2.2.4",
        QWEN: "1.0.6",
        MIXTRAL: "1.2.0",
        LLAMA32: "1.0.6",
        SEALION: "1.1.3",
    }
    # Where the pinned specs name an image (JumpStart hosts the artifacts): 27 regions, but the
    # Mistral specs have none in GovCloud nor in cn-northwest-1.
    for model in (catalog.get(model_id) for model_id in SEED_VERSIONS):
        gov = {r for r in model.image_regions if r.startswith("us-gov-")}
        assert len(model.image_regions) == (24 if "mistral" in model.id else 27)
        assert gov == (set() if "mistral" in model.id else {"us-gov-east-1", "us-gov-west-1"})
        assert ("cn-northwest-1" in model.image_regions) == ("mistral" not in model.id)
        assert "cn-north-1" in model.image_regions
        assert set(model.regions) <= set(model.image_regions)
    # The LMI specs: the Llama and Qwen images in all 27; Mixtral's in the 24 of Mistral's
    # TGI specs, less the two where its spec names a DeepSpeed image instead.
    for model_id in (LLAMA, QWEN, LLAMA32, SEALION):
        assert len(catalog.get(model_id).image_regions) == 27, model_id
    mixtral = catalog.get(MIXTRAL).image_regions
    assert len(mixtral) == 22
    assert not {"ap-northeast-3", "ap-southeast-3", "cn-northwest-1"} & set(mixtral)


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
    so no answer is sized by the prompt's bytes unless an environment raises its limit. (The
    LMI models' specs set no OPTION_MAX_MODEL_LEN: test_lmi_models_without_a_context_say_so.)"""
    for model in (m for m in load_catalog().models.values() if m.engine == "tgi"):
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


# The five LMI models as their JumpStart specs (of 2026-07-31) give them, written out here:
# (LMI version, image tag, default instance type, GPUs per instance type). LMI shards over every
# GPU of the instance (none of the specs sets a tensor parallel degree): G5's A10Gs and G6's
# L4s, one on the xlarge to 16xlarge but for 12xlarge and 24xlarge (4) and 48xlarge (8).
G5_GPUS = {
    "ml.g5.2xlarge": 1, "ml.g5.4xlarge": 1, "ml.g5.8xlarge": 1, "ml.g5.12xlarge": 4,
    "ml.g5.16xlarge": 1, "ml.g5.24xlarge": 4, "ml.g5.48xlarge": 8,
}  # fmt: skip
G6_GPUS = {t.replace("g5", "g6"): g for t, g in G5_GPUS.items()}
# Llama 3.1 8B's and SEA-LION's types: the G5s and G6s from 4xlarge up but 16xlarge, p4d, p5.
LLAMA_8B_GPUS = {
    **{t: g for t, g in G5_GPUS.items() if t not in ("ml.g5.2xlarge", "ml.g5.16xlarge")},
    **{t: g for t, g in G6_GPUS.items() if t not in ("ml.g6.2xlarge", "ml.g6.16xlarge")},
    "ml.p4d.24xlarge": 8, "ml.p5.48xlarge": 8,
}  # fmt: skip
LMI_MODELS = {
    LLAMA: ("11.0.0", "0.29.0-lmi11.0.0-cu124", "ml.g5.4xlarge", LLAMA_8B_GPUS),
    QWEN: (
        "10.0.0", "0.28.0-lmi10.0.0-cu124", "ml.g5.12xlarge",
        {**G5_GPUS, "ml.p4d.24xlarge": 8},
    ),
    MIXTRAL: (
        "10.0.0", "0.28.0-lmi10.0.0-cu124", "ml.p4de.24xlarge",
        {"ml.p4de.24xlarge": 8, "ml.p5.48xlarge": 8},
    ),
    LLAMA32: (
        "11.0.0", "0.29.0-lmi11.0.0-cu124", "ml.g6.xlarge",
        {
            "ml.g5.xlarge": 1, **G5_GPUS, "ml.g6.xlarge": 1, **G6_GPUS,
            "ml.p4d.24xlarge": 8, "ml.p5.48xlarge": 8,
        },
    ),
    SEALION: ("11.0.0", "0.29.0-lmi11.0.0-cu124", "ml.g5.4xlarge", LLAMA_8B_GPUS),
}  # fmt: skip
# From each model's tokenizer_config.json on its Hugging Face card (no spec carries it); Llama
# 3.x instruct models end a turn with <|eot_id|>, SEA-LION v2.1 (Llama 3 8B) too.
LMI_EOS = {
    LLAMA: "<|eot_id|>", QWEN: "<|im_end|>", MIXTRAL: "</s>", LLAMA32: "<|eot_id|>",
    SEALION: "<|eot_id|>",
}  # fmt: skip
# LMI 10 (djl-serving 0.28.0) renders a chat without the template's generation prompt: those
# models take prompts only; LMI 11 lays chats out with the model's own template.
LMI_10_PROMPT_ONLY = {QWEN, MIXTRAL}


def test_every_model_runs_on_its_engine() -> None:
    catalog = load_catalog()
    assert {m.id for m in catalog.models.values() if m.engine == "tgi"} == set(SEED_VERSIONS)
    assert {m.id for m in catalog.models.values() if m.engine == "lmi"} == set(LMI_MODELS)
    for model in catalog.models.values():
        if model.engine == "tgi":
            assert model.image_repository == "huggingface-pytorch-tgi-inference"
            assert model.prompt_template is not None
            assert not model.engine_chat_template
            assert model.gated is None


def test_the_lmi_models_engine_image_gpus_and_chat() -> None:
    catalog = load_catalog()
    for model_id, (version, tag, default, gpus) in LMI_MODELS.items():
        model = catalog.get(model_id)
        assert (model.engine, model.engine_version, model.image_repository, model.image_tag) == (
            "lmi", version, "djl-inference", tag
        )  # fmt: skip
        assert model.default_instance_type == default
        assert {t: option.gpus for t, option in model.instance_types.items()} == gpus
        assert model.eos_token == LMI_EOS[model_id]
        # LMI 11 lays the chat out with the model's own template, LMI 10 cannot (prompts
        # only): the relay has no layout either way.
        assert model.engine_chat_template == (model_id not in LMI_10_PROMPT_ONLY)
        assert model.engine_chat_template == (version == "11.0.0")
        assert model.prompt_template is None
        # TGI's facts do not apply: no prompt counts from TGI, no tokenizer for the relay.
        assert not model.reports_prompt_tokens
        assert model.tokenizer_uri("us-east-1") is None
        for instance_type in model.instance_types:
            env = model.container_environment(instance_type)
            assert "SM_NUM_GPUS" not in env  # TGI's; LMI takes every GPU unless told otherwise
            assert "SAGEMAKER_SUBMIT_DIRECTORY" not in env
            assert all(isinstance(value, str) for value in env.values())


def test_the_lmi_models_carry_their_specs_facts_in_every_region() -> None:
    """Against the specs themselves (tests/jumpstream/jumpstart_specs): each region's image URI
    is the spec's own (so the shared account table holds for djl-inference too), and the
    artifact and environment are the spec's."""
    catalog = load_catalog()
    specs = jumpstart_specs.load_all()
    assert {spec["model_id"] for spec in specs} == set(LMI_MODELS)
    checked = 0
    for spec in specs:
        model = catalog.get(spec["model_id"])
        assert model.spec_version == spec["version"]
        aliases = spec["hosting_instance_type_variants"]["regional_aliases"]
        for region in model.image_regions:
            assert model.image_uri(region) == aliases[region]["alias_ecr_uri_1"], region
            checked += 1
        assert model.artifact_key == spec["hosting_prepacked_artifact_key"]
        assert model.environment == {
            variable["name"]: str(variable["default"])
            for variable in spec["inference_environment_variables"]
        }
        assert list(model.instance_types) == spec["supported_inference_instance_types"]
    assert checked == 27 + 27 + 22 + 27 + 27


def test_the_gated_model_names_its_licence_and_reads_from_the_private_bucket() -> None:
    catalog = load_catalog()
    llama = catalog.get(LLAMA)
    assert [m.id for m in catalog.models.values() if m.gated] == [LLAMA, LLAMA32]
    assert llama.gated == Gated(
        eula_key="fmhMetadata/eula/llama3_1Eula.txt", licence="Llama 3.1 Community Licence"
    )
    assert catalog.get(LLAMA32).gated == Gated(
        eula_key="fmhMetadata/eula/llama3_2Eula.txt", licence="Llama 3.2 Community Licence"
    )
    assert (
        catalog.get(LLAMA32)
        .artifact_uri("eu-west-1")
        .startswith("s3://jumpstart-private-cache-prod-eu-west-1/meta-textgeneration/")
    )
    assert llama.artifact_uri("us-west-2") == (
        "s3://jumpstart-private-cache-prod-us-west-2/meta-textgeneration/"
        "meta-textgeneration-llama-3-1-8b-instruct/artifacts/inference-prepack/v2.0.0/"
    )
    assert (
        catalog.get(QWEN)
        .artifact_uri("us-west-2")
        .startswith("s3://jumpstart-cache-prod-us-west-2/")
    )
    assert licence_problem(llama, accepted=False) == (
        "meta-textgeneration-llama-3-1-8b-instruct is gated by the Llama 3.1 Community Licence "
        "(JumpStart's fmhMetadata/eula/llama3_1Eula.txt): read it, then set accept_eula = true "
        "in the environment to accept it"
    )
    assert licence_problem(llama, accepted=True) is None
    assert licence_problem(catalog.get(QWEN), accepted=False) is None


def _entry(doc: dict, model_id: str) -> dict:
    return next(m for m in doc["models"] if m["id"] == model_id)


def test_a_context_comes_from_the_variable_the_engine_reads() -> None:
    """LMI's OPTION_MAX_MODEL_LEN and vLLM's SM_VLLM_MAX_MODEL_LEN, where set; the LMI specs
    set none, so the relay is told no context for them."""
    assert load_catalog().get(QWEN).context_limits("ml.g5.12xlarge") is None
    doc = copy.deepcopy(_doc())
    _entry(doc, QWEN)["environment"]["OPTION_MAX_MODEL_LEN"] = "8192"
    _entry(doc, QWEN)["environment"]["MAX_TOTAL_TOKENS"] = "4096"  # TGI's: LMI ignores it
    qwen = parse_catalog(doc).get(QWEN)
    assert qwen.context_limits("ml.g5.12xlarge") == (8192, 8191)
    vllm = _entry(doc, MIXTRAL)
    _on_vllm(vllm)
    vllm["environment"]["SM_VLLM_MAX_MODEL_LEN"] = 65536
    for option in vllm["instance_types"].values():
        option["environment"] = {"SM_VLLM_TENSOR_PARALLEL_SIZE": 8}
    model = parse_catalog(doc).get(MIXTRAL)
    assert model.context_limits("ml.p5.48xlarge") == (65536, 65535)
    env = model.container_environment("ml.p5.48xlarge")
    assert env["SM_VLLM_TENSOR_PARALLEL_SIZE"] == "8"
    assert "SM_NUM_GPUS" not in env
    assert model.image_uri("us-east-1") == (
        "763104351884.dkr.ecr.us-east-1.amazonaws.com/vllm:0.19.1-gpu-py312-cu129-ubuntu22.04-"
        "sagemaker"
    )


def _on_vllm(model: dict) -> None:
    model.update(
        engine="vllm",
        engine_version="0.19.1",
        image_repository="vllm",
        image_tag="0.19.1-gpu-py312-cu129-ubuntu22.04-sagemaker",
    )


def _set_tensor_parallel(model: dict) -> None:
    model["instance_types"]["ml.g5.12xlarge"]["environment"] = {
        "OPTION_TENSOR_PARALLEL_DEGREE": "2"
    }


@pytest.mark.parametrize(
    ("model_id", "mutate", "message"),
    [
        (F40, lambda m: m.update(engine="sglang"), "engine must be one of tgi, lmi, vllm"),
        (
            F40,
            lambda m: m.update(image_repository="djl-inference"),
            "TGI images come from huggingface-pytorch-tgi-inference, not djl-inference",
        ),
        (
            F40,
            lambda m: m.update(chat="engine"),
            'chat "engine" needs an engine that applies the model\'s chat template: TGI does not '
            "apply the model's chat template (LMI and vLLM do); set chat null for prompts only",
        ),
        (
            QWEN,
            lambda m: m.update(chat="engine"),
            'huggingface-llm-qwen2-7b-instruct: chat "engine" needs an engine that applies the '
            "model's chat template: LMI 10.0.0 (djl-serving 0.28.0) renders a chat with the "
            "model's template but without its generation prompt, so the prompt ends after the "
            "user's turn; LMI 11.0.0 and later end it with the assistant's turn; set chat null "
            "for prompts only",
        ),
        (F40, lambda m: m.update(chat="yes"), "chat must be a prompt layout object"),
        (F40, lambda m: m["environment"].update(SM_NUM_GPUS=8), "SM_NUM_GPUS is each instance"),
        (LLAMA, lambda m: m.update(gated={"eula_key": "k"}), "gated must be null or"),
        (LLAMA, lambda m: m["gated"].update(licence=" "), "gated must be null or"),
        (
            QWEN,
            lambda m: m.update(image_tag="0.27.0-deepspeed0.12.6-cu121"),
            "image_tag does not carry LMI 10.0.0",
        ),
        (
            QWEN,
            _set_tensor_parallel,
            "ml.g5.12xlarge shards over OPTION_TENSOR_PARALLEL_DEGREE=2 GPUs, but its gpus is 4",
        ),
        (
            QWEN,
            lambda m: m["environment"].update(OPTION_MAX_MODEL_LEN="lots"),
            "OPTION_MAX_MODEL_LEN must be a whole number of tokens",
        ),
        (
            MIXTRAL,
            _on_vllm,
            "ml.p4de.24xlarge has gpus 8, but vLLM shards over one unless "
            "SM_VLLM_TENSOR_PARALLEL_SIZE says otherwise",
        ),
    ],
)
def test_an_engine_fact_that_does_not_hold_is_refused(model_id: str, mutate, message: str) -> None:
    doc = copy.deepcopy(_doc())
    mutate(_entry(doc, model_id))
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_catalog(doc)
