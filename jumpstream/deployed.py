"""What an environment's relay stack outputs (its URL, its keys' table), read from CloudFormation.

``ask --env dev`` and ``proxy --env dev`` should not make anyone copy a URL from the console, nor
``keys --env dev`` a table name. The environment's region comes from environments.toml, the value
from the relay stack's output, so both stay true after a redeploy that replaced the function URL
or the table.
"""

from __future__ import annotations

from typing import Any

from jumpstream.signing import HOW_TO_GET_CREDENTIALS
from stacks.config import environment
from stacks.deployment import API_KEYS_TABLE_OUTPUT, RELAY_URL_OUTPUT
from stacks.errors import ConfigError

__all__ = ["DeployedError", "api_keys_table", "relay_output", "relay_url"]


class DeployedError(Exception):
    """Why the output cannot be found, in one line."""


def relay_output(
    env_name: str,
    output: str,
    *,
    cloudformation: Any = None,
    instead: str,
    why_missing: str = "is its deploy finished?",
) -> tuple[str, str]:
    """Output ``output`` of environment ``env_name``'s relay stack, and the region it runs in.

    ``instead`` says how to give the value without the stack (e.g. "give the URL with --url"),
    for the line that reports missing credentials; ``why_missing`` what may explain a stack
    without that output.
    """
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
            f"(or {instead})"
        ) from None
    except BotoCoreError as error:
        raise DeployedError(f"cannot read stack {stack} in {config.region}: {error}") from None
    outputs = {
        output["OutputKey"]: output["OutputValue"] for output in stacks[0].get("Outputs", [])
    }
    if output not in outputs:
        raise DeployedError(
            f"stack {stack} in {config.region} has no {output} output "
            f"(status {stacks[0].get('StackStatus', 'unknown')}): {why_missing}"
        )
    return outputs[output], config.region


def relay_url(env_name: str, *, cloudformation: Any = None) -> tuple[str, str]:
    """The function URL of environment ``env_name``'s relay and the region it runs in."""
    return relay_output(
        env_name, RELAY_URL_OUTPUT, cloudformation=cloudformation, instead="give the URL with --url"
    )


def api_keys_table(env_name: str, *, cloudformation: Any = None) -> tuple[str, str]:
    """The API keys' table of environment ``env_name``'s relay and the region it is in."""
    return relay_output(
        env_name,
        API_KEYS_TABLE_OUTPUT,
        cloudformation=cloudformation,
        instead="give the table with --table and --region",
        why_missing='is the relay\'s auth "API_KEY" (environments.toml) and its deploy finished?',
    )
