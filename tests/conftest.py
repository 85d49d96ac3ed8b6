"""Settings every test process needs before aws_cdk is imported."""

from __future__ import annotations

import os

# Node 20 is what these machines run; jsii prints a banner about it on every import otherwise.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("CDK_DISABLE_CLI_TELEMETRY", "true")
