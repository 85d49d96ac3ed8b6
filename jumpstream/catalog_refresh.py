"""``python -m jumpstream catalog refresh``: rebuild the catalog's facts from JumpStart itself.

For each catalog model the command (reading JumpStart as catalog_sources.jumpstart_reader does)
- rebuilds the pinned version's facts from its spec by the rules of catalog_facts.py (engine,
  image tag, artifact, instance types, GPUs, environment, the regions whose aliases name the
  image, the licence to accept) and keeps the hand-written ones (name, EOS token, chat, and the
  deprecation note unless JumpStart now deprecates the model);
- adopts an engine change: a pinned spec that now runs LMI or vLLM instead of TGI (or back) is
  rebuilt on its new engine, its chat moving to the engine's own template where the model's
  tokenizer has one;
- reports newer versions on any engine jumpstream streams from (to adopt by pinning them), and
  refuses those on other images (DeepSpeed, plain PyTorch), saying why;
- reports models JumpStart no longer lists or marks deprecated;
then regenerates `availability.json`'s tables from the installed cfn-lint and prints a unified
diff of both files. Nothing is written without `--write`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from jumpstream.catalog_facts import (
    SpecFacts,
    chat_from_tokenizer,
    describe,
    facts_from_spec,
    name_licence,
    tokenizer_config,
    tokenizer_config_key,
    version_key,
)
from jumpstream.catalog_files import CatalogFiles, Sections, updated_availability
from jumpstream.catalog_sources import (
    DEFAULT_REGION,
    JumpStartReader,
    explain,
    instance_gpu_counts,
    jumpstart_reader,
    sections_from_cfn_lint,
)
from stacks.catalog import ENGINE_CHAT
from stacks.serving_engines import serving_engine

__all__ = [
    "DEFAULT_REGION",
    "Finding",
    "RefreshOptions",
    "Refreshed",
    "refresh_documents",
    "run_refresh",
]


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


def adopt_engine_change(
    facts: SpecFacts, current: Mapping[str, Any], reader: JumpStartReader
) -> list[str]:
    """The chat of a model whose engine changed, or now can (or no longer can) lay out chats
    with the model's template (LMI 10 to 11), set in place, and what a maintainer should know:
    onto an engine that can, the model's own template where its tokenizer has one (else the
    relay's layout stays, sent as a plain prompt); onto one that cannot, no engine template."""
    entry, notes = facts.entry, []
    able = facts.engine.lays_out_chats(entry["engine_version"])
    was_able = serving_engine(current["engine"]).lays_out_chats(current["engine_version"])
    if current.get("engine") == entry["engine"] and able == was_able:
        return notes
    chat = current.get("chat")
    key = tokenizer_config_key(entry)
    config = tokenizer_config(reader.text(key)) if key else None
    if not able:
        if chat == ENGINE_CHAT:
            entry["chat"], note = chat_from_tokenizer(
                facts.engine, entry["engine_version"], config, entry["id"]
            )
            notes.append(str(note))
    elif config is not None and config.get("chat_template"):
        entry["chat"] = ENGINE_CHAT
        if chat != ENGINE_CHAT:
            notes.append(
                f"{facts.engine.label} lays out its chats with the model's own template now "
                f'(chat "{ENGINE_CHAT}")'
            )
    elif config is None and isinstance(chat, dict):
        notes.append(
            "its tokenizer could not be read: the relay's prompt layout is kept (sent to "
            f"{facts.engine.label} as a plain prompt)"
        )
    return notes


def _newer_finding(
    model_id: str, version: str, pinned: str, engine: str, facts: SpecFacts | ValueError
) -> Finding:
    if isinstance(facts, ValueError):
        return Finding(model_id, f"spec {version} is not adopted: {facts}; {pinned} stays pinned")
    verb = "still runs" if facts.engine.name == engine else "moves to"
    return Finding(
        model_id,
        f"spec {version} {verb} {describe(facts)}: set spec_version to {version} in "
        "stacks/models.json and refresh again to adopt it",
    )


def _facts_or_error(
    spec: Any, current: Mapping[str, Any], accounts: Mapping[str, Any], gpus: Mapping[str, int]
) -> SpecFacts | ValueError:
    try:
        return facts_from_spec(spec, current, accounts=accounts, gpu_counts=gpus)
    except ValueError as exc:
        return exc


def refresh_documents(
    catalog: Mapping[str, Any],
    availability: Mapping[str, Any],
    *,
    reader: JumpStartReader,
    gpu_counts: Mapping[str, int],
    model_ids: Sequence[str] = (),
    sections: Sections,
    today: str,
) -> Refreshed:
    """The refreshed catalog and availability documents, and what needs a decision.

    Pure apart from the readers passed in (`reader` over JumpStart's bucket, `sections` over
    cfn-lint's tables), so it is tested against moto's S3 as it runs against JumpStart's.
    """
    wanted = set(model_ids) or {m["id"] for m in catalog["models"]}
    unknown = wanted - {m["id"] for m in catalog["models"]}
    if unknown:
        raise LookupError(
            f"not in the catalog: {', '.join(sorted(unknown))}; refresh updates the catalog's "
            "own models (add a new one with `catalog add`)"
        )
    accounts = catalog["image"]
    findings: list[Finding] = []
    models = []
    for current in catalog["models"]:
        model_id = current["id"]
        if model_id not in wanted:
            models.append(dict(current))
            continue
        listed = sorted(reader.versions(model_id), key=version_key)
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
        spec = reader.spec(model_id, pinned)
        facts = _facts_or_error(spec, current, accounts, gpu_counts)
        if isinstance(facts, ValueError):
            findings.append(Finding(model_id, f"{facts}; its pinned facts are kept"))
            models.append(dict(current))
            continue
        if facts.engine.name != current["engine"]:
            was = serving_engine(current["engine"])
            findings.append(
                Finding(
                    model_id,
                    f"the pinned spec {pinned} now runs {describe(facts)} instead of "
                    f"{was.label} {current['engine_version']}: adopted",
                )
            )
        licence_note = name_licence(facts, reader.text)
        notes = [*facts.notes, *([licence_note] if licence_note else [])]
        notes += adopt_engine_change(facts, current, reader)
        findings.extend(Finding(model_id, note) for note in notes)
        rebuilt = facts.entry
        newer = [v for v in listed if version_key(v) > version_key(pinned)]
        newest_spec = reader.spec(model_id, listed[-1]) if newer else spec
        for version in newer:
            candidate = newest_spec if version == listed[-1] else reader.spec(model_id, version)
            findings.append(
                _newer_finding(
                    model_id,
                    version,
                    pinned,
                    facts.engine.name,
                    _facts_or_error(candidate, current, accounts, gpu_counts),
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

    return Refreshed(
        catalog={**catalog, "models": models},
        availability=updated_availability(models, availability, sections=sections, today=today),
        findings=findings,
    )


def run_refresh(options: RefreshOptions, *, stdout: TextIO, stderr: TextIO) -> int:
    """Read, compare, print the diff; write only with `options.write`. 0 done, 1 failed."""
    from stacks.availability import AVAILABILITY_PATH
    from stacks.catalog import CATALOG_PATH

    files = CatalogFiles.read(
        options.catalog_path or CATALOG_PATH, options.availability_path or AVAILABILITY_PATH
    )
    today = options.today or datetime.now(UTC).date().isoformat()
    try:
        result = refresh_documents(
            files.catalog,
            files.availability,
            reader=jumpstart_reader(options.region),
            gpu_counts=instance_gpu_counts(),
            model_ids=options.model_ids,
            sections=sections_from_cfn_lint,
            today=today,
        )
    except Exception as exc:  # one line, never a traceback, for anything S3 or a spec throws
        stderr.write(f"jumpstream: error: {explain(exc, options.region)}\n")
        return 1

    for finding in result.findings:
        stdout.write(f"{finding}\n")
    changed = files.show_and_write(
        result.catalog, result.availability, write=options.write, stdout=stdout
    )
    if not changed:
        stdout.write("The catalog matches JumpStart's metadata and the availability tables.\n")
    return 0
