"""The catalog's two files as the catalog commands change them: read, regenerated, compared,
written.

`catalog refresh` and `catalog add` both end the same way: the availability tables follow the
catalog's instance families (regenerated from the installed cfn-lint, keeping a section's old
date when only the date would change), a unified diff of each changed file is printed, and
nothing is written without `--write`.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from jumpstream.catalog_sources import instance_family

__all__ = ["CatalogFiles", "dump", "unified_diff", "updated_availability"]

#: `sections(families, today)`: availability.json's generated sections for those families.
Sections = Callable[[list[str], str], dict[str, Any]]


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


def updated_availability(
    models: Sequence[Mapping[str, Any]],
    availability: Mapping[str, Any],
    *,
    sections: Sections,
    today: str,
) -> dict[str, Any]:
    """availability.json with its generated sections for the models' instance families; a
    section whose content is unchanged keeps its old `retrieved` date."""
    families = sorted({instance_family(t) for m in models for t in m["instance_types"]})
    fresh = sections(families, today)
    new = dict(availability)
    for name, section in fresh.items():
        old = availability.get(name, {})
        unchanged = {**section, "retrieved": old.get("retrieved")} == old
        new[name] = old if unchanged else section
    return new


@dataclass(frozen=True, slots=True)
class CatalogFiles:
    """The two files, as checked in when the command started."""

    catalog_path: Path
    availability_path: Path
    catalog_text: str
    availability_text: str

    @classmethod
    def read(cls, catalog_path: Path, availability_path: Path) -> CatalogFiles:
        return cls(
            catalog_path=catalog_path,
            availability_path=availability_path,
            catalog_text=catalog_path.read_text(encoding="utf-8"),
            availability_text=availability_path.read_text(encoding="utf-8"),
        )

    @property
    def catalog(self) -> dict[str, Any]:
        return json.loads(self.catalog_text)

    @property
    def availability(self) -> dict[str, Any]:
        return json.loads(self.availability_text)

    def show_and_write(
        self,
        catalog: Mapping[str, Any],
        availability: Mapping[str, Any],
        *,
        write: bool,
        stdout: TextIO,
    ) -> bool:
        """Print a diff of each file that changes; write them with `write`. Whether any did."""
        changes = [
            (path, old, dump(new))
            for path, old, new in (
                (self.catalog_path, self.catalog_text, catalog),
                (self.availability_path, self.availability_text, availability),
            )
            if dump(new) != old
        ]
        for path, old, new in changes:
            stdout.write(unified_diff(old, new, path.name))
        if not changes:
            return False
        if write:
            for path, _, new in changes:
                path.write_text(new, encoding="utf-8")
            stdout.write(f"Wrote {', '.join(path.name for path, _, _ in changes)}.\n")
        else:
            stdout.write("Nothing written: run again with --write to apply these changes.\n")
        return True
