"""One emulator per test module, started for real on loopback (with the module's
`EMULATOR_ARGS`, if it has them), and a boto3 client for it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.jumpstream.emulator.emulator_harness import running_emulator, sagemaker_client


@pytest.fixture(scope="module")
def url(request: pytest.FixtureRequest) -> Iterator[str]:
    with running_emulator(*getattr(request.module, "EMULATOR_ARGS", ())) as base_url:
        yield base_url


@pytest.fixture(scope="module")
def client(url: str) -> Any:
    return sagemaker_client(url)
