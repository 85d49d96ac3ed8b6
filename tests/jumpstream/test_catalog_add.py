"""`python -m jumpstream catalog add` against JumpStart's metadata held by moto's S3.

The bucket: tests/jumpstream/jumpstart_bucket.py. The LMI models are added from JumpStart's real
specs (tests/jumpstream/jumpstart_specs) into a catalog without them and must come out as the
catalog has them, but for what only a person can know; a vLLM model, a TGI model, a newest
version without images and the specs jumpstream cannot deploy are specs in JumpStart's schema
written here. The tokenizer settings and licence texts in the bucket are stand-ins written
here too (JumpStart keeps the real ones beside the artifacts).
"""

from __future__ import annotations

import copy
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jumpstream import cli
from jumpstream.catalog_add import AddOptions, run_add
from stacks.availability import AVAILABILITY_PATH, parse_availability
from stacks.catalog import CATALOG_PATH, parse_catalog
from tests.jumpstream import jumpstart_specs
from tests.jumpstream.jumpstart_bucket import (
    REGION,
    TODAY,
    catalog_doc,
    copied_files,
    entry,
    image_uri,
    moto_jumpstart,
    publish,
    tgi_spec,
)

LLAMA = "meta-textgeneration-llama-3-1-8b-instruct"
QWEN = "huggingface-llm-qwen2-7b-instruct"
MIXTRAL = "huggingface-llm-mistralai-mixtral-8x22B-instruct-v0-1"
LLAMA32 = "meta-textgeneration-llama-3-2-3b-instruct"
SEALION = "huggingface-llm-llama3-8b-sealionv21-instruct"
VERSIONS = {LLAMA: "2.2.4", QWEN: "1.0.6", MIXTRAL: "1.2.0", LLAMA32: "1.0.6", SEALION: "1.1.3"}
VLLM_MODEL = "huggingface-llm-example-7b-vllm"
VLLM_TAG = "0.19.1-gpu-py312-cu129-ubuntu22.04-sagemaker"
LLAMA_EULA = "LLAMA 3.1 COMMUNITY LICENSE AGREEMENT\nLlama 3.1 Version Release Date: ...\n"
LLAMA32_EULA = "LLAMA 3.2 COMMUNITY LICENSE AGREEMENT\nLlama 3.2 Version Release Date: ...\n"
CHAT_TEMPLATE = "{% for message in messages %}{{ message['content'] }}{% endfor %}"


@pytest.fixture
def jumpstart(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    yield from moto_jumpstart(monkeypatch)


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    return copied_files(tmp_path)


def real_spec(model_id: str) -> dict[str, Any]:
    return jumpstart_specs.publishable(jumpstart_specs.load(model_id, VERSIONS[model_id]))


def tokenizer_key(artifact_key: str) -> str:
    return artifact_key + "tokenizer_config.json"


def without(files: tuple[Path, Path], *model_ids: str) -> None:
    """The catalog copy without `model_ids`, as before they were added."""
    doc = json.loads(files[0].read_text())
    doc["models"] = [m for m in doc["models"] if m["id"] not in model_ids]
    files[0].write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")


def add(
    files: tuple[Path, Path],
    model_id: str,
    *,
    version: str | None = None,
    name: str | None = None,
    write: bool = False,
) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run_add(
        AddOptions(
            model_id=model_id, version=version, name=name, write=write, region=REGION,
            catalog_path=files[0], availability_path=files[1], today=TODAY,
        ),
        stdout=out,
        stderr=err,
    )  # fmt: skip
    return code, out.getvalue(), err.getvalue()


def written(files: tuple[Path, Path], model_id: str) -> tuple[dict[str, Any], Any]:
    """The written entry, and the model as synth loads it from the written files."""
    doc = json.loads(files[0].read_text())
    availability = parse_availability(json.loads(files[1].read_text()))
    return entry(model_id, files[0]), parse_catalog(doc, availability).get(model_id)


# What a person still decides for each real spec, as `catalog add` says it.
NO_TIMEOUTS = (
    "the spec gives no container_startup_health_check_timeout nor model_data_download_timeout: "
    "1800 s (check against the model's size)"
)
GATED_NOTES = [
    NO_TIMEOUTS,
    "EOS token unknown (a gated artifact): set eos_token from the model's card",
    'its tokenizer could not be read: chat "engine" as an instruct or chat model by its id; '
    "check that its tokenizer has a chat template",
]
# LMI 10 has the tokenizer's chat template but lays chats out without the assistant's turn.
LMI_10_NOTE = (
    "chat null (prompts only): LMI 10.0.0 (djl-serving 0.28.0) renders a chat with the model's "
    "template but without its generation prompt, so the prompt ends after the user's turn; LMI "
    "11.0.0 and later end it with the assistant's turn"
)
NOTES = {
    LLAMA: GATED_NOTES,
    QWEN: [NO_TIMEOUTS, LMI_10_NOTE],
    MIXTRAL: [
        "left out ap-northeast-3, ap-southeast-3: the spec runs another image there than "
        "djl-inference:0.28.0-lmi10.0.0-cu124 (or one from another account than the catalog's)",
        NO_TIMEOUTS,
        LMI_10_NOTE,
    ],
    LLAMA32: GATED_NOTES,
    SEALION: [NO_TIMEOUTS],
}


@pytest.mark.parametrize("model_id", [LLAMA, QWEN, MIXTRAL, LLAMA32, SEALION])
def test_each_lmi_model_is_added_as_the_catalog_has_it(jumpstart, files, model_id: str) -> None:
    """From JumpStart's real spec: every fact the catalog has, but the hand-kept ones where no
    file JumpStart lets anyone read says them (the gated Llamas' EOS tokens and licence names,
    the startup timeouts of a model as large as Mixtral 8x22B). The LMI 10 models come out
    with no chat though their tokenizers have a template: LMI 10 would drop the assistant's
    turn."""
    ours = entry(model_id)
    tokenizer = {"eos_token": {"content": ours["eos_token"]}, "chat_template": CHAT_TEMPLATE}
    publish(
        [real_spec(model_id)],
        files={
            "fmhMetadata/eula/llama3_1Eula.txt": LLAMA_EULA,
            "fmhMetadata/eula/llama3_2Eula.txt": LLAMA32_EULA,
            tokenizer_key(ours["artifact_key"]): json.dumps(tokenizer),
        },
    )
    without(files, model_id)
    code, out, err = add(files, model_id, name=ours["name"], write=True)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[: len(NOTES[model_id])] == [f"{model_id}: {note}" for note in NOTES[model_id]]
    assert lines[len(NOTES[model_id])] == "--- models.json (checked in)"
    assert lines[-1] == "Wrote models.json."  # no new instance family: availability unchanged
    added, model = written(files, model_id)
    expected = copy.deepcopy(ours)
    if model_id in (LLAMA, LLAMA32):
        expected["eos_token"] = None
        version = "3.1" if model_id == LLAMA else "3.2"
        expected["gated"]["licence"] = f"LLAMA {version} COMMUNITY LICENSE AGREEMENT"
    if model_id == MIXTRAL:
        expected["startup"] = dict.fromkeys(expected["startup"], 1800)
    assert added == expected
    assert model.engine == "lmi"
    assert model.engine_chat_template == (model_id not in (QWEN, MIXTRAL))
    assert list(catalog_doc(files[0])["models"])[-1]["id"] == model_id  # appended


def vllm_spec(version: str = "1.0.0", **changes: Any) -> dict[str, Any]:
    """A model on AWS's vLLM container, in JumpStart's schema: Qwen2's spec on a vLLM image,
    with vLLM's own settings (a context length; GPUs where more than one)."""
    spec = real_spec(QWEN)
    accounts = catalog_doc()["image"]["accounts"]
    spec.update(model_id=VLLM_MODEL, version=version)
    spec["hosting_artifact_key"] = spec["hosting_prepacked_artifact_key"] = (
        f"huggingface-llm/{VLLM_MODEL}/artifacts/inference-prepack/v1.0.0/"
    )
    spec["inference_environment_variables"] = [
        {"name": "SM_VLLM_MAX_MODEL_LEN", "type": "text", "default": "32768",
         "scope": "container", "required_for_model_class": True},
        {"name": "SAGEMAKER_ENV", "type": "text", "default": "1", "scope": "container",
         "required_for_model_class": True},
    ]  # fmt: skip
    spec["deploy_kwargs"] = {
        "model_data_download_timeout": 1200,
        "container_startup_health_check_timeout": 900,
    }
    variants = spec["hosting_instance_type_variants"]
    variants["regional_aliases"] = {
        region: {"alias_ecr_uri_1": image_uri(region, "vllm", VLLM_TAG, accounts)}
        for region in ("us-east-1", "us-west-2", "eu-west-1", "us-gov-west-1")
    }
    for instance_type, gpus in (
        ("ml.g5.12xlarge", "4"),
        ("ml.g5.24xlarge", "4"),
        ("ml.g5.48xlarge", "8"),
        ("ml.p4d.24xlarge", "8"),
    ):
        variants["variants"][instance_type] = {
            "properties": {"environment_variables": {"SM_VLLM_TENSOR_PARALLEL_SIZE": gpus}}
        }
    spec.update(changes)
    return spec


def test_a_vllm_model_takes_its_gpus_and_context_from_vllms_settings(jumpstart, files) -> None:
    spec = vllm_spec()
    publish(
        [spec],
        files={
            tokenizer_key(spec["hosting_prepacked_artifact_key"]): json.dumps(
                {"eos_token": "<|endoftext|>"}  # a base model: no chat template
            )
        },
    )
    code, out, err = add(files, VLLM_MODEL, name="Example 7B", write=True)
    assert (code, err) == (0, "")
    assert out.splitlines()[0] == "--- models.json (checked in)"  # nothing left to decide
    added, model = written(files, VLLM_MODEL)
    assert (added["engine"], added["engine_version"]) == ("vllm", "0.19.1")
    assert (added["image_repository"], added["image_tag"]) == ("vllm", VLLM_TAG)
    assert added["image_regions"] == ["eu-west-1", "us-east-1", "us-gov-west-1", "us-west-2"]
    # vLLM shards over SM_VLLM_TENSOR_PARALLEL_SIZE GPUs, one where the spec does not set it.
    assert {t: o["gpus"] for t, o in added["instance_types"].items()} == {
        "ml.g5.2xlarge": 1, "ml.g5.4xlarge": 1, "ml.g5.8xlarge": 1, "ml.g5.12xlarge": 4,
        "ml.g5.16xlarge": 1, "ml.g5.24xlarge": 4, "ml.g5.48xlarge": 8, "ml.p4d.24xlarge": 8,
    }  # fmt: skip
    assert added["instance_types"]["ml.g5.12xlarge"]["environment"] == {
        "SM_VLLM_TENSOR_PARALLEL_SIZE": "4"
    }
    assert (added["eos_token"], added["chat"], added["gated"]) == ("<|endoftext|>", None, None)
    assert added["startup"] == {
        "container_startup_health_check_timeout_seconds": 900,
        "model_data_download_timeout_seconds": 1200,
    }
    assert model.context_limits("ml.g5.12xlarge") == (32768, 32767)
    assert model.container_environment("ml.g5.12xlarge") == {
        "SAGEMAKER_ENV": "1",
        "SM_VLLM_MAX_MODEL_LEN": "32768",
        "SM_VLLM_TENSOR_PARALLEL_SIZE": "4",
    }
    assert model.regions == ("eu-west-1", "us-east-1", "us-gov-west-1", "us-west-2")


def test_a_tgi_model_is_added_without_a_chat_layout_to_write_by_hand(jumpstart, files) -> None:
    accounts = catalog_doc()["image"]["accounts"]
    spec = tgi_spec(entry("huggingface-llm-falcon-7b-instruct-bf16"), accounts)
    spec["model_id"] = "huggingface-llm-falcon-7b-instruct-copy"
    publish([spec])
    code, out, err = add(files, spec["model_id"])
    assert (code, err) == (0, "")
    assert out.splitlines()[:3] == [
        f"{spec['model_id']}: JumpStart's specs carry no display name: give one with --name",
        f"{spec['model_id']}: EOS token unknown (its tokenizer_config.json could not be read): "
        "set eos_token from the model's card",
        f"{spec['model_id']}: TGI gets the relay's prompt layout, which no spec carries: write "
        "its `chat` by hand, or leave it null for prompts only",
    ]
    assert out.endswith("Nothing written: run again with --write to apply these changes.\n")
    assert '+      "chat": null,\n' in out
    assert '+      "engine": "tgi",\n' in out
    assert files[0].read_text() == CATALOG_PATH.read_text()


def test_without_a_version_the_newest_deployable_one_is_taken(jumpstart, files) -> None:
    """JumpStart's newest Qwen2 specs in the offline copy name no image: the newest that does is
    taken, and the newer ones are said to be passed over."""
    newest = real_spec(QWEN)
    newest.update(version="1.0.8", hosting_instance_type_variants={})
    deepspeed = real_spec(QWEN)
    deepspeed["version"] = "1.0.7"
    for aliases in deepspeed["hosting_instance_type_variants"]["regional_aliases"].values():
        aliases["alias_ecr_uri_1"] = aliases["alias_ecr_uri_1"].replace(
            "0.28.0-lmi10.0.0-cu124", "0.27.0-deepspeed0.12.6-cu121"
        )
    publish([real_spec(QWEN), deepspeed, newest])
    without(files, QWEN)
    code, out, _ = add(files, QWEN, name="Qwen2 7B Instruct")
    assert code == 0
    assert out.splitlines()[:2] == [
        f"{QWEN}: a newer spec is not taken: spec 1.0.8 names no image in any region",
        f"{QWEN}: a newer spec is not taken: spec 1.0.7: "
        "djl-inference:0.27.0-deepspeed0.12.6-cu121 is no LMI image jumpstream streams from (its "
        "tag names no LMI version)",
    ]
    assert '+      "spec_version": "1.0.6",\n' in out


def test_a_new_instance_family_brings_its_availability_table(jumpstart, files) -> None:
    """vLLM told how many GPUs to take on a g6e (which no GPU table here knows): the
    catalog's families gain ml.g6e, and availability.json its hosting regions from cfn-lint."""
    spec = vllm_spec()
    spec["supported_inference_instance_types"].append("ml.g6e.12xlarge")
    spec["hosting_instance_type_variants"]["variants"]["ml.g6e.12xlarge"] = {
        "properties": {"environment_variables": {"SM_VLLM_TENSOR_PARALLEL_SIZE": "4"}}
    }
    publish([spec])
    code, out, _ = add(files, VLLM_MODEL, name="Example 7B", write=True)
    assert code == 0
    assert "--- availability.json (checked in)" in out
    assert out.splitlines()[-1] == "Wrote models.json, availability.json."
    availability = json.loads(files[1].read_text())
    assert "ml.g6e" in availability["sagemaker_hosting"]["families"]
    assert availability["sagemaker_hosting"]["retrieved"] == TODAY
    assert "ml.g6e.12xlarge" in availability["sagemaker_hosting"]["instance_types"]["us-east-1"]
    _, model = written(files, VLLM_MODEL)
    assert model.instance_types["ml.g6e.12xlarge"].gpus == 4


@pytest.mark.parametrize(
    ("model_id", "specs", "version", "message"),
    [
        (
            QWEN,
            lambda: [real_spec(QWEN)],
            None,
            f"{QWEN} is in the catalog already; `catalog refresh --model {QWEN}` updates it",
        ),
        ("huggingface-llm-gpt-5", list, None, "JumpStart's manifest does not list huggingface-"),
        (
            VLLM_MODEL,
            lambda: [vllm_spec()],
            "2.0.0",
            f"{VLLM_MODEL} has no spec 2.0.0 in JumpStart's manifest (its versions: 1.0.0)",
        ),
        (
            VLLM_MODEL,
            lambda: [vllm_spec(hosting_instance_type_variants={})],
            None,
            f"cannot add {VLLM_MODEL}: no spec of it is one jumpstream can deploy (the newest: "
            "spec 1.0.0 names no image in any region)",
        ),
        (
            VLLM_MODEL,
            lambda: [_moving_tag(vllm_spec())],
            "1.0.0",
            f"cannot add {VLLM_MODEL}: spec 1.0.0: vllm:server-sagemaker-cuda-v1 is no vLLM "
            "image jumpstream streams from (its tag names no vLLM version)",
        ),
        (
            VLLM_MODEL,
            lambda: [_whisper_image(vllm_spec())],
            None,
            f"cannot add {VLLM_MODEL}: no spec of it is one jumpstream can deploy (the newest: "
            "spec 1.0.0: huggingface-pytorch-inference:2.1.0-transformers4.37.0-gpu-py310-cu118-"
            "ubuntu20.04 runs none of the engines jumpstream streams from: TGI "
            "(huggingface-pytorch-tgi-inference), LMI (djl-inference), vLLM (vllm))",
        ),
        (
            LLAMA,
            lambda: [_public(real_spec(LLAMA))],
            "2.2.4",
            f"cannot add {LLAMA}: spec 2.2.4 names a licence (fmhMetadata/eula/llama3_1Eula.txt) "
            "but keeps its artifact in the public bucket: jumpstream passes an acceptance only "
            "with a gated artifact",
        ),
    ],
    ids=[
        "in-the-catalog",
        "not-listed",
        "no-such-version",
        "no-images",
        "moving-vllm-tag",
        "not-an-engine",
        "licence-without-gated-bucket",
    ],
)
def test_what_cannot_be_added_is_refused_in_one_line(
    jumpstart, files, model_id: str, specs, version: str | None, message: str
) -> None:
    publish(specs())
    if model_id == LLAMA:
        without(files, LLAMA)
    before = [p.read_text() for p in files]
    code, out, err = add(files, model_id, version=version, write=True)
    assert (code, out) == (1, "")
    assert err.startswith(f"jumpstream: error: {message}")
    assert err.count("\n") == 1
    assert [p.read_text() for p in files] == before


def _retagged(spec: dict[str, Any], repository: str, tag: str) -> dict[str, Any]:
    for aliases in spec["hosting_instance_type_variants"]["regional_aliases"].values():
        host = aliases["alias_ecr_uri_1"].split("/", 1)[0]
        aliases["alias_ecr_uri_1"] = f"{host}/{repository}:{tag}"
    return spec


def _moving_tag(spec: dict[str, Any]) -> dict[str, Any]:
    return _retagged(spec, "vllm", "server-sagemaker-cuda-v1")


def _whisper_image(spec: dict[str, Any]) -> dict[str, Any]:
    return _retagged(
        spec,
        "huggingface-pytorch-inference",
        "2.1.0-transformers4.37.0-gpu-py310-cu118-ubuntu20.04",
    )


def _public(spec: dict[str, Any]) -> dict[str, Any]:
    del spec["gated_bucket"]
    return spec


def test_the_command_line_adds_and_writes_nothing_without_write(
    jumpstart, capsys: pytest.CaptureFixture[str]
) -> None:
    publish([vllm_spec()])
    before = (CATALOG_PATH.read_text(), AVAILABILITY_PATH.read_text())
    code = cli.main(["catalog", "add", VLLM_MODEL, "--name", "Example 7B", "--region", REGION])
    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    assert f'+      "id": "{VLLM_MODEL}",\n' in out
    assert out.endswith("Nothing written: run again with --write to apply these changes.\n")
    assert (CATALOG_PATH.read_text(), AVAILABILITY_PATH.read_text()) == before
