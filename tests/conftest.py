"""What every test process needs first: settings read when aws_cdk is imported, Hypothesis
without timing checks, and which tests xdist keeps on one worker."""

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

#: Session fixtures that cost more to build on every xdist worker than their tests take to run on
#: one: each test that uses one goes to the same worker (`--dist loadgroup`, see pyproject.toml).
#: tests/stacks' synthesized matrix is ten stacks through cdk-nag; the e2e stacks start in about
#: a second, so their tests spread out instead.
ONE_WORKER_FIXTURES = ("matrix",)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for name in ONE_WORKER_FIXTURES:
            if name in getattr(item, "fixturenames", ()):
                item.add_marker(pytest.mark.xdist_group(name))
