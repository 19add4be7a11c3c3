"""``egress-guard sweep --organization``: its API calls and time at 10, 100 and 1,000 projects.

The estate (``seed``): one organization, three folders, N projects spread over them; each project
holds a network, a /28 subnet, a READY connector on it (with the six ``aet-*`` rules VPC Access
makes), an all-traffic Cloud Run service and job on the connector. ``compliant=True`` also gives
each project what egress-guard would have made: a router whose NAT covers the subnet and the managed
rules of the enforce-db policy. ``drifted`` projects then lose their router (something to do).

Seeded straight into an in-process localcloud through its backends (no HTTP, no audit entries), as
``bench/sweep.py`` does. The sweep runs as its own process (``egress-guard sweep --organization N
--json --dry-run``); ``calls`` is localcloud's call log. Result ``sweep_organization``: a list of
{projects, drifted, calls, search_pages, live_projects, wall_s}. The argued bound
(``calls_bound``): ceil(resources / 500) search pages + each drifted project's own sweep.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

ORGANIZATION = "organizations/424242"
FOLDERS = ("folders/101", "folders/102", "folders/103")
REGIONS = ("europe-west2", "us-central1", "asia-northeast1")
SIZES = (10, 100, 1000)
DRIFTED = 3
POLICY = "examples/policy/enforce-db.yaml"
# Resources Asset Inventory returns per seeded project: connector, subnet, six aet-* rules, a
# service, a job; compliant: a router and two managed rules.
ASSETS_PER_PROJECT = {False: 10, True: 13}
# The most calls one project's own sweep makes here (dry-run: vpcaccess connectors.list, subnetworks,
# routers and firewalls aggregated/list, Cloud Run services and jobs, Cloud Functions, App Engine
# services: one page each in one region); measured 8, argued with margin for the App Engine 404's retry.
PER_PROJECT_SWEEP_CALLS = 10


def project_id(i: int) -> str:
    return f"eg-org-p{i:04d}"


def calls_bound(projects: int, drifted: int, *, compliant: bool = True) -> int:
    """The argued bound of a dry-run organization sweep's calls: the search's pages, plus each
    project with something to do (drifted) swept on its own. Nothing per compliant project."""
    pages = max(1, math.ceil(projects * ASSETS_PER_PROJECT[compliant] / 500))
    return pages + drifted * PER_PROJECT_SWEEP_CALLS


def seed(app: Any, projects: int, *, compliant: bool, drifted: int = 0) -> dict[str, Any]:
    """The estate of the module docstring, in ``app`` (an in-process localcloud's ``LocalCloud``)."""
    from egress_guard.guardrails.connector_firewalls import desired_rules
    from egress_guard.names import parse_connector, parse_network
    from egress_guard.policy import load_policy
    from localcloud.backends.run import JOB, SERVICE, Target, Write

    from .harness import ROOT

    world = app.world
    compute, vpcaccess, run = world.backends["compute"], world.backends["vpcaccess"], world.backends["run"]
    hierarchy = world.backends["resourcemanager"]
    firewall_policy = load_policy(str(ROOT / POLICY)).firewall
    started = time.perf_counter()
    world.config.update({"connector_ready_delay_s": 0.0, "run_operation_delay_s": 0.0})
    hierarchy.put_organization(ORGANIZATION, "example.com")
    for folder in FOLDERS:
        hierarchy.put_folder(folder, ORGANIZATION)
    operations = world.backends.pop("operations")  # the bare-backend path: no audit entries, no operations
    try:
        for i in range(projects):
            p, region = project_id(i), REGIONS[i % len(REGIONS)]
            hierarchy.put_project(p, FOLDERS[i % len(FOLDERS)])
            compute.network_insert(p, {"name": "net", "autoCreateSubnetworks": False}).apply()
            compute.subnetwork_insert(p, region, {"name": "conn", "network": f"projects/{p}/global/networks/net",
                                                  "ipCidrRange": "10.8.0.0/28"}).apply()
            spec = vpcaccess.parse_create(p, region, "conn", {"subnet": {"name": "conn"}, "minInstances": 2,
                                                              "maxInstances": 3})
            vpcaccess.create(spec, api_version="v1", fail_with=None)
        operations.tick()  # every connector READY, with its aet-* rules
        for i in range(projects):
            p, region = project_id(i), REGIONS[i % len(REGIONS)]
            connector = f"projects/{p}/locations/{region}/connectors/conn"
            vpc = {"connector": connector, "egress": "ALL_TRAFFIC"}
            container = {"image": "us-docker.pkg.dev/cloudrun/container/hello"}
            run.create(Write(Target(SERVICE, p, region, "api"), {"template": {"containers": [container],
                                                                              "vpcAccess": vpc}}, {}, "",
                             "developer@example.com"), fail_with=None)
            run.create(Write(Target(JOB, p, region, "nightly"), {"template": {"template": {
                "containers": [container], "vpcAccess": vpc}}}, {}, "", "developer@example.com"), fail_with=None)
            if compliant and i >= drifted:
                compute.router_insert(p, region, {
                    "name": f"egress-guard-{region}", "network": f"projects/{p}/global/networks/net",
                    "nats": [{"name": "egress-guard-nat", "natIpAllocateOption": "AUTO_ONLY",
                              "sourceSubnetworkIpRangesToNat": "LIST_OF_SUBNETWORKS",
                              "subnetworks": [{"name": f"projects/{p}/regions/{region}/subnetworks/conn",
                                               "sourceIpRangesToNat": ["ALL_IP_RANGES"]}]}]}).apply()
            if compliant:
                for rule in desired_rules(parse_connector(connector, field="bench"),
                                          parse_network(f"projects/{p}/global/networks/net", field="bench"),
                                          firewall_policy):
                    compute.firewall_insert(p, dict(rule.body)).apply()
        operations.tick()
    finally:
        world.backends["operations"] = operations
    operations.reset()
    return {"projects": projects, "seconds": round(time.perf_counter() - started, 2)}


def run_sweep(url: str, *, dry_run: bool = True, extra_env: dict[str, str] | None = None) -> tuple[int, dict[str, Any], str]:
    """``egress-guard sweep --organization N --json [--dry-run]`` as its own process: (exit, JSON, stderr)."""
    from .harness import ROOT

    script = os.path.join(os.path.dirname(sys.executable), "egress-guard")
    env = {**os.environ, "LOCALCLOUD_URL": url, "EGRESS_GUARD_POLICY": str(ROOT / POLICY),
           "EGRESS_GUARD_PRINCIPAL": "egress-guard-sweep@eg-org-admin.iam.gserviceaccount.com", **(extra_env or {})}
    argv = [script, "sweep", "--organization", ORGANIZATION.split("/")[1], "--json"] + (["--dry-run"] if dry_run else [])
    done = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=ROOT, check=False,
                          stdin=subprocess.DEVNULL)
    return done.returncode, (json.loads(done.stdout) if done.stdout.strip() else {}), done.stderr


def run(sizes: list[int], progress: Callable[[str], None]) -> list[dict[str, Any]]:
    """For each size: a compliant organization with ``DRIFTED`` projects drifted, swept in dry-run."""
    from .sweep import localcloud, reset

    rows = []
    with localcloud() as (app, url):
        for size in sizes:
            reset(app)
            seeded = seed(app, size, compliant=True, drifted=min(DRIFTED, size))
            app.calls.reset()
            started = time.perf_counter()
            status, out, err = run_sweep(url)
            wall = time.perf_counter() - started
            calls = app.calls.snapshot(0)
            row = {"projects": size, "drifted": min(DRIFTED, size), "calls": calls["total"],
                   "calls_bound": calls_bound(size, min(DRIFTED, size)), "search_pages": out.get("search_pages"),
                   "live_projects": sum(1 for p in out.get("projects", ()) if p.get("decided_from") == "live sweep"),
                   "wall_s": round(wall, 3), "seed_s": seeded["seconds"], "exit_status": status,
                   "calls_by_method": dict(sorted(calls["counts"].items()))}
            if status not in (0, 1):
                row["stderr_tail"] = err[-800:]
            rows.append(row)
            progress(f"sweep --organization, {size} projects: {row['calls']} calls (bound {row['calls_bound']}), "
                     f"{row['wall_s']} s")
    return rows
