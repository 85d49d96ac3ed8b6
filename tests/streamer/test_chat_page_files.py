"""The chat page's files: served from this origin only under a strict CSP, every file the page
loads is one the relay serves, and the vendored libraries are the pinned npm packages' own files
with their licences (`make vendor` copies them; its behaviour in a browser: tests/e2e).
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from streamer.contract import CHAT_PAGE_FILES, OPEN_PATHS

from tests.streamer.support import ScriptedUpstream, call, make_app

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "lambda" / "streamer" / "streamer" / "static"
#: Each vendored file: the npm package it comes from, its file there, and its licence there.
VENDORED = {
    "vendor/marked.umd.js": ("marked", "lib/marked.umd.js", "LICENSE", "marked.LICENSE"),
    "vendor/purify.min.js": ("dompurify", "dist/purify.min.js", "LICENSE", "dompurify.LICENSE"),
}
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}


class _Loads(HTMLParser):
    """The URLs a page loads: its scripts, stylesheets and icon."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "script":
            if found.get("src"):
                self.urls.append(str(found["src"]))
            else:
                self.inline_scripts += 1
        elif tag == "link" and found.get("href"):
            self.urls.append(str(found["href"]))
        elif any(name.startswith("on") for name in found) or "style" in found:
            raise AssertionError(f"inline script or style on <{tag}>: {found}")


@pytest.mark.parametrize("path", sorted(CHAT_PAGE_FILES))
def test_each_file_of_the_page_is_served_under_a_strict_policy_and_needs_no_key(
    path: str,
) -> None:
    response = call(make_app(ScriptedUpstream()), "GET", path)
    assert response.status_code == 200
    assert response.content == (STATIC / CHAT_PAGE_FILES[path]).read_bytes()
    assert response.headers["content-type"] == MEDIA_TYPES[Path(CHAT_PAGE_FILES[path]).suffix]
    assert response.headers["x-content-type-options"] == "nosniff"
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert "require-trusted-types-for 'script'" in policy
    for loophole in ("unsafe-inline", "unsafe-eval", "data:", "http", "*"):
        assert loophole not in policy, loophole
    assert path in OPEN_PATHS  # the page asks for a key itself, after it has loaded


def test_the_page_loads_only_files_the_relay_serves_and_nothing_inline() -> None:
    page = call(make_app(ScriptedUpstream()), "GET", "/chat")
    loads = _Loads()
    loads.feed(page.text)
    assert loads.inline_scripts == 0
    served = {path.removeprefix("/") for path in CHAT_PAGE_FILES}
    assert set(loads.urls) == served - {"chat"}
    # The page sends the conversation as messages and reads the relay's own SSE.
    script = call(make_app(ScriptedUpstream()), "GET", "/chat.js")
    assert '"text/event-stream"' in script.text
    assert "messages" in script.text


def test_a_file_beside_the_pages_files_is_not_served() -> None:
    app = make_app(ScriptedUpstream())
    assert call(app, "GET", "/vendor/marked.LICENSE").status_code == 404
    assert call(app, "GET", "/static/chat.html").status_code == 404


@pytest.mark.parametrize("vendored", sorted(VENDORED))
def test_a_vendored_library_is_the_pinned_packages_file_with_its_licence(vendored: str) -> None:
    package, source, licence, licence_copy = VENDORED[vendored]
    pinned = json.loads((ROOT / "package.json").read_text())["devDependencies"][package]
    assert re.fullmatch(r"\d+\.\d+\.\d+", pinned), f"{package} is not pinned exactly: {pinned}"
    installed = ROOT / "node_modules" / package
    assert json.loads((installed / "package.json").read_text())["version"] == pinned, (
        "node_modules is not what package.json pins: run `npm ci`"
    )
    copy = (STATIC / vendored).read_bytes()
    assert copy == (installed / source).read_bytes(), (
        f"static/{vendored} is not {package} {pinned}'s {source}: run `make vendor`"
    )
    assert f"{pinned}".encode() in copy[:400]  # the copy names its version in its header
    assert (STATIC / "vendor" / licence_copy).read_bytes() == (installed / licence).read_bytes()
