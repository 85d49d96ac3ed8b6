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
from jumpstream.prices import Price, hourly_price

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


def pricing(*pages: list[str]) -> Any:
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
