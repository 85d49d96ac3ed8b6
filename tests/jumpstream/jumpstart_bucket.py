"""JumpStart's content bucket held by moto's S3, for the `catalog refresh` and `catalog add` tests.

The bucket is JumpStart's own (`jumpstart-cache-prod-us-west-2`) with a `models_manifest.json`
and spec files in JumpStart's schema, read by sagemaker-core's JumpStartModelsCache through
boto3 as the commands read them, plus the other files the commands read there (licence texts,
tokenizer settings). The specs: the TGI models' built by `tgi_spec()` from their pinned facts
(its schema checked against one spelled out in full, FALCON_SPEC); the LMI models' are
JumpStart's real ones (tests/jumpstream/jumpstart_specs).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from stacks.availability import AVAILABILITY_PATH
from stacks.catalog import CATALOG_PATH
from tests.jumpstream import jumpstart_specs

REGION = "us-west-2"
BUCKET = f"jumpstart-cache-prod-{REGION}"
TGI_REPOSITORY = "huggingface-pytorch-tgi-inference"
TODAY = "2027-01-15"  # a later day than the tables were taken

# One spec spelled out as JumpStart publishes it (fields sagemaker-core's JumpStartModelSpecs
# reads), for the pinned Falcon 7B: the schema the builder below must match.
FALCON_SPEC: dict[str, Any] = {
    "model_id": "huggingface-llm-falcon-7b-bf16",
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


def image_uri(region: str, repository: str, tag: str, accounts: Mapping[str, str]) -> str:
    account = accounts.get(region, "763104351884")
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"{account}.dkr.ecr.{region}.{suffix}/{repository}:{tag}"


def tgi_spec(entry: dict[str, Any], accounts: Mapping[str, str], **changes: Any) -> dict[str, Any]:
    """A spec in JumpStart's schema carrying a TGI models.json entry's facts (then `changes`;
    `repository`, `tag` and `regions` change the image and where the spec names it)."""
    version = changes.pop("version", entry["spec_version"])
    repository = changes.pop("repository", entry["image_repository"])
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
            "framework_version": entry["engine_version"],
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


def on_lmi(
    spec: dict[str, Any], tag: str = "0.29.0-lmi11.0.0-cu124", **changes: Any
) -> dict[str, Any]:
    """`spec` moved onto an LMI image, as JumpStart moves a model: djl-inference in every region,
    and no TGI SM_NUM_GPUS (LMI shards over every GPU of the instance)."""
    moved = json.loads(json.dumps(spec))
    variants = moved["hosting_instance_type_variants"]
    for aliases in variants["regional_aliases"].values():
        for alias, uri in aliases.items():
            host = uri.split("/", 1)[0]
            aliases[alias] = f"{host}/djl-inference:{tag}"
    for variant in variants["variants"].values():
        environment = variant.get("properties", {}).get("environment_variables")
        if environment is not None:
            environment.pop("SM_NUM_GPUS", None)
            if not environment:
                del variant["properties"]
    moved["inference_environment_variables"] = [
        v for v in moved["inference_environment_variables"] if v["name"] != "SM_NUM_GPUS"
    ]
    moved["hosting_ecr_specs"] = {"framework": "djl-lmi", "framework_version": tag.split("-")[0]}
    moved.update(changes)
    return moved


def catalog_doc(path: Path = CATALOG_PATH) -> dict[str, Any]:
    return json.loads(path.read_text())


def entry(model_id: str, path: Path = CATALOG_PATH) -> dict[str, Any]:
    return next(m for m in catalog_doc(path)["models"] if m["id"] == model_id)


def pinned_spec(model: dict[str, Any], accounts: Mapping[str, str]) -> dict[str, Any]:
    """The spec a catalog entry was built from: a TGI one from its facts, an LMI one JumpStart's."""
    if model["engine"] == "tgi":
        return tgi_spec(model, accounts)
    return jumpstart_specs.publishable(jumpstart_specs.load(model["id"], model["spec_version"]))


def pinned_specs(*, skip: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    doc = catalog_doc()
    accounts = doc["image"]["accounts"]
    return [pinned_spec(m, accounts) for m in doc["models"] if m["id"] not in skip]


def publish(specs: list[dict[str, Any]], files: Mapping[str, str] | None = None) -> None:
    """Put a manifest, the spec files and other `files` (key: text) into JumpStart's (moto's)
    bucket."""
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
    for key, text in (files or {}).items():
        s3.put_object(Bucket=BUCKET, Key=key, Body=text.encode())


def moto_jumpstart(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
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


def copied_files(tmp_path: Path) -> tuple[Path, Path]:
    """Copies of the checked-in catalog files, for commands that write."""
    catalog, availability = tmp_path / "models.json", tmp_path / "availability.json"
    shutil.copy(CATALOG_PATH, catalog)
    shutil.copy(AVAILABILITY_PATH, availability)
    return catalog, availability
