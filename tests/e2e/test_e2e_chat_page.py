"""The chat page in a real headless Chromium, against the real relay and the emulator.

Debian's `chromium` package is the browser (Playwright drives it through `executable_path`; it
never downloads one of its own). `[[hold@N]]` in a question makes the emulated model pause, so
the test can see a half-written answer on screen before the rest arrives.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from streamer.prompt_template import Message, PromptTemplate

from jumpstream.local import DEFAULT_MODEL_ID, LocalStack
from stacks.catalog import load_catalog
from tests.e2e.conftest import needs_chromium
from tests.e2e.support import (
    PROMPT,
    chat_turn,
    expected_answer,
    expected_tokens,
    stream_ids,
    wait_for_new_stream,
)

pytestmark = needs_chromium
WAIT_MS = 15_000
TEMPLATE = PromptTemplate.from_json(load_catalog().get(DEFAULT_MODEL_ID).prompt_template)


def rendered(*turns: tuple[str, str]) -> str:
    return TEMPLATE.render([Message(role, text) for role, text in turns])  # type: ignore[arg-type]


@pytest.fixture
def page(browser: object, stack: LocalStack, emulator: httpx.Client) -> Iterator[object]:
    page = browser.new_page()  # type: ignore[attr-defined]
    page.set_default_timeout(WAIT_MS)
    page.goto(f"{stack.relay_url}/chat")
    yield page
    emulator.post("/_emulator/release")
    page.close()


def _ask(page: object, question: str) -> None:
    page.fill("#prompt", question)  # type: ignore[attr-defined]
    page.press("#prompt", "Enter")  # type: ignore[attr-defined]


def _last_answer(page: object) -> object:
    return page.locator(".assistant").last  # type: ignore[attr-defined]


def test_an_answer_grows_on_screen_then_completes_and_the_chat_goes_on(
    page: object, emulator: httpx.Client, tmp_path: Path
) -> None:
    question = f"{PROMPT} [[hold@3]]"
    before = stream_ids(emulator)
    _ask(page, question)
    first_prompt = rendered(("user", question))
    partial = chat_turn("".join(expected_tokens(first_prompt)[:3]))
    answer = _last_answer(page)
    # While the model holds after three tokens, exactly those are on screen, still streaming.
    page.wait_for_function(  # type: ignore[attr-defined]
        "t => document.querySelector('.assistant:last-child')?.textContent === t", arg=partial
    )
    assert answer.get_attribute("data-state") == "streaming"  # type: ignore[attr-defined]
    assert wait_for_new_stream(emulator, before, held=True)["tokens_sent"] == 3
    page.screenshot(path=tmp_path / "half-written.png")  # type: ignore[attr-defined]
    emulator.post("/_emulator/release")
    page.wait_for_selector(".assistant[data-state=done]")  # type: ignore[attr-defined]
    first_answer = chat_turn(expected_answer(first_prompt))
    assert answer.text_content() == first_answer  # type: ignore[attr-defined]
    assert len(first_answer) > len(partial)

    # The second question is sent with the whole conversation, laid out by the model's format.
    before = stream_ids(emulator)
    _ask(page, "And why does it matter for chat?")
    # The first question, directive and all, is part of the conversation sent again: it holds.
    wait_for_new_stream(emulator, before, held=True)
    emulator.post("/_emulator/release")
    page.wait_for_function(  # type: ignore[attr-defined]
        "() => document.querySelectorAll('.assistant[data-state=done]').length === 2"
    )
    second_prompt = rendered(
        ("user", question),
        ("assistant", first_answer),
        ("user", "And why does it matter for chat?"),
    )
    assert _last_answer(page).text_content() == chat_turn(expected_answer(second_prompt))  # type: ignore[attr-defined]
    page.screenshot(path=tmp_path / "conversation.png")  # type: ignore[attr-defined]
    assert (tmp_path / "conversation.png").stat().st_size > 0


def test_a_failure_mid_answer_is_shown(page: object, tmp_path: Path) -> None:
    _ask(page, f"{PROMPT} [[fault:generation@2]]")
    page.wait_for_selector(".assistant[data-state=failed]")  # type: ignore[attr-defined]
    alert = page.locator("#error").text_content()  # type: ignore[attr-defined]
    assert "(model_error)" in alert
    page.screenshot(path=tmp_path / "failed.png")  # type: ignore[attr-defined]


def test_stop_ends_the_answer_and_the_upstream_stream(page: object, emulator: httpx.Client) -> None:
    question = f"{PROMPT} [[hold@2]]"
    before = stream_ids(emulator)
    _ask(page, question)
    wait_for_new_stream(emulator, before, held=True)
    page.click("#stop")  # type: ignore[attr-defined]
    page.wait_for_selector(".assistant[data-state=stopped]")  # type: ignore[attr-defined]
    assert wait_for_new_stream(emulator, before, state="disconnected")["tokens_sent"] == 2
    assert page.locator("#send").is_enabled()  # type: ignore[attr-defined]
