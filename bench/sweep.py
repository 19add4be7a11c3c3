"""``egress-guard sweep`` as the estate grows: API calls and seconds for 10, 100, 1,000 and 5,000
connectors, spread over a fixed number of regions.

The estate is seeded straight into an in-process localcloud through its backends (the same code
that serves the API: the connector's ``aet-*`` rules are made by the VPC Access backend as at
Google), without HTTP and without audit entries, so seeding 5,000 connectors takes seconds, not
the minutes 15,000 API calls and their operations would. Then the real ``egress-guard sweep`` runs
in this process against localcloud's URL, through the real clients, in dry-run: every connector
gets a plan and nothing is written, so the calls counted are the read strategy, the part that must
grow with regions and pages rather than with resources. Its calls are counted in localcloud's call
log (only the sweep calls the API here); its seconds are the wall time of the command, with the
client libraries already imported (their import is a cold-start cost, measured in ``cold_start``).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from localcloud.identities import service_account

PROJECT = "egb-sweep"
# A fixed set of regions (issue 6: "1,000 connectors over 5 regions").
REGIONS = ("europe-west2", "europe-west1", "us-central1", "us-east1", "asia-northeast1")
SIZES = (10, 100, 1000, 5000)
CONNECTORS_PER_NETWORK = 50
SWEEP_PRINCIPAL = service_account("egress-guard-sweep", PROJECT)
GOAL_CONNECTORS, GOAL_SECONDS = 1000, 5.0


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
    from localcloud.server import serve

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
    """``connectors`` READY subnet connectors, round-robin over ``regions``, 50 to a network, each on
    its own /28 subnet, with the six ``aet-*`` rules VPC Access makes; no NAT, no managed rule."""
    world = app.world
    compute, vpcaccess = world.backends["compute"], world.backends["vpcaccess"]
    networks = max(1, -(-connectors // CONNECTORS_PER_NETWORK))
    started = time.perf_counter()
    world.config.update({"connector_ready_delay_s": 0.0})
    # Without the operations backend, Compute writes the rules Google's service makes without an audit
    # entry and its operation (the "bare backend" path): seeding leaves no trace in the audit log.
    operations = world.backends.pop("operations")
    try:
        for k in range(networks):
            compute.network_insert(PROJECT, {"name": f"net-{k}", "autoCreateSubnetworks": False}).apply()
        for i in range(connectors):
            region, name = regions[i % len(regions)], f"conn-{i}"
            network = f"projects/{PROJECT}/global/networks/net-{i % networks}"
            compute.subnetwork_insert(PROJECT, region, {"name": name, "network": network,
                                                        "ipCidrRange": subnet_range(i)}).apply()
            spec = vpcaccess.parse_create(PROJECT, region, name, {"subnet": {"name": name},
                                                                  "minInstances": 2, "maxInstances": 3})
            vpcaccess.create(spec, api_version="v1", fail_with=None)
        operations.tick()  # every connector's create is due at once: READY, with its aet-* rules
    finally:
        world.backends["operations"] = operations
    operations.reset()  # the seeding's operations are done; keep them out of every later tick
    with world.lock:
        counts = {kind: len(table) for kind, table in world.tables.items() if table}
    return {"seconds": round(time.perf_counter() - started, 2), "networks": networks, "regions": len(regions),
            "resources": counts}


# --------------------------------------------------------------------------- the sweep


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def run_sweep(app: Any, url: str) -> dict[str, Any]:
    """``egress-guard sweep --project P --dry-run --json`` in this process; calls, seconds, its output."""
    from egress_guard.cli import main as cli_main

    env = {"LOCALCLOUD_URL": url, "GOOGLE_CLOUD_PROJECT": PROJECT, "EGRESS_GUARD_PRINCIPAL": SWEEP_PRINCIPAL,
           "EGRESS_GUARD_SELF_PRINCIPALS": SWEEP_PRINCIPAL}
    app.calls.reset()
    out, err = io.StringIO(), io.StringIO()
    with _environment(env), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        started = time.perf_counter()
        status = cli_main(["sweep", "--project", PROJECT, "--dry-run", "--json"])
        seconds = time.perf_counter() - started
    calls = app.calls.snapshot(0)
    # localcloud's own time answering (server side): the rest of ``seconds`` is the sweep's Python.
    api_s = sum(float(c.get("duration_ms", 0.0)) for c in calls["calls"]) / 1000
    result: dict[str, Any] = {"calls": calls["total"], "seconds": round(seconds, 3), "api_server_s": round(api_s, 3),
                              "exit_status": status, "calls_by_method": dict(sorted(calls["counts"].items()))}
    result["findings"] = findings_by_outcome(out.getvalue())
    if status != 0:
        result["stderr_tail"] = err.getvalue()[-1000:]
    return result


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


def _warm_imports() -> None:
    """The client libraries the sweep uses, imported before anything is timed (see module doc)."""
    from google.cloud import compute_v1, run_v2, vpcaccess_v1  # noqa: F401


def run(sizes: Sequence[int] = SIZES, progress: Callable[[str], None] = lambda line: None
        ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The rows ``[{"connectors": n, "calls": c, "seconds": s, ...}]`` and how they were made. While
    ``egress-guard sweep`` does not exist the estates are still seeded (and timed), with calls and
    seconds None and the reason in the setup."""
    missing = sweep_available()
    rows: list[dict[str, Any]] = []
    with localcloud() as (app, url):
        if missing is None:
            _warm_imports()
        for size in sizes:
            reset(app)
            progress(f"sweep: seeding {size} connectors over {len(REGIONS)} regions")
            row: dict[str, Any] = {"connectors": size, "calls": None, "seconds": None}
            row["seed"] = seed(app, size)
            if missing is None:
                progress(f"sweep: egress-guard sweep --dry-run over {size} connectors")
                try:
                    row.update(run_sweep(app, url))
                except Exception as exc:  # reported, never raised: the other sizes still run
                    row["error"] = f"{type(exc).__name__}: {exc}"
            rows.append(row)
    setup: dict[str, Any] = {"project": PROJECT, "regions": list(REGIONS), "mode": "dry-run",
                             "connectors_per_network": CONNECTORS_PER_NETWORK,
                             "command": f"egress-guard sweep --project {PROJECT} --dry-run --json"}
    if missing is not None:
        setup["not_measured"] = missing
    return rows, setup
