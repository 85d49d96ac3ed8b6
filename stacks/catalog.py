"""The model catalog: the JumpStart TGI models jumpstream can deploy, loaded from `models.json`.

The facts live in JSON so they can be updated without touching code; this module only gives
them types and refuses a file that breaks the invariants the endpoint construct relies on (a
supported default instance, at least one GPU per instance type, an artifact that is a prefix or
a `.tar.gz`, an image tag carrying the TGI version, startup timeouts within 60-3600 s, at least
one region). Regions without an entry in the account table use the default ECR account.

A model's regions are derived, not typed: those of its spec's image regions where
`availability.json` says SageMaker hosting offers one of its instance types and CloudFormation
has the SageMaker resource types. `deployment_problem()` is the one check of a model x region x
instance type, used by the config and by the endpoint construct alike.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from stacks.availability import Availability, load_availability, partition
from stacks.errors import ConfigError, did_you_mean

CATALOG_PATH = Path(__file__).with_name("models.json")

# Environment keys the specs carry that must not reach the container: the prepacked artifacts
# have no code directory, so the TGI entrypoint would look for a script that is not there.
DROPPED_ENVIRONMENT = frozenset({"SAGEMAKER_SUBMIT_DIRECTORY"})
#: The TGI version whose streams first carry the prompt's length in tokens.
PROMPT_TOKENS_REPORTED_SINCE = (2, 3)
#: The fast tokenizer's file among a model's Hugging Face files.
TOKENIZER_FILE = "tokenizer.json"


@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceOption:
    """One supported instance type: how many GPUs TGI shards over, and extra environment."""

    instance_type: str
    gpus: int
    environment: dict[str, str]


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageRegistry:
    """Where the TGI Deep Learning Container lives: one ECR repository, per-region accounts."""

    repository: str
    default_account: str
    accounts: dict[str, str]

    def account(self, region: str) -> str:
        return self.accounts.get(region, self.default_account)


@dataclass(frozen=True, slots=True, kw_only=True)
class Model:
    """One JumpStart model at a pinned spec version."""

    id: str
    name: str
    spec_version: str
    tgi_version: str
    image_tag: str
    artifact_key: str
    default_instance_type: str
    instance_types: dict[str, InstanceOption]
    environment: dict[str, str]
    image_regions: tuple[str, ...]
    regions: tuple[str, ...]
    eos_token: str
    #: The model's chat layout as the relay's PROMPT_TEMPLATE setting reads it (compact JSON,
    #: ASCII only so any environment variable carries it). The relay interprets it.
    prompt_template: str
    health_check_timeout_seconds: int
    download_timeout_seconds: int
    deprecated: str | None
    artifact_bucket_pattern: str
    registry: ImageRegistry

    @property
    def artifact_is_prefix(self) -> bool:
        """A key ending in `/` is an uncompressed prefix; anything else is a `.tar.gz`."""
        return self.artifact_key.endswith("/")

    @property
    def reports_prompt_tokens(self) -> bool:
        """TGI reports a prompt's length in tokens (StreamDetails.input_length) since 2.3; for
        older versions the relay counts them with the model's own tokenizer."""
        return _version(self.tgi_version) >= PROMPT_TOKENS_REPORTED_SINCE

    def tokenizer_uri(self, region: str) -> str | None:
        """Where the relay finds the model's tokenizer when TGI does not count prompt tokens:
        the `tokenizer.json` of its Hugging Face files, in the artifact prefix the endpoint
        loads (None when TGI counts them, or the artifact is an archive)."""
        if self.reports_prompt_tokens or not self.artifact_is_prefix:
            return None
        return self.artifact_uri(region) + TOKENIZER_FILE

    def artifact_bucket(self, region: str) -> str:
        return self.artifact_bucket_pattern.format(region=region)

    def artifact_uri(self, region: str) -> str:
        return f"s3://{self.artifact_bucket(region)}/{self.artifact_key}"

    def image_uri(self, region: str) -> str:
        account = self.registry.account(region)
        return (
            f"{account}.dkr.ecr.{region}.{dns_suffix(region)}/"
            f"{self.registry.repository}:{self.image_tag}"
        )

    def context_limits(self, instance_type: str) -> tuple[int, int] | None:
        """TGI's MAX_TOTAL_TOKENS and MAX_INPUT_LENGTH (MAX_INPUT_TOKENS in newer TGIs) for the
        container on `instance_type`: the most prompt + answer, and prompt, tokens it takes. The
        relay sizes answers without max_tokens by them; None where the catalog gives neither."""
        env = self.container_environment(instance_type)
        total = env.get("MAX_TOTAL_TOKENS")
        prompt = env.get("MAX_INPUT_LENGTH", env.get("MAX_INPUT_TOKENS"))
        if total is None:
            return None
        return int(total), int(total) - 1 if prompt is None else int(prompt)

    def container_environment(self, instance_type: str) -> dict[str, str]:
        """The container's environment for one instance type, every value a string."""
        option = self.instance_types[instance_type]
        env = {k: v for k, v in self.environment.items() if k not in DROPPED_ENVIRONMENT}
        env.update(option.environment)
        env["SM_NUM_GPUS"] = str(option.gpus)
        return dict(sorted(env.items()))


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def dns_suffix(region: str) -> str:
    return "amazonaws.com.cn" if partition(region) == "aws-cn" else "amazonaws.com"


def deployable_regions(
    image_regions: tuple[str, ...], instance_types: list[str], availability: Availability
) -> tuple[str, ...]:
    """Where a model can really run: its spec names an image there, SageMaker hosting offers at
    least one of its instance types there, and CloudFormation has the SageMaker types."""
    return tuple(
        sorted(
            region
            for region in image_regions
            if region in availability.cloudformation_sagemaker
            and any(availability.offers(region, t) for t in instance_types)
        )
    )


def region_problem(model: Model, region: str, availability: Availability) -> str | None:
    """Why `model` cannot run in `region` on any of its instance types, or None."""
    if region not in model.image_regions:
        return f"its JumpStart spec {model.spec_version} names no image in {region}"
    if not any(availability.offers(region, t) for t in model.instance_types):
        return (
            f"SageMaker hosting offers none of its instance types "
            f"({', '.join(model.instance_types)}) in {region}"
        )
    if region not in availability.cloudformation_sagemaker:
        return f"CloudFormation does not offer the SageMaker resource types in {region}"
    return None


def deployment_problem(
    model: Model, region: str, instance_type: str, availability: Availability
) -> str | None:
    """Why `model` cannot be deployed on `instance_type` in `region`, in one line, or None."""
    problem = region_problem(model, region, availability)
    if problem:
        return (
            f"{model.id} cannot run in {region}: {problem}; "
            f"choose a region among: {', '.join(model.regions)}"
        )
    offered_here = [t for t in model.instance_types if availability.offers(region, t)]
    if instance_type not in model.instance_types:
        return (
            f"instance type {instance_type!r} is not supported by {model.id}"
            f"{did_you_mean(instance_type, offered_here)}; choose one of: {', '.join(offered_here)}"
        )
    if instance_type not in offered_here:
        where = availability.regions_offering(instance_type)
        return (
            f"SageMaker hosting does not offer {instance_type} in {region} (it does in "
            f"{', '.join(where) or 'no region'}); of {model.id}'s instance types {region} "
            f"offers: {', '.join(offered_here)}"
        )
    return None


@dataclass(frozen=True, slots=True)
class Catalog:
    models: dict[str, Model]
    availability: Availability

    def get(self, model_id: str) -> Model:
        try:
            return self.models[model_id]
        except KeyError:
            raise ConfigError(
                f"unknown model_id {model_id!r}{did_you_mean(model_id, self.models)}; choose one "
                f"of: {', '.join(sorted(self.models))}"
            ) from None


def _env_strings(raw: dict[str, Any], where: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in raw.items():
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ConfigError(f"{where}: environment value {key} must be a string or a number")
        out[key] = str(value)
    return out


def _model(
    raw: dict[str, Any], *, bucket: str, registry: ImageRegistry, availability: Availability
) -> Model:
    where = f"models.json: {raw.get('id', '?')}"
    options = {
        name: InstanceOption(
            instance_type=name,
            gpus=int(opt["gpus"]),
            environment=_env_strings(opt.get("environment", {}), where),
        )
        for name, opt in raw["instance_types"].items()
    }
    model = Model(
        id=raw["id"],
        name=raw["name"],
        spec_version=raw["spec_version"],
        tgi_version=raw["tgi_version"],
        image_tag=raw["image_tag"],
        artifact_key=raw["artifact_key"],
        default_instance_type=raw["default_instance_type"],
        instance_types=options,
        environment=_env_strings(raw["environment"], where),
        image_regions=tuple(raw["image_regions"]),
        regions=deployable_regions(tuple(raw["image_regions"]), list(options), availability),
        eos_token=raw["eos_token"],
        prompt_template=json.dumps(
            raw["prompt_template"], ensure_ascii=True, separators=(",", ":"), sort_keys=True
        ),
        health_check_timeout_seconds=int(
            raw["startup"]["container_startup_health_check_timeout_seconds"]
        ),
        download_timeout_seconds=int(raw["startup"]["model_data_download_timeout_seconds"]),
        deprecated=raw.get("deprecated"),
        artifact_bucket_pattern=bucket,
        registry=registry,
    )
    _check(model, where)
    return model


def _check(model: Model, where: str) -> None:
    if model.default_instance_type not in model.instance_types:
        raise ConfigError(f"{where}: default instance type is not among the supported ones")
    if any(opt.gpus < 1 for opt in model.instance_types.values()):
        raise ConfigError(f"{where}: every instance type needs at least one GPU")
    if not (model.artifact_is_prefix or model.artifact_key.endswith(".tar.gz")):
        raise ConfigError(f"{where}: artifact_key must end in '/' (prefix) or '.tar.gz'")
    if f"-tgi{model.tgi_version}-" not in model.image_tag:
        raise ConfigError(f"{where}: image_tag does not carry TGI {model.tgi_version}")
    # SageMaker's limits on the two production-variant timeouts.
    for seconds in (model.health_check_timeout_seconds, model.download_timeout_seconds):
        if not 60 <= seconds <= 3600:
            raise ConfigError(f"{where}: startup timeouts must be within 60..3600 seconds")
    if not model.regions:
        raise ConfigError(
            f"{where}: no regions (none of its image regions offers one of its instance types)"
        )


def parse_catalog(doc: dict[str, Any], availability: Availability | None = None) -> Catalog:
    availability = availability or load_availability()
    image = doc["image"]
    registry = ImageRegistry(
        repository=image["repository"],
        default_account=image["default_account"],
        accounts=dict(image["accounts"]),
    )
    models: dict[str, Model] = {}
    for raw in doc["models"]:
        model = _model(
            raw, bucket=doc["artifact_bucket"], registry=registry, availability=availability
        )
        if model.id in models:
            raise ConfigError(f"models.json: {model.id} is listed twice")
        models[model.id] = model
    return Catalog(models, availability)


@cache
def load_catalog(path: Path = CATALOG_PATH) -> Catalog:
    """The checked-in catalog, parsed once per process."""
    with path.open(encoding="utf-8") as fh:
        return parse_catalog(json.load(fh))
