"""``egress-guard sweep --organization | --folder`` against localcloud, through the real google-cloud-asset
client (REST) and the real compute, vpcaccess and run clients.

The estates are seeded straight into an in-process localcloud's backends (``bench/organization.py``:
an organization, three folders, projects holding a connector, an all-traffic service and job), so
that a hundred projects take a second; the sweep calls as its own principal, so localcloud's call log
shows exactly what it did. The CLI runs in this process (``cli.main``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import pytest
from google.api_core import exceptions as gexc
from google.cloud import asset_v1

from bench import organization as org
from bench.sweep import localcloud as in_process_localcloud
from bench.sweep import reset
from egress_guard import cli
from egress_guard.clients import Clients
from egress_guard.config import Settings
from egress_guard.organization import ASSET_TYPES
from egress_guard.organization.discovery import READ_MASK

pytestmark = pytest.mark.contract

SWEEPER = "egress-guard-sweep@eg-org-admin.iam.gserviceaccount.com"
MUTATING = ("insert", "patch", "update", "delete", "create")


@pytest.fixture(scope="module")
def cloud() -> Iterator[tuple[Any, str]]:
    with in_process_localcloud() as (app, url):
        yield app, url


@pytest.fixture
def world(cloud, monkeypatch) -> tuple[Any, str]:
    app, url = cloud
    reset(app)
    monkeypatch.setenv("LOCALCLOUD_URL", url)
    monkeypatch.setenv("EGRESS_GUARD_PRINCIPAL", SWEEPER)
    monkeypatch.setenv("EGRESS_GUARD_POLICY", str(org_policy()))
    for name in ("GOOGLE_CLOUD_PROJECT", "EGRESS_GUARD_PROJECT"):
        monkeypatch.delenv(name, raising=False)
    return app, url


def org_policy():
    from bench.harness import ROOT

    return ROOT / org.POLICY


def assets_client(url: str) -> Any:
    import os

    os.environ["LOCALCLOUD_URL"] = url
    return Clients(Settings.from_env()).assets


def sweep(capsys, *args: str) -> tuple[int, dict[str, Any], str]:
    import logging

    from egress_guard.log import _StructuredHandler

    capsys.readouterr()
    try:
        status = cli.main(["sweep", *args])
    finally:  # main() logs to this test's captured stderr: let the next call set its own
        root = logging.getLogger()
        for handler in [h for h in root.handlers if isinstance(h, _StructuredHandler)]:
            root.removeHandler(handler)
    out, err = capsys.readouterr()
    return status, (json.loads(out) if out.strip().startswith("{") else {}), err


def calls_of(app: Any) -> dict[str, Any]:
    return app.calls.snapshot(0, principal=SWEEPER)


def writes(app: Any) -> list[str]:
    return [c["method_id"] for c in calls_of(app)["calls"] if c.get("mutating")]


# ---------------------------------------------------------------------------------------------
# localcloud's searchAllResources, as the real client sees it
# ---------------------------------------------------------------------------------------------
def test_asset_search_scopes_types_pages_and_read_mask(world):
    app, url = world
    org.seed(app, 6, compliant=False)
    client = assets_client(url)

    def names(scope: str, types: list[str], **extra: Any) -> list[str]:
        request = asset_v1.SearchAllResourcesRequest(scope=scope, asset_types=types, **extra)
        return [r.name for r in client.search_all_resources(request=request)]

    connectors = names(org.ORGANIZATION, ["vpcaccess.googleapis.com/Connector"])
    assert len(connectors) == 6 and all(n.startswith("//vpcaccess.googleapis.com/projects/eg-org-p") for n in connectors)
    # A folder holds every third project; a project scope, that project only (by id or by number).
    assert len(names(org.FOLDERS[1], ["vpcaccess.googleapis.com/Connector"])) == 2
    assert names("projects/eg-org-p0004", ["run.googleapis.com/Job"]) == [
        "//run.googleapis.com/projects/eg-org-p0004/locations/us-central1/jobs/nightly"]
    # Asset types: exact, or an RE2 expression over the supported types.
    run_all = names(org.ORGANIZATION, ["run.googleapis.com.*"])
    assert len(run_all) == 12 and {n.split("/")[-2] for n in run_all} == {"services", "jobs"}

    # Pages: page_size 4 over 60 results (10 a project) is 15 pages, each one call.
    app.calls.reset()
    request = asset_v1.SearchAllResourcesRequest(scope=org.ORGANIZATION, asset_types=list(ASSET_TYPES), page_size=4)
    pages = list(client.search_all_resources(request=request).pages)
    listed = [r.name for p in pages for r in p.results]
    assert len(pages) == 15 and len(listed) == len(set(listed)) == 60  # each result once, in some page
    assert app.calls.snapshot(0)["counts"] == {"cloudasset.searchAllResources": 15}

    # The resource itself only when the read mask asks for it; folders and organization always.
    plain = next(iter(client.search_all_resources(request={"scope": org.ORGANIZATION,
                                                           "asset_types": ["compute.googleapis.com/Subnetwork"]})))
    assert not plain.versioned_resources and plain.organization == org.ORGANIZATION
    assert plain.folders == [org.FOLDERS[0]] and plain.project.startswith("projects/") and plain.project[9:].isdigit()
    masked = next(iter(client.search_all_resources(request={
        "scope": org.ORGANIZATION, "asset_types": ["compute.googleapis.com/Subnetwork"], "read_mask": READ_MASK})))
    assert masked.versioned_resources[0].version == "v1"
    assert masked.versioned_resources[0].resource["ipCidrRange"] == "10.8.0.0/28"


def test_resource_manager_names_a_seeded_projects_parent(world):
    import requests

    app, url = world
    org.seed(app, 2, compliant=False)
    project = requests.get(f"{url}/cloudresourcemanager/v1/projects/eg-org-p0001", timeout=10).json()
    assert project["parent"] == {"type": "folder", "id": "102"}


def test_asset_search_refuses_what_google_refuses(world):
    app, url = world
    org.seed(app, 3, compliant=False)
    client = assets_client(url)
    with pytest.raises(gexc.Forbidden) as unknown:
        list(client.search_all_resources(request={"scope": "organizations/999"}))
    assert unknown.value.details and "cloudasset.assets.searchAllResources" in str(unknown.value.details)
    with pytest.raises(gexc.BadRequest, match="not supported"):
        list(client.search_all_resources(request={"scope": org.ORGANIZATION, "asset_types": ["compute.googleapis.com/Nope"]}))
    with pytest.raises(gexc.BadRequest, match="page token"):
        list(client.search_all_resources(request={"scope": org.ORGANIZATION, "page_token": "bm90LWEtdG9rZW4="}))
    with pytest.raises(gexc.BadRequest, match="read_mask"):
        list(client.search_all_resources(request={"scope": org.ORGANIZATION, "read_mask": "name,noSuchField"}))


# ---------------------------------------------------------------------------------------------
# the acceptance: 3 folders, 30 projects; dry-run, enforce, again
# ---------------------------------------------------------------------------------------------
def test_sweep_organization_dry_run_then_enforce_then_all_compliant(world, capsys):
    app, url = world
    org.seed(app, 30, compliant=False)

    status, report, err = sweep(capsys, "--organization", org.ORGANIZATION.split("/")[1], "--json", "--dry-run")
    assert status == 0, err
    assert report["outcomes"] == {"planned": 120}  # 30 x (connector, service, job: NAT; connector: rules)
    assert writes(app) == [] and report["search_pages"] == 1
    assert {p["folder"] for p in report["projects"]} == set(org.FOLDERS)
    assert all(p["decided_from"] == "live sweep" for p in report["projects"])
    assert "[30/30] eg-org-p" in err  # the progress line across projects
    dry_calls = calls_of(app)["total"]
    assert dry_calls == report["calls"]  # what it says it called is what localcloud saw
    called = set(calls_of(app)["counts"])

    app.calls.reset()
    status, report, err = sweep(capsys, "--organization", org.ORGANIZATION, "--json")
    assert status == 0, err
    assert report["outcomes"] == {"remediated": 120}
    assert {f["folder"] for p in report["projects"] for f in p["findings"]} == set(org.FOLDERS)
    assert any("routers.insert" in w for w in writes(app)) and any("firewalls.insert" in w for w in writes(app))
    called |= set(calls_of(app)["counts"])

    app.calls.reset()
    status, report, err = sweep(capsys, "--organization", org.ORGANIZATION, "--json")
    assert status == 0, err
    assert report["outcomes"] == {"compliant": 120}
    assert all(p["decided_from"] == "asset snapshot" for p in report["projects"])
    assert calls_of(app)["counts"] == {"cloudasset.searchAllResources": 1} == {"cloudasset.searchAllResources": report["calls"]}

    # The scheduled sweep's role (infra/modules/scheduled-sweep) is what these runs called, plus the
    # declared methods this estate cannot provoke, each for a named reason.
    from tests.infra.test_iam import check_runner_grants, declared_runner_methods

    assert called <= declared_runner_methods(), sorted(called - declared_runner_methods())
    assert declared_runner_methods() - called == set(NOT_PROVOKED_HERE), sorted(declared_runner_methods() - called)
    check_runner_grants(called | set(NOT_PROVOKED_HERE))


# Declared for the scheduled sweep but not called by the acceptance estate (new projects, nothing drifted).
NOT_PROVOKED_HERE = {
    "vpcaccess.projects.locations.list": "only for a project whose snapshot names no region",
    "compute.routers.list": "converge's re-read after a conflict or after a router patch",
    "compute.routers.patch": "a router that exists without the subnet (here every router is new)",
    "compute.firewalls.patch": "auto_rules: disable, or a drifted managed rule",
    "compute.firewalls.update": "a drifted managed rule put back whole",
    "compute.firewalls.delete": "a managed rule the policy no longer wants",
    "appengine.apps.services.versions.list": "a project with an App Engine app (here services.list answers 404)",
    "pubsub.projects.topics.publish": "--publish (a topic grant of the module, not in the role)",
}


def test_sweep_folder_sweeps_only_its_projects(world, capsys):
    app, _ = world
    org.seed(app, 9, compliant=False)
    status, report, err = sweep(capsys, "--folder", org.FOLDERS[2], "--json", "--dry-run")
    assert status == 0, err
    assert [p["project"] for p in report["projects"]] == ["eg-org-p0002", "eg-org-p0005", "eg-org-p0008"]


def test_sweep_several_projects_is_the_same_path(world, capsys):
    app, _ = world
    org.seed(app, 4, compliant=True)
    status, report, err = sweep(capsys, "--project", "eg-org-p0001", "--project", "eg-org-p0003", "--json")
    assert status == 0, err
    assert [p["project"] for p in report["projects"]] == ["eg-org-p0001", "eg-org-p0003"]
    assert report["outcomes"] == {"compliant": 8} and report["search_pages"] == 2


def test_sweep_organization_sweeps_live_what_its_snapshot_cannot_say(world, capsys, monkeypatch):
    """A resource in a version the sweep does not read is never guessed at: its project is swept live."""
    from egress_guard.organization import snapshot

    app, _ = world
    org.seed(app, 3, compliant=True)
    monkeypatch.setitem(snapshot.ASSET_RESOURCE_VERSIONS, "run.googleapis.com/Job", "v1")
    status, report, err = sweep(capsys, "--organization", org.ORGANIZATION, "--json", "--dry-run")
    assert status == 0, err
    assert all(p["decided_from"] == "live sweep" and "version" in p["why"] for p in report["projects"])
    assert report["outcomes"] == {"compliant": 12}


# ---------------------------------------------------------------------------------------------
# calls grow with pages, not projects
# ---------------------------------------------------------------------------------------------
def test_sweep_organization_calls_are_pages_plus_projects_with_something_to_do(world, capsys):
    """Argued bound (bench/organization.py ``calls_bound``): ceil(resources / 500) search pages, plus
    each drifted project's own sweep (at most ``PER_PROJECT_SWEEP_CALLS``); a compliant project adds
    nothing. 10 and 200 projects, 2 drifted each: the 190 extra compliant projects cost only the
    extra pages (2,600 resources: 6 pages, against 1)."""
    app, _ = world
    measured = {}
    for projects in (10, 200):
        reset(app)
        org.seed(app, projects, compliant=True, drifted=2)
        app.calls.reset()
        status, report, err = sweep(capsys, "--organization", org.ORGANIZATION, "--json", "--dry-run")
        assert status == 0, err
        calls = calls_of(app)
        assert calls["total"] <= org.calls_bound(projects, 2), calls["counts"]
        assert calls["counts"]["cloudasset.searchAllResources"] == math.ceil(projects * 13 / 500)
        assert sum(1 for p in report["projects"] if p["decided_from"] == "live sweep") == 2
        measured[projects] = calls["total"]
    assert measured[200] - measured[10] == math.ceil(200 * 13 / 500) - 1


# ---------------------------------------------------------------------------------------------
# bad input: a clear error, nothing changed
# ---------------------------------------------------------------------------------------------
def test_sweep_unknown_organization_is_a_clear_error_and_changes_nothing(world, capsys):
    app, _ = world
    org.seed(app, 3, compliant=False)
    status, report, err = sweep(capsys, "--organization", "999999")
    assert status == 2 and report == {}
    assert "cannot search organizations/999999" in err and "PERMISSION_DENIED" in err and "Nothing was changed" in err
    assert writes(app) == [] and calls_of(app)["counts"] == {"cloudasset.searchAllResources": 1}


def test_sweep_folder_the_caller_cannot_read_is_a_clear_error_and_changes_nothing(world, capsys):
    app, _ = world
    org.seed(app, 3, compliant=False)
    app.world.backends["resourcemanager"].deny(org.FOLDERS[0], SWEEPER)
    status, _, err = sweep(capsys, "--folder", org.FOLDERS[0])
    assert status == 2
    assert "cannot search folders/101" in err and "lacks cloudasset.assets.searchAllResources" in err
    assert writes(app) == []
    # Another folder of the same organization is still readable: the deny is the caller's, on that folder.
    assert sweep(capsys, "--folder", org.FOLDERS[1], "--dry-run")[0] == 0


@pytest.mark.parametrize("args, message", [
    (["--organization", "example.com"], "--organization: 'example.com' is not a number"),
    (["--folder", "organizations/1"], "--folder: 'organizations/1' is not a number"),
    (["--organization", "1", "--folder", "2"], "not --organization and --folder"),
    (["--organization", "1", "--region", "europe-west2"], "--region goes with a single --project"),
    (["--organization", "1", "--projects-at-once", "0"], "--projects-at-once must be at least 1"),
])
def test_sweep_organization_bad_arguments_exit_2_before_any_call(world, capsys, args, message):
    app, _ = world
    status, _, err = sweep(capsys, *args)
    assert status == 2 and message in err
    assert calls_of(app)["total"] == 0
