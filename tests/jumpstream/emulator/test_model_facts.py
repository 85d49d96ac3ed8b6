"""What the emulator and the local stack read from the catalog about a model, without sockets.

The catalog's `engine` and `chat` facts are read by their models.json names; these tests hold the
reading to the file itself, so a catalog that names them otherwise is noticed here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from streamer import contract

from jumpstream.emulator import model_facts
from jumpstream.emulator.engines import ENGINES, engine_named
from jumpstream.emulator.model_facts import (
    DEFAULT_ENGINE,
    ChatLayout,
    catalog_engine,
    chat_layout,
    engine_reports_prompt_tokens,
    serving_engine,
)
from stacks.catalog import CATALOG_PATH, load_catalog

RAW_MODELS = json.loads(CATALOG_PATH.read_text(encoding="utf-8"))["models"]
MISTRAL = "huggingface-llm-mistral-7b-instruct"


def test_the_table_has_every_engine_the_relay_knows_by_the_same_name() -> None:
    assert tuple(ENGINES) == contract.ENGINES
    assert DEFAULT_ENGINE == contract.SERVING_ENGINE.default == "tgi"
    assert all(engine_named(name).name == name for name in contract.ENGINES)
    with pytest.raises(ValueError, match="unknown engine 'sglang'"):
        engine_named("sglang")


@pytest.mark.parametrize("raw", RAW_MODELS, ids=[raw["id"] for raw in RAW_MODELS])
def test_each_catalog_model_is_emulated_on_the_engine_its_entry_names(raw: dict[str, Any]) -> None:
    assert catalog_engine(raw["id"]) == raw.get("engine", "tgi")


@pytest.mark.parametrize("raw", RAW_MODELS, ids=[raw["id"] for raw in RAW_MODELS])
def test_each_catalog_models_chats_are_laid_out_as_its_entry_says(raw: dict[str, Any]) -> None:
    layout = chat_layout(raw["id"], catalog_engine(raw["id"]))
    chat = raw.get("chat", raw.get("prompt_template"))
    if chat == "engine":
        assert layout == ChatLayout(engine_chat_template=True)
    elif chat is None:
        assert layout == ChatLayout()
    else:
        assert layout == ChatLayout(prompt_template=load_catalog().get(raw["id"]).prompt_template)
        assert json.loads(layout.prompt_template or "") == chat


def test_a_model_the_catalog_does_not_know_runs_on_tgi_without_chats() -> None:
    assert catalog_engine("some-private-model") == "tgi"
    assert serving_engine("some-private-model") == "tgi"
    assert serving_engine("some-private-model", "vllm") == "vllm"
    assert chat_layout("some-private-model", "lmi") == ChatLayout()
    assert engine_reports_prompt_tokens("tgi", "some-private-model")


def test_an_instruct_model_moved_to_lmi_or_vllm_has_the_engine_lay_out_its_chats() -> None:
    template = load_catalog().get(MISTRAL).prompt_template
    assert chat_layout(MISTRAL, "tgi") == ChatLayout(prompt_template=template)
    assert chat_layout(MISTRAL, "lmi") == ChatLayout(engine_chat_template=True)
    assert chat_layout(MISTRAL, "vllm") == ChatLayout(engine_chat_template=True)


def test_which_engines_report_a_prompts_length() -> None:
    assert engine_reports_prompt_tokens("vllm", MISTRAL)  # its usage chunk
    assert not engine_reports_prompt_tokens("lmi", "huggingface-llm-falcon-7b-instruct-bf16")
    # TGI as the catalog says: Mistral's pinned TGI (2.0) does not, Falcon 7B Instruct's does.
    assert not engine_reports_prompt_tokens("tgi", MISTRAL)
    assert engine_reports_prompt_tokens("tgi", "huggingface-llm-falcon-7b-instruct-bf16")


@pytest.fixture
def lmi_catalog_model(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A catalog entry as the catalog states an LMI model with the engine's chat template."""
    model_id = "meta-textgeneration-llama-3-1-8b-instruct"
    entry = SimpleNamespace(engine="lmi", chat="engine", prompt_template=None)
    monkeypatch.setitem(load_catalog().models, model_id, entry)
    model_facts.catalog_engine.cache_clear()
    yield model_id
    model_facts.catalog_engine.cache_clear()


def test_the_catalogs_engine_and_chat_facts_are_what_the_emulator_follows(
    lmi_catalog_model: str,
) -> None:
    assert catalog_engine(lmi_catalog_model) == "lmi"
    assert serving_engine(lmi_catalog_model) == "lmi"
    assert chat_layout(lmi_catalog_model, "lmi") == ChatLayout(engine_chat_template=True)
    # Forced onto TGI, the model has no relay-side layout to give.
    assert chat_layout(lmi_catalog_model, "tgi") == ChatLayout()
