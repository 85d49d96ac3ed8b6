"""Prices from the AWS Price List (prices.py) and `cost` in money.

The Price List answers are written here in the shape the API publishes (FormatVersion aws_v1:
each product a JSON document with its attributes and its on-demand terms), through botocore's
Stubber on a real pricing client: the request botocore builds is checked against the API's model.
"""

from __future__ import annotations

import io
import json
from decimal import Decimal
from typing import Any

import pytest
from botocore.credentials import ReadOnlyCredentials
from botocore.session import Session
from botocore.stub import Stubber

from jumpstream.cost import run_cost
from jumpstream.prices import Price, ec2_hourly_price, hourly_price

#: The stubbed client never sends a request.
DUMMY = ReadOnlyCredentials("AKID", "secret", None)
FILTERS = [
    {"Type": "TERM_MATCH", "Field": "regionCode", "Value": "us-east-1"},
    {"Type": "TERM_MATCH", "Field": "instanceName", "Value": "ml.g5.2xlarge"},
]


def product(usage: str, price: str, *, unit: str = "Hrs") -> str:
    return json.dumps(
        {
            "product": {
                "productFamily": "ML Instance",
                "attributes": {
                    "servicecode": "AmazonSageMaker",
                    "regionCode": "us-east-1",
                    "instanceName": "ml.g5.2xlarge",
                    "usagetype": usage,
                },
                "sku": usage,
            },
            "serviceCode": "AmazonSageMaker",
            "terms": {
                "OnDemand": {
                    f"{usage}.JRTCKXETXF": {
                        "priceDimensions": {
                            f"{usage}.JRTCKXETXF.6YS6EN2CT7": {
                                "unit": unit,
                                "description": f"${price} per {usage} hour",
                                "pricePerUnit": {"USD": price},
                            }
                        }
                    }
                }
            },
        }
    )


def ec2_product(instance_type: str, price: str) -> str:
    """An EC2 product as the Price List publishes one (Linux, shared tenancy, on demand)."""
    sku = f"SKU{instance_type}"
    return json.dumps(
        {
            "product": {
                "productFamily": "Compute Instance",
                "attributes": {
                    "servicecode": "AmazonEC2",
                    "regionCode": "us-east-1",
                    "instanceType": instance_type,
                    "operatingSystem": "Linux",
                    "tenancy": "Shared",
                    "usagetype": f"BoxUsage:{instance_type}",
                },
                "sku": sku,
            },
            "serviceCode": "AmazonEC2",
            "terms": {
                "OnDemand": {
                    f"{sku}.JRTCKXETXF": {
                        "priceDimensions": {
                            f"{sku}.JRTCKXETXF.6YS6EN2CT7": {
                                "unit": "Hrs",
                                "description": f"${price} per On Demand Linux {instance_type} "
                                "Instance Hour",
                                "pricePerUnit": {"USD": price},
                            }
                        }
                    }
                }
            },
        }
    )


EC2_FILTERS = [
    {"Type": "TERM_MATCH", "Field": field, "Value": value}
    for field, value in [
        ("regionCode", "us-east-1"),
        ("instanceType", "m7g.large"),
        ("operatingSystem", "Linux"),
        ("tenancy", "Shared"),
        ("preInstalledSw", "NA"),
        ("licenseModel", "No License required"),
        ("capacitystatus", "Used"),
    ]
]


def pricing(*pages: list[str], ec2: list[str] | None = None, ec2_error: str | None = None) -> Any:
    """A pricing client answering SageMaker's `pages`, then (if given) one page for EC2 or an
    error of that code."""
    client = Session().create_client(
        "pricing",
        region_name="us-east-1",
        aws_access_key_id=DUMMY.access_key,
        aws_secret_access_key=DUMMY.secret_key,
    )
    stubber = Stubber(client)
    for index, page in enumerate(pages):
        expected: dict[str, Any] = {
            "ServiceCode": "AmazonSageMaker",
            "Filters": FILTERS,
            "FormatVersion": "aws_v1",
        }
        response: dict[str, Any] = {"FormatVersion": "aws_v1", "PriceList": page}
        if index:
            expected["NextToken"] = f"page{index}"
        if index < len(pages) - 1:
            response["NextToken"] = f"page{index + 1}"
        stubber.add_response("get_products", response, expected)
    if ec2 is not None:
        stubber.add_response(
            "get_products",
            {"FormatVersion": "aws_v1", "PriceList": ec2},
            {"ServiceCode": "AmazonEC2", "Filters": EC2_FILTERS, "FormatVersion": "aws_v1"},
        )
    if ec2_error is not None:
        stubber.add_client_error("get_products", service_error_code=ec2_error)
    stubber.activate()
    return client


def test_the_hosting_product_gives_the_price_not_training_or_batch() -> None:
    client = pricing(
        [product("USE1-Train:ml.g5.2xlarge", "1.515"), product("USE1-Tsform:ml.g5.2xlarge", "1.2")],
        [product("USE1-Host:ml.g5.2xlarge", "1.5150000000")],
    )
    price = hourly_price("ml.g5.2xlarge", "us-east-1", client=client)
    assert price == Price(
        per_hour=Decimal("1.5150000000"),
        currency="USD",
        description="$1.5150000000 per USE1-Host:ml.g5.2xlarge hour",
    )


@pytest.mark.parametrize(
    "page",
    [
        [],  # nothing for this type in this region
        [product("USE1-Train:ml.g5.2xlarge", "1.5")],  # no hosting product
        [product("USE1-Host:ml.g5.2xlarge", "0.0")],  # no price
        [product("USE1-Host:ml.g5.2xlarge", "1.5", unit="Quantity")],  # not per hour
        # Two different hosting prices: no guess.
        [product("USE1-Host:ml.g5.2xlarge", "1.5"), product("USE2-Host:ml.g5.2xlarge", "1.6")],
    ],
    ids=["none", "not-hosting", "zero", "not-hourly", "ambiguous"],
)
def test_no_single_hosting_price_is_no_price(page: list[str]) -> None:
    assert hourly_price("ml.g5.2xlarge", "us-east-1", client=pricing(page)) is None


def test_cost_says_what_idle_and_busy_cost_a_month() -> None:
    stdout, stderr = io.StringIO(), io.StringIO()
    client = pricing([product("USE1-Host:ml.g5.2xlarge", "1.5150000000")])
    assert run_cost("dev", stdout=stdout, stderr=stderr, pricing_client=lambda: client) == 0
    assert stderr.getvalue() == ""
    last = stdout.getvalue().splitlines()[-1]
    assert last == (
        "  at $1.515 per instance-hour on demand (AWS Price List: $1.5150000000 per "
        "USE1-Host:ml.g5.2xlarge hour): idle $1,106 a month, busy up to $1,106 a month; the "
        "relay's Lambda cost is per request"
    )


def test_cost_without_a_price_says_why_and_what_to_multiply_by() -> None:
    stdout, stderr = io.StringIO(), io.StringIO()
    assert run_cost("dev", stdout=stdout, stderr=stderr, pricing_client=lambda: pricing([])) == 0
    assert "multiply by the ml.g5.2xlarge price" in stdout.getvalue()
    assert stderr.getvalue() == (
        "jumpstream cost: the AWS Price List has no single on-demand price for ml.g5.2xlarge "
        "hosting in us-east-1\n"
    )


def test_the_ec2_price_is_linux_on_shared_tenancy() -> None:
    client = pricing(ec2=[ec2_product("m7g.large", "0.0816000000")])
    assert ec2_hourly_price("m7g.large", "us-east-1", client=client) == Price(
        per_hour=Decimal("0.0816000000"),
        currency="USD",
        description="$0.0816000000 per On Demand Linux m7g.large Instance Hour",
    )
    ambiguous = pricing(ec2=[ec2_product("m7g.large", "0.08"), ec2_product("m7g.large", "0.09")])
    assert ec2_hourly_price("m7g.large", "us-east-1", client=ambiguous) is None


@pytest.fixture
def managed_relay(monkeypatch: pytest.MonkeyPatch) -> None:
    """`cost --env m` finds an environment whose relay runs on Lambda Managed Instances."""
    from stacks.config import resolve_environment

    config = resolve_environment(
        "m",
        {
            "region": "us-east-1",
            "model_id": "huggingface-llm-mistral-7b-instruct",
            "instance_type": "ml.g5.2xlarge",
            "relay": {"managed_instances": True},
        },
    )
    monkeypatch.setattr("jumpstream.cost.environment", lambda name, overrides: config)


@pytest.mark.usefixtures("managed_relay")
def test_cost_prices_a_managed_instances_relay_with_lambdas_fee() -> None:
    """The endpoint's SageMaker price and the relay's EC2 price, read from the Price List; the
    relay's month is its instances' with Lambda's 15% on top (3 x 730 h x $0.0816 x 1.15)."""
    client = pricing(
        [product("USE1-Host:ml.g5.2xlarge", "1.5150000000")],
        ec2=[ec2_product("m7g.large", "0.0816000000")],
    )
    stdout, stderr = io.StringIO(), io.StringIO()
    assert run_cost("m", stdout=stdout, stderr=stderr, pricing_client=lambda: client) == 0
    assert stderr.getvalue() == ""
    lines = stdout.getvalue().splitlines()
    assert "idle $1,106 a month" in lines[3]
    assert lines[-1] == (
        "    at $0.0816 per instance-hour on demand (AWS Price List: $0.0816000000 per On Demand "
        "Linux m7g.large Instance Hour) and the fee: idle $206 a month, busy up to $411 a month"
    )

    # No EC2 price to be had: the relay's instances are still counted, and a note says why.
    client = pricing([product("USE1-Host:ml.g5.2xlarge", "1.515")], ec2=[])
    stdout, stderr = io.StringIO(), io.StringIO()
    assert run_cost("m", stdout=stdout, stderr=stderr, pricing_client=lambda: client) == 0
    assert stdout.getvalue().splitlines()[-1] == (
        "    multiply by the EC2 on-demand price of m7g.large"
    )
    assert stderr.getvalue() == (
        "jumpstream cost: the AWS Price List has no single on-demand price for m7g.large EC2 "
        "instances in us-east-1\n"
    )


@pytest.mark.usefixtures("managed_relay")
def test_a_failed_read_of_the_relays_price_keeps_the_endpoints() -> None:
    client = pricing([product("USE1-Host:ml.g5.2xlarge", "1.515")], ec2_error="ThrottlingException")
    stdout, stderr = io.StringIO(), io.StringIO()
    assert run_cost("m", stdout=stdout, stderr=stderr, pricing_client=lambda: client) == 0
    lines = stdout.getvalue().splitlines()
    assert "idle $1,106 a month" in lines[3]
    assert lines[-1] == "    multiply by the EC2 on-demand price of m7g.large"
    assert stderr.getvalue().startswith(
        "jumpstream cost: the AWS Price List could not be read for m7g.large EC2 instances in "
        "us-east-1 ("
    )
    assert "ThrottlingException" in stderr.getvalue()
