"""On-demand prices of SageMaker hosting instances, from the AWS Price List API.

`cost` says how many instance-hours an environment bills; with AWS credentials it also reads what
one hour of the instance type costs in the environment's region, so the answer is in money too.
The Price List is AWS's own, public data (`pricing:GetProducts`, answered from us-east-1,
eu-central-1 or ap-south-1 for every commercial region); nothing is built in, so nothing goes
stale here.

How the product is found: SageMaker's products are filtered by region code and instance name,
and the one for real-time hosting is the one whose usage type is a hosting usage type
(`<REGION>-Host:<instance type>`; batch transform, training, notebooks and async inference have
others). Those attribute names are what the Price List publishes for SageMaker, not confirmed
here against a live answer: where no product matches, `cost` says it found no price rather than
guess one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

__all__ = ["PRICE_LIST_REGION", "Price", "hourly_price"]

#: Where the Price List API answers for the commercial regions.
PRICE_LIST_REGION: Final = "us-east-1"
_SERVICE_CODE: Final = "AmazonSageMaker"
_HOSTING_USAGE: Final = "-Host:"


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
    paginator = client.get_paginator("get_products")
    pages = paginator.paginate(
        ServiceCode=_SERVICE_CODE,
        Filters=[
            {"Type": "TERM_MATCH", "Field": "regionCode", "Value": region},
            {"Type": "TERM_MATCH", "Field": "instanceName", "Value": instance_type},
        ],
        FormatVersion="aws_v1",
    )
    prices = {
        price
        for page in pages
        for document in page.get("PriceList", [])
        for price in _hosting_prices(json.loads(document), instance_type)
    }
    return prices.pop() if len(prices) == 1 else None


def _hosting_prices(product: dict[str, Any], instance_type: str) -> list[Price]:
    """The hourly on-demand prices of one Price List product, if it is hosting this type."""
    attributes = product.get("product", {}).get("attributes", {})
    usage = str(attributes.get("usagetype", ""))
    if not usage.endswith(f"{_HOSTING_USAGE}{instance_type}"):
        return []
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
