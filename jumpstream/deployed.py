"""Where a deployed environment's relay is: its function URL, read from CloudFormation.

``ask --env dev`` and ``proxy --env dev`` should not make anyone copy a URL from the console. The
environment's region comes from environments.toml, the URL from the relay stack's output, so
both stay true after a redeploy that replaced the function URL.
"""

from __future__ import annotations

from typing import Any

from jumpstream.signing import HOW_TO_GET_CREDENTIALS
from stacks.config import environment
from stacks.deployment import RELAY_URL_OUTPUT
from stacks.errors import ConfigError

__all__ = ["DeployedError", "relay_url"]


class DeployedError(Exception):
    """Why the URL cannot be found, in one line."""


def relay_url(env_name: str, *, cloudformation: Any = None) -> tuple[str, str]:
    """The function URL of environment ``env_name``'s relay and the region it runs in."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    try:
        config = environment(env_name)
    except ConfigError as error:
        raise DeployedError(str(error)) from None
    stack = config.relay_stack_name
    client = cloudformation or boto3.client("cloudformation", region_name=config.region)
    try:
        stacks = client.describe_stacks(StackName=stack)["Stacks"]
    except ClientError as error:
        message = error.response.get("Error", {}).get("Message", str(error))
        if "does not exist" in message:
            raise DeployedError(
                f"stack {stack} does not exist in {config.region}: deploy it first "
                f"(make deploy ENV={env_name})"
            ) from None
        raise DeployedError(f"cannot read stack {stack} in {config.region}: {message}") from None
    except NoCredentialsError:
        raise DeployedError(
            f"no AWS credentials found to read stack {stack}; {HOW_TO_GET_CREDENTIALS} "
            "(or give the URL with --url)"
        ) from None
    except BotoCoreError as error:
        raise DeployedError(f"cannot read stack {stack} in {config.region}: {error}") from None
    outputs = {
        output["OutputKey"]: output["OutputValue"] for output in stacks[0].get("Outputs", [])
    }
    if RELAY_URL_OUTPUT not in outputs:
        raise DeployedError(
            f"stack {stack} in {config.region} has no {RELAY_URL_OUTPUT} output "
            f"(status {stacks[0].get('StackStatus', 'unknown')}): is its deploy finished?"
        )
    return outputs[RELAY_URL_OUTPUT], config.region
