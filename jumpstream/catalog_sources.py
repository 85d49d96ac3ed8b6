"""The maintained sources `stacks/availability.json` is derived from, read offline.

cfn-lint ships, per region, the SageMaker hosting instance types (built by cfn-lint from the AWS
Pricing API) and CloudFormation's resource-type registry (which types, and which Lambda runtimes
and architectures, each region's CloudFormation accepts). Both are refreshed with every cfn-lint
release, so bumping the pinned cfn-lint and running `python -m jumpstream catalog refresh
--write` brings the tables up to date without network access. The pure functions below turn
that data into the tables; `sections_from_cfn_lint()` reads the installed copy.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from importlib import metadata, resources
from typing import Any

SAGEMAKER_TYPES = (
    "AWS::SageMaker::Model",
    "AWS::SageMaker::EndpointConfig",
    "AWS::SageMaker::Endpoint",
)
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
    SageMaker types exist, where AWS::Lambda::Url exists, and where AWS::Lambda::Function
    accepts Runtime python3.14 with Architectures arm64."""
    sagemaker, function_url, python314 = [], [], []
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
    return {
        "sagemaker_regions": sagemaker,
        "function_url_regions": function_url,
        "python314_arm64_regions": python314,
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
