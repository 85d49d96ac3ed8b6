"""The chat page in a real headless Chromium, against the real relay and the emulator.

Debian's `chromium` package is the browser (Playwright drives it through `executable_path`; it
never downloads one of its own). `[[hold@N]]` in a question makes the emulated model pause, so
the test can see a half-written answer on screen before the rest arrives; `[[markdown]]` makes it
answer with Markdown that has a code block and HTML the page must never run.

The page renders the answer as Markdown, so what is on screen is compared with the model's text
word for word (`shown`), and the exact text through what the page copies and sends back.
`JUMPSTREAM_SCREENSHOTS=docs` makes the Markdown test write docs/chat-page.png, the picture in
docs/api.md, as well.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from streamer.prompt_template import Message, PromptTemplate

from jumpstream.emulator import answers
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
ROOT = Path(__file__).resolve().parents[2]
#: The page's own budget for an answer (chat.js), which the Markdown answer fits in.
PAGE_PARAMETERS = {"max_new_tokens": 256}
MARKDOWN_QUESTION = "Show me how to stream an answer in Python. [[markdown]]"
#: How far from the bottom still counts as following (chat.js's NEAR_BOTTOM_PX).
NEAR_BOTTOM_PX = 24
PHONE = {"width": 375, "height": 667}


def rendered(*turns: tuple[str, str]) -> str:
    return TEMPLATE.render([Message(role, text) for role, text in turns])  # type: ignore[arg-type]


def shown(text: str) -> str:
    """Text as a reader sees it: words in order, however the page lays out white space."""
    return " ".join(text.split())


class Sent:
    """What the page POSTs to the relay: each request's JSON body, in order."""

    def __init__(self, page: Any, relay_url: str) -> None:
        self.bodies: list[dict[str, Any]] = []
        page.on("request", self._seen)
        self._url = f"{relay_url}/"

    def _seen(self, request: Any) -> None:
        if request.method == "POST" and request.url == self._url:
            self.bodies.append(request.post_data_json)

    @property
    def last_messages(self) -> list[dict[str, str]]:
        return self.bodies[-1]["messages"]  # type: ignore[no-any-return]


class Problems:
    """Everything the browser complains about on a page: console errors (a CSP violation is
    one), uncaught exceptions, failed requests and HTTP errors."""

    def __init__(self, page: Any) -> None:
        self.seen: list[str] = []
        self.responses: list[Any] = []
        page.on(
            "console",
            lambda message: (
                self.seen.append(f"console: {message.text}") if message.type == "error" else None
            ),
        )
        page.on("pageerror", lambda error: self.seen.append(f"page error: {error}"))
        page.on("requestfailed", lambda request: self.seen.append(f"failed: {request.url}"))
        page.on("response", self._response)

    def _response(self, response: Any) -> None:
        self.responses.append(response)
        if response.status >= 400:
            self.seen.append(f"HTTP {response.status}: {response.url}")


@contextmanager
def _opened(browser: Any, stack: LocalStack, **context_options: Any) -> Iterator[Any]:
    """The chat page in a browser context of its own (its own storage and permissions)."""
    context = browser.new_context(**context_options)
    try:
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.goto(f"{stack.relay_url}/chat")
        yield page
    finally:
        context.close()


@pytest.fixture
def page(browser: Any, stack: LocalStack, emulator: httpx.Client) -> Iterator[Any]:
    with _opened(browser, stack) as page:
        yield page
    emulator.post("/_emulator/release")


@pytest.fixture
def phone(browser: Any, stack: LocalStack, emulator: httpx.Client) -> Iterator[Any]:
    """A page on a phone's 375 px wide screen."""
    with _opened(browser, stack, viewport=PHONE) as page:
        yield page
    emulator.post("/_emulator/release")


def _ask(page: Any, question: str) -> None:
    page.fill("#prompt", question)
    page.press("#prompt", "Enter")


def _last_answer(page: Any) -> Any:
    return page.locator(".assistant").last


def _wait_for_answers(page: Any, done: int) -> None:
    page.wait_for_function(
        "n => document.querySelectorAll('.assistant[data-state=done]').length === n", arg=done
    )


def _scroll(page: Any) -> dict[str, int]:
    return page.evaluate(  # type: ignore[no-any-return]
        "(() => { const v = document.getElementById('conversation');"
        " return {top: v.scrollTop, height: v.scrollHeight, client: v.clientHeight}; })()"
    )


def _luminance(css_colour: str) -> float:
    red, green, blue = (int(part) / 255 for part in re.findall(r"\d+", css_colour)[:3])
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def test_an_answer_grows_on_screen_then_completes_and_the_chat_goes_on(
    page: Any, emulator: httpx.Client, stack: LocalStack, tmp_path: Path
) -> None:
    sent = Sent(page, stack.relay_url)
    question = f"{PROMPT} [[hold@3]]"
    before = stream_ids(emulator)
    _ask(page, question)
    first_prompt = rendered(("user", question))
    partial = chat_turn("".join(expected_tokens(first_prompt)[:3]))
    answer = _last_answer(page)
    # While the model holds after three tokens, exactly those are on screen, still streaming.
    page.wait_for_function(
        "t => document.querySelector('.assistant:last-child .content')?.innerText"
        ".split(/\\s+/).filter(Boolean).join(' ') === t",
        arg=shown(partial),
    )
    assert answer.get_attribute("data-state") == "streaming"
    assert wait_for_new_stream(emulator, before, held=True)["tokens_sent"] == 3
    page.screenshot(path=tmp_path / "half-written.png")
    emulator.post("/_emulator/release")
    page.wait_for_selector(".assistant[data-state=done]")
    first_answer = chat_turn(expected_answer(first_prompt))
    assert shown(answer.locator(".content").inner_text()) == shown(first_answer)
    assert len(first_answer) > len(partial)

    # The second question is sent with the whole conversation, laid out by the model's format.
    before = stream_ids(emulator)
    _ask(page, "And why does it matter for chat?")
    # The first question, directive and all, is part of the conversation sent again: it holds.
    wait_for_new_stream(emulator, before, held=True)
    emulator.post("/_emulator/release")
    _wait_for_answers(page, 2)
    assert sent.last_messages == [
        {"role": "user", "content": question},
        {"role": "assistant", "content": first_answer},
        {"role": "user", "content": "And why does it matter for chat?"},
    ]
    second_prompt = rendered(
        ("user", question),
        ("assistant", first_answer),
        ("user", "And why does it matter for chat?"),
    )
    second = _last_answer(page).locator(".content").inner_text()
    assert shown(second) == shown(expected_answer(second_prompt))
    page.screenshot(path=tmp_path / "conversation.png")
    assert (tmp_path / "conversation.png").stat().st_size > 0


def test_a_failure_mid_answer_is_shown(page: Any, tmp_path: Path) -> None:
    _ask(page, f"{PROMPT} [[fault:generation@2]]")
    page.wait_for_selector(".assistant[data-state=failed]")
    alert = page.locator("#error").text_content()
    assert "(model_error)" in alert
    page.screenshot(path=tmp_path / "failed.png")


def test_a_failed_answer_is_marked_its_question_is_back_in_the_box_and_not_in_the_history(
    page: Any, stack: LocalStack
) -> None:
    sent = Sent(page, stack.relay_url)
    _ask(page, PROMPT)
    _wait_for_answers(page, 1)
    first_answer = chat_turn(expected_answer(rendered(("user", PROMPT))))
    failing = "Then say more. [[fault:generation@2]]"
    _ask(page, failing)
    page.wait_for_selector(".assistant[data-state=failed]")
    # Marked on screen, the question and its broken answer both, with words that say so.
    assert page.locator(".user").last.get_attribute("data-state") == "failed"
    status = _last_answer(page).locator(".status")
    assert status.is_visible()
    assert "Failed" in status.inner_text()
    assert page.locator(".assistant[data-state=done]").count() == 1
    # The question is in the box again, ready to send as it is or to change.
    assert page.input_value("#prompt") == failing
    assert page.is_enabled("#send")
    # What is sent next holds the answered exchange only.
    page.fill("#prompt", "What else?")
    page.press("#prompt", "Enter")
    _wait_for_answers(page, 2)
    assert sent.last_messages == [
        {"role": "user", "content": PROMPT},
        {"role": "assistant", "content": first_answer},
        {"role": "user", "content": "What else?"},
    ]


def test_stop_ends_the_answer_and_the_upstream_stream(
    page: Any, emulator: httpx.Client, stack: LocalStack
) -> None:
    sent = Sent(page, stack.relay_url)
    question = f"{PROMPT} [[hold@2]]"
    before = stream_ids(emulator)
    _ask(page, question)
    wait_for_new_stream(emulator, before, held=True)
    partial = chat_turn("".join(expected_tokens(rendered(("user", question)), PAGE_PARAMETERS)[:2]))
    page.wait_for_function(
        "t => document.querySelector('.assistant .content').innerText.trim() === t",
        arg=partial.strip(),
    )
    page.click("#stop")
    page.wait_for_selector(".assistant[data-state=stopped]")
    assert wait_for_new_stream(emulator, before, state="disconnected")["tokens_sent"] == 2
    assert page.locator("#send").is_enabled()
    assert _last_answer(page).locator(".status").inner_text() == "Stopped"
    # What the reader saw the model say stays in the conversation.
    before = stream_ids(emulator)
    _ask(page, "Go on.")
    wait_for_new_stream(emulator, before, held=True)  # the first question holds again
    emulator.post("/_emulator/release")
    _wait_for_answers(page, 1)
    assert sent.last_messages == [
        {"role": "user", "content": question},
        {"role": "assistant", "content": partial},
        {"role": "user", "content": "Go on."},
    ]


def test_markdown_is_rendered_and_html_the_model_writes_never_runs(
    page: Any, stack: LocalStack, tmp_path: Path
) -> None:
    problems = Problems(page)
    page.set_viewport_size({"width": 760, "height": 700})
    _ask(page, MARKDOWN_QUESTION)
    page.wait_for_selector(".assistant[data-state=done]")
    content = _last_answer(page).locator(".content")
    # Markdown: a code block with its language, inline code, emphasis, a list and a table.
    code = content.locator("pre code.language-python")
    assert code.inner_text().startswith("def stream(client, prompt):\n    for part in")
    assert content.locator(".code-bar span").inner_text() == "python"
    assert content.locator("p code").first.inner_text() == 'stream(client, "Hello")'
    assert content.locator("li strong").inner_text() == "Timeouts"
    assert content.locator("li em").inner_text() == "Retries"
    assert content.locator("table td").all_inner_texts() == ["max_new_tokens", "256"]
    # The model's HTML is text on the screen, not elements; its javascript: link has no target.
    text = content.inner_text()
    assert "<img src=x onerror=\"document.title='img-ran'\">" in text
    assert "<script>document.title='script-ran'</script>" in text
    assert content.locator("img, script, style, iframe, form, input").count() == 0
    link = content.locator("a")
    assert link.inner_text() == "the guide"
    assert link.get_attribute("href") is None
    assert link.get_attribute("target") == "_blank"  # a link never loses the conversation
    handlers = page.evaluate(
        "[...document.querySelectorAll('*')].flatMap(e => [...e.attributes])"
        ".filter(a => a.name.startsWith('on')).length"
    )
    assert handlers == 0
    link.click()  # a link without a target goes nowhere, and runs nothing
    assert page.title() == "jumpstream chat"
    assert problems.seen == []
    shot = tmp_path / "chat-page.png"
    page.screenshot(path=shot)
    assert shot.read_bytes().startswith(b"\x89PNG")
    if os.environ.get("JUMPSTREAM_SCREENSHOTS") == "docs":
        shutil.copyfile(shot, ROOT / "docs" / "chat-page.png")


def test_the_page_follows_the_newest_text_unless_the_reader_scrolled_up(
    phone: Any, emulator: httpx.Client
) -> None:
    page = phone
    question = "Tell me everything. [[length:250]] [[hold@200]]"
    before = stream_ids(emulator)
    _ask(page, question)
    wait_for_new_stream(emulator, before, held=True)
    held = shown("".join(expected_tokens(rendered(("user", question)), PAGE_PARAMETERS)[:200]))
    page.wait_for_function(
        "t => document.querySelector('.assistant .content').innerText"
        ".split(/\\s+/).filter(Boolean).join(' ') === t",
        arg=held,
    )
    # Longer than the screen, and the newest words are in view.
    page.wait_for_function(
        "px => { const v = document.getElementById('conversation');"
        " return v.scrollHeight > 1.5 * v.clientHeight"
        " && v.scrollHeight - v.scrollTop - v.clientHeight <= px; }",
        arg=NEAR_BOTTOM_PX,
    )
    assert page.is_hidden("#to-newest")

    # The reader scrolls up to read; the rest of the answer arrives and leaves them there.
    page.hover("#conversation")
    page.mouse.wheel(0, -300)
    page.wait_for_selector("#to-newest", state="visible")
    reading = _scroll(page)["top"]
    emulator.post("/_emulator/release")
    page.wait_for_selector(".assistant[data-state=done]")
    page.wait_for_timeout(200)  # frames for the last tokens to be drawn
    after = _scroll(page)
    assert after["top"] == reading
    assert after["height"] - after["top"] - after["client"] > NEAR_BOTTOM_PX
    assert page.is_visible("#to-newest")

    # Back to the newest, and the next answer is followed again.
    page.click("#to-newest")
    assert page.is_hidden("#to-newest")
    before = stream_ids(emulator)
    _ask(page, "And then?")
    # The first question, directives and all, is sent again: it holds again.
    wait_for_new_stream(emulator, before, held=True)
    emulator.post("/_emulator/release")
    _wait_for_answers(page, 2)
    page.wait_for_function(
        "px => { const v = document.getElementById('conversation');"
        " return v.scrollHeight - v.scrollTop - v.clientHeight <= px; }",
        arg=NEAR_BOTTOM_PX,
    )


def test_enter_that_confirms_an_ime_conversion_does_not_send(page: Any, stack: LocalStack) -> None:
    sent = Sent(page, stack.relay_url)
    page.focus("#prompt")
    # A real composition through Chromium's input method: Enter then comes with isComposing.
    ime = page.context.new_cdp_session(page)
    ime.send("Input.imeSetComposition", {"text": "にほん", "selectionStart": 3, "selectionEnd": 3})
    page.keyboard.press("Enter")
    ime.send("Input.insertText", {"text": "日本"})
    # Safari's way: the Enter after compositionend has keyCode 229.
    safari_enter = (
        "code => document.getElementById('prompt').dispatchEvent(new KeyboardEvent('keydown',"
        " {key: 'Enter', keyCode: code, bubbles: true, cancelable: true}))"
    )
    page.evaluate(safari_enter, 229)
    page.wait_for_timeout(300)
    assert page.locator(".message").count() == 0
    assert sent.bodies == []
    assert "日本" in page.input_value("#prompt")
    # The same synthetic Enter without an input method sends: the check above could fail.
    page.evaluate(safari_enter, 13)
    page.wait_for_selector(".assistant[data-state=done]")
    assert sent.last_messages[-1]["content"].endswith("日本")


def test_new_chat_clears_the_conversation(page: Any, stack: LocalStack) -> None:
    sent = Sent(page, stack.relay_url)
    _ask(page, PROMPT)
    _wait_for_answers(page, 1)
    page.click("#new-chat")
    assert page.locator(".message").count() == 0
    assert page.inner_text("#error") == ""
    _ask(page, "A fresh start.")
    _wait_for_answers(page, 1)
    assert sent.last_messages == [{"role": "user", "content": "A fresh start."}]


def test_copy_buttons_put_the_answer_and_the_code_on_the_clipboard(
    browser: Any, stack: LocalStack
) -> None:
    with _opened(browser, stack, permissions=["clipboard-read", "clipboard-write"]) as page:
        _ask(page, MARKDOWN_QUESTION)
        page.wait_for_selector(".assistant[data-state=done]")
        answer = _last_answer(page)
        answer.locator(".meta button").click()
        answer.locator(".meta button", has_text="Copied").wait_for()
        # The answer as the model wrote it: its Markdown source, not the rendering.
        model_text = chat_turn(
            expected_answer(rendered(("user", MARKDOWN_QUESTION)), PAGE_PARAMETERS)
        )
        assert page.evaluate("navigator.clipboard.readText()") == model_text
        answer.locator(".code-bar button").click()
        fenced = answers.MARKDOWN.split("```python\n", 1)[1].split("```", 1)[0]
        assert page.evaluate("navigator.clipboard.readText()") == fenced


def test_settings_survive_a_reload_and_the_conversation_does_not(
    page: Any, stack: LocalStack
) -> None:
    sent = Sent(page, stack.relay_url)
    page.click("#settings summary")
    page.fill("#system", "Answer briefly.")
    page.fill("#max-new-tokens", "64")
    _ask(page, PROMPT)
    _wait_for_answers(page, 1)
    assert sent.bodies[-1]["messages"][0] == {"role": "system", "content": "Answer briefly."}
    assert sent.bodies[-1]["parameters"] == {"max_new_tokens": 64}
    page.reload()
    assert page.input_value("#system") == "Answer briefly."
    assert page.input_value("#max-new-tokens") == "64"
    assert page.locator(".message").count() == 0
    # Only the settings are kept: not the conversation, not a key.
    stored = page.evaluate("Object.entries(localStorage)")
    assert stored == [
        ["jumpstream.chatSettings", '{"system":"Answer briefly.","maxNewTokens":"64"}']
    ]
    _ask(page, "After the reload.")
    _wait_for_answers(page, 1)
    assert sent.last_messages == [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "After the reload."},
    ]


def test_a_phones_screen_has_no_sideways_scrolling(phone: Any) -> None:
    _ask(phone, MARKDOWN_QUESTION)
    phone.wait_for_selector(".assistant[data-state=done]")
    widths = phone.evaluate(
        "(() => { const v = document.getElementById('conversation');"
        " const pre = document.querySelector('.assistant pre');"
        " return {page: document.documentElement.scrollWidth, screen: window.innerWidth,"
        " view: v.scrollWidth, viewClient: v.clientWidth,"
        " code: pre.scrollWidth, codeClient: pre.clientWidth}; })()"
    )
    assert widths["screen"] == PHONE["width"]
    assert widths["page"] <= widths["screen"], widths
    assert widths["view"] <= widths["viewClient"], widths
    # The long code line is there, and scrolls inside its block only.
    assert widths["code"] > widths["codeClient"], widths
    for control in ("#send", "#stop", "#new-chat", "#prompt"):
        box = phone.locator(control).bounding_box()
        assert box["x"] >= 0, control
        assert box["x"] + box["width"] <= PHONE["width"], control


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_colours_follow_the_systems_light_or_dark_scheme(
    browser: Any, stack: LocalStack, scheme: str
) -> None:
    with _opened(browser, stack, color_scheme=scheme) as page:
        _ask(page, MARKDOWN_QUESTION)
        page.wait_for_selector(".assistant[data-state=done]")
        colours = page.evaluate(
            "(() => { const style = s => getComputedStyle(document.querySelector(s));"
            " return {page: style('body').backgroundColor, text: style('body').color,"
            " answer: style('.assistant').backgroundColor,"
            " code: style('.code-block').backgroundColor,"
            " prompt: style('#prompt').backgroundColor}; })()"
        )
        text = _luminance(colours.pop("text"))
        backgrounds = {name: _luminance(colour) for name, colour in colours.items()}
        if scheme == "dark":
            assert text > 0.8, colours
            assert all(value < 0.15 for value in backgrounds.values()), colours
        else:
            assert text < 0.2, colours
            assert all(value > 0.85 for value in backgrounds.values()), colours


def test_the_page_loads_without_an_error_and_from_the_relay_only(
    browser: Any, stack: LocalStack
) -> None:
    context = browser.new_context()
    try:
        page = context.new_page()
        problems = Problems(page)
        # The browser asks for the page's icon on its own, once the page has loaded.
        with page.expect_response(f"{stack.relay_url}/favicon.svg") as icon:
            page.goto(f"{stack.relay_url}/chat")
        assert icon.value.status == 200
        assert icon.value.headers["content-type"] == "image/svg+xml"
        page.wait_for_load_state("networkidle")
        assert problems.seen == []
        urls = {response.url for response in problems.responses}
        assert all(url.startswith(f"{stack.relay_url}/") for url in urls), urls
        assert len(urls) == 6  # the page, its script and styles, two libraries, the icon
    finally:
        context.close()
