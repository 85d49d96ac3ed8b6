"""cfn-lint over the representative endpoint templates, each in its own region."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from cfnlint.api import ManualArgs, lint_file

from tests.stacks.conftest import ENGINE_REPRESENTATIVE, REPRESENTATIVE, Matrix

# W3005 (a DependsOn that a GetAtt already implies) is what CDK itself generates for a Lambda
# function's role; it is a style warning about CDK's output, not a defect of the template.
IGNORED = ["W3005"]


def lint(paths: list[str], region: str) -> list[str]:
    """cfn-lint's findings for each template in `paths`, checked against `region`.

    cfn-lint's own API, in this process: the same rules and region data as its command line,
    without paying its start-up (about a second and a half) once per template set.
    """
    config = ManualArgs(regions=[region], ignore_checks=IGNORED)
    return [
        f"{match.rule.id} {match.message} ({Path(match.filename or path).name}:{match.linenumber})"
        for path in paths
        for match in lint_file(Path(path), config=config)
    ]


def test_every_representative_template_lints_clean_in_its_region(matrix: Matrix) -> None:
    by_region: dict[str, list[str]] = defaultdict(list)
    for (_, region), path in matrix.files.items():
        by_region[region].append(str(path))
    assert sum(len(p) for p in by_region.values()) == len(REPRESENTATIVE) + len(
        ENGINE_REPRESENTATIVE
    )
    for region, paths in sorted(by_region.items()):
        assert lint(paths, region) == [], region


def test_lint_reports_what_it_finds(tmp_path: Path) -> None:
    """The check can fail: a SageMaker endpoint config in a region whose CloudFormation has no
    SageMaker types (us-gov-east-1) is reported (E3006), as is a malformed property (E3002)."""
    template = tmp_path / "t.json"
    template.write_text(
        '{"Resources": {"C": {"Type": "AWS::SageMaker::EndpointConfig", '
        '"Properties": {"ProductionVariants": [], "Colour": "red"}}}}'
    )
    assert any(f.startswith("E3006 ") for f in lint([str(template)], "us-gov-east-1"))
    assert any(f.startswith("E3002 ") for f in lint([str(template)], "us-east-1"))
