"""`python -m jumpstream catalog refresh` against JumpStart's metadata held by moto's S3.

The bucket and its specs: tests/jumpstream/jumpstart_bucket.py (the TGI models' specs built from
their pinned facts, the LMI models' JumpStart's own). Beside the pinned specs, the cases a refresh
exists for: a newer version that still runs TGI, one that moved to LMI (offered) or to a DeepSpeed
image (refused), a pinned spec that moved engine (adopted, both ways), a new licence, a
deprecated model.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from jumpstream import cli
from jumpstream.catalog_refresh import RefreshOptions, run_refresh
from stacks.availability import AVAILABILITY_PATH, parse_availability
from stacks.catalog import CATALOG_PATH, load_catalog, parse_catalog
from tests.jumpstream import jumpstart_specs
from tests.jumpstream.jumpstart_bucket import (
    FALCON_SPEC,
    REGION,
    TGI_REPOSITORY,
    TODAY,
    catalog_doc,
    copied_files,
    entry,
    image_uri,
    moto_jumpstart,
    on_lmi,
    pinned_specs,
    publish,
    tgi_spec,
)

MISTRAL = "huggingface-llm-mistral-7b"
MISTRAL_INSTRUCT = "huggingface-llm-mistral-7b-instruct"
FALCON = "huggingface-llm-falcon-7b-bf16"
RINNA4B = "huggingface-llm-bilingual-rinna-4b-instruction-ppo-bf16"
LLAMA = "meta-textgeneration-llama-3-1-8b-instruct"
QWEN = "huggingface-llm-qwen2-7b-instruct"
MIXTRAL = "huggingface-llm-mistralai-mixtral-8x22B-instruct-v0-1"
# What every refresh of the LMI models says: what their specs name that the catalog leaves out.
LEFT_OUT = [
    f"{MIXTRAL}: left out ap-northeast-3, ap-southeast-3: the spec runs another image there than "
    "djl-inference:0.28.0-lmi10.0.0-cu124 (or one from another account than the catalog's)",
]
MATCHES = "The catalog matches JumpStart's metadata and the availability tables."


@pytest.fixture
def jumpstart(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    yield from moto_jumpstart(monkeypatch)


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    return copied_files(tmp_path)


def refresh(files: tuple[Path, Path], *model_ids: str, write: bool = False) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run_refresh(
        RefreshOptions(
            model_ids=model_ids, write=write, region=REGION, catalog_path=files[0],
            availability_path=files[1], today=TODAY,
        ),
        stdout=out,
        stderr=err,
    )  # fmt: skip
    return code, out.getvalue(), err.getvalue()


def test_the_handwritten_spec_and_the_builder_agree_on_the_schema() -> None:
    built = tgi_spec(entry(FALCON), catalog_doc()["image"]["accounts"], regions=["us-east-1"])
    for field in (
        "hosting_ecr_specs", "hosting_prepacked_artifact_key", "default_inference_instance_type",
        "supported_inference_instance_types", "deploy_kwargs",
        "inference_enable_network_isolation",
    ):  # fmt: skip
        assert built[field] == FALCON_SPEC[field], field
    variants = "hosting_instance_type_variants"
    assert built[variants]["regional_aliases"] == FALCON_SPEC[variants]["regional_aliases"]


def test_the_pinned_facts_of_every_model_survive_a_refresh(jumpstart, files) -> None:
    """The LMI models' too, from JumpStart's real specs: their catalog entries are what the
    refresh rules make of those specs, with the hand-kept facts kept."""
    publish(pinned_specs())
    before = [p.read_text() for p in files]
    code, out, err = refresh(files)
    assert (code, err) == (0, "")
    assert out.splitlines() == [*LEFT_OUT, MATCHES]
    assert [p.read_text() for p in files] == before


def test_a_changed_fact_shows_as_a_diff_and_is_written_only_with_write(jumpstart, files) -> None:
    accounts = catalog_doc()["image"]["accounts"]
    falcon = entry(FALCON)
    # Falcon 7B's pinned spec, republished: no image in eu-west-3 any more, a longer download.
    changed = tgi_spec(
        falcon,
        accounts,
        regions=[r for r in falcon["image_regions"] if r != "eu-west-3"],
        deploy_kwargs={
            "model_data_download_timeout": 1200,
            "container_startup_health_check_timeout": 900,
        },
    )
    publish([changed, *pinned_specs(skip=(FALCON,))])
    before = [p.read_text() for p in files]
    code, out, _ = refresh(files, FALCON)
    assert code == 0
    assert "--- models.json (checked in)\n+++ models.json (JumpStart now)\n" in out
    assert '-        "eu-west-3",\n' in out
    assert '-        "model_data_download_timeout_seconds": 900\n' in out
    assert '+        "model_data_download_timeout_seconds": 1200\n' in out
    assert out.endswith("Nothing written: run again with --write to apply these changes.\n")
    assert [p.read_text() for p in files] == before

    code, out, _ = refresh(files, FALCON, write=True)
    assert (code, out.splitlines()[-1]) == (0, "Wrote models.json.")
    written = json.loads(files[0].read_text())
    (refreshed,) = [m for m in written["models"] if m["id"] == FALCON]
    assert "eu-west-3" not in refreshed["image_regions"]
    assert refreshed["startup"]["model_data_download_timeout_seconds"] == 1200
    # The written catalog still loads, with the same checks synth applies.
    model = parse_catalog(written, parse_availability(json.loads(files[1].read_text()))).get(FALCON)
    assert model.download_timeout_seconds == 1200
    code, out, _ = refresh(files, FALCON)
    assert out == "The catalog matches JumpStart's metadata and the availability tables.\n"


def test_newer_versions_on_tgi_or_lmi_are_offered_and_one_on_deepspeed_refused(
    jumpstart, files
) -> None:
    accounts = catalog_doc()["image"]["accounts"]
    mistral = entry(MISTRAL)
    newer_tag = "2.3.0-tgi2.2.0-gpu-py310-cu121-ubuntu22.04"
    newer_tgi = tgi_spec(mistral, accounts, version="2.6.0", tag=newer_tag)
    moved = on_lmi(tgi_spec(mistral, accounts), version="3.0.0")
    deepspeed = on_lmi(tgi_spec(mistral, accounts), "0.27.0-deepspeed0.12.6-cu121", version="3.1.0")
    publish(
        [tgi_spec(mistral, accounts), newer_tgi, moved, deepspeed, *pinned_specs(skip=(MISTRAL,))]
    )
    code, out, err = refresh(files, MISTRAL)
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "huggingface-llm-mistral-7b: spec 2.6.0 still runs TGI 2.2.0 "
        "(2.3.0-tgi2.2.0-gpu-py310-cu121-ubuntu22.04): set spec_version to 2.6.0 in "
        "stacks/models.json and refresh again to adopt it",
        "huggingface-llm-mistral-7b: spec 3.0.0 moves to LMI 11.0.0 "
        "(djl-inference:0.29.0-lmi11.0.0-cu124): set spec_version to 3.0.0 in "
        "stacks/models.json and refresh again to adopt it",
        "huggingface-llm-mistral-7b: spec 3.1.0 is not adopted: spec 3.1.0: "
        "djl-inference:0.27.0-deepspeed0.12.6-cu121 is no LMI image jumpstream streams from "
        "(its tag names no LMI version); 2.5.0 stays pinned",
        MATCHES,
    ]


def test_a_model_jumpstart_deprecates_is_reported_and_marked(jumpstart, files) -> None:
    accounts = catalog_doc()["image"]["accounts"]
    falcon = entry(FALCON)
    deprecated = tgi_spec(
        falcon, accounts, version="4.1.24", deprecated=True,
        deprecated_message="This model is deprecated; use Falcon 3 instead.",
    )  # fmt: skip
    publish([tgi_spec(falcon, accounts), deprecated, *pinned_specs(skip=(FALCON,))])
    code, out, _ = refresh(files, FALCON, write=True)
    assert code == 0
    assert (
        "huggingface-llm-falcon-7b-bf16: JumpStart deprecates it (spec 4.1.24): This model is "
        "deprecated; use Falcon 3 instead.\n"
    ) in out
    note = "JumpStart deprecated this model: This model is deprecated; use Falcon 3 instead."
    assert f'+      "deprecated": "{note}"\n' in out
    written = json.loads(files[0].read_text())
    model = parse_catalog(written, parse_availability(json.loads(files[1].read_text()))).get(FALCON)
    assert model.deprecated == note


def tokenizer_key(model_id: str) -> str:
    return entry(model_id)["artifact_key"] + "tokenizer_config.json"


def test_a_pinned_spec_moved_to_lmi_is_adopted_with_the_models_own_chat_template(
    jumpstart, files
) -> None:
    """JumpStart republishes both Mistral 7B specs on LMI: the instruct model's tokenizer has a
    chat template, so LMI lays its chats out; the base model's has none, so the relay's layout
    stays (sent as a plain prompt)."""
    accounts = catalog_doc()["image"]["accounts"]
    moved = [on_lmi(tgi_spec(entry(m), accounts)) for m in (MISTRAL, MISTRAL_INSTRUCT)]
    template = "{{ bos_token }}{% for message in messages %}[INST] ...{% endfor %}"
    publish(
        [*moved, *pinned_specs(skip=(MISTRAL, MISTRAL_INSTRUCT))],
        files={
            tokenizer_key(MISTRAL): json.dumps({"eos_token": "</s>"}),
            tokenizer_key(MISTRAL_INSTRUCT): json.dumps(
                {"eos_token": {"content": "</s>"}, "chat_template": template}
            ),
        },
    )
    code, out, err = refresh(files, MISTRAL, MISTRAL_INSTRUCT, write=True)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    lmi = "LMI 11.0.0 (djl-inference:0.29.0-lmi11.0.0-cu124)"
    assert lines[:3] == [
        f"{MISTRAL}: the pinned spec 2.5.0 now runs {lmi} instead of TGI 2.0.0: adopted",
        f"{MISTRAL_INSTRUCT}: the pinned spec 3.1.0 now runs {lmi} instead of TGI 2.0.0: adopted",
        f"{MISTRAL_INSTRUCT}: LMI lays out its chats with the model's own template now (chat "
        '"engine")',
    ]
    assert lines[-1] == "Wrote models.json."
    written = json.loads(files[0].read_text())
    catalog = parse_catalog(written, parse_availability(json.loads(files[1].read_text())))
    base, instruct = catalog.get(MISTRAL), catalog.get(MISTRAL_INSTRUCT)
    for model in (base, instruct):
        assert (model.engine, model.engine_version) == ("lmi", "11.0.0")
        assert model.image_uri("eu-west-1") == (
            "763104351884.dkr.ecr.eu-west-1.amazonaws.com/djl-inference:0.29.0-lmi11.0.0-cu124"
        )
        assert "SM_NUM_GPUS" not in model.container_environment(model.default_instance_type)
    assert base.prompt_template == load_catalog().get(MISTRAL).prompt_template
    assert not base.engine_chat_template
    assert instruct.engine_chat_template
    assert instruct.prompt_template is None
    # LMI shards over every GPU: the counts are the instances' (the TGI spec's, here too).
    assert {t: o.gpus for t, o in instruct.instance_types.items()} == {
        t: o["gpus"] for t, o in entry(MISTRAL_INSTRUCT)["instance_types"].items()
    }


def test_a_pinned_spec_moved_back_to_tgi_is_adopted_without_a_chat(jumpstart, files) -> None:
    """Llama 3.1 8B's pinned spec on TGI: TGI has no chat template of the model's to apply, so
    its chat is null until someone writes the relay's layout."""
    accounts = catalog_doc()["image"]["accounts"]
    llama = entry(LLAMA)
    spec = jumpstart_specs.publishable(jumpstart_specs.load(LLAMA, "2.2.4"))
    tgi = "2.4.0-tgi2.4.0-gpu-py311-cu124-ubuntu22.04"
    variants = spec["hosting_instance_type_variants"]
    variants["regional_aliases"] = {
        region: {"alias_ecr_uri_1": image_uri(region, TGI_REPOSITORY, tgi, accounts)}
        for region in variants["regional_aliases"]
    }
    for instance_type, option in llama["instance_types"].items():
        variants["variants"][instance_type] = {
            "properties": {"environment_variables": {"SM_NUM_GPUS": str(option["gpus"])}}
        }
    publish([spec, *pinned_specs(skip=(LLAMA,))])
    code, out, _ = refresh(files, LLAMA, write=True)
    assert code == 0
    assert out.splitlines()[:2] == [
        f"{LLAMA}: the pinned spec 2.2.4 now runs TGI 2.4.0 ({tgi}) instead of LMI 11.0.0: adopted",
        f"{LLAMA}: TGI gets the relay's prompt layout, which no spec carries: write its `chat` "
        "by hand, or leave it null for prompts only",
    ]
    written = json.loads(files[0].read_text())
    model = parse_catalog(written, parse_availability(json.loads(files[1].read_text()))).get(LLAMA)
    assert (model.engine, model.prompt_template, model.engine_chat_template) == ("tgi", None, False)
    assert model.container_environment("ml.g5.12xlarge")["SM_NUM_GPUS"] == "4"


def test_a_pinned_spec_moved_from_lmi_10_to_11_takes_the_models_chat_template(
    jumpstart, files
) -> None:
    """Qwen2 takes prompts only on LMI 10, which leaves the assistant's turn out of a chat; its
    spec republished on LMI 11, whose chats end with it, and its tokenizer's chat template make
    it lay out its chats with the model's own template."""
    spec = jumpstart_specs.publishable(jumpstart_specs.load(QWEN, "1.0.6"))
    for aliases in spec["hosting_instance_type_variants"]["regional_aliases"].values():
        aliases["alias_ecr_uri_1"] = aliases["alias_ecr_uri_1"].replace(
            "0.28.0-lmi10.0.0", "0.29.0-lmi11.0.0"
        )
    template = "{% for m in messages %}<|im_start|>{{ m.role }}{% endfor %}"
    publish(
        [spec, *pinned_specs(skip=(QWEN,))],
        files={
            tokenizer_key(QWEN): json.dumps({"eos_token": "<|im_end|>", "chat_template": template})
        },
    )
    assert load_catalog().get(QWEN).engine_chat_template is False
    code, out, err = refresh(files, QWEN, write=True)
    assert (code, err) == (0, "")
    assert f'{QWEN}: LMI lays out its chats with the model\'s own template now (chat "engine")' in (
        out.splitlines()
    )
    written = json.loads(files[0].read_text())
    model = parse_catalog(written, parse_availability(json.loads(files[1].read_text()))).get(QWEN)
    assert (model.engine_version, model.engine_chat_template) == ("11.0.0", True)
    assert model.prompt_template is None


def test_a_new_licence_is_named_from_its_text(jumpstart, files) -> None:
    spec = jumpstart_specs.publishable(jumpstart_specs.load(LLAMA, "2.2.4"))
    spec["hosting_eula_key"] = "fmhMetadata/eula/llama3_1Eula-v2.txt"
    eula = "\n  LLAMA 3.1 COMMUNITY LICENSE AGREEMENT\nLlama 3.1 Version Release Date: ...\n"
    publish([spec, *pinned_specs(skip=(LLAMA,))], files={spec["hosting_eula_key"]: eula})
    code, _, _ = refresh(files, LLAMA, write=True)
    assert code == 0
    written = json.loads(files[0].read_text())
    llama = parse_catalog(written, parse_availability(json.loads(files[1].read_text()))).get(LLAMA)
    assert llama.gated is not None
    assert (llama.gated.eula_key, llama.gated.licence) == (
        "fmhMetadata/eula/llama3_1Eula-v2.txt",
        "LLAMA 3.1 COMMUNITY LICENSE AGREEMENT",
    )


def test_a_model_dropped_from_the_manifest_is_reported_and_kept(jumpstart, files) -> None:
    publish(pinned_specs(skip=(RINNA4B,)))
    code, out, _ = refresh(files)
    assert code == 0
    assert out.splitlines() == [
        f"{RINNA4B}: JumpStart's manifest no longer lists it (deprecated or withdrawn); its "
        "pinned facts are kept",
        *LEFT_OUT,
        MATCHES,
    ]


def test_the_availability_tables_are_regenerated_with_their_date(jumpstart, files) -> None:
    publish(pinned_specs())
    stale = json.loads(files[1].read_text())
    stale["sagemaker_hosting"]["instance_types"]["eu-west-1"].append("ml.p5.48xlarge")
    files[1].write_text(json.dumps(stale, indent=2) + "\n")
    code, out, _ = refresh(files, FALCON, write=True)
    assert code == 0
    assert '-        "ml.p5.48xlarge"\n' in out or '-        "ml.p5.48xlarge",\n' in out
    assert f'+    "retrieved": "{TODAY}",\n' in out
    written = json.loads(files[1].read_text())
    assert "ml.p5.48xlarge" not in written["sagemaker_hosting"]["instance_types"]["eu-west-1"]


def test_the_command_line_reads_jumpstart_and_writes_nothing_without_write(
    jumpstart, capsys: pytest.CaptureFixture[str]
) -> None:
    publish(pinned_specs())
    before = (CATALOG_PATH.read_text(), AVAILABILITY_PATH.read_text())
    assert cli.main(["catalog", "refresh", "--model", MISTRAL, "--region", REGION]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out == "The catalog matches JumpStart's metadata and the availability tables.\n"
    assert (CATALOG_PATH.read_text(), AVAILABILITY_PATH.read_text()) == before


def test_an_unknown_model_is_one_line(jumpstart, files) -> None:
    publish(pinned_specs())
    code, out, err = refresh(files, "huggingface-llm-gpt-5")
    assert (code, out) == (1, "")
    assert err == (
        "jumpstream: error: not in the catalog: huggingface-llm-gpt-5; refresh updates the "
        "catalog's own models (add a new one with `catalog add`)\n"
    )


NO_CREDENTIALS = {
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
    "AWS_CONFIG_FILE": "/nonexistent",
    "AWS_EC2_METADATA_DISABLED": "true",
}
# Nothing listens on the discard port: as far as boto3 can tell, S3 is unreachable.
OFFLINE = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9",
}


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        (NO_CREDENTIALS, "no AWS credentials found: reading JumpStart's public metadata "),
        (OFFLINE, "cannot reach S3 in us-west-2 (offline?): Could not connect "),
    ],
    ids=["no-credentials", "offline"],
)
def test_a_refresh_that_cannot_read_says_why_in_one_line(
    files, monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], message: str
) -> None:
    for name in (
        "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3",
    ):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    code, out, err = refresh(files)
    assert (code, out) == (1, "")
    assert err.startswith(f"jumpstream: error: {message}")
    assert err.count("\n") == 1
    assert "Traceback" not in err
