"""cdk-nag's AwsSolutions checks over the whole app; findings fail synthesis.

Acknowledgments are not collected here: each construct acknowledges its own findings next to the
resource that causes them, with the reason, so a reviewer reads both in one place.
"""

from __future__ import annotations

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct


def enable_nag(app: cdk.App) -> None:
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge one AwsSolutions finding (e.g. "AwsSolutions-SM2") below `scope`."""
    cdk.Validations.of(scope).acknowledge(
        cdk.Acknowledgment(id=f"AwsSolutions::{rule}", reason=reason)
    )
