"""What every test process needs first: settings read when aws_cdk is imported, Hypothesis
without timing checks, and which tests xdist keeps together on one worker."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

# Node 20 is what these machines run; jsii prints a banner about it on every import otherwise.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("CDK_DISABLE_CLI_TELEMETRY", "true")

# Hypothesis checks properties, never speed (that is `make bench`'s job): its per-example deadline
# and too-slow health check would fail a correct test whenever the machine is busy, as it is
# while xdist's workers share two cores.
settings.register_profile("jumpstream", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("jumpstream")

#: The xdist group of the tests that synthesize CDK apps in their own process: everything under
#: tests/stacks/, and tests marked `cdk` elsewhere. The jsii runtime loads aws-cdk-lib into each
#: process that first synthesizes (tests/stacks took 28 s more CPU on two workers than on one),
#: and synthesis keeps a core busy: these tests run on one worker, which takes them first, while
#: the other works through the tests that mostly wait.
CDK_GROUP = "cdk"
#: Scopes whose fixtures every worker builds for itself: a module's emulator, browser or local
#: stack is built once when the tests that share it run on one worker.
_SHARED_SCOPES = ("package", "module", "class")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Group the tests xdist keeps on one worker (`--dist loadgroup`, see pyproject.toml); every
    other test goes to whichever worker is free. The same on every worker, as xdist requires."""
    for item in items:
        group = _group(item)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
    # The CDK group is the longest unit of work: started first, it cannot be what the run waits
    # for at its end.
    items.sort(key=lambda item: _group(item) != CDK_GROUP)


def _group(item: pytest.Item) -> str | None:
    if item.nodeid.startswith("tests/stacks/") or item.get_closest_marker("cdk") is not None:
        return CDK_GROUP
    # pytest keeps each test's resolved fixtures here; without it the test is simply not grouped.
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return None
    for name in getattr(item, "fixturenames", ()):
        definitions = info.name2fixturedefs.get(name)
        if definitions and definitions[-1].scope in _SHARED_SCOPES:
            return item.nodeid.split("::")[0]
    return None
