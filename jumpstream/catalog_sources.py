"""The maintained sources the catalog's files are derived from.

`stacks/availability.json`, read offline: cfn-lint ships, per region, the SageMaker hosting
instance types (built by cfn-lint from the AWS Pricing API) and CloudFormation's resource-type
registry (which types, and which Lambda runtimes and architectures, each region's CloudFormation
accepts). Both are refreshed with every cfn-lint release, so bumping the pinned cfn-lint and
running `python -m jumpstream catalog refresh --write` brings the tables up to date without
network access. The pure functions below turn that data into the tables;
`sections_from_cfn_lint()` reads the installed copy.

`stacks/models.json`, read from JumpStart: its public `jumpstart-cache-prod-{region}` bucket
holds a `models_manifest.json` (every model id and version with its spec file), one spec per
version, the licences' texts and the ungated models' Hugging Face files. sagemaker-core (the
SageMaker Python SDK v3) reads the manifest and specs with `JumpStartModelsCache`, its own
caching S3 reader, which `jumpstart_reader()` uses with a boto3 client (so moto can stand in for
S3); the same client reads the other files. How many GPUs an instance type has comes from
sagemaker-core's offline instance table (`instance_gpu_counts()`), and for the types JumpStart's
specs name that it lacks, from AWS's own instance pages (`GPUS_NOT_IN_SAGEMAKER_CORE`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib import metadata, resources
from typing import Any

#: Where JumpStart's SDK reads its metadata by default.
DEFAULT_REGION = "us-west-2"
SAGEMAKER_TYPES = (
    "AWS::SageMaker::Model",
    "AWS::SageMaker::EndpointConfig",
    "AWS::SageMaker::Endpoint",
)
#: Lambda Managed Instances' resource type: the capacity provider a function runs on.
CAPACITY_PROVIDER_TYPE = "AWS::Lambda::CapacityProvider"
HOSTING_FILE = "cfnlint/data/schemas/extensions/aws_sagemaker_hosting/instancetype_enum.json"
REGISTRY_FILES = "cfnlint/data/schemas/providers/<region>.json"


def instance_family(instance_type: str) -> str:
    """`ml.g5.2xlarge` -> `ml.g5`."""
    return instance_type.rsplit(".", 1)[0]


def hosting_table(
    enum_by_region: Mapping[str, Any], families: Iterable[str]
) -> dict[str, list[str]]:
    """Per region, the hosting instance types of the given families (every region listed)."""
    wanted = set(families)
    return {
        region: sorted(t for t in entry["enum"] if instance_family(t) in wanted)
        for region, entry in sorted(enum_by_region.items())
        if isinstance(entry, dict) and "enum" in entry
    }


def registry_regions(
    registries: Mapping[str, Mapping[str, Any]],
    schemas: Mapping[str, Mapping[str, Any]],
) -> dict[str, list[str]]:
    """From each region's CloudFormation registry (type -> schema id) and the schemas: where the
    SageMaker types exist, where AWS::Lambda::Url exists, where AWS::Lambda::Function accepts
    Runtime python3.14 with Architectures arm64, and where Lambda Managed Instances can be
    declared (AWS::Lambda::CapacityProvider exists and the function takes a
    CapacityProviderConfig)."""
    sagemaker, function_url, python314, managed_instances = [], [], [], []
    for region, registry in sorted(registries.items()):
        if all(t in registry for t in SAGEMAKER_TYPES):
            sagemaker.append(region)
        if "AWS::Lambda::Url" in registry:
            function_url.append(region)
        function_id = registry.get("AWS::Lambda::Function")
        if function_id is not None:
            props = schemas[function_id]["properties"]
            runtimes = props["Runtime"].get("enum", [])
            architectures = props["Architectures"]["items"].get("enum", [])
            if "python3.14" in runtimes and "arm64" in architectures:
                python314.append(region)
            if CAPACITY_PROVIDER_TYPE in registry and "CapacityProviderConfig" in props:
                managed_instances.append(region)
    return {
        "sagemaker_regions": sagemaker,
        "function_url_regions": function_url,
        "python314_arm64_regions": python314,
        "lambda_managed_instances_regions": managed_instances,
    }


def cfn_lint_version() -> str:
    return metadata.version("cfn-lint")


def _data(relative: str) -> Any:
    root = resources.files("cfnlint").joinpath("data", "schemas")
    with root.joinpath(relative).open(encoding="utf-8") as fh:
        return json.load(fh)


def sections_from_cfn_lint(families: Iterable[str], retrieved: str) -> dict[str, Any]:
    """The `sagemaker_hosting` and `cloudformation` sections, from the installed cfn-lint."""
    version = cfn_lint_version()
    enum_by_region = _data("extensions/aws_sagemaker_hosting/instancetype_enum.json")
    providers = resources.files("cfnlint").joinpath("data", "schemas", "providers")
    regions = sorted(r for r, entry in enum_by_region.items() if isinstance(entry, dict))
    # cfn-lint carries no registry for a few regions (me-south-1): they count as lacking it.
    registries = {
        region: _data(f"providers/{region}.json")
        for region in regions
        if providers.joinpath(f"{region}.json").is_file()
    }
    schemas = {
        registry["AWS::Lambda::Function"]: _data(
            f"resources/{registry['AWS::Lambda::Function']}.json"
        )
        for registry in registries.values()
        if "AWS::Lambda::Function" in registry
    }
    return {
        "sagemaker_hosting": {
            "source": f"cfn-lint {version}: {HOSTING_FILE} (cfn-lint builds it from the AWS "
            "Pricing API)",
            "retrieved": retrieved,
            "families": sorted(set(families)),
            "instance_types": hosting_table(enum_by_region, families),
        },
        "cloudformation": {
            "source": f"cfn-lint {version}: {REGISTRY_FILES} (CloudFormation's resource-type "
            "registry per region)",
            "retrieved": retrieved,
            **registry_regions(registries, schemas),
        },
    }


@dataclass(frozen=True, slots=True)
class JumpStartReader:
    """What the catalog tools read from one region's JumpStart content bucket."""

    #: A model's versions in the manifest (empty when it is not listed).
    versions: Callable[[str], list[str]]
    #: A model version's spec (sagemaker-core's JumpStartModelSpecs).
    spec: Callable[[str, str], Any]
    #: A file of the bucket as text, or None when it is not there or not readable.
    text: Callable[[str], str | None]


#: S3's answers for a file that is not there or not ours to read.
_UNREADABLE = frozenset({"NoSuchKey", "404", "AccessDenied", "403"})


def jumpstart_reader(region: str) -> JumpStartReader:
    """Readers over sagemaker-core's JumpStart cache for one region's content bucket (or the
    SDK's AWS_JUMPSTART_CONTENT_BUCKET_OVERRIDE), and over the same bucket's files."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError

    logging.getLogger("sagemaker.jumpstart").setLevel(logging.ERROR)
    from sagemaker.core.jumpstart.cache import JumpStartModelsCache

    s3 = boto3.client(
        "s3",
        region_name=region,
        config=Config(connect_timeout=10, read_timeout=30, retries={"max_attempts": 2}),
    )
    cache = JumpStartModelsCache(region=region, s3_client=s3)
    manifest: list[Any] = []

    def versions(model_id: str) -> list[str]:
        if not manifest:
            manifest.extend(cache.get_manifest())
        return [header.version for header in manifest if header.model_id == model_id]

    def spec(model_id: str, version: str) -> Any:
        return cache.get_specs(model_id, version)

    def text(key: str) -> str | None:
        try:
            body = s3.get_object(Bucket=cache.s3_bucket_name, Key=key)["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _UNREADABLE:
                return None
            raise
        return body.decode("utf-8", errors="replace")

    return JumpStartReader(versions=versions, spec=spec, text=text)


#: GPUs of the instance types JumpStart's LMI specs name (Llama 3.x's default ml.g6.xlarge
#: among them) that sagemaker-core's offline table lacks, from AWS's instance pages: G5 (NVIDIA
#: A10G) and G6 (NVIDIA L4), https://aws.amazon.com/ec2/instance-types/g5/ and .../g6/; the
#: SageMaker `ml.` types have the EC2 type's GPUs. sagemaker-core's table wins where it has one.
GPUS_NOT_IN_SAGEMAKER_CORE: Mapping[str, int] = {
    "ml.g5.xlarge": 1,
    "ml.g6.xlarge": 1, "ml.g6.2xlarge": 1, "ml.g6.4xlarge": 1, "ml.g6.8xlarge": 1,
    "ml.g6.16xlarge": 1, "ml.g6.12xlarge": 4, "ml.g6.24xlarge": 4, "ml.g6.48xlarge": 8,
}  # fmt: skip


def instance_gpu_counts() -> dict[str, int]:
    """GPUs per SageMaker instance type, from sagemaker-core's offline table (kept per region;
    a type has the same GPUs everywhere), and the types it lacks from
    GPUS_NOT_IN_SAGEMAKER_CORE."""
    table_file = resources.files("sagemaker.core").joinpath(
        "image_uri_config", "instance_gpu_info.json"
    )
    with table_file.open(encoding="utf-8") as fh:
        table = json.load(fh)
    return {
        **GPUS_NOT_IN_SAGEMAKER_CORE,
        **{
            instance_type: int(info["Count"])
            for region_table in table.values()
            for instance_type, info in region_table.items()
        },
    }


def explain(exc: Exception, region: str) -> str:
    """One line for the ways reading JumpStart fails before there is anything to show."""
    from botocore import exceptions as botocore_errors

    if isinstance(
        exc, botocore_errors.NoCredentialsError | botocore_errors.PartialCredentialsError
    ):
        return (
            "no AWS credentials found: reading JumpStart's public metadata still needs signed S3 "
            "requests; configure any credentials (AWS_PROFILE, aws configure) and run again"
        )
    if isinstance(
        exc,
        botocore_errors.EndpointConnectionError
        | botocore_errors.ConnectTimeoutError
        | botocore_errors.ReadTimeoutError,
    ):
        return f"cannot reach S3 in {region} (offline?): {exc}"
    if isinstance(exc, botocore_errors.ClientError):
        error = exc.response.get("Error", {})
        return (
            f"S3 refused reading JumpStart's metadata in {region}: "
            f"{error.get('Code', '?')}: {error.get('Message', exc)}"
        )
    if isinstance(exc, botocore_errors.BotoCoreError):
        return f"AWS SDK error while reading JumpStart's metadata: {exc}"
    if isinstance(exc, KeyError | LookupError):  # KeyError's str() is the quoted key
        return str(exc.args[0]) if exc.args else type(exc).__name__
    return f"{type(exc).__name__}: {exc}"
