"""On-demand prices of SageMaker hosting instances and of EC2 instances, from the AWS Price List.

`cost` says how many instance-hours an environment bills; with AWS credentials it also reads what
one hour of the instance type costs in the environment's region, so the answer is in money too.
The Price List is AWS's own, public data (`pricing:GetProducts`, answered from us-east-1,
eu-central-1 or ap-south-1 for every commercial region); no instance price is built in, so none
goes stale here (the one figure that is, Lambda Managed Instances' fee, is below).

How the product is found: SageMaker's products are filtered by region code and instance name,
and the one for real-time hosting is the one whose usage type is a hosting usage type
(`<REGION>-Host:<instance type>`; batch transform, training, notebooks and async inference have
others). Those attribute names are what the Price List publishes for SageMaker, not confirmed
here against a live answer: where no product matches, `cost` says it found no price rather than
guess one.

A relay on Lambda Managed Instances runs on EC2 instances billed at their EC2 price plus Lambda's
management fee (`MANAGED_INSTANCES_FEE`, from the AWS Lambda pricing page; not read from the
Price List). The EC2 product is the one for Linux on shared tenancy with no pre-installed
software and no license, in use (the filters others use for this lookup; not confirmed here
against a live answer either).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

__all__ = [
    "MANAGED_INSTANCES_FEE",
    "PRICE_LIST_REGION",
    "Price",
    "ec2_hourly_price",
    "hourly_price",
]

#: Where the Price List API answers for the commercial regions.
PRICE_LIST_REGION: Final = "us-east-1"
#: Lambda Managed Instances' management fee, as a share of the instances' EC2 on-demand price.
MANAGED_INSTANCES_FEE: Final = Decimal("0.15")
_SAGEMAKER: Final = "AmazonSageMaker"
_EC2: Final = "AmazonEC2"
_HOSTING_USAGE: Final = "-Host:"
_EC2_FILTERS: Final = {
    "operatingSystem": "Linux",
    "tenancy": "Shared",
    "preInstalledSw": "NA",
    "licenseModel": "No License required",
    "capacitystatus": "Used",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Price:
    """What one hour of an instance costs on demand, as the Price List says."""

    per_hour: Decimal
    currency: str
    #: The Price List's own description of the price, for the reader to check.
    description: str


def hourly_price(instance_type: str, region: str, *, client: Any) -> Price | None:
    """The on-demand price per hour of `instance_type` for SageMaker real-time hosting in
    `region`, or None when the Price List has no such product (or more than one price)."""
    filters = {"regionCode": region, "instanceName": instance_type}

    def hosting(product: dict[str, Any]) -> bool:
        usage = str(product.get("product", {}).get("attributes", {}).get("usagetype", ""))
        return usage.endswith(f"{_HOSTING_USAGE}{instance_type}")

    return _one_price(client, _SAGEMAKER, filters, hosting)


def ec2_hourly_price(instance_type: str, region: str, *, client: Any) -> Price | None:
    """The on-demand price per hour of the EC2 instance type in `region` (Linux, shared), or
    None when the Price List has no single such price."""
    filters = {"regionCode": region, "instanceType": instance_type, **_EC2_FILTERS}
    return _one_price(client, _EC2, filters)


def _one_price(
    client: Any,
    service: str,
    filters: dict[str, str],
    wanted: Callable[[dict[str, Any]], bool] | None = None,
) -> Price | None:
    """The one hourly on-demand price of the products the filters find (those `wanted`, if
    given), or None."""
    paginator = client.get_paginator("get_products")
    pages = paginator.paginate(
        ServiceCode=service,
        Filters=[
            {"Type": "TERM_MATCH", "Field": field, "Value": value}
            for field, value in filters.items()
        ],
        FormatVersion="aws_v1",
    )
    products = (json.loads(document) for page in pages for document in page.get("PriceList", []))
    prices = {
        price
        for product in products
        if wanted is None or wanted(product)
        for price in _hourly_prices(product)
    }
    return prices.pop() if len(prices) == 1 else None


def _hourly_prices(product: dict[str, Any]) -> list[Price]:
    """The hourly on-demand prices of one Price List product."""
    found = []
    for term in product.get("terms", {}).get("OnDemand", {}).values():
        for dimension in term.get("priceDimensions", {}).values():
            if dimension.get("unit") not in ("Hrs", "Hour", "Hours"):
                continue
            for currency, amount in dimension.get("pricePerUnit", {}).items():
                if Decimal(amount) > 0:
                    found.append(
                        Price(
                            per_hour=Decimal(amount),
                            currency=currency,
                            description=str(dimension.get("description", "")),
                        )
                    )
    return found
