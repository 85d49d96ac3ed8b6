"""Wires one environment's stacks: the endpoint, and the streaming relay unless turned off."""

from __future__ import annotations

import aws_cdk as cdk

from stacks.config import EnvironmentConfig
from stacks.endpoint_stack import EndpointStack


def add_environment(app: cdk.App, config: EnvironmentConfig) -> list[cdk.Stack]:
    endpoint = EndpointStack(app, f"{config.stack_prefix}-endpoint", config=config)
    stacks: list[cdk.Stack] = [endpoint]
    for stack in stacks:
        for key, value in config.tags.items():
            cdk.Tags.of(stack).add(key, value)
    return stacks
