"""cfn-lint over the representative endpoint templates, each in its own region."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.stacks.conftest import REPRESENTATIVE, Matrix

# W3005 (a DependsOn that a GetAtt already implies) is what CDK itself generates for a Lambda
# function's role; it is a style warning about CDK's output, not a defect of the template.
IGNORED = ("--ignore-checks", "W3005")
CFN_LINT = str(Path(sys.executable).with_name("cfn-lint"))


def lint(paths: list[str], *regions: str) -> list[dict]:
    """cfn-lint's findings for `paths`, each checked against every one of `regions`."""
    result = subprocess.run(
        [CFN_LINT, *IGNORED, "--format", "json", "--regions", *regions, "--", *paths],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode in (0, 2, 4, 6, 8, 10, 12, 14), result.stderr
    return json.loads(result.stdout or "[]")


def test_every_representative_template_lints_clean_in_its_region(matrix: Matrix) -> None:
    by_region: dict[str, list[str]] = defaultdict(list)
    for (_, region), path in matrix.files.items():
        by_region[region].append(str(path))
    assert sum(len(p) for p in by_region.values()) == len(REPRESENTATIVE)
    # One cfn-lint process per region: each template is checked against its own region's
    # CloudFormation registry and value lists. cfn-lint is CPU-bound; CI has 2 cores.
    regions = sorted(by_region)
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda r: lint(by_region[r], r), regions))
    for region, findings in zip(regions, results, strict=True):
        assert findings == [], (region, findings[:3])
