"""The organization sweep's pure parts: scopes, the asset-type pattern, the per-project summary."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from egress_guard.errors import InvalidName
from egress_guard.findings import ResourceRef
from egress_guard.organization import ASSET_TYPES, Scope
from egress_guard.organization.discovery import ASSET_TYPES_PATTERN
from egress_guard.organization.report import progress_line, render
from egress_guard.organization.run import LIVE, SNAPSHOT, OrganizationReport, ProjectResult
from egress_guard.sweep import Row


@pytest.mark.parametrize("kind, value, expected", [
    ("organizations", "123", "organizations/123"),
    ("organizations", "organizations/123", "organizations/123"),
    ("folders", " 42 ", "folders/42"),
    ("projects", "my-project", "projects/my-project"),
])
def test_scope_parse_accepts_numbers_and_full_names(kind, value, expected):
    assert Scope.parse(kind, value).name == expected


@pytest.mark.parametrize("kind, value", [
    ("organizations", "example.com"), ("organizations", "folders/1"), ("folders", "organizations/1"),
    ("folders", ""), ("organizations", "-1"), ("projects", "Not_A_Project"),
])
def test_scope_parse_refuses_what_is_not_a_scope(kind, value):
    with pytest.raises(InvalidName):
        Scope.parse(kind, value)


def test_asset_types_pattern_matches_each_type_and_nothing_else():
    for asset_type in ASSET_TYPES:
        assert re.fullmatch(ASSET_TYPES_PATTERN, asset_type)
    for other in ("compute.googleapis.com/Instance", "computeXgoogleapis.com/Router", "run.googleapis.com/Service2"):
        assert not re.fullmatch(ASSET_TYPES_PATTERN, other)


def _project(name: str, outcome: str, decided_from: str = SNAPSHOT, calls: int = 0) -> ProjectResult:
    rows = (Row(ResourceRef("vpcaccess.connector", f"projects/{name}/locations/r/connectors/c"), "ensure_nat",
                outcome, "why"),)
    return ProjectResult(name, "folders/1", decided_from, "" if decided_from == SNAPSHOT else "planned", rows, calls)


def test_progress_line_says_project_folder_outcomes_and_calls():
    line = progress_line(3, 30, _project("eg-a", "planned", LIVE, 8))
    assert line == "[3/30] eg-a (folders/1): 1 planned; live sweep, 8 calls"


def test_render_lists_only_projects_with_something_to_say_above_fifty():
    projects = tuple(_project(f"eg-p{i:03d}", "compliant") for i in range(60)) + (_project("eg-drift", "planned", LIVE, 8),)
    report = OrganizationReport(("organizations/1",), projects, 61, 2, 10, 1.0)
    out = io.StringIO()
    render(report, Console(file=out, width=200))
    text = out.getvalue()
    assert "eg-drift" in text and "eg-p001" not in text and "60 projects all compliant, not listed" in text
    assert "API calls: 10 (Asset Inventory search: 2 pages)" in text
    out = io.StringIO()
    render(report, Console(file=out, width=200), all_rows=True)
    assert "eg-p001" in out.getvalue()
