"""Finding a deployed relay's URL (`ask --env`, `proxy --env`) in its stack's outputs."""

from __future__ import annotations

import pytest
from botocore.credentials import ReadOnlyCredentials
from botocore.session import Session
from botocore.stub import Stubber

from jumpstream.deployed import DeployedError, relay_url

#: Dummies: the stubbed client never sends a request.
CREDENTIALS = ReadOnlyCredentials("AKID", "secret", None)
FUNCTION_URL = "https://abcdefghij0123456789abcdefghij01.lambda-url.eu-west-1.on.aws/"


def _cloudformation(responses: list[dict[str, object] | str]) -> tuple[object, Stubber]:
    client = Session().create_client(
        "cloudformation",
        region_name="us-east-1",
        aws_access_key_id=CREDENTIALS.access_key,
        aws_secret_access_key=CREDENTIALS.secret_key,
    )
    stubber = Stubber(client)
    for response in responses:
        if isinstance(response, str):
            stubber.add_client_error(
                "describe_stacks", service_error_code="ValidationError", service_message=response
            )
        else:
            stubber.add_response("describe_stacks", response, {"StackName": "jumpstream-dev-relay"})
    stubber.activate()
    return client, stubber


def _stack(outputs: list[dict[str, str]]) -> dict[str, object]:
    return {
        "Stacks": [
            {
                "StackName": "jumpstream-dev-relay",
                "CreationTime": "2026-12-01T00:00:00Z",
                "StackStatus": "CREATE_COMPLETE",
                "Outputs": outputs,
            }
        ]
    }


def test_env_finds_the_url_in_the_relay_stacks_output() -> None:
    outputs = [
        {"OutputKey": "FunctionName", "OutputValue": "fn"},
        {"OutputKey": "Url", "OutputValue": FUNCTION_URL},
    ]
    client, stubber = _cloudformation([_stack(outputs)])
    assert relay_url("dev", cloudformation=client) == (FUNCTION_URL, "us-east-1")
    stubber.assert_no_pending_responses()


@pytest.mark.parametrize(
    ("response", "says"),
    [
        (
            "Stack with id jumpstream-dev-relay does not exist",
            "stack jumpstream-dev-relay does not exist in us-east-1: deploy it first "
            "(make deploy ENV=dev)",
        ),
        ("Rate exceeded", "cannot read stack jumpstream-dev-relay in us-east-1: Rate exceeded"),
        (_stack([]), "has no Url output (status CREATE_COMPLETE)"),
    ],
)
def test_env_says_why_it_has_no_url(response: dict[str, object] | str, says: str) -> None:
    client, _ = _cloudformation([response])
    with pytest.raises(DeployedError) as caught:
        relay_url("dev", cloudformation=client)
    assert says in str(caught.value)


def test_an_unknown_env_names_the_choices() -> None:
    with pytest.raises(DeployedError, match="unknown environment 'nope'; choose one of: dev, prod"):
        relay_url("nope", cloudformation=object())


def test_without_credentials_it_says_what_to_configure(monkeypatch: pytest.MonkeyPatch) -> None:
    """A real client with none to find: botocore refuses before the network, and the line says
    how to give credentials (or to pass the URL)."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    client = Session().create_client("cloudformation", region_name="us-east-1")
    with pytest.raises(DeployedError) as refused:
        relay_url("dev", cloudformation=client)
    assert str(refused.value) == (
        "no AWS credentials found to read stack jumpstream-dev-relay; configure some: "
        "`aws configure sso` then `export AWS_PROFILE=NAME`, or set AWS_ACCESS_KEY_ID and "
        "AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) (or give the URL with --url)"
    )
