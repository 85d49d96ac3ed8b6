"""``python -m jumpstream catalog refresh``: rebuild the catalog's facts from JumpStart itself.

JumpStart publishes, in its public `jumpstart-cache-prod-{region}` buckets, a `models_manifest.json`
(every model id and version with its spec file) and one spec per version. sagemaker-core (the
SageMaker Python SDK v3) reads them with `JumpStartModelsCache`, its own caching S3 reader, which
is what this command uses: pointed at a region's bucket (or the SDK's
`AWS_JUMPSTART_CONTENT_BUCKET_OVERRIDE`), with any S3 client (so moto can stand in for S3).

For each catalog model the command
- rebuilds the pinned version's facts from its spec (image tag, artifact, instance types, GPUs,
  environment, the regions whose aliases name an image) and keeps the hand-written ones (name,
  EOS token, and the deprecation note unless JumpStart now deprecates the model);
- reports newer versions that still run the TGI image, and refuses those that moved to another
  container (the relay parses TGI's stream);
- reports models JumpStart no longer lists or marks deprecated;
then regenerates `availability.json`'s tables from the installed cfn-lint and prints a unified
diff of both files. Nothing is written without `--write`.
"""

from __future__ import annotations

import difflib
import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TextIO

from jumpstream.catalog_sources import instance_family, sections_from_cfn_lint

__all__ = ["Finding", "RefreshOptions", "Refreshed", "refresh_documents", "run_refresh"]

DEFAULT_REGION = "us-west-2"  # where JumpStart's SDK reads by default
TGI_TAG = re.compile(r"-tgi(\d+\.\d+\.\d+)-")
# What a spec's environment carries that the catalog keeps per instance type instead.
GPUS = "SM_NUM_GPUS"


class SpecLike(Protocol):
    """The parts of sagemaker-core's JumpStartModelSpecs this module reads."""

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


@dataclass(frozen=True, slots=True)
class Finding:
    """Something a maintainer must decide on, said in one line."""

    model_id: str
    message: str

    def __str__(self) -> str:
        return f"{self.model_id}: {self.message}"


@dataclass(frozen=True, slots=True)
class Refreshed:
    catalog: dict[str, Any]
    availability: dict[str, Any]
    findings: list[Finding] = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class RefreshOptions:
    model_ids: tuple[str, ...] = ()
    write: bool = False
    region: str = DEFAULT_REGION
    catalog_path: Path | None = None
    availability_path: Path | None = None
    today: str | None = None


def _image_uri(spec: SpecLike, instance_type: str, region: str) -> str | None:
    variants = spec.hosting_instance_type_variants
    return None if variants is None else variants.get_image_uri(instance_type, region)


def _repository_and_tag(uri: str) -> tuple[str, str]:
    path = uri.split("/", 1)[1]
    repository, _, tag = path.partition(":")
    return repository, tag


def _gpus_and_env(spec: SpecLike, instance_type: str, base_gpus: str | None) -> tuple[int, dict]:
    variants = spec.hosting_instance_type_variants
    env = (
        dict(variants.get_instance_specific_environment_variables(instance_type))
        if variants
        else {}
    )
    gpus = env.pop(GPUS, base_gpus)
    if gpus is None:
        raise ValueError(f"no {GPUS} for {instance_type} in spec {spec.version}")
    return int(gpus), {k: env[k] for k in sorted(env)}


def facts_from_spec(spec: SpecLike, current: Mapping[str, Any], repository: str) -> dict[str, Any]:
    """The models.json entry for `current`'s pinned version, rebuilt from its spec.

    Hand-kept: id, name, eos_token, prompt_template (the model card's chat layout, which no spec
    carries). Startup timeouts come from the spec's deploy_kwargs where it
    has them. Raises ValueError when the spec is not a TGI model jumpstream can deploy.
    """
    default = spec.default_inference_instance_type
    supported = list(spec.supported_inference_instance_types or [])
    if not default or default not in supported:
        raise ValueError(f"spec {spec.version} has no supported default instance type")
    regions = sorted(
        region
        for region in (spec.hosting_instance_type_variants.regional_aliases or {})
        if _image_uri(spec, default, region)
    )
    if not regions:
        raise ValueError(f"spec {spec.version} names no image in any region")
    repo, tag = _repository_and_tag(str(_image_uri(spec, default, regions[0])))
    if repo != repository:
        raise ValueError(f"spec {spec.version} runs {repo}:{tag}, not {repository}")
    tgi = TGI_TAG.search(tag)
    if not tgi:
        raise ValueError(f"spec {spec.version}'s image tag {tag} names no TGI version")
    environment = {
        variable.name: variable.default
        for variable in spec.inference_environment_variables
        if getattr(variable, "scope", "container") == "container"
    }
    base_gpus = environment.pop(GPUS, None)
    instance_types: dict[str, Any] = {}
    for instance_type in supported:
        gpus, extra = _gpus_and_env(spec, instance_type, base_gpus)
        instance_types[instance_type] = {"gpus": gpus, **({"environment": extra} if extra else {})}
    deploy = spec.deploy_kwargs or {}
    startup = dict(current.get("startup", {}))
    if "container_startup_health_check_timeout" in deploy:
        startup["container_startup_health_check_timeout_seconds"] = int(
            deploy["container_startup_health_check_timeout"]
        )
    if "model_data_download_timeout" in deploy:
        startup["model_data_download_timeout_seconds"] = int(deploy["model_data_download_timeout"])
    artifact = spec.hosting_prepacked_artifact_key or spec.hosting_artifact_key
    if not artifact:
        raise ValueError(f"spec {spec.version} names no hosting artifact")
    return {
        "id": current["id"],
        "name": current["name"],
        "spec_version": spec.version,
        "image_tag": tag,
        "tgi_version": tgi.group(1),
        "artifact_key": artifact,
        "default_instance_type": default,
        "instance_types": instance_types,
        "environment": {k: environment[k] for k in sorted(environment)},
        "image_regions": regions,
        "eos_token": current["eos_token"],
        "prompt_template": current["prompt_template"],
        "startup": startup,
        "deprecated": current.get("deprecated"),
    }


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version))


def refresh_documents(
    catalog: Mapping[str, Any],
    availability: Mapping[str, Any],
    *,
    versions: Callable[[str], list[str]],
    read_spec: Callable[[str, str], SpecLike],
    model_ids: Sequence[str] = (),
    sections: Callable[[list[str], str], dict[str, Any]],
    today: str,
) -> Refreshed:
    """The refreshed catalog and availability documents, and what needs a decision.

    Pure apart from the two readers passed in (`versions(model_id)` lists the manifest's
    versions, `read_spec(model_id, version)` returns a spec), so it is tested without S3.
    """
    repository = catalog["image"]["repository"]
    wanted = set(model_ids) or {m["id"] for m in catalog["models"]}
    unknown = wanted - {m["id"] for m in catalog["models"]}
    if unknown:
        raise LookupError(
            f"not in the catalog: {', '.join(sorted(unknown))}; refresh updates the catalog's "
            "own models (add a new one to stacks/models.json by hand first)"
        )
    findings: list[Finding] = []
    models = []
    for current in catalog["models"]:
        model_id = current["id"]
        if model_id not in wanted:
            models.append(dict(current))
            continue
        listed = sorted(versions(model_id), key=_version_key)
        pinned = current["spec_version"]
        if not listed:
            findings.append(
                Finding(
                    model_id,
                    "JumpStart's manifest no longer lists it (deprecated or "
                    "withdrawn); its pinned facts are kept",
                )
            )
            models.append(dict(current))
            continue
        if pinned not in listed:
            findings.append(
                Finding(
                    model_id,
                    f"the pinned spec {pinned} is no longer in JumpStart's "
                    f"manifest (newest: {listed[-1]}); its pinned facts are kept",
                )
            )
            models.append(dict(current))
            continue
        spec = read_spec(model_id, pinned)
        try:
            rebuilt = facts_from_spec(spec, current, repository)
        except ValueError as exc:
            findings.append(Finding(model_id, f"{exc}; its pinned facts are kept"))
            models.append(dict(current))
            continue
        newer = [v for v in listed if _version_key(v) > _version_key(pinned)]
        newest_spec = read_spec(model_id, listed[-1]) if newer else spec
        for version in newer:
            candidate = newest_spec if version == listed[-1] else read_spec(model_id, version)
            try:
                facts = facts_from_spec(candidate, current, repository)
            except ValueError as exc:
                findings.append(
                    Finding(
                        model_id,
                        f"spec {version} is not adopted: {exc}; jumpstream's "
                        f"relay parses TGI's stream, so {pinned} stays pinned",
                    )
                )
            else:
                findings.append(
                    Finding(
                        model_id,
                        f"spec {version} still runs TGI {facts['tgi_version']} "
                        f"({facts['image_tag']}): set spec_version to {version} in "
                        "stacks/models.json and refresh again to adopt it",
                    )
                )
        if newest_spec.deprecated:
            message = newest_spec.deprecated_message or "no reason given"
            findings.append(
                Finding(
                    model_id, f"JumpStart deprecates it (spec {newest_spec.version}): {message}"
                )
            )
            if not rebuilt["deprecated"]:
                rebuilt["deprecated"] = f"JumpStart deprecated this model: {message}"
        models.append(rebuilt)

    families = sorted({instance_family(t) for m in models for t in m["instance_types"]})
    fresh = sections(families, today)
    new_availability = dict(availability)
    for name, section in fresh.items():
        old = availability.get(name, {})
        unchanged = {**section, "retrieved": old.get("retrieved")} == old
        new_availability[name] = old if unchanged else section
    return Refreshed(
        catalog={**catalog, "models": models}, availability=new_availability, findings=findings
    )


def dump(doc: Mapping[str, Any]) -> str:
    """The checked-in JSON style: two-space indent, UTF-8, a final newline."""
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def unified_diff(old: str, new: str, path: str) -> str:
    return "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True),
            new.splitlines(keepends=True),
            fromfile=f"{path} (checked in)",
            tofile=f"{path} (JumpStart now)",
            n=2,
        )
    )


class RefreshError(Exception):
    """A refresh that could not run; the message is one line for the user."""


def _jumpstart_reader(region: str) -> tuple[Callable[[str], list[str]], Callable[[str, str], Any]]:
    """Readers over sagemaker-core's JumpStart cache, for one region's content bucket."""
    import boto3
    from botocore.config import Config

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

    def read_spec(model_id: str, version: str) -> Any:
        return cache.get_specs(model_id, version)

    return versions, read_spec


def _explain(exc: Exception, region: str) -> str:
    """One line for the ways a refresh fails before it has anything to show."""
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


def run_refresh(options: RefreshOptions, *, stdout: TextIO, stderr: TextIO) -> int:
    """Read, compare, print the diff; write only with `options.write`. 0 done, 1 failed."""
    from stacks.availability import AVAILABILITY_PATH
    from stacks.catalog import CATALOG_PATH

    catalog_path = options.catalog_path or CATALOG_PATH
    availability_path = options.availability_path or AVAILABILITY_PATH
    old_catalog = catalog_path.read_text(encoding="utf-8")
    old_availability = availability_path.read_text(encoding="utf-8")
    today = options.today or datetime.now(UTC).date().isoformat()
    try:
        versions, read_spec = _jumpstart_reader(options.region)
        result = refresh_documents(
            json.loads(old_catalog),
            json.loads(old_availability),
            versions=versions,
            read_spec=read_spec,
            model_ids=options.model_ids,
            sections=sections_from_cfn_lint,
            today=today,
        )
    except Exception as exc:  # one line, never a traceback, for anything S3 or a spec throws
        stderr.write(f"jumpstream: error: {_explain(exc, options.region)}\n")
        return 1

    for finding in result.findings:
        stdout.write(f"{finding}\n")
    changes = [
        (path, old, dump(new))
        for path, old, new in (
            (catalog_path, old_catalog, result.catalog),
            (availability_path, old_availability, result.availability),
        )
        if dump(new) != old
    ]
    for path, old, new in changes:
        stdout.write(unified_diff(old, new, path.name))
    if not changes:
        stdout.write("The catalog matches JumpStart's metadata and the availability tables.\n")
        return 0
    if options.write:
        for path, _, new in changes:
            path.write_text(new, encoding="utf-8")
        stdout.write(f"Wrote {', '.join(path.name for path, _, _ in changes)}.\n")
    else:
        stdout.write("Nothing written: run again with --write to apply these changes.\n")
    return 0
