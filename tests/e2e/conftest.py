"""Fixtures for the end-to-end tests: the real relay (via run.sh) in front of the emulator.

Both run as subprocesses on free loopback ports, started by `jumpstream.local.start_stack`, which
is what `python -m jumpstream local` runs. The stacks are session-scoped: starting one takes about
a second, and no test changes a stack's state for the next one (held streams are released by the
tests that hold them).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import httpx
import pytest

from jumpstream.local import LocalStack, start_stack
from jumpstream.procs import LineBuffer
from tests.e2e.support import HANG_GUARD_SECONDS, SHORT_READ_TIMEOUT_SECONDS, fast_config

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
#: The browser tests' mark: they need Debian's chromium.
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium here: install Debian's with `apt-get install chromium` "
    "(.ci/run does) to run the browser tests",
)
# What this workplace's network needs: no background calls home, no sandbox as root.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


def _running(config_env: dict[str, str]) -> Iterator[LocalStack]:
    output = LineBuffer(keep=500)
    try:
        with start_stack(fast_config(**config_env), sink=output) as stack:
            yield stack
    except Exception:
        # The children's own words are what explains a failed start.
        print(output.render())
        raise


@pytest.fixture(scope="session")
def stack() -> Iterator[LocalStack]:
    """The stack most tests use: default relay settings, the model at full speed."""
    yield from _running({})


@pytest.fixture(scope="session")
def impatient_stack() -> Iterator[LocalStack]:
    """A relay that waits only briefly for the next part, for the stall tests."""
    yield from _running({"UPSTREAM_READ_TIMEOUT_SECONDS": str(SHORT_READ_TIMEOUT_SECONDS)})


@pytest.fixture
def relay(stack: LocalStack) -> Iterator[httpx.Client]:
    """An HTTP client for the relay, with a hang guard on every wait."""
    with httpx.Client(base_url=stack.relay_url, timeout=HANG_GUARD_SECONDS) as client:
        yield client


@pytest.fixture
def emulator(stack: LocalStack) -> Iterator[httpx.Client]:
    """An HTTP client for the emulator's control API."""
    with httpx.Client(base_url=stack.emulator_url, timeout=HANG_GUARD_SECONDS) as client:
        yield client
