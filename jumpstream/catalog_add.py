"""``python -m jumpstream catalog add MODEL_ID [--version V] [--write]``: a JumpStart model into
the catalog, with every fact `catalog refresh` keeps.

It reads JumpStart as `catalog refresh` does (catalog_sources.jumpstart_reader) and builds the
entry by the same rules (catalog_facts.py): the spec gives the engine, image per region,
artifact, environment, instance types and their GPUs, startup timeouts and whether the model is
gated; the model's own files give the rest where JumpStart lets anyone read them: the licence's
name (the first line of its text), the EOS token and whether the tokenizer has a chat template
(its `tokenizer_config.json`, in the artifact of an ungated model). Without `--version` it takes
the newest version jumpstream can deploy and says why it passed over newer ones. The new entry
must load as synth loads the catalog (stacks/catalog.py); the availability tables follow its
instance families. It prints what a maintainer still has to decide, then a diff; nothing is
written without `--write`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from jumpstream.catalog_facts import (
    SpecFacts,
    chat_from_tokenizer,
    eos_from_tokenizer,
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
from stacks.availability import parse_availability
from stacks.catalog import parse_catalog
from stacks.errors import ConfigError

__all__ = ["AddOptions", "Added", "add_documents", "new_entry", "run_add"]


@dataclass(frozen=True, slots=True, kw_only=True)
class AddOptions:
    model_id: str
    version: str | None = None
    #: The model's name in the catalog and the README's table (JumpStart's specs carry none).
    name: str | None = None
    write: bool = False
    region: str = DEFAULT_REGION
    catalog_path: Path | None = None
    availability_path: Path | None = None
    today: str | None = None


@dataclass(frozen=True, slots=True)
class Added:
    catalog: dict[str, Any]
    availability: dict[str, Any]
    #: What a maintainer should know or still decide, one line each.
    notes: list[str]


class AddError(Exception):
    """A model that cannot be added; the message is one line for the user."""


def _chosen_facts(
    model_id: str,
    version: str | None,
    name: str,
    reader: JumpStartReader,
    accounts: Mapping[str, Any],
    gpu_counts: Mapping[str, int],
) -> tuple[SpecFacts, Any, list[str]]:
    """The facts of `version`, or of the newest version jumpstream can deploy, with its spec
    and why newer ones were passed over."""
    listed = sorted(reader.versions(model_id), key=version_key)
    if not listed:
        raise AddError(f"JumpStart's manifest does not list {model_id}")
    if version is not None and version not in listed:
        raise AddError(
            f"{model_id} has no spec {version} in JumpStart's manifest (its versions: "
            f"{', '.join(listed[-5:])}{' and older' if len(listed) > 5 else ''})"
        )
    current = {"id": model_id, "name": name, "deprecated": None}
    refusals: list[str] = []
    for candidate in [version] if version else reversed(listed):
        spec = reader.spec(model_id, candidate)
        try:
            facts = facts_from_spec(spec, current, accounts=accounts, gpu_counts=gpu_counts)
        except ValueError as exc:
            refusals.append(str(exc))
            continue
        passed_over = [f"a newer spec is not taken: {refusal}" for refusal in refusals]
        return facts, spec, passed_over
    if version:
        raise AddError(f"cannot add {model_id}: {refusals[0]}")
    raise AddError(
        f"cannot add {model_id}: no spec of it is one jumpstream can deploy (the newest: "
        f"{refusals[0]})"
    )


def new_entry(
    model_id: str,
    *,
    version: str | None,
    name: str | None,
    reader: JumpStartReader,
    accounts: Mapping[str, Any],
    gpu_counts: Mapping[str, int],
) -> tuple[dict[str, Any], list[str]]:
    """The models.json entry for `model_id`, and what a maintainer should know about it."""
    facts, spec, notes = _chosen_facts(
        model_id, version, name or model_id, reader, accounts, gpu_counts
    )
    entry = facts.entry
    if name is None:
        notes.append("JumpStart's specs carry no display name: give one with --name")
    if spec.deprecated:
        message = spec.deprecated_message or "no reason given"
        entry["deprecated"] = f"JumpStart deprecated this model: {message}"
        notes.append(f"JumpStart deprecates it (spec {spec.version}): {message}")
    notes.extend(facts.notes)
    licence_note = name_licence(facts, reader.text)
    if licence_note:
        notes.append(licence_note)
    key = tokenizer_config_key(entry)
    config = tokenizer_config(reader.text(key)) if key else None
    entry["eos_token"] = eos_from_tokenizer(config)
    if entry["eos_token"] is None:
        where = (
            "a gated artifact" if entry["gated"] else "its tokenizer_config.json could not be read"
        )
        notes.append(f"EOS token unknown ({where}): set eos_token from the model's card")
    entry["chat"], note = chat_from_tokenizer(
        facts.engine, entry["engine_version"], config, model_id
    )
    if note:
        notes.append(note)
    return entry, notes


def add_documents(
    catalog: Mapping[str, Any],
    availability: Mapping[str, Any],
    *,
    model_id: str,
    version: str | None,
    name: str | None,
    reader: JumpStartReader,
    gpu_counts: Mapping[str, int],
    sections: Sections,
    today: str,
) -> Added:
    """The catalog with `model_id` added, its availability tables, and the notes; AddError
    when it cannot be added or its entry would not load."""
    if any(m["id"] == model_id for m in catalog["models"]):
        raise AddError(
            f"{model_id} is in the catalog already; `catalog refresh --model {model_id}` updates it"
        )
    entry, notes = new_entry(
        model_id,
        version=version,
        name=name,
        reader=reader,
        accounts=catalog["image"],
        gpu_counts=gpu_counts,
    )
    models = [*catalog["models"], entry]
    new_catalog = {**catalog, "models": models}
    new_availability = updated_availability(models, availability, sections=sections, today=today)
    try:
        parse_catalog(new_catalog, parse_availability(new_availability))
    except ConfigError as exc:
        raise AddError(f"the entry JumpStart's spec gives would not load: {exc}") from None
    return Added(catalog=new_catalog, availability=new_availability, notes=notes)


def run_add(options: AddOptions, *, stdout: TextIO, stderr: TextIO) -> int:
    """Read, build, print the notes and the diff; write only with `options.write`. 0 done,
    1 failed."""
    from stacks.availability import AVAILABILITY_PATH
    from stacks.catalog import CATALOG_PATH

    files = CatalogFiles.read(
        options.catalog_path or CATALOG_PATH, options.availability_path or AVAILABILITY_PATH
    )
    try:
        added = add_documents(
            files.catalog,
            files.availability,
            model_id=options.model_id,
            version=options.version,
            name=options.name,
            reader=jumpstart_reader(options.region),
            gpu_counts=instance_gpu_counts(),
            sections=sections_from_cfn_lint,
            today=options.today or datetime.now(UTC).date().isoformat(),
        )
    except AddError as exc:
        stderr.write(f"jumpstream: error: {exc}\n")
        return 1
    except Exception as exc:  # one line, never a traceback, for anything S3 or a spec throws
        stderr.write(f"jumpstream: error: {explain(exc, options.region)}\n")
        return 1
    for note in added.notes:
        stdout.write(f"{options.model_id}: {note}\n")
    files.show_and_write(added.catalog, added.availability, write=options.write, stdout=stdout)
    return 0
