"""cfn-lint over every synthesized endpoint template, each in its own region."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.stacks.conftest import Matrix

# CloudFormation's own registry (which cfn-lint and CDK's validator both carry) has no SageMaker
# resource types in this region although JumpStart hosts the models there: synthesis warns the
# user (CDK's built-in CloudFormation validation, F3006) and lint reports exactly E3006 for those
# types, nothing else.
CLOUDFORMATION_GAPS = {"us-gov-east-1"}
SAGEMAKER_TYPES = {
    "AWS::SageMaker::Model",
    "AWS::SageMaker::EndpointConfig",
    "AWS::SageMaker::Endpoint",
}


# W3005 (a DependsOn that a GetAtt already implies) is what CDK itself generates for a Lambda
# function's role; it is a style warning about CDK's output, not a defect of the template.
IGNORED = ("--ignore-checks", "W3005")
CFN_LINT = str(Path(sys.executable).with_name("cfn-lint"))


def lint(paths: list[str], region: str) -> list[dict]:
    result = subprocess.run(
        [CFN_LINT, *IGNORED, "--format", "json", "--regions", region, "--", *paths],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode in (0, 2, 4, 6, 8, 10, 12, 14), result.stderr
    return json.loads(result.stdout or "[]")


def test_every_template_lints_clean_in_its_region(matrix: Matrix) -> None:
    by_region: dict[str, list[str]] = defaultdict(list)
    for (_, region), path in matrix.files.items():
        by_region[region].append(str(path))
    assert len(by_region) == 27
    regions = sorted(by_region)
    with ThreadPoolExecutor(max_workers=2) as pool:  # cfn-lint is CPU-bound; CI has 2 cores
        results = pool.map(lambda r: lint(by_region[r], r), regions)
    for region, findings in zip(regions, results, strict=True):
        if region in CLOUDFORMATION_GAPS:
            assert findings, "the known CloudFormation gap disappeared: drop it from the list"
            for f in findings:
                assert f["Rule"]["Id"] == "E3006", f
                assert any(t in f["Message"] for t in SAGEMAKER_TYPES), f
        else:
            assert findings == [], (region, findings[:3])
