"""The README says what is true: its model table is the catalog's, its commands exist."""

from __future__ import annotations

import re
from pathlib import Path

from stacks.catalog import load_catalog

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_model_table_matches_the_catalog() -> None:
    rows = re.findall(
        r"^\| `(huggingface-llm-[^`]+)` \| [^|]+ \| (ml\.\S+) \| (\d+) "
        r"\| TGI ([\d.]+) \| (\d+) \|$",
        README,
        flags=re.MULTILINE,
    )
    table = {model_id: rest for model_id, *rest in rows}
    catalog = load_catalog()
    assert set(table) == set(catalog.models)
    for model in catalog.models.values():
        gpus = model.instance_types[model.default_instance_type].gpus
        assert table[model.id] == [
            model.default_instance_type, str(gpus), model.tgi_version, str(len(model.regions))
        ]  # fmt: skip


def test_setup_commands_come_first_and_make_targets_exist() -> None:
    head = "\n".join(README.splitlines()[:15])
    assert "make demo" in head
    assert "make test" in head
    makefile = (ROOT / "Makefile").read_text()
    for target in set(re.findall(r"(?:`|^)make (\w+)", README, flags=re.MULTILINE)):
        assert re.search(rf"^{target}:", makefile, flags=re.MULTILINE), target
