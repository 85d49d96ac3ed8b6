"""The README and docs/ say what is true: the model table is the catalog's, every link and
anchor resolves, every make target and command line they show exists."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from stacks.catalog import load_catalog

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_model_table_matches_the_catalog() -> None:
    rows = re.findall(
        r"^\| `([a-z][^`]+)` \| [^|]+ \| (ml\.\S+) \| (\d+) "
        r"\| (TGI|LMI|vLLM) ([\d.]+) \| (\d+) \|$",
        README,
        flags=re.MULTILINE,
    )
    table = {model_id: rest for model_id, *rest in rows}
    catalog = load_catalog()
    assert set(table) == set(catalog.models)
    for model in catalog.models.values():
        gpus = model.instance_types[model.default_instance_type].gpus
        assert table[model.id] == [
            model.default_instance_type, str(gpus), model.serving.label, model.engine_version,
            str(len(model.regions)),
        ]  # fmt: skip


def test_setup_commands_come_first() -> None:
    head = "\n".join(README.splitlines()[:15])
    assert "make demo" in head
    assert "make test" in head


DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [ROOT / "README.md", *DOCS]
_LINK = re.compile(r"\]\(([^)\s]+)\)")
_FENCE = re.compile(r"^```.*?^```", flags=re.MULTILINE | re.DOTALL)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation gone, spaces as hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = _FENCE.sub("", page.read_text(encoding="utf-8"))
    return {_slug(h) for h in re.findall(r"^#{1,6} (.+)$", text, flags=re.MULTILINE)}


def test_the_readme_is_a_front_door_and_the_docs_hold_the_rest() -> None:
    assert len(README.splitlines()) <= 250
    for page in DOCS:
        assert f"](docs/{page.name})" in README, f"the README does not link {page.name}"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_relative_link_and_anchor_exists(page: Path) -> None:
    text = _FENCE.sub("", page.read_text(encoding="utf-8"))
    for target in _LINK.findall(text):
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto: not checked offline
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        assert linked.exists(), f"{page.name}: {target}"
        if anchor and linked.suffix == ".md":
            assert anchor in _anchors(linked), f"{page.name}: {target}"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_make_target_shown_exists(page: Path) -> None:
    makefile = (ROOT / "Makefile").read_text()
    text = page.read_text(encoding="utf-8")
    for target in set(re.findall(r"(?:`|^)make (\w+)", text, flags=re.MULTILINE)):
        assert re.search(rf"^{target}:", makefile, flags=re.MULTILINE), (page.name, target)


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_command_line_shown_parses(page: Path) -> None:
    """Each `python -m jumpstream ...` (or `.venv/bin/jumpstream ...`) the docs show is one the
    command line accepts (a shell variable stands for a URL)."""
    from jumpstream.cli import build_parser

    commands = []
    for line in page.read_text(encoding="utf-8").splitlines():
        for found in re.finditer(r"(?:python -m |\.venv/bin/)jumpstream ([^`\n#]+)", line):
            before = line[: found.start()]
            if "#" in before and "`" not in before.rsplit("#", 1)[1]:
                continue  # a shell comment's words, not a command line
            commands.append(found.group(1).rstrip(" .,;:)"))
    for command in commands:
        words = [
            "http://127.0.0.1:8080/" if "$" in word else word
            for word in shlex.split(command.replace("\\", " "))
        ]
        if not words or words[0].startswith("<"):
            continue
        try:
            build_parser().parse_args(words)
        except SystemExit as refused:
            raise AssertionError(f"{page.name}: python -m jumpstream {command}") from refused
