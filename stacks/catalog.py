"""The model catalog: the JumpStart models jumpstream can deploy, loaded from `models.json`.

The facts live in JSON so they can be updated without touching code; this module only gives
them types and refuses a file that breaks the invariants the endpoint construct relies on (a
supported default instance, at least one GPU per instance type, an artifact that is a prefix or
a `.tar.gz`, an image of the model's engine whose tag carries the engine's version, GPU and
context settings the engine reads consistently, a chat the engine can serve, a licence named
for a gated model, startup timeouts within 60-3600 s, at least one region). Regions without an
entry in the account table use the default ECR account (the same table for every Deep Learning
Containers repository).

Each model runs on one engine (stacks/serving_engines.py): TGI, LMI or vLLM. Its `chat` is the
relay's prompt layout (an object the relay renders `messages` with), "engine" (the engine lays
out `messages` with the model's own chat template), or null (prompts only). A gated model's
artifact lives in JumpStart's private bucket and is read only once its environment accepts its
licence (`accept_eula`; `licence_problem()` says so in one line).

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
from stacks.serving_engines import ENGINE_TABLE, ServingEngine

CATALOG_PATH = Path(__file__).with_name("models.json")

# Environment keys the specs carry that must not reach the container: the prepacked artifacts
# have no code directory, so the container's entrypoint would look for a script that is not there.
DROPPED_ENVIRONMENT = frozenset({"SAGEMAKER_SUBMIT_DIRECTORY"})
#: The TGI version whose streams first carry the prompt's length in tokens.
PROMPT_TOKENS_REPORTED_SINCE = (2, 3)
#: The fast tokenizer's file among a model's Hugging Face files.
TOKENIZER_FILE = "tokenizer.json"
#: A model's `chat` when its engine lays out `messages` with the model's own chat template.
ENGINE_CHAT = "engine"


@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceOption:
    """One supported instance type: how many GPUs one copy of the model shards over, and extra
    environment."""

    instance_type: str
    gpus: int
    environment: dict[str, str]


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageRegistry:
    """The ECR accounts of the Deep Learning Containers, per region (one table for every
    repository: TGI's, LMI's and vLLM's)."""

    default_account: str
    accounts: dict[str, str]

    def account(self, region: str) -> str:
        return self.accounts.get(region, self.default_account)


@dataclass(frozen=True, slots=True, kw_only=True)
class Gated:
    """A model whose licence must be accepted before SageMaker may download it."""

    #: The licence's text in JumpStart's content bucket (the spec's hosting_eula_key).
    eula_key: str
    #: What the licence is called, as a refusal names it.
    licence: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Model:
    """One JumpStart model at a pinned spec version."""

    id: str
    name: str
    spec_version: str
    #: The server in the image, one of contract.ENGINES (stacks/serving_engines.py).
    engine: str
    #: Its version, as the image tag names it (TGI's 2.4.0, LMI's 11.0.0, vLLM's 0.19.1).
    engine_version: str
    image_repository: str
    image_tag: str
    artifact_key: str
    default_instance_type: str
    instance_types: dict[str, InstanceOption]
    environment: dict[str, str]
    image_regions: tuple[str, ...]
    regions: tuple[str, ...]
    #: The tokenizer's end-of-sequence token, where known (the model's own tokenizer files say
    #: it; no spec does).
    eos_token: str | None
    #: The model's chat layout as the relay's PROMPT_TEMPLATE setting reads it (compact JSON,
    #: ASCII only so any environment variable carries it), which the relay interprets; None
    #: when the engine lays chats out itself or the model takes prompts only.
    prompt_template: str | None
    #: The engine lays out `messages` with the model's own chat template (catalog `chat`
    #: "engine"): the relay sends them as they are.
    engine_chat_template: bool
    #: The licence to accept, for a gated model.
    gated: Gated | None
    health_check_timeout_seconds: int
    download_timeout_seconds: int
    deprecated: str | None
    artifact_bucket_pattern: str
    #: Where JumpStart keeps gated models' artifacts (`jumpstart-private-cache-prod-{region}`).
    gated_artifact_bucket_pattern: str
    registry: ImageRegistry

    @property
    def serving(self) -> ServingEngine:
        """The engine's facts (stacks/serving_engines.py)."""
        return ENGINE_TABLE[self.engine]

    @property
    def artifact_is_prefix(self) -> bool:
        """A key ending in `/` is an uncompressed prefix; anything else is a `.tar.gz`."""
        return self.artifact_key.endswith("/")

    @property
    def reports_prompt_tokens(self) -> bool:
        """TGI reports a prompt's length in tokens (StreamDetails.input_length) since 2.3; for
        older versions the relay counts them with the model's own tokenizer. A TGI fact: False
        on the other engines, whose prompt counts come in their usage chunks where at all."""
        if self.engine != "tgi":
            return False
        return _version(self.engine_version) >= PROMPT_TOKENS_REPORTED_SINCE

    def tokenizer_uri(self, region: str) -> str | None:
        """Where the relay finds the model's tokenizer when TGI does not count prompt tokens:
        the `tokenizer.json` of its Hugging Face files, in the artifact prefix the endpoint
        loads (None when TGI counts them, the artifact is an archive, or the model is not on
        TGI)."""
        if self.engine != "tgi" or self.reports_prompt_tokens or not self.artifact_is_prefix:
            return None
        return self.artifact_uri(region) + TOKENIZER_FILE

    def artifact_bucket(self, region: str) -> str:
        """JumpStart's public content bucket, or its private one for a gated model."""
        pattern = self.gated_artifact_bucket_pattern if self.gated else self.artifact_bucket_pattern
        return pattern.format(region=region)

    def artifact_uri(self, region: str) -> str:
        return f"s3://{self.artifact_bucket(region)}/{self.artifact_key}"

    def image_uri(self, region: str) -> str:
        account = self.registry.account(region)
        return (
            f"{account}.dkr.ecr.{region}.{dns_suffix(region)}/"
            f"{self.image_repository}:{self.image_tag}"
        )

    def context_limits(self, instance_type: str) -> tuple[int, int] | None:
        """The most prompt + answer, and prompt, tokens the container on `instance_type` takes:
        TGI's MAX_TOTAL_TOKENS and MAX_INPUT_LENGTH (MAX_INPUT_TOKENS in newer TGIs); LMI's
        OPTION_MAX_MODEL_LEN, vLLM's SM_VLLM_MAX_MODEL_LEN (a prompt may then take all but one
        of them). The relay sizes answers without max_tokens by them; None where the catalog
        gives none (the engine then takes the model's own maximum, which no spec states)."""
        env = self.container_environment(instance_type)
        variable = self.serving.context_variable
        total = env.get(variable) if variable else None
        if total is None:
            return None
        prompt = env.get("MAX_INPUT_LENGTH", env.get("MAX_INPUT_TOKENS"))
        if self.engine != "tgi" or prompt is None:
            return int(total), int(total) - 1
        return int(total), int(prompt)

    def container_environment(self, instance_type: str) -> dict[str, str]:
        """The container's environment for one instance type, every value a string. TGI's
        SM_NUM_GPUS is the catalog's `gpus`; LMI and vLLM read the spec's own variables, kept
        as the spec writes them."""
        option = self.instance_types[instance_type]
        env = {k: v for k, v in self.environment.items() if k not in DROPPED_ENVIRONMENT}
        env.update(option.environment)
        if self.engine == "tgi":
            env["SM_NUM_GPUS"] = str(option.gpus)
        return dict(sorted(env.items()))


def licence_problem(model: Model, accepted: bool) -> str | None:
    """Why `model` may not be deployed without its licence accepted, in one line, or None."""
    if model.gated is None or accepted:
        return None
    return (
        f"{model.id} is gated by the {model.gated.licence} (JumpStart's "
        f"{model.gated.eula_key}): read it, then set accept_eula = true in the environment to "
        "accept it"
    )


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


def _chat(raw: Any, where: str) -> tuple[str | None, bool]:
    """`chat` as (the relay's prompt layout in compact JSON, whether the engine lays chats out)."""
    if raw is None:
        return None, False
    if raw == ENGINE_CHAT:
        return None, True
    if isinstance(raw, dict):
        layout = json.dumps(raw, ensure_ascii=True, separators=(",", ":"), sort_keys=True)
        return layout, False
    raise ConfigError(f'{where}: chat must be a prompt layout object, "{ENGINE_CHAT}" or null')


def _gated(raw: Any, where: str) -> Gated | None:
    if raw is None:
        return None
    if not (
        isinstance(raw, dict)
        and set(raw) == {"eula_key", "licence"}
        and all(isinstance(raw[k], str) and raw[k].strip() for k in raw)
    ):
        raise ConfigError(f"{where}: gated must be null or {{eula_key, licence}}, both named")
    return Gated(eula_key=raw["eula_key"], licence=raw["licence"])


def _model(
    raw: dict[str, Any],
    *,
    bucket: str,
    gated_bucket: str,
    registry: ImageRegistry,
    availability: Availability,
) -> Model:
    where = f"models.json: {raw.get('id', '?')}"
    if raw.get("engine") not in ENGINE_TABLE:
        raise ConfigError(f"{where}: engine must be one of {', '.join(ENGINE_TABLE)}")
    prompt_template, engine_chat = _chat(raw.get("chat"), where)
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
        engine=raw["engine"],
        engine_version=raw["engine_version"],
        image_repository=raw["image_repository"],
        image_tag=raw["image_tag"],
        artifact_key=raw["artifact_key"],
        default_instance_type=raw["default_instance_type"],
        instance_types=options,
        environment=_env_strings(raw["environment"], where),
        image_regions=tuple(raw["image_regions"]),
        regions=deployable_regions(tuple(raw["image_regions"]), list(options), availability),
        eos_token=raw["eos_token"],
        prompt_template=prompt_template,
        engine_chat_template=engine_chat,
        gated=_gated(raw.get("gated"), where),
        health_check_timeout_seconds=int(
            raw["startup"]["container_startup_health_check_timeout_seconds"]
        ),
        download_timeout_seconds=int(raw["startup"]["model_data_download_timeout_seconds"]),
        deprecated=raw.get("deprecated"),
        artifact_bucket_pattern=bucket,
        gated_artifact_bucket_pattern=gated_bucket,
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
    engine = model.serving
    if model.image_repository != engine.repository:
        raise ConfigError(
            f"{where}: {engine.label} images come from {engine.repository}, not "
            f"{model.image_repository}"
        )
    if engine.version(model.image_tag) != model.engine_version:
        raise ConfigError(
            f"{where}: image_tag does not carry {engine.label} {model.engine_version}"
        )
    chat_problem = engine.chat_template_problem(model.engine_version)
    if model.engine_chat_template and chat_problem:
        raise ConfigError(
            f'{where}: chat "{ENGINE_CHAT}" needs an engine that applies the model\'s chat '
            f"template: {chat_problem}; set chat null for prompts only"
        )
    _check_engine_settings(model, where)
    # SageMaker's limits on the two production-variant timeouts.
    for seconds in (model.health_check_timeout_seconds, model.download_timeout_seconds):
        if not 60 <= seconds <= 3600:
            raise ConfigError(f"{where}: startup timeouts must be within 60..3600 seconds")
    if not model.regions:
        raise ConfigError(
            f"{where}: no regions (none of its image regions offers one of its instance types)"
        )


def _check_engine_settings(model: Model, where: str) -> None:
    """The variables the engine reads agree with the catalog: TGI's GPU count is the catalog's
    own (`gpus`, written as SM_NUM_GPUS); an LMI or vLLM count the spec sets is the `gpus` of
    its instance type, and vLLM without one shards over one GPU; a context length is a whole
    number of tokens."""
    engine = model.serving
    for instance_type, option in model.instance_types.items():
        env = {**model.environment, **option.environment}
        if engine.name == "tgi":
            if "SM_NUM_GPUS" in env:
                raise ConfigError(f"{where}: SM_NUM_GPUS is each instance type's `gpus`")
        else:
            setting = next((v for v in engine.gpu_variables if v in env), None)
            value = env.get(setting) if setting else None
            if value is not None and str(value) != "max" and str(value) != str(option.gpus):
                raise ConfigError(
                    f"{where}: {instance_type} shards over {setting}={value} GPUs, but its "
                    f"gpus is {option.gpus}"
                )
            if value is None and not engine.all_gpus_by_default and option.gpus != 1:
                raise ConfigError(
                    f"{where}: {instance_type} has gpus {option.gpus}, but {engine.label} shards "
                    f"over one unless {engine.gpu_variables[0]} says otherwise"
                )
        context = env.get(engine.context_variable) if engine.context_variable else None
        if context is not None and not (str(context).isdigit() and int(context) > 1):
            raise ConfigError(
                f"{where}: {engine.context_variable} must be a whole number of tokens above 1"
            )


def parse_catalog(doc: dict[str, Any], availability: Availability | None = None) -> Catalog:
    availability = availability or load_availability()
    image = doc["image"]
    registry = ImageRegistry(
        default_account=image["default_account"], accounts=dict(image["accounts"])
    )
    models: dict[str, Model] = {}
    for raw in doc["models"]:
        model = _model(
            raw,
            bucket=doc["artifact_bucket"],
            gated_bucket=doc["gated_artifact_bucket"],
            registry=registry,
            availability=availability,
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
