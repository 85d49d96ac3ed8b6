"""A JumpStart spec's facts as a `stacks/models.json` entry: what `catalog refresh` and `catalog
add` keep, from one set of rules.

Pure: the spec (sagemaker-core's JumpStartModelSpecs, or anything with its fields), the
catalog's ECR account table, how many GPUs each instance type has, and the two Hugging Face
files the spec does not carry (the tokenizer's config, the licence's text) come in as
arguments. What a spec cannot say is kept from the catalog's current entry or left for a
maintainer, each in a note.

The rules:
- The image is the one most regions name for the default instance type, of an engine jumpstream
  streams from (stacks/serving_engines.py: TGI, LMI, vLLM; anything else is refused). Regions
  that name another image, or whose image URI is not the catalog's registry account's, are left
  out of `image_regions`; instance types that run another image are left out.
- GPUs per instance type: TGI's SM_NUM_GPUS; LMI's OPTION_TENSOR_PARALLEL_DEGREE or
  TENSOR_PARALLEL_DEGREE, all of the instance's GPUs when unset or `max`; vLLM's
  SM_VLLM_TENSOR_PARALLEL_SIZE, one when unset. An instance type whose GPU count that needs is
  not known (sagemaker-core's instance table lacks it) is left out.
- Gated: the spec keeps the artifact in JumpStart's private bucket (`gated_bucket`) and names
  the licence's text (`hosting_eula_key`); the licence's name is its text's first line.
- Chat: TGI models get the relay's prompt layout, written by hand (none from a spec); on LMI or
  vLLM a model whose tokenizer has a chat template gets "engine", but on an LMI before 11 none
  (it leaves out the template's generation prompt: stacks/serving_engines.py).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from stacks.catalog import ENGINE_CHAT
from stacks.serving_engines import ServingEngine, engine_of_image

__all__ = [
    "DEFAULT_STARTUP_SECONDS",
    "ENTRY_ORDER",
    "SpecFacts",
    "SpecLike",
    "chat_from_tokenizer",
    "describe",
    "eos_from_tokenizer",
    "facts_from_spec",
    "licence_from_eula",
    "name_licence",
    "tokenizer_config",
    "tokenizer_config_key",
    "version_key",
]

#: Startup timeouts when a spec's deploy_kwargs give none: long enough for a model of tens of
#: gigabytes, short enough that inference-component hosting (120 minutes to create, an instance
#: launch included) still fits twice of it.
DEFAULT_STARTUP_SECONDS = 1800
#: The tokenizer's settings among a model's Hugging Face files: its EOS token and chat template.
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
#: The keys of a models.json entry, in the order the file writes them.
ENTRY_ORDER = (
    "id", "name", "spec_version", "engine", "engine_version", "image_repository", "image_tag",
    "artifact_key", "default_instance_type", "instance_types", "environment", "image_regions",
    "eos_token", "chat", "gated", "startup", "deprecated",
)  # fmt: skip
_LICENCE_FALLBACK = "licence JumpStart publishes with it"


class SpecLike(Protocol):
    """The parts of sagemaker-core's JumpStartModelSpecs read here."""

    version: str
    deprecated: bool
    deprecated_message: str | None
    default_inference_instance_type: str | None
    supported_inference_instance_types: list[str] | None
    hosting_prepacked_artifact_key: str | None
    hosting_artifact_key: str | None
    inference_environment_variables: list[Any]
    hosting_instance_type_variants: Any
    deploy_kwargs: dict[str, Any]
    gated_bucket: bool
    hosting_eula_key: str | None


@dataclass(frozen=True, slots=True)
class SpecFacts:
    """A models.json entry rebuilt from a spec, and what it left out or kept, one line each."""

    entry: dict[str, Any]
    engine: ServingEngine
    notes: list[str] = field(default_factory=list)

    @property
    def image(self) -> str:
        return f"{self.entry['image_repository']}:{self.entry['image_tag']}"


def version_key(version: str) -> tuple[int, ...]:
    """A spec version as numbers, to order them ("1.10.0" after "1.9.0")."""
    return tuple(int(part) for part in re.findall(r"\d+", version))


def describe(facts: SpecFacts) -> str:
    """`LMI 11.0.0 (djl-inference:0.29.0-lmi11.0.0-cu124)`; TGI's repository goes unsaid."""
    entry = facts.entry
    shown = entry["image_tag"] if facts.engine.name == "tgi" else facts.image
    return f"{facts.engine.label} {entry['engine_version']} ({shown})"


def _image_uri(spec: SpecLike, instance_type: str, region: str) -> str | None:
    variants = spec.hosting_instance_type_variants
    return None if variants is None else variants.get_image_uri(instance_type, region)


def _repository_and_tag(uri: str) -> tuple[str, str]:
    path = uri.split("/", 1)[1]
    repository, _, tag = path.partition(":")
    return repository, tag


def _registry_host(region: str, accounts: Mapping[str, Any]) -> str:
    """`account.dkr.ecr.region.domain` as the catalog builds it (stacks/catalog.py)."""
    account = accounts["accounts"].get(region, accounts["default_account"])
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"{account}.dkr.ecr.{region}.{suffix}"


def _chosen_image(
    spec: SpecLike, default: str, regions: list[str]
) -> tuple[str, str, ServingEngine, str]:
    """The image (repository, tag) most regions run the default instance type on, of a known
    engine, with the engine and its version; ValueError naming what the regions run instead."""
    counts: Counter[tuple[str, str]] = Counter()
    refused: dict[str, str] = {}
    for region in regions:
        repository, tag = _repository_and_tag(str(_image_uri(spec, default, region)))
        try:
            engine_of_image(repository, tag)
        except ValueError as exc:
            refused.setdefault(f"{repository}:{tag}", str(exc))
        else:
            counts[(repository, tag)] += 1
    if not counts:
        raise ValueError(f"spec {spec.version}: {'; '.join(refused[i] for i in sorted(refused))}")
    (repository, tag), _ = max(counts.items(), key=lambda item: (item[1], item[0]))
    engine, version = engine_of_image(repository, tag)
    return repository, tag, engine, version


def _instance_environment(spec: SpecLike, instance_type: str) -> dict[str, Any]:
    variants = spec.hosting_instance_type_variants
    return dict(variants.get_instance_specific_environment_variables(instance_type) or {})


def _gpus(
    engine: ServingEngine,
    setting: Any,
    instance_type: str,
    gpu_counts: Mapping[str, int],
) -> int | None:
    """How many GPUs one copy shards over, from the engine's setting (None: unset)."""
    if setting is not None and str(setting) != "max":
        return int(setting)
    if setting is None and not engine.all_gpus_by_default:
        return 1
    return gpu_counts.get(instance_type)


def _image_regions(
    spec: SpecLike, default: str, named: list[str], image: str, accounts: Mapping[str, Any]
) -> tuple[list[str], list[str]]:
    """The regions whose default instance type runs `image` from the catalog's account, and a
    note on those left out."""
    regions = [r for r in named if _image_uri(spec, default, r) == _uri(r, image, accounts)]
    elsewhere = [r for r in named if r not in regions]
    if not elsewhere:
        return regions, []
    return regions, [
        f"left out {', '.join(elsewhere)}: the spec runs another image there than {image} (or "
        "one from another account than the catalog's)"
    ]


def _uri(region: str, image: str, accounts: Mapping[str, Any]) -> str:
    return f"{_registry_host(region, accounts)}/{image}"


def _instance_types(
    spec: SpecLike,
    engine: ServingEngine,
    image: str,
    regions: list[str],
    environment: dict[str, Any],
    *,
    accounts: Mapping[str, Any],
    gpu_counts: Mapping[str, int],
) -> tuple[dict[str, Any], list[str]]:
    """The supported instance types that run `image` in every region, each with its GPUs and
    its own environment, and notes on those left out. TGI's SM_NUM_GPUS (per instance type, or
    the spec's default, popped from `environment`) becomes `gpus`."""
    tgi_gpus = environment.pop("SM_NUM_GPUS", None) if engine.name == "tgi" else None
    instance_types: dict[str, Any] = {}
    notes: list[str] = []
    unknown_gpus: list[str] = []
    for instance_type in spec.supported_inference_instance_types or []:
        other = {
            region: uri
            for region in regions
            if (uri := _image_uri(spec, instance_type, region)) != _uri(region, image, accounts)
        }
        if other:
            runs = sorted({str(uri) for uri in other.values() if uri})
            missing = sorted(region for region, uri in other.items() if not uri)
            said = f"it runs {', '.join(runs)}" if runs else "its variant names no image"
            where = f" (no image in {', '.join(missing)})" if runs and missing else ""
            notes.append(f"left out {instance_type}: {said}{where}")
            continue
        extra = _instance_environment(spec, instance_type)
        if engine.name == "tgi":
            gpus = extra.pop("SM_NUM_GPUS", tgi_gpus)
            if gpus is None:
                raise ValueError(f"no SM_NUM_GPUS for {instance_type} in spec {spec.version}")
            count: int | None = int(gpus)
        else:
            merged = {**environment, **extra}
            setting = next((merged[v] for v in engine.gpu_variables if v in merged), None)
            count = _gpus(engine, setting, instance_type, gpu_counts)
            if count is None:
                unknown_gpus.append(instance_type)
                continue
        instance_types[instance_type] = {
            "gpus": count,
            **({"environment": {k: extra[k] for k in sorted(extra)}} if extra else {}),
        }
    if unknown_gpus:
        notes.append(
            f"left out {', '.join(unknown_gpus)}: {engine.label} shards over all of an "
            "instance's GPUs there, and sagemaker-core's instance table does not say how many"
        )
    return instance_types, notes


def _startup(spec: SpecLike, current: Mapping[str, Any]) -> tuple[dict[str, int], list[str]]:
    """The startup timeouts from the spec's deploy_kwargs, else the current ones, else the
    default (said in a note)."""
    deploy = spec.deploy_kwargs or {}
    startup = dict(current.get("startup") or {})
    defaulted = []
    for theirs in ("container_startup_health_check_timeout", "model_data_download_timeout"):
        ours = f"{theirs}_seconds"
        if theirs in deploy:
            startup[ours] = int(deploy[theirs])
        elif ours not in startup:
            startup[ours] = DEFAULT_STARTUP_SECONDS
            defaulted.append(theirs)
    if not defaulted:
        return startup, []
    return startup, [
        f"the spec gives no {' nor '.join(defaulted)}: {DEFAULT_STARTUP_SECONDS} s (check "
        "against the model's size)"
    ]


def facts_from_spec(
    spec: SpecLike,
    current: Mapping[str, Any],
    *,
    accounts: Mapping[str, Any],
    gpu_counts: Mapping[str, int],
) -> SpecFacts:
    """The models.json entry for `spec`, with `current`'s hand-kept facts (id, name, eos_token,
    chat, deprecated, the licence's name while the spec names the same licence text).

    `accounts` is the catalog's `image` table; `gpu_counts` the GPUs per instance type. Raises
    ValueError when the spec is no model jumpstream can deploy.
    """
    default = spec.default_inference_instance_type
    if not default or default not in (spec.supported_inference_instance_types or []):
        raise ValueError(f"spec {spec.version} has no supported default instance type")
    variants = spec.hosting_instance_type_variants
    named = sorted(
        region
        for region in ((variants.regional_aliases if variants else None) or {})
        if _image_uri(spec, default, region)
    )
    if not named:
        raise ValueError(f"spec {spec.version} names no image in any region")
    repository, tag, engine, version = _chosen_image(spec, default, named)
    image = f"{repository}:{tag}"
    regions, notes = _image_regions(spec, default, named, image, accounts)
    environment = {
        variable.name: variable.default
        for variable in spec.inference_environment_variables
        if getattr(variable, "scope", "container") == "container"
    }
    instance_types, left_out = _instance_types(
        spec, engine, image, regions, environment, accounts=accounts, gpu_counts=gpu_counts
    )
    notes += left_out
    if default not in instance_types:
        raise ValueError(f"spec {spec.version}: its default instance type {default} is left out")
    startup, defaulted = _startup(spec, current)
    notes += defaulted
    artifact = spec.hosting_prepacked_artifact_key or spec.hosting_artifact_key
    if not artifact:
        raise ValueError(f"spec {spec.version} names no hosting artifact")
    return SpecFacts(
        entry=_ordered(
            {
                "id": current["id"],
                "name": current.get("name"),
                "spec_version": spec.version,
                "engine": engine.name,
                "engine_version": version,
                "image_repository": repository,
                "image_tag": tag,
                "artifact_key": artifact,
                "default_instance_type": default,
                "instance_types": instance_types,
                "environment": {k: environment[k] for k in sorted(environment)},
                "image_regions": regions,
                "eos_token": current.get("eos_token"),
                "chat": current.get("chat"),
                "gated": _gated(spec, current),
                "startup": startup,
                "deprecated": current.get("deprecated"),
            }
        ),
        engine=engine,
        notes=notes,
    )


def _ordered(entry: dict[str, Any]) -> dict[str, Any]:
    return {key: entry[key] for key in ENTRY_ORDER}


def _gated(spec: SpecLike, current: Mapping[str, Any]) -> dict[str, str] | None:
    """{eula_key, licence} for a spec whose artifact is in JumpStart's private bucket; the
    licence's name is the current one while the key stays, else None (the caller reads it)."""
    key = spec.hosting_eula_key
    if not spec.gated_bucket:
        if key:
            raise ValueError(
                f"spec {spec.version} names a licence ({key}) but keeps its artifact in the "
                "public bucket: jumpstream passes an acceptance only with a gated artifact"
            )
        return None
    if not key:
        raise ValueError(f"spec {spec.version} keeps its artifact gated but names no licence")
    kept = current.get("gated") or {}
    licence = kept.get("licence") if kept.get("eula_key") == key else None
    return {"eula_key": key, "licence": licence}


def name_licence(facts: SpecFacts, read_text: Callable[[str], str | None]) -> str | None:
    """Name the licence a newly gated model (or a new licence) asks to accept, in place, from
    its text in JumpStart's bucket (`read_text(key)`); a note when that text could not be
    read."""
    gated = facts.entry["gated"]
    if gated is None or gated["licence"] is not None:
        return None
    gated["licence"] = licence_from_eula(read_text(gated["eula_key"]))
    if gated["licence"] == _LICENCE_FALLBACK:
        return f"the licence's text ({gated['eula_key']}) could not be read: name it in gated"
    return None


def licence_from_eula(text: str | None) -> str:
    """What a licence is called: its text's first non-blank line (e.g. "LLAMA 3.1 COMMUNITY
    LICENSE AGREEMENT"), or a plain description when the text could not be read."""
    for line in (text or "").splitlines():
        if line.strip():
            return " ".join(line.split())[:120]
    return _LICENCE_FALLBACK


def tokenizer_config(text: str | None) -> dict[str, Any] | None:
    """A tokenizer_config.json's settings, or None when it could not be read or parsed."""
    if text is None:
        return None
    try:
        config = json.loads(text)
    except ValueError:
        return None
    return config if isinstance(config, dict) else None


def eos_from_tokenizer(config: Mapping[str, Any] | None) -> str | None:
    """The tokenizer's EOS token (a string, or an AddedToken's `content`), or None."""
    eos = None if config is None else config.get("eos_token")
    if isinstance(eos, dict):
        eos = eos.get("content")
    return eos if isinstance(eos, str) and eos else None


_CHAT_MODEL_ID = re.compile(r"instruct|chat|-it(?:-|$)", re.IGNORECASE)


def chat_from_tokenizer(
    engine: ServingEngine, version: str, config: Mapping[str, Any] | None, model_id: str
) -> tuple[str | None, str | None]:
    """A new model's `chat` on `engine` at `version`, and a note where a maintainer has to look.

    An engine that lays out chats with the model's template gets "engine" when the tokenizer
    has one (read from the artifact; where it cannot be read, an instruct or chat model by its
    id is assumed to have one). A version that lays them out without the assistant's turn (LMI
    10) gets none: prompts only, as every chat would end where the model should answer. TGI
    gets no layout: the relay's layouts are written by hand and pinned against the model's own
    template (tests/stacks/test_chat_templates.py).
    """
    if not engine.applies_chat_template:
        return None, (
            f"{engine.label} gets the relay's prompt layout, which no spec carries: write its "
            "`chat` by hand, or leave it null for prompts only"
        )
    problem = engine.chat_template_problem(version)
    if problem:
        return None, f"chat null (prompts only): {problem}"
    if config is not None:
        return (ENGINE_CHAT if config.get("chat_template") else None), None
    if _CHAT_MODEL_ID.search(model_id):
        return ENGINE_CHAT, (
            f'its tokenizer could not be read: chat "{ENGINE_CHAT}" as an instruct or chat model '
            "by its id; check that its tokenizer has a chat template"
        )
    return None, "its tokenizer could not be read: no chat, as a base model by its id"


def tokenizer_config_key(entry: Mapping[str, Any]) -> str | None:
    """Where the artifact's tokenizer settings are in JumpStart's public bucket, when they can
    be read there: an uncompressed artifact that is not gated."""
    key = entry["artifact_key"]
    if entry.get("gated") or not key.endswith("/"):
        return None
    return key + TOKENIZER_CONFIG_FILE
