"""`python -m jumpstream catalog refresh` against JumpStart's metadata held by moto's S3.

The bucket is JumpStart's own (`jumpstart-cache-prod-us-west-2`) with a `models_manifest.json`
and spec files in JumpStart's schema, read by sagemaker-core's JumpStartModelsCache through
boto3, as a real refresh reads them. The specs are written here: one spelled out in full, the
others built by `tgi_spec()` from the pinned facts, plus the cases a refresh exists for: a newer
version that still runs TGI, one that moved to a DJL/LMI image, and a deprecated model.
"""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from jumpstream import cli
from jumpstream.catalog_refresh import RefreshOptions, run_refresh
from stacks.availability import AVAILABILITY_PATH, parse_availability
from stacks.catalog import CATALOG_PATH, parse_catalog

REGION = "us-west-2"
BUCKET = f"jumpstart-cache-prod-{REGION}"
TGI_REPOSITORY = "huggingface-pytorch-tgi-inference"
MISTRAL = "huggingface-llm-mistral-7b"
FALCON = "huggingface-llm-falcon-7b-bf16"
RINNA4B = "huggingface-llm-bilingual-rinna-4b-instruction-ppo-bf16"
TODAY = "2027-01-15"  # a later day than the tables were taken

# One spec spelled out as JumpStart publishes it (fields sagemaker-core's JumpStartModelSpecs
# reads), for the pinned Falcon 7B: the schema the builder below must match.
FALCON_SPEC: dict[str, Any] = {
    "model_id": FALCON,
    "url": "https://huggingface.co/tiiuae/falcon-7b",
    "version": "4.1.23",
    "min_sdk_version": "2.225.0",
    "training_supported": False,
    "incremental_training_supported": False,
    "hosting_ecr_specs": {
        "framework": "huggingface-llm",
        "framework_version": "1.4.0",
        "py_version": "py310",
    },
    "hosting_artifact_key": (
        "huggingface-llm/huggingface-llm-falcon-7b-bf16/artifacts/inference/v2.0.0/"
    ),
    "hosting_script_key": (
        "source-directory-tarballs/huggingface/inference/llm/v1.0.1/sourcedir.tar.gz"
    ),
    "hosting_prepacked_artifact_key": (
        "huggingface-llm/huggingface-llm-falcon-7b-bf16/artifacts/inference-prepack/v2.0.0/"
    ),
    "hosting_prepacked_artifact_version": "2.0.0",
    "hosting_use_script_uri": False,
    "inference_vulnerable": False,
    "inference_dependencies": [],
    "inference_vulnerabilities": [],
    "training_vulnerable": False,
    "training_dependencies": [],
    "training_vulnerabilities": [],
    "deprecated": False,
    "inference_environment_variables": [
        {"name": name, "type": kind, "default": default, "scope": "container",
         "required_for_model_class": True}
        for name, kind, default in (
            ("SAGEMAKER_PROGRAM", "text", "inference.py"),
            ("SAGEMAKER_SUBMIT_DIRECTORY", "text", "/opt/ml/model/code"),
            ("SAGEMAKER_CONTAINER_LOG_LEVEL", "text", "20"),
            ("SAGEMAKER_MODEL_SERVER_TIMEOUT", "text", "3600"),
            ("ENDPOINT_SERVER_TIMEOUT", "int", 3600),
            ("MODEL_CACHE_ROOT", "text", "/opt/ml/model"),
            ("SAGEMAKER_ENV", "text", "1"),
            ("HF_MODEL_ID", "text", "/opt/ml/model"),
            ("MAX_INPUT_LENGTH", "text", "1024"),
            ("MAX_TOTAL_TOKENS", "text", "2048"),
            ("SM_NUM_GPUS", "text", "1"),
            ("SAGEMAKER_MODEL_SERVER_WORKERS", "int", 1),
        )
    ],
    "metrics": [],
    "default_inference_instance_type": "ml.g5.2xlarge",
    "supported_inference_instance_types": [
        "ml.g5.2xlarge", "ml.g5.4xlarge", "ml.g5.8xlarge", "ml.g5.16xlarge",
    ],
    "model_kwargs": {},
    "deploy_kwargs": {
        "model_data_download_timeout": 900,
        "container_startup_health_check_timeout": 900,
    },
    "predictor_specs": {
        "supported_content_types": ["application/json"],
        "supported_accept_types": ["application/json"],
        "default_content_type": "application/json",
        "default_accept_type": "application/json",
    },
    "inference_volume_size": 256,
    "inference_enable_network_isolation": True,
    "resource_name_base": "hf-llm-falcon-7b-bf16",
    "hosting_instance_type_variants": {
        "regional_aliases": {
            "us-east-1": {
                "gpu_ecr_uri_1": "763104351884.dkr.ecr.us-east-1.amazonaws.com/"
                "huggingface-pytorch-tgi-inference:2.1.1-tgi1.4.0-gpu-py310-cu121-ubuntu20.04"
            },
        },
        "variants": {
            "g5": {"regional_properties": {"image_uri": "$gpu_ecr_uri_1"}},
            "ml.g5.2xlarge": {"properties": {"environment_variables": {"SM_NUM_GPUS": "1"}}},
        },
    },
}  # fmt: skip


def image_uri(region: str, repository: str, tag: str, accounts: dict[str, str]) -> str:
    account = accounts.get(region, "763104351884")
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"{account}.dkr.ecr.{region}.{suffix}/{repository}:{tag}"


def tgi_spec(entry: dict[str, Any], accounts: dict[str, str], **changes: Any) -> dict[str, Any]:
    """A spec in JumpStart's schema carrying a models.json entry's facts (then `changes`)."""
    version = changes.pop("version", entry["spec_version"])
    repository = changes.pop("repository", TGI_REPOSITORY)
    tag = changes.pop("tag", entry["image_tag"])
    regions = changes.pop("regions", entry["image_regions"])
    families = sorted({t.split(".")[1] for t in entry["instance_types"]})
    env = [
        {"name": k, "type": "int" if isinstance(v, int) else "text", "default": v,
         "scope": "container", "required_for_model_class": True}
        for k, v in entry["environment"].items()
    ]  # fmt: skip
    family_image = {"regional_properties": {"image_uri": "$gpu_ecr_uri_1"}}
    variants: dict[str, Any] = {family: family_image for family in families}
    for instance_type, option in entry["instance_types"].items():
        variants[instance_type] = {
            "properties": {
                "environment_variables": {
                    "SM_NUM_GPUS": str(option["gpus"]),
                    **option.get("environment", {}),
                }
            }
        }
    key = entry["artifact_key"]
    spec = {
        **{k: v for k, v in FALCON_SPEC.items() if k not in ("url", "resource_name_base")},
        "model_id": entry["id"],
        "version": version,
        "hosting_ecr_specs": {
            "framework": "huggingface-llm",
            "framework_version": entry["tgi_version"],
            "py_version": "py310",
        },
        "hosting_artifact_key": key,
        "hosting_prepacked_artifact_key": key if key.endswith("/") else None,
        "inference_environment_variables": env,
        "default_inference_instance_type": entry["default_instance_type"],
        "supported_inference_instance_types": list(entry["instance_types"]),
        "deploy_kwargs": {
            "model_data_download_timeout": entry["startup"]["model_data_download_timeout_seconds"],
            "container_startup_health_check_timeout": entry["startup"][
                "container_startup_health_check_timeout_seconds"
            ],
        },
        "hosting_instance_type_variants": {
            "regional_aliases": {
                r: {"gpu_ecr_uri_1": image_uri(r, repository, tag, accounts)} for r in regions
            },
            "variants": variants,
        },
    }
    if spec["hosting_prepacked_artifact_key"] is None:
        del spec["hosting_prepacked_artifact_key"]
    spec.update(changes)
    return spec


def catalog_doc() -> dict[str, Any]:
    return json.loads(CATALOG_PATH.read_text())


def entry(model_id: str) -> dict[str, Any]:
    return next(m for m in catalog_doc()["models"] if m["id"] == model_id)


def publish(specs: list[dict[str, Any]]) -> None:
    """Put a manifest and the spec files into JumpStart's (moto's) bucket."""
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    manifest = []
    for spec in specs:
        key = f"community_models/{spec['model_id']}/specs_v{spec['version']}.json"
        s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(spec).encode())
        manifest.append(
            {
                "model_id": spec["model_id"],
                "version": spec["version"],
                "min_version": "2.225.0",
                "spec_key": key,
            }
        )
    s3.put_object(Bucket=BUCKET, Key="models_manifest.json", Body=json.dumps(manifest).encode())


def pinned_specs(*, skip: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    accounts = catalog_doc()["image"]["accounts"]
    return [tgi_spec(m, accounts) for m in catalog_doc()["models"] if m["id"] not in skip]


@pytest.fixture
def jumpstart(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto's S3 standing in for JumpStart's bucket; sagemaker-core's caches start empty."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    from sagemaker.core.jumpstart.accessors import JumpStartModelsAccessor

    with mock_aws():
        JumpStartModelsAccessor.reset_cache()
        yield
        JumpStartModelsAccessor.reset_cache()


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    """Copies of the checked-in catalog files, for refreshes that write."""
    catalog, availability = tmp_path / "models.json", tmp_path / "availability.json"
    shutil.copy(CATALOG_PATH, catalog)
    shutil.copy(AVAILABILITY_PATH, availability)
    return catalog, availability


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
    publish(pinned_specs())
    before = [p.read_text() for p in files]
    code, out, err = refresh(files)
    assert (code, err) == (0, "")
    assert out == "The catalog matches JumpStart's metadata and the availability tables.\n"
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


def test_a_newer_version_on_a_djl_lmi_image_is_refused(jumpstart, files) -> None:
    accounts = catalog_doc()["image"]["accounts"]
    mistral = entry(MISTRAL)
    newer_tag = "2.3.0-tgi2.2.0-gpu-py310-cu121-ubuntu22.04"
    newer_tgi = tgi_spec(mistral, accounts, version="2.6.0", tag=newer_tag)
    moved = tgi_spec(
        mistral,
        accounts,
        version="3.0.0",
        repository="djl-inference",
        tag="0.29.0-lmi11.0.0-cu124",
        hosting_ecr_specs={
            "framework": "djl-lmi",
            "framework_version": "0.29.0",
            "py_version": "py310",
        },
    )
    publish([tgi_spec(mistral, accounts), newer_tgi, moved, *pinned_specs(skip=(MISTRAL,))])
    code, out, err = refresh(files, MISTRAL)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == (
        "huggingface-llm-mistral-7b: spec 2.6.0 still runs TGI 2.2.0 "
        "(2.3.0-tgi2.2.0-gpu-py310-cu121-ubuntu22.04): set spec_version to 2.6.0 in "
        "stacks/models.json and refresh again to adopt it"
    )
    assert lines[1] == (
        "huggingface-llm-mistral-7b: spec 3.0.0 is not adopted: spec 3.0.0 runs "
        "djl-inference:0.29.0-lmi11.0.0-cu124, not huggingface-pytorch-tgi-inference; "
        "jumpstream's relay parses TGI's stream, so 2.5.0 stays pinned"
    )
    assert lines[2] == "The catalog matches JumpStart's metadata and the availability tables."


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


def test_a_pinned_spec_that_is_no_longer_tgi_is_reported_and_kept(jumpstart, files) -> None:
    accounts = catalog_doc()["image"]["accounts"]
    lmi = {"repository": "djl-inference", "tag": "0.29.0-lmi11.0.0-cu124"}
    republished = tgi_spec(entry(MISTRAL), accounts, **lmi)
    publish([republished, *pinned_specs(skip=(MISTRAL,))])
    code, out, _ = refresh(files, MISTRAL)
    assert code == 0
    assert out.splitlines() == [
        "huggingface-llm-mistral-7b: spec 2.5.0 runs djl-inference:0.29.0-lmi11.0.0-cu124, not "
        "huggingface-pytorch-tgi-inference; its pinned facts are kept",
        "The catalog matches JumpStart's metadata and the availability tables.",
    ]


def test_a_model_dropped_from_the_manifest_is_reported_and_kept(jumpstart, files) -> None:
    publish(pinned_specs(skip=(RINNA4B,)))
    code, out, _ = refresh(files)
    assert code == 0
    assert out.splitlines() == [
        f"{RINNA4B}: JumpStart's manifest no longer lists it (deprecated or withdrawn); its "
        "pinned facts are kept",
        "The catalog matches JumpStart's metadata and the availability tables.",
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
        "catalog's own models (add a new one to stacks/models.json by hand first)\n"
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
