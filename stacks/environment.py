"""Wires one environment's stacks: the endpoint, and the streaming relay unless turned off."""

from __future__ import annotations

import aws_cdk as cdk

from stacks.deployment import EnvironmentConfig
from stacks.endpoint_stack import EndpointStack
from stacks.relay_stack import RelayStack


def add_environment(app: cdk.App, config: EnvironmentConfig) -> list[cdk.Stack]:
    endpoint = EndpointStack(app, config.endpoint_stack_name, config=config)
    stacks: list[cdk.Stack] = [endpoint]
    if config.relay.enabled:
        relay = RelayStack(app, config.relay_stack_name, config=config)
        relay.add_stack_dependency(endpoint, "the relay invokes the endpoint by name")
        stacks.append(relay)
    for stack in stacks:
        for key, value in config.tags.items():
            cdk.Tags.of(stack).add(key, value)
    return stacks
