"""``egress-guard sweep`` against localcloud, through the real google-cloud-* clients.

Small estates are made through the real APIs (as a user); the large one (1,000 connectors over 5
regions) is seeded straight into localcloud's backends, which is what a thousand creates would
leave, in a second. The sweep calls as its own principal, so localcloud's call log
(``/_localcloud/calls?principal=``) shows exactly what it did; the number it reports is checked
against that log, and the 1,000-connector sweep must cost what the 100-connector one does, plus
only the extra list pages.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from google.cloud import compute_v1, run_v2, vpcaccess_v1

from egress_guard.clients import Clients
from egress_guard.config import Settings
from egress_guard.findings import Outcome
from egress_guard.policy import Policy, parse_policy_text
from egress_guard.sweep import PAGE_SIZE, SKIPPED, Sweep, SweepReport, render_report
from localcloud.identities import PROJECT, REGION, SWEEP_SA
from tests.contract.test_guardrails_localcloud import User
from tests.figures import record
from tests.pubsub_emulator import pubsub_emulator  # noqa: F401  (the session fixture)

pytestmark = pytest.mark.contract

P, R = PROJECT, REGION
SWEEPER = SWEEP_SA
NAT, FW = "ensure_nat", "replace_connector_firewalls"
MUTATING = ("insert", "patch", "update", "delete")
ENFORCE_FIREWALLS = parse_policy_text("""
firewall:
  mode: enforce
  allow: [{target_tags: [db], ports: [tcp:5432]}]
""")
NAT_DRY_RUN = parse_policy_text("nat: {mode: dry-run}")
FIVE_REGIONS = ("europe-west1", "europe-west2", "europe-west3", "us-central1", "us-east1")


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------
@pytest.fixture
def user(localcloud_url) -> User:
    return User(localcloud_url)


def sweeper(url: str, policy: Policy = Policy(), *, regions: tuple[str, ...] | None = (R,)) -> tuple[Sweep, Any]:
    settings = Settings.from_env({"LOCALCLOUD_URL": url, "GOOGLE_CLOUD_PROJECT": P, "EGRESS_GUARD_PRINCIPAL": SWEEPER})
    return Sweep(Clients(settings), policy, operation_timeout=20), regions


def run(url: str, policy: Policy = Policy(), *, regions: tuple[str, ...] | None = (R,)) -> SweepReport:
    sweep, chosen = sweeper(url, policy, regions=regions)
    return sweep.run(P, chosen)


def rows(report: SweepReport, guardrail: str) -> dict[str, str]:
    """resource short name -> outcome, for one guardrail."""
    return {r.resource.name.rsplit("/", 1)[1]: r.outcome for r in report.rows if r.guardrail == guardrail}


def calls(localcloud) -> dict[str, int]:
    return localcloud.calls(principal=SWEEPER)["counts"]


def writes(counts: dict[str, int]) -> dict[str, int]:
    return {m: n for m, n in counts.items() if m.rsplit(".", 1)[1] in MUTATING}


def cli(url: str, *args: str, policy: Path | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EGRESS_GUARD_", "PUBSUB_"))}
    env.update(LOCALCLOUD_URL=url, GOOGLE_CLOUD_PROJECT=P, EGRESS_GUARD_PRINCIPAL=SWEEPER, COLUMNS="160")
    if policy is not None:
        env["EGRESS_GUARD_POLICY"] = str(policy)
    script = Path(sys.executable).parent / "egress-guard"
    return subprocess.run([str(script), "sweep", *args], env=env, capture_output=True, text=True, timeout=300)


# ---------------------------------------------------------------------------------------------
# the planner and executor on small estates
# ---------------------------------------------------------------------------------------------
def test_sweep_dry_run_plans_every_subject_from_lists_and_writes_nothing(user, localcloud_url, localcloud):
    user.network()
    user.subnet("sub28", "10.0.1.0/28")
    user.connector("conn-a", subnet="sub28")
    user.job("job-a", "conn-a")
    localcloud.clear_calls()

    report = run(localcloud_url, NAT_DRY_RUN)

    assert rows(report, NAT) == {"conn-a": "planned", "job-a": "planned"}
    assert rows(report, FW) == {"conn-a": "planned"}  # default policy: firewalls in dry-run
    made = calls(localcloud)
    assert writes(made) == {}
    assert made == {"vpcaccess.projects.locations.connectors.list": 1, "compute.subnetworks.aggregatedList": 1,
                    "run.projects.locations.services.list": 1, "run.projects.locations.jobs.list": 1,
                    # Cloud Functions v2 and v1 (1st gen): one list each, under one discovery method id
                    "cloudfunctions.projects.locations.functions.list": 2, "appengine.apps.services.list": 1,
                    "compute.routers.aggregatedList": 1, "compute.firewalls.list": 1,
                    "run.projects.locations.workerPools.list": 1}
    assert report.api_calls == sum(made.values())
    job = next(r for r in report.rows if r.resource.name.endswith("/jobs/job-a"))
    assert job.finding is not None and job.finding.trigger.methodName == "egress-guard.sweep"
    assert [c.action for c in job.finding.changes] == ["compute.routers.insert"]


def test_sweep_enforce_covers_subnets_with_one_router_write_then_finds_everything_compliant(user, localcloud_url,
                                                                                           localcloud):
    user.network()
    for index in range(3):
        user.subnet(f"sub{index}", f"10.0.{index}.0/28")
        user.connector(f"conn-{index}", subnet=f"sub{index}")
    user.router("existing")  # a router without NAT: egress-guard adds its NAT to it, once
    localcloud.clear_calls()

    report = run(localcloud_url, ENFORCE_FIREWALLS)

    assert rows(report, NAT) == {f"conn-{i}": "remediated" for i in range(3)}
    assert rows(report, FW) == {f"conn-{i}": "remediated" for i in range(3)}
    made = writes(calls(localcloud))
    assert made == {"compute.routers.patch": 1, "compute.firewalls.insert": 6}  # one NAT write for three subnets
    routers = {k.rsplit("/", 1)[1]: v for k, v in localcloud.state()["compute.routers"].items()}
    (nat,) = routers["existing"]["nats"]
    assert sorted(s["name"].rsplit("/", 1)[1] for s in nat["subnetworks"]) == ["sub0", "sub1", "sub2"]
    assert report.api_calls == localcloud.calls(principal=SWEEPER)["total"]

    localcloud.clear_calls()
    again = run(localcloud_url, ENFORCE_FIREWALLS)
    assert set(rows(again, NAT).values()) == {"compliant"} and set(rows(again, FW).values()) == {"compliant"}
    assert writes(calls(localcloud)) == {}


def test_sweep_range_connector_first_gets_the_all_subnetworks_nat_then_a_list_nat_blocks_it(user, localcloud_url,
                                                                                          localcloud):
    user.network()
    user.subnet("sub28", "10.0.1.0/28")
    user.connector("conn-s", subnet="sub28")
    user.connector("conn-r", cidr="10.8.0.0/28")

    report = run(localcloud_url)
    assert rows(report, NAT) == {"conn-r": "remediated", "conn-s": "remediated"}
    (router,) = localcloud.state()["compute.routers"].values()
    assert [n["sourceSubnetworkIpRangesToNat"] for n in router["nats"]] == ["ALL_SUBNETWORKS_ALL_IP_RANGES"]

    # A second range connector in a network whose only NAT is a user's LIST NAT: blocked, no write.
    user.network("net-b")
    user.subnet("sub-b", "10.1.1.0/28", network="net-b")
    op = user.routers.insert(project=P, region=R, router_resource=compute_v1.Router.from_json(json.dumps({
        "name": "user-router", "network": f"projects/{P}/global/networks/net-b",
        "nats": [{"name": "user-nat", "natIpAllocateOption": "AUTO_ONLY",
                  "sourceSubnetworkIpRangesToNat": "LIST_OF_SUBNETWORKS",
                  "subnetworks": [{"name": f"projects/{P}/regions/{R}/subnetworks/sub-b",
                                   "sourceIpRangesToNat": ["ALL_IP_RANGES"]}]}]})))
    user.region_ops.wait(project=P, region=R, operation=op.name, timeout=30)
    fields = {"network": "net-b", "ip_cidr_range": "10.9.0.0/28", "min_instances": 2, "max_instances": 3}
    user.vpcaccess.create_connector(parent=f"projects/{P}/locations/{R}", connector_id="conn-rb",
                                    connector=vpcaccess_v1.Connector(**fields)).result(timeout=30)
    localcloud.clear_calls()
    report = run(localcloud_url)
    assert rows(report, NAT)["conn-rb"] == "blocked"
    blocked = next(r for r in report.rows if r.resource.name.endswith("conn-rb") and r.guardrail == NAT)
    assert "user-nat" in blocked.reason and "egress-guard changed nothing" in blocked.reason
    assert writes(calls(localcloud)) == {}


def test_sweep_decides_services_and_jobs_like_the_guardrail(user, localcloud_url, localcloud):
    user.network()
    user.subnet("sub28", "10.0.1.0/28")
    user.subnet("net-a", "10.0.2.0/24")  # the subnet Direct VPC egress uses when only the network is named
    user.connector("conn-a", subnet="sub28")
    user.job("private", "conn-a", egress=run_v2.VpcAccess.VpcEgress.PRIVATE_RANGES_ONLY)
    user.service("direct", run_v2.VpcAccess(network_interfaces=[run_v2.VpcAccess.NetworkInterface(network="net-a")],
                                            egress=run_v2.VpcAccess.VpcEgress.ALL_TRAFFIC))
    user.service("plain", run_v2.VpcAccess())
    job = run_v2.Job(labels={"egress-guard": "skip"}, template=run_v2.ExecutionTemplate(template=run_v2.TaskTemplate(
        containers=[run_v2.Container(image="us-docker.pkg.dev/cloudrun/container/job")],
        vpc_access=run_v2.VpcAccess(connector=f"projects/{P}/locations/{R}/connectors/conn-a",
                                    egress=run_v2.VpcAccess.VpcEgress.ALL_TRAFFIC))))
    user.jobs.create_job(parent=f"projects/{P}/locations/{R}", job_id="skipped", job=job).result(timeout=30)

    report = run(localcloud_url, NAT_DRY_RUN)

    assert rows(report, NAT) == {"conn-a": "planned", "private": "compliant", "direct": "planned",
                                 "plain": "compliant", "skipped": "exempt"}
    direct = next(r for r in report.rows if r.resource.name.endswith("/services/direct"))
    assert "subnet net-a" in direct.reason


def test_sweep_decides_a_connector_still_creating_as_the_guardrails_do(user, localcloud_url, localcloud):
    user.network()
    user.subnet("sub28", "10.0.1.0/28")
    localcloud.config(connector_ready_delay_s=30.0)
    user.connector("conn-a", subnet="sub28", wait=False)

    report = run(localcloud_url)

    # Both need only what the create call fixed: the subnet (NAT), the name and network (managed rules).
    assert rows(report, FW) == {"conn-a": "planned"}  # this policy's firewall mode is dry-run
    assert rows(report, NAT) == {"conn-a": "remediated"}
    assert not any(r.outcome == SKIPPED for r in report.rows)


def test_sweep_replans_after_a_conflict_on_the_router_write(user, localcloud_url, localcloud):
    user.network()
    user.subnet("sub28", "10.0.1.0/28")
    user.connector("conn-a", subnet="sub28")
    localcloud.set_faults([{"methods": "compute.routers.insert", "error_rate": 1.0, "code": 409, "count": 1,
                            "principal": SWEEPER}])
    localcloud.clear_calls()

    report = run(localcloud_url)

    assert rows(report, NAT) == {"conn-a": "remediated"}
    made = calls(localcloud)
    assert made["compute.routers.insert"] == 2 and made["compute.routers.list"] == 1  # re-read, plan, write again
    assert report.api_calls == sum(made.values())


class _RacedFirewalls:
    """The sweep's firewalls client, with another writer creating the same rule just before the
    sweep's second insert reaches localcloud: that insert meets a real 409 (alreadyExists)."""

    def __init__(self, real: Any, racer: User) -> None:
        self._real, self._racer, self.inserts = real, racer, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def insert(self, **kwargs: Any) -> Any:
        self.inserts += 1
        if self.inserts == 2:
            op = self._racer.firewalls.insert(project=kwargs["project"], firewall_resource=kwargs["firewall_resource"])
            self._racer.global_ops.wait(project=kwargs["project"], operation=op.name, timeout=20)
        return self._real.insert(**kwargs)


def test_sweep_whose_second_firewall_write_meets_a_409_still_reports_the_first(user, localcloud_url, localcloud):
    user.network()
    user.subnet("sub28", "10.0.1.0/28")
    user.connector("conn-a", subnet="sub28")
    sweep, chosen = sweeper(localcloud_url, ENFORCE_FIREWALLS)
    raced = _RacedFirewalls(sweep.clients.firewalls, user)
    sweep.clients.firewalls = raced  # type: ignore[misc]  (the cached client, replaced on the instance)

    report = sweep.run(P, chosen)

    assert raced.inserts == 2  # allow0 written, then the deny insert met the other writer's rule
    assert rows(report, FW) == {"conn-a": "remediated"}  # not "compliant": this sweep did write a rule
    (row,) = [r for r in report.rows if r.guardrail == FW]
    assert [(c.action, c.resource.rsplit("/", 1)[1]) for c in row.changes] == [
        ("compute.firewalls.insert", "egress-guard-conn-a-euw2-allow0")]


def test_sweep_reports_a_list_it_may_not_read_and_carries_on(user, localcloud_url, localcloud):
    user.network()
    user.subnet("sub28", "10.0.1.0/28")
    user.connector("conn-a", subnet="sub28")
    localcloud.set_faults([{"methods": "run.projects.locations.jobs.list", "error_rate": 1.0, "code": 403}])

    report = run(localcloud_url)

    assert report.failed
    assert any("Cloud Run jobs" in p and "403" in p for p in report.problems)
    assert rows(report, NAT) == {"conn-a": "remediated"}


def test_sweep_decides_nat_when_only_the_firewall_list_fails(user, localcloud_url, localcloud):
    """The rules are listed while the NAT plans are made (Inventory.reading): a rules list the caller
    may not read fails the connectors' firewalls, not the NAT its routers and subnets were read for."""
    user.network()
    user.subnet("sub28", "10.0.1.0/28")
    user.connector("conn-a", subnet="sub28")
    localcloud.set_faults([{"methods": "compute.firewalls.list", "error_rate": 1.0, "code": 403}])

    report = run(localcloud_url)

    assert report.failed
    assert any("firewall rules" in p and "403" in p for p in report.problems)
    assert rows(report, NAT) == {"conn-a": "remediated"}
    assert rows(report, FW) == {"conn-a": "failed"}
    (row,) = [r for r in report.rows if r.guardrail == FW]
    assert f"the firewall rules of project {P} could not be read" in row.reason
    assert writes(calls(localcloud)) == {"compute.routers.insert": 1}  # no rule written without reading the rules


# ---------------------------------------------------------------------------------------------
# the command line
# ---------------------------------------------------------------------------------------------
def test_sweep_command_prints_a_table_and_json_lines(user, localcloud_url, localcloud):
    user.network()
    user.subnet("sub28", "10.0.1.0/28")
    user.connector("conn-a", subnet="sub28")

    table = cli(localcloud_url, "--project", P, "--region", R, "--dry-run")
    assert table.returncode == 0, table.stderr
    assert f"egress-guard sweep of {P}" in table.stdout and "planned" in table.stdout
    assert "API calls: 10" in table.stdout  # functions v2 and v1 (1st gen): one list each; worker pools one
    assert writes(calls(localcloud)) == {}

    lines = cli(localcloud_url, "--project", P, "--region", R, "--json")
    assert lines.returncode == 0, lines.stderr
    findings = [json.loads(line) for line in lines.stdout.splitlines()]
    assert {(f["guardrail"], f["outcome"]) for f in findings} == {(NAT, "remediated"), (FW, "planned")}
    assert "API calls:" in lines.stderr and "egress-guard sweep of" not in lines.stderr  # totals only, on stderr


@pytest.mark.parametrize("args, message", [
    (("--project", "Not_A_Project"), "--project"),
    (("--project", P, "--region", "europe west2"), "--region"),
    (("--project", P, "--bogus"), "unrecognized arguments"),
])
def test_sweep_command_exits_2_on_bad_arguments(localcloud_url, localcloud, args, message):
    result = cli(localcloud_url, *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert localcloud.calls(principal=SWEEPER)["total"] == 0


def test_sweep_command_exits_1_when_a_read_fails(user, localcloud_url, localcloud):
    localcloud.set_faults([{"methods": "compute.routers.aggregatedList", "error_rate": 1.0, "code": 403}])
    result = cli(localcloud_url, "--project", P, "--region", R)
    assert result.returncode == 1
    assert "problem:" in result.stdout and "routers" in result.stdout


# ---------------------------------------------------------------------------------------------
# 1,000 connectors over 5 regions: the calls grow with regions and pages, not with connectors
# ---------------------------------------------------------------------------------------------
def seed(app: Any, connectors: int, regions: tuple[str, ...] = FIVE_REGIONS) -> None:
    """Half subnet connectors, half range connectors, spread over ``regions`` in network net-a,
    straight through localcloud's backends (the state a thousand creates leave)."""
    world = app.world
    compute, vpcaccess = world.backends["compute"], world.backends["vpcaccess"]
    world.config.connector_ready_delay_s = 0.0
    with world.lock:
        compute.network_insert(P, {"name": "net-a", "autoCreateSubnetworks": False}).apply()
    per_region = connectors // len(regions)
    for r_index, region in enumerate(regions):
        for index in range(per_region):
            name = f"c{r_index}-{index:03d}"
            cidr = f"10.{r_index * 2 + index % 2}.{index // 16}.{(index % 16) * 16}/28"
            if index % 2 == 0:
                with world.lock:
                    compute.subnetwork_insert(P, region, {"name": f"s-{name}", "ipCidrRange": cidr,
                                                          "network": f"projects/{P}/global/networks/net-a"}).apply()
                body: dict[str, Any] = {"subnet": {"name": f"s-{name}"}, "minInstances": 2, "maxInstances": 3}
            else:
                body = {"network": "net-a", "ipCidrRange": cidr, "minInstances": 2, "maxInstances": 3}
            vpcaccess.create(vpcaccess.parse_create(P, region, name, body), api_version="v1", fail_with=None)
    deadline = time.time() + 120
    while time.time() < deadline:
        app.operations.tick()
        states = {c["state"] for c in world.table("vpcaccess.connectors").values()}
        if states == {"READY"}:
            return
        time.sleep(0.05)
    raise AssertionError(f"seeded connectors not READY: {states}")


SEEDED: list[int] = []  # the connector count own_localcloud holds, when untouched since seeding


def seeded(app: Any, control: Any, count: int) -> None:
    if SEEDED != [count]:
        control.reset()
        seed(app, count)
        SEEDED[:] = [count]


@pytest.fixture(scope="module")
def own_localcloud() -> Iterator[tuple[str, Any]]:
    """A localcloud of this module's own, whose backends the seeding reaches in-process."""
    from localcloud.server import serve

    server = serve("127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, name="localcloud-sweep", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", server.app
    finally:
        server.shutdown()
        server.app.operations.stop_ticker()
        thread.join(timeout=5)


def expected_reads(connectors: int, regions: int, subnets: int, firewall_rules: int, run_regions: int,
                   locations: int) -> dict[str, int]:
    """What a sweep without --region must read: one call per region or page, nothing per resource."""
    pages = lambda n: max(1, math.ceil(n / PAGE_SIZE))  # noqa: E731
    per_region = math.ceil(connectors / regions)
    return {"vpcaccess.projects.locations.list": 1,
            "vpcaccess.projects.locations.connectors.list": locations - regions + regions * pages(per_region),
            "compute.subnetworks.aggregatedList": pages(subnets),
            "run.projects.locations.services.list": run_regions, "run.projects.locations.jobs.list": run_regions,
            "cloudfunctions.projects.locations.functions.list": 2 * run_regions,  # v2 and v1 (1st gen)
            "appengine.apps.services.list": 1,
            "run.projects.locations.workerPools.list": run_regions,
            "compute.routers.aggregatedList": 1, "compute.firewalls.list": pages(firewall_rules)}


def test_sweep_of_1000_connectors_costs_what_100_cost_plus_list_pages(own_localcloud, request):
    from localcloud.control_client import LocalCloudControl
    from localcloud.routes.vpcaccess import LOCATIONS

    url, app = own_localcloud
    control = LocalCloudControl(url)
    measured = {}
    for count in (100, 1000):
        seeded(app, control, count)
        rules = len(app.world.table("compute.firewalls")) if "compute.firewalls" in app.world.tables else 0
        subnets = count // 2
        control.clear_calls()
        sweep, _ = sweeper(url, NAT_DRY_RUN)
        started = time.monotonic()
        report = sweep.run(P, None)
        seconds = time.monotonic() - started
        made = control.calls(principal=SWEEPER)["counts"]
        assert writes(made) == {}
        assert made == expected_reads(count, len(FIVE_REGIONS), subnets, rules, len(FIVE_REGIONS), len(LOCATIONS))
        assert report.api_calls == sum(made.values())
        assert report.counts["connectors"] == count
        assert {r.outcome for r in report.rows} == {"planned"}
        assert len(report.rows) == 2 * count
        measured[count] = (sum(made.values()), seconds, rules, made)
        render_report(report, Console(width=120, file=sys.stdout))

    calls_100, seconds_100, rules_100, made_100 = measured[100]
    calls_1000, seconds_1000, rules_1000, made_1000 = measured[1000]
    # Only the firewall list grows: 6 aet-* rules per connector, 500 per page.
    growth = {m: made_1000[m] - made_100[m] for m in made_1000 if made_1000[m] != made_100[m]}
    assert growth == {"compute.firewalls.list": math.ceil(rules_1000 / PAGE_SIZE) - math.ceil(rules_100 / PAGE_SIZE)}
    figure = (f"sweep (dry-run, no --region, 11 VPC Access regions): 100 connectors -> {calls_100} API calls in "
              f"{seconds_100:.1f} s; 1,000 connectors over 5 regions -> {calls_1000} API calls in {seconds_1000:.1f} s "
              f"(the difference: {growth} more firewalls.list pages for {rules_1000 - rules_100} more aet-* rules)")
    record(request, figure)


def test_sweep_enforce_of_1000_connectors_writes_once_per_region(own_localcloud, request):
    from localcloud.control_client import LocalCloudControl

    url, app = own_localcloud
    control = LocalCloudControl(url)
    seeded(app, control, 1000)
    SEEDED.clear()  # this test changes the estate
    control.clear_calls()
    started = time.monotonic()
    report = run(url, Policy(), regions=FIVE_REGIONS)
    seconds = time.monotonic() - started
    made = control.calls(principal=SWEEPER)["counts"]
    # One router per region with an ALL_SUBNETWORKS NAT (a range connector is in each): 5 writes.
    assert writes(made) == {"compute.routers.insert": 5}
    assert sum(1 for r in report.rows if r.guardrail == NAT and r.outcome == Outcome.REMEDIATED.value) == 1000
    assert report.api_calls == sum(made.values())
    figure = (f"sweep (enforce NAT, firewalls dry-run) of 1,000 connectors in 5 regions: {sum(made.values())} API "
              f"calls ({made.get('compute.routers.insert', 0)} router writes) in {seconds:.1f} s")
    record(request, figure)


def test_sweep_under_computes_rate_quota_waits_for_each_window_and_finishes(user, localcloud_url, localcloud):
    """Compute's per-project quota on global mutations (docs/gcp-facts.md §14), emulated small: 10
    writes per 2 s window. 12 connectors need 24 firewall inserts, so at least 3 windows: every
    refused insert waits for the next window with the other writers, and the sweep ends with every
    rule written, no connector failed, and at most one refused request per writer and window."""
    from egress_guard.assumptions import SWEEP_FIREWALL_WRITERS

    per_window, window_s, connectors = 10, 2.0, 12
    user.network()
    for index in range(connectors):
        user.subnet(f"sub{index}", f"10.0.{index}.0/28")
        user.connector(f"conn-{index}", subnet=f"sub{index}")
    localcloud.clear_calls()
    localcloud.set_quotas(per_window=per_window, window_s=window_s)
    settings = Settings.from_env({"LOCALCLOUD_URL": localcloud_url, "GOOGLE_CLOUD_PROJECT": P,
                                  "EGRESS_GUARD_PRINCIPAL": SWEEPER,
                                  "EGRESS_GUARD_RATE_QUOTA_WINDOW_SECONDS": str(window_s)})
    try:
        report = Sweep(Clients(settings), ENFORCE_FIREWALLS, operation_timeout=20).run(P, (R,))
    finally:
        quota = localcloud.quotas()
        localcloud.clear_quotas()

    assert rows(report, FW) == {f"conn-{i}": "remediated" for i in range(connectors)}
    assert set(rows(report, NAT).values()) == {"remediated"}
    rules = {k.rsplit("/", 1)[1] for k in localcloud.state()["compute.firewalls"]}
    assert sum(1 for name in rules if name.startswith("egress-guard-")) == 2 * connectors
    log = [c for c in localcloud.calls(principal=SWEEPER)["calls"] if c["method_id"] == "compute.firewalls.insert"]
    accepted: dict[int, int] = {}
    refused: dict[int, int] = {}
    for c in log:
        window = int(c["time"] // window_s)
        (refused if c["status"] == 403 else accepted)[window] = \
            (refused if c["status"] == 403 else accepted).get(window, 0) + 1
    assert sum(accepted.values()) == 2 * connectors and max(accepted.values()) <= per_window
    assert refused, "the quota was never reached: the test proves nothing"
    assert quota["rejected"] == sum(refused.values())
    # Waiting, not hammering: a refusal closes the project until the next window for every writer.
    assert max(refused.values()) <= SWEEP_FIREWALL_WRITERS
    assert len(refused) <= len(accepted)


def test_sweep_retries_a_list_answered_503_and_counts_every_attempt(user, localcloud_url, localcloud):
    user.network()
    localcloud.set_faults([{"methods": "compute.firewalls.list", "error_rate": 1.0, "code": 503, "count": 2,
                            "principal": SWEEPER}])
    localcloud.clear_calls()
    report = run(localcloud_url)
    assert not report.failed
    assert calls(localcloud)["compute.firewalls.list"] == 3
    assert report.api_calls == localcloud.calls(principal=SWEEPER)["total"]


def test_sweep_command_publishes_its_findings_with_publish(user, localcloud_url, localcloud, pubsub_emulator):  # noqa: F811
    from google.cloud import pubsub_v1

    os.environ["PUBSUB_EMULATOR_HOST"] = pubsub_emulator
    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    topic = publisher.topic_path(P, f"sweep-findings-{time.time_ns()}")
    subscription = subscriber.subscription_path(P, f"sweep-watch-{time.time_ns()}")
    publisher.create_topic(name=topic)
    subscriber.create_subscription(name=subscription, topic=topic)
    user.network()
    user.subnet("sub28", "10.0.1.0/28")
    user.connector("conn-a", subnet="sub28")

    script = Path(sys.executable).parent / "egress-guard"
    env = {k: v for k, v in os.environ.items() if not k.startswith("EGRESS_GUARD_")}
    env.update(LOCALCLOUD_URL=localcloud_url, GOOGLE_CLOUD_PROJECT=P, EGRESS_GUARD_PRINCIPAL=SWEEPER,
               EGRESS_GUARD_FINDINGS_TOPIC=topic, PUBSUB_EMULATOR_HOST=pubsub_emulator)
    result = subprocess.run([str(script), "sweep", "--project", P, "--region", R, "--dry-run", "--publish"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr

    response = subscriber.pull(request={"subscription": subscription, "max_messages": 10}, timeout=10)
    published = [json.loads(m.message.data) for m in response.received_messages]
    assert {(f["guardrail"], f["outcome"]) for f in published} == {(NAT, "planned"), (FW, "planned")}
    assert {m.message.attributes["guardrail"] for m in response.received_messages} == {NAT, FW}
