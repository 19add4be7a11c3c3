"""``egress-guard sweep`` on a realistic estate, as the process a user runs: seconds, peak RSS, API calls.

The estate (``seed``), in one project, connectors spread over 5 regions, 50 to a network, each on its
own /28 subnet with the six ``aet-*`` rules VPC Access makes (the broad ones for all):

- Cloud Run: every 10th connector carries an all-traffic service, every 10th (offset 5) an
  all-traffic job, every 20th (offset 3) a private-ranges-only service; every 20th connector's
  network also gets a /28 subnet for a Direct VPC all-traffic service;
- routers: of each network's regions, a third have a router whose LIST NAT covers half of the
  network's subnets there, a third a router without NAT, a third no router;
- managed rules (the enforce-db policy's allow and deny) for half of the connectors.

It is seeded straight into an in-process localcloud through its backends (the code that serves the
API), without HTTP and without audit entries, so seeding 10,000 connectors takes seconds. Then
``egress-guard sweep --project P --json`` (and ``--dry-run``) runs as its own process, the console
script a user runs, imports included: ``wall_s`` is spawn to exit, ``rss_mib`` the process's own peak
resident set and ``cpu_s`` its CPU time (``os.wait4`` in a small launcher, see ``run_sweep``), ``calls`` localcloud's call log (only the sweep calls it). Dry-run
first, then enforce (writes included) on the same estate.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from localcloud.identities import service_account
from localcloud.quotas import DEFAULT_GLOBAL_MUTATIONS_PER_MINUTE, global_project

PROJECT = "egb-sweep"
# A fixed set of regions (issue 6: "1,000 connectors over 5 regions").
REGIONS = ("europe-west2", "europe-west1", "us-central1", "us-east1", "asia-northeast1")
SIZES = (100, 1000, 10000)
MODES = ("dry-run", "enforce")
POLICY = "examples/policy/enforce-db.yaml"
CONNECTORS_PER_NETWORK = 50
SWEEP_PRINCIPAL = service_account("egress-guard-sweep", PROJECT)


def sweep_available() -> str | None:
    """None when ``egress-guard sweep`` exists, else why not."""
    try:
        from egress_guard.cli import COMMANDS
    except ImportError as exc:
        return f"egress_guard.cli cannot be imported: {exc}"
    if "sweep" not in COMMANDS:
        return "`egress-guard sweep` has not landed yet (no 'sweep' in egress_guard.cli.COMMANDS)"
    return None


# --------------------------------------------------------------------------- localcloud in this process


@contextlib.contextmanager
def localcloud() -> Iterator[tuple[Any, str]]:
    """An in-process localcloud on a free loopback port: (app, url); stopped on exit."""
    import logging

    from localcloud.server import serve

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access line per request on the bench's stderr
    server = serve("127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, name="bench-localcloud", daemon=True)
    thread.start()
    try:
        yield server.app, f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.app.operations.stop_ticker()
        thread.join(timeout=10)


def reset(app: Any) -> None:
    with app.world.lock:
        app.world.reset()
        app.operations.reset()
    app.calls.reset()


def subnet_range(index: int) -> str:
    """The index-th /28 of 10.0.0.0/8 (unique across the estate, so no two subnets overlap)."""
    return f"10.{index // 4096}.{(index % 4096) // 16}.{(index % 16) * 16}/28"


def seed(app: Any, connectors: int, regions: Sequence[str] = REGIONS) -> dict[str, Any]:
    """The realistic estate of the module docstring, ``connectors`` READY connectors."""
    from localcloud.backends.run import JOB, SERVICE, Target, Write

    world = app.world
    compute, vpcaccess, run = world.backends["compute"], world.backends["vpcaccess"], world.backends["run"]
    networks = max(1, -(-connectors // CONNECTORS_PER_NETWORK))
    started = time.perf_counter()
    world.config.update({"connector_ready_delay_s": 0.0, "run_operation_delay_s": 0.0})
    # Without the operations backend, Compute writes the rules Google's service makes without an audit
    # entry and its operation (the "bare backend" path): seeding leaves no trace in the audit log.
    operations = world.backends.pop("operations")
    placed: dict[tuple[int, str], list[int]] = {}  # (network, region) -> connector indexes
    try:
        for k in range(networks):
            compute.network_insert(PROJECT, {"name": f"net-{k}", "autoCreateSubnetworks": False}).apply()
        for i in range(connectors):
            region, name, k = regions[i % len(regions)], f"conn-{i}", i % networks
            placed.setdefault((k, region), []).append(i)
            compute.subnetwork_insert(PROJECT, region, {"name": name, "network": _network(k),
                                                        "ipCidrRange": subnet_range(i)}).apply()
            spec = vpcaccess.parse_create(PROJECT, region, name, {"subnet": {"name": name},
                                                                  "minInstances": 2, "maxInstances": 3})
            vpcaccess.create(spec, api_version="v1", fail_with=None)
        operations.tick()  # every connector's create is due at once: READY, with its aet-* rules
        workloads = _seed_workloads(compute, run, connectors, networks, regions, Target, Write, SERVICE, JOB)
        routers = _seed_routers(compute, placed)
        managed = _seed_managed_rules(compute, connectors, networks, regions)
        operations.tick()  # the services' and jobs' reconciliation
    finally:
        world.backends["operations"] = operations
    operations.reset()  # the seeding's operations are done; keep them out of every later tick
    with world.lock:
        counts = {kind: len(table) for kind, table in world.tables.items() if table}
    return {"seconds": round(time.perf_counter() - started, 2), "networks": networks, "regions": len(regions),
            "workloads": workloads, "routers": routers, "managed_rules": managed, "resources": counts}


def _network(k: int) -> str:
    return f"projects/{PROJECT}/global/networks/net-{k}"


def _seed_workloads(compute: Any, run: Any, connectors: int, networks: int, regions: Sequence[str], Target: Any,
                    Write: Any, SERVICE: str, JOB: str) -> dict[str, int]:
    counts = {"services_on_connectors": 0, "jobs_on_connectors": 0, "private_ranges_services": 0,
              "direct_vpc_services": 0}

    def create(kind: str, region: str, name: str, vpc_access: dict[str, Any]) -> None:
        container = {"image": "us-docker.pkg.dev/cloudrun/container/hello"}
        if kind == SERVICE:
            body = {"template": {"containers": [container], "vpcAccess": vpc_access}}
        else:
            body = {"template": {"template": {"containers": [container], "vpcAccess": vpc_access}}}
        run.create(Write(Target(kind, PROJECT, region, name), body, {}, "", "developer@example.com"), fail_with=None)

    for i in range(connectors):
        region = regions[i % len(regions)]
        connector = f"projects/{PROJECT}/locations/{region}/connectors/conn-{i}"
        if i % 10 == 0:
            create(SERVICE, region, f"svc-{i}", {"connector": connector, "egress": "ALL_TRAFFIC"})
            counts["services_on_connectors"] += 1
        if i % 10 == 5:
            create(JOB, region, f"job-{i}", {"connector": connector, "egress": "ALL_TRAFFIC"})
            counts["jobs_on_connectors"] += 1
        if i % 20 == 3:
            create(SERVICE, region, f"private-{i}", {"connector": connector, "egress": "PRIVATE_RANGES_ONLY"})
            counts["private_ranges_services"] += 1
        if i % 20 == 7:
            k, subnet = i % networks, f"dvpc-{i}"
            compute.subnetwork_insert(PROJECT, region, {"name": subnet, "network": _network(k),
                                                        "ipCidrRange": subnet_range(connectors + i)}).apply()
            create(SERVICE, region, f"direct-{i}", {
                "networkInterfaces": [{"network": f"net-{k}", "subnetwork": subnet}], "egress": "ALL_TRAFFIC"})
            counts["direct_vpc_services"] += 1
    return counts


def _seed_routers(compute: Any, placed: dict[tuple[int, str], list[int]]) -> dict[str, int]:
    """A third of each network's regions: a router whose LIST NAT covers half the subnets there; a
    third: a router without NAT; a third: nothing."""
    counts = {"with_nat": 0, "without_nat": 0, "subnets_covered": 0}
    for n, ((k, region), indexes) in enumerate(sorted(placed.items())):
        if n % 3 == 2:
            continue
        body: dict[str, Any] = {"name": f"user-router-{k}", "network": _network(k)}
        if n % 3 == 0:
            covered = indexes[::2]
            body["nats"] = [{"name": "user-nat", "natIpAllocateOption": "AUTO_ONLY",
                             "sourceSubnetworkIpRangesToNat": "LIST_OF_SUBNETWORKS",
                             "subnetworks": [{"name": f"projects/{PROJECT}/regions/{region}/subnetworks/conn-{i}",
                                              "sourceIpRangesToNat": ["PRIMARY_IP_RANGE"]} for i in covered]}]
            counts["with_nat"] += 1
            counts["subnets_covered"] += len(covered)
        else:
            counts["without_nat"] += 1
        compute.router_insert(PROJECT, region, body).apply()
    return counts


def _seed_managed_rules(compute: Any, connectors: int, networks: int, regions: Sequence[str]) -> int:
    """egress-guard's managed rules (enforce-db policy) for every other connector."""
    from egress_guard.guardrails.connector_firewalls import desired_rules
    from egress_guard.names import parse_connector, parse_network
    from egress_guard.policy import load_policy

    from .harness import ROOT

    policy = load_policy(str(ROOT / POLICY)).firewall
    made = 0
    for i in range(0, connectors, 2):
        region = regions[i % len(regions)]
        connector = parse_connector(f"projects/{PROJECT}/locations/{region}/connectors/conn-{i}", field="bench")
        network = parse_network(_network(i % networks), field="bench")
        for rule in desired_rules(connector, network, policy):
            compute.firewall_insert(PROJECT, dict(rule.body)).apply()
            made += 1
    return made


# --------------------------------------------------------------------------- the sweep, as a process


def run_sweep(app: Any, url: str, mode: str) -> dict[str, Any]:
    """``egress-guard sweep --project P --json [--dry-run]`` as its own process: wall, peak RSS, calls."""
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    from .harness import ROOT

    script = Path(sys.executable).parent / "egress-guard"
    env = {**os.environ, "LOCALCLOUD_URL": url, "GOOGLE_CLOUD_PROJECT": PROJECT,
           "EGRESS_GUARD_PRINCIPAL": SWEEP_PRINCIPAL, "EGRESS_GUARD_SELF_PRINCIPALS": SWEEP_PRINCIPAL,
           "EGRESS_GUARD_POLICY": str(ROOT / POLICY)}
    argv = [str(script), "sweep", "--project", PROJECT, "--json"] + (["--dry-run"] if mode == "dry-run" else [])
    app.calls.reset()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r", suffix=".json") as measured:
        # Through a small launcher: a process started from this one (which holds the seeded estate)
        # reports this process's resident pages as its own peak RSS (Linux carries the high-water mark
        # across exec), so the sweep is started from a fresh ~10 MiB Python that times and waits for it.
        process = subprocess.run([sys.executable, "-c", _LAUNCHER, measured.name, *argv], stdout=out, stderr=err,
                                 stdin=subprocess.DEVNULL, env=env, cwd=ROOT, check=False)
        launched = json.loads(measured.read() or "{}")
        wall, status, maxrss_kib = launched.get("wall_s", 0.0), launched.get("status"), launched.get("maxrss_kib", 0)
        cpu = launched.get("cpu_s")
        if status is None:
            raise RuntimeError(f"the sweep's launcher failed (exit {process.returncode}): "
                               f"{err.seek(0) or err.read().decode(errors='replace')[-500:]}")
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        findings = findings_by_outcome(out.read().decode(errors="replace"))
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    calls = app.calls.snapshot(0)
    api_s = sum(float(c.get("duration_ms", 0.0)) for c in calls["calls"]) / 1000
    writes = sum(1 for c in calls["calls"] if c.get("mutating"))
    quota_writes = sum(1 for c in calls["calls"] if c.get("mutating") and global_project(c.get("path", "")))
    result: dict[str, Any] = {"wall_s": round(wall, 3), "rss_mib": round(maxrss_kib / 1024, 1),
                              # The sweep process's own CPU (user + system): on a shared machine wall time
                              # moves with the load (``load_avg``), CPU time much less.
                              "cpu_s": None if cpu is None else round(cpu, 2),
                              "load_avg": round(os.getloadavg()[0], 2),
                              "calls": calls["total"], "writes": writes, "api_server_s": round(api_s, 3),
                              # Google's floor for these writes (docs/minimums.md): the global mutations
                              # ("Queries") at the default 1,500 a minute per project.
                              "quota_writes": quota_writes,
                              "quota_floor_s": round(quota_writes / DEFAULT_GLOBAL_MUTATIONS_PER_MINUTE * 60, 1),
                              "exit_status": process.returncode,
                              "calls_by_method": dict(sorted(calls["counts"].items())),
                              "findings": findings}
    if process.returncode not in (0, 1):
        result["stderr_tail"] = stderr[-1000:]
    return result


_LAUNCHER = """
import json, os, subprocess, sys, time
started = time.perf_counter()
child = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(child.pid, 0)
wall = time.perf_counter() - started
with open(sys.argv[1], "w") as out:
    json.dump({"wall_s": wall, "status": status, "maxrss_kib": usage.ru_maxrss,
               "cpu_s": usage.ru_utime + usage.ru_stime}, out)
"""


def findings_by_outcome(json_lines: str) -> dict[str, int]:
    """``--json`` prints one finding per line: how many of each guardrail and outcome."""
    counts: dict[str, int] = {}
    for line in json_lines.splitlines():
        try:
            finding = json.loads(line)
            key = f"{finding['guardrail']}:{finding['outcome']}"
        except (ValueError, KeyError, TypeError):
            key = "unreadable line"
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))


def run(sizes: Sequence[int] = SIZES, progress: Callable[[str], None] = lambda line: None
        ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """``sweep_realistic``: rows ``{connectors, mode, wall_s, rss_mib, calls, ...}``, and how they were made."""
    missing = sweep_available()
    rows: list[dict[str, Any]] = []
    seeds: dict[int, Any] = {}
    with localcloud() as (app, url):
        for size in sizes:
            reset(app)
            progress(f"sweep: seeding a realistic estate of {size:,} connectors over {len(REGIONS)} regions")
            seeds[size] = seed(app, size)
            for mode in MODES:
                row: dict[str, Any] = {"connectors": size, "mode": mode, "wall_s": None, "rss_mib": None,
                                       "calls": None}
                if missing is None:
                    progress(f"sweep: egress-guard sweep ({mode}) over {size:,} connectors, as a process")
                    try:
                        row.update(run_sweep(app, url, mode))
                    except Exception as exc:  # reported, never raised: the other sizes still run
                        row["error"] = f"{type(exc).__name__}: {exc}"
                rows.append(row)
    setup: dict[str, Any] = {"project": PROJECT, "regions": list(REGIONS), "policy": POLICY,
                             "connectors_per_network": CONNECTORS_PER_NETWORK, "seeded": seeds,
                             "command": f"egress-guard sweep --project {PROJECT} --json [--dry-run] (own process)"}
    if missing is not None:
        setup["not_measured"] = missing
    return rows, setup
