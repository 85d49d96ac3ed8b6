#!/usr/bin/env python3
"""The CDK app: the environments in environments.toml (or the one named by -c env=...), wired to
their stacks, checked by cdk-nag. A bad setting exits with one line, not a stack trace."""

from __future__ import annotations

import sys

import aws_cdk as cdk

from stacks.config import CONTEXT_KEYS, check_context, select_environments
from stacks.environment import add_environment
from stacks.errors import ConfigError
from stacks.nag import enable_nag


def main() -> None:
    app = cdk.App()
    context = {key: app.node.try_get_context(key) for key in CONTEXT_KEYS}
    try:
        check_context(app.node.get_all_context())
        for config in select_environments(context):
            sys.stderr.write(f"jumpstream: {config.summary()}\n")
            add_environment(app, config)
    except ConfigError as exc:
        sys.stderr.write(f"jumpstream: error: {exc}\n")
        sys.exit(2)
    enable_nag(app)
    app.synth()


if __name__ == "__main__":
    main()
