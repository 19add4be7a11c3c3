"""The two guardrails end to end against localcloud, through the real google-cloud-* clients.

Resources are created through the real APIs (as a user, localcloud's default principal); the audit
entries localcloud wrote for those calls (``GET /_localcloud/entries``) are handed to
``runner.handle`` as the functions would receive them; the end state is read back and the findings
checked. Each guardrail calls as its own service account, so localcloud's call log
(``/_localcloud/calls?principal=``) shows exactly what it did: every scenario compares those calls,
per method, with the minimum the scenario needs (``MINIMUM``, one line of reason each) and prints
the table.
"""

from __future__ import annotations

import base64
import copy
import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from cloudevents.http import CloudEvent
from google.auth.credentials import AnonymousCredentials
from google.cloud import compute_v1, run_v2, vpcaccess_v1

from egress_guard.errors import TransientError
from egress_guard.findings import Finding, Outcome
from egress_guard.guardrails.connector_firewalls import GUARDRAIL as FIREWALLS
from egress_guard.guardrails.ensure_nat import GUARDRAIL as NAT
from egress_guard.policy import Policy, parse_policy_text
from egress_guard.runner import Context, handle
from localcloud.identities import FIREWALLS_SA, NAT_SA, PROJECT, REGION

pytestmark = pytest.mark.contract

P, R = PROJECT, REGION
FW_SA = FIREWALLS_SA
TIMEOUT = 30
TAG = "vpc-connector-europe-west2-conn-a"
USER = "developer@example.com"  # localcloud's default principal: the person making the changes

ENFORCE_FIREWALLS = parse_policy_text("""
firewall:
  mode: enforce
  allow: [{target_tags: [db], ports: [tcp:5432]}]
""")
DISABLE_AUTO_RULES = parse_policy_text("""
firewall:
  mode: enforce
  allow: [{target_tags: [db], ports: [tcp:5432]}]
  auto_rules: disable
""")

# ---------------------------------------------------------------------------------------------
# The fewest API calls each scenario needs (argued from Google's API surface, not from this code:
# docs/minimums.md, facts F1-F9), per method, with the reason for each. The test holds the code to
# used <= argued; where egress-guard is above today, ABOVE_ARGUED names the excess and why.
# ---------------------------------------------------------------------------------------------
CONNECTOR_GET = "vpcaccess.projects.locations.connectors.get"
CONNECTOR_LIST = "vpcaccess.projects.locations.connectors.list"
SUBNET_GET = "compute.subnetworks.get"
SUBNET_LIST = "compute.subnetworks.list"
ROUTERS_LIST = "compute.routers.list"
ROUTERS_INSERT = "compute.routers.insert"
ROUTERS_PATCH = "compute.routers.patch"
REGION_WAIT = "compute.regionOperations.wait"
FIREWALLS_LIST = "compute.firewalls.list"
FIREWALLS_INSERT = "compute.firewalls.insert"
FIREWALLS_PATCH = "compute.firewalls.patch"
FIREWALLS_UPDATE = "compute.firewalls.update"
GLOBAL_WAIT = "compute.globalOperations.wait"
JOB_GET = "run.projects.locations.jobs.get"
SERVICE_GET = "run.projects.locations.services.get"

Minimum = dict[str, tuple[int, str]]
# F10: a routers.patch is unconditional (no fingerprint, F4) and the deployment runs several instances,
# so a patch another instance made from an older read can drop ours unseen: one read after each patch.
VERIFY_PATCH = "read again after the patch: a concurrent stale patch would have dropped ours unseen (F10)"
REGION_OPERATIONS_LIST = "compute.regionOperations.list"
WAIT_RUNNING = ("before the read after the patch, the region's router operations not DONE (each waited for): one "
                "still running lands its stale nats after that read (F12)")
READ_CONNECTOR: Minimum = {
    CONNECTOR_GET: (1, "re-read the connector: the entry is never trusted alone"),
    SUBNET_GET: (1, "a subnet connector's network comes from its subnet"),
}
MINIMUM: dict[str, Minimum] = {
    "nat: subnet connector created, no router": {
        **READ_CONNECTOR,
        ROUTERS_LIST: (1, "every router and NAT of the region, one list (router names span networks)"),
        ROUTERS_INSERT: (1, "router and NAT in one write"),
        REGION_WAIT: (1, "wait for the write to be DONE (server-side wait)"),
    },
    "firewalls: connector created, keep auto rules": {
        **READ_CONNECTOR,
        FIREWALLS_LIST: (1, "the network's aet-* and managed rules, one filtered list"),
        FIREWALLS_INSERT: (2, "the managed allow (980) and deny (990) rules"),
        GLOBAL_WAIT: (2, "the allow must exist before the deny: one wait each"),
    },
    "firewalls: connector created, disable auto rules": {
        **READ_CONNECTOR,
        FIREWALLS_LIST: (1, "the rules; the inserts' waits returned DONE, which confirms them (F7)"),
        FIREWALLS_INSERT: (2, "the managed allow and deny rules"),
        FIREWALLS_PATCH: (2, "disabled: true on aet-*-sbntfw and aet-*-tagfw"),
        GLOBAL_WAIT: (4, "one per write"),
    },
    "firewalls: implicit broad rules, disable auto rules": {
        **READ_CONNECTOR,
        FIREWALLS_LIST: (1, "the rules (no re-read: nothing to disable)"),
        FIREWALLS_INSERT: (2, "the managed allow and deny rules"),
        GLOBAL_WAIT: (2, "one per write"),
    },
    "nat: range connector created, no NAT": {
        CONNECTOR_GET: (1, "re-read the connector (its network and ipCidrRange; no subnet to read)"),
        ROUTERS_LIST: (1, "every router and NAT of the region"),
        ROUTERS_INSERT: (1, "router with an ALL_SUBNETWORKS_ALL_IP_RANGES NAT"),
        REGION_WAIT: (1, "wait for the write"),
    },
    "nat: range connector blocked by a LIST NAT": {
        CONNECTOR_GET: (1, "re-read the connector"),
        ROUTERS_LIST: (1, "the existing NAT that makes ALL_SUBNETWORKS_* impossible; no write"),
    },
    "nat: job (v2) through a covered connector": {
        JOB_GET: (1, "re-read the job: labels, connector, egress"),
        CONNECTOR_GET: (1, "the job's connector: its subnet's name"),
        ROUTERS_LIST: (1, "a LIST NAT names the subnet: covered, no subnet read, no write"),
    },
    "nat: job (v2) through a connector an ALL_SUBNETWORKS NAT covers": {
        JOB_GET: (1, "re-read the job: labels, connector, egress"),
        CONNECTOR_GET: (1, "the job's connector: its subnet's name"),
        ROUTERS_LIST: (1, "an ALL_SUBNETWORKS_* NAT names no subnet: it covers the subnet only if on its network"),
        SUBNET_GET: (1, "so the subnet's network must be read (F2); no write"),
    },
    "nat: job (v1, gcloud) through an uncovered connector": {
        JOB_GET: (1, "re-read the job through the v2 API"),
        **READ_CONNECTOR,
        ROUTERS_LIST: (2, f"a router without NAT; {VERIFY_PATCH}"),
        ROUTERS_PATCH: (1, "add the NAT to that router (read-modify-write of nats)"),
        REGION_WAIT: (1, "wait for the write"),
        REGION_OPERATIONS_LIST: (1, WAIT_RUNNING),
    },
    "nat: service private-ranges-only": {
        SERVICE_GET: (1, "re-read the service: egress is private-ranges-only, nothing else to read"),
    },
    "nat: service with Direct VPC egress (network only)": {
        SERVICE_GET: (1, "re-read the service: its interface names the network (subnet of the same name)"),
        ROUTERS_LIST: (1, "no router yet"),
        ROUTERS_INSERT: (1, "router and NAT for the subnet named like the network"),
        REGION_WAIT: (1, "wait for the write"),
    },
    "nat dry-run: subnet connector created": {
        **READ_CONNECTOR,
        ROUTERS_LIST: (1, "the same reads as enforce; zero writes"),
    },
    "firewalls dry-run: connector created": {
        **READ_CONNECTOR,
        FIREWALLS_LIST: (1, "the same reads as enforce; zero writes"),
    },
    "nat drift: NAT removed (routers.update)": {
        CONNECTOR_LIST: (1, "the connectors of the router's region"),
        SUBNET_LIST: (1, "their subnets' networks: one list of the region for one connector or many"),
        ROUTERS_LIST: (2, f"the router, now without NAT; {VERIFY_PATCH}"),
        ROUTERS_PATCH: (1, "put the NAT back"),
        REGION_WAIT: (1, "wait for the write"),
        REGION_OPERATIONS_LIST: (1, WAIT_RUNNING),
    },
    "nat drift: NAT removed, three connectors in the region": {
        CONNECTOR_LIST: (1, "the connectors of the router's region"),
        SUBNET_LIST: (1, "their subnets, one list: flat in the number of connectors"),
        ROUTERS_LIST: (2, f"the router, now without NAT; {VERIFY_PATCH}"),
        ROUTERS_PATCH: (1, "put the NAT back with the three subnets in one write"),
        REGION_WAIT: (1, "wait for the write"),
        REGION_OPERATIONS_LIST: (1, WAIT_RUNNING),
    },
    "nat drift: router deleted": {
        CONNECTOR_LIST: (1, "the connectors of the router's region"),
        SUBNET_LIST: (1, "their subnets' networks: one list of the region for one connector or many"),
        ROUTERS_LIST: (1, "no router any more"),
        ROUTERS_INSERT: (1, "router and NAT again"),
        REGION_WAIT: (1, "wait for the write"),
    },
    "firewalls drift: managed rule deleted": {
        **READ_CONNECTOR,
        FIREWALLS_LIST: (1, "the rules: the deny is missing"),
        FIREWALLS_INSERT: (1, "insert it again"),
        GLOBAL_WAIT: (1, "wait for the write"),
    },
    "firewalls drift: managed rule edited": {
        **READ_CONNECTOR,
        FIREWALLS_LIST: (1, "the rules: the deny differs from the policy"),
        FIREWALLS_UPDATE: (1, "put the whole rule back (PUT)"),
        GLOBAL_WAIT: (1, "wait for the write"),
    },
    "firewalls drift: aet-*-tagfw re-enabled": {
        **READ_CONNECTOR,
        FIREWALLS_LIST: (1, "the rules: managed rules in place, tagfw enabled"),
        FIREWALLS_PATCH: (1, "disable it again (the managed rules were just read: no second read)"),
        GLOBAL_WAIT: (1, "wait for the write"),
    },
    "duplicates: 10 concurrent + first + last, ensure_nat": {
        **READ_CONNECTOR,
        ROUTERS_LIST: (1, "the first handling reads the routers"),
        ROUTERS_INSERT: (1, "one delivery writes"),
        REGION_WAIT: (1, "wait for that write; the 11 repeats of the decided change: no call (F9)"),
    },
    "duplicates: 10 concurrent + first + last, replace_connector_firewalls": {
        **READ_CONNECTOR,
        FIREWALLS_LIST: (1, "the first handling reads the rules"),
        FIREWALLS_INSERT: (2, "one delivery writes allow and deny"),
        GLOBAL_WAIT: (2, "wait for those writes; the 11 repeats of the decided change: no call (F9)"),
    },
    "bad entries (corrupted, foreign, failed, bad name, stale, own principal)": {},
    "firewalls: first entry / infrastructure rule": {},
}

# Where egress-guard makes more calls than argued: the excess per method and why (docs/minimums.md,
# "Where egress-guard is above"). The test fails if the calls grow beyond argued + this; each row
# goes when the code reaches the argued figure.
ABOVE_ARGUED: dict[str, Minimum] = {}


class Budget:
    """Compares a guardrail's calls with the scenario's argued minimum and keeps the rows for the summary."""

    rows: list[tuple[str, str, int, int, int, str]] = []

    def __init__(self, localcloud) -> None:
        self.localcloud = localcloud

    def start(self) -> None:
        self.localcloud.clear_calls()

    def calls(self, *principals: str) -> dict[str, int]:
        counts: dict[str, int] = {}
        for principal in principals:
            for method, count in self.localcloud.calls(principal=principal)["counts"].items():
                counts[method] = counts.get(method, 0) + count
        return counts

    def check(self, scenario: str, *principals: str) -> dict[str, int]:
        """used <= argued (+ the documented excess, ABOVE_ARGUED) for every method; prints used vs argued."""
        made = self.calls(*principals)
        argued, above = MINIMUM[scenario], ABOVE_ARGUED.get(scenario, {})
        lines = [f"{scenario}: used {sum(made.values())}, argued {sum(c for c, _ in argued.values())}"]
        over = []
        for method in sorted(set(made) | set(argued) | set(above)):
            used, minimum = made.get(method, 0), argued.get(method, (0, ""))[0]
            excess, why = above.get(method, (0, ""))
            reason = argued.get(method, (0, "not needed"))[1] + (f"; above: {why}" if excess else "")
            lines.append(f"    {method:48} used {used:>3}  argued {minimum:>3}  {reason}")
            Budget.rows.append((scenario, method, used, minimum, excess, reason))
            if used > minimum + excess:
                over.append(method)
        if not made and not argued:
            lines.append("    (no API call)")
            Budget.rows.append((scenario, "-", 0, 0, 0, "acknowledged without any call"))
        print("\n".join(lines))
        assert not over, f"above the argued minimum (docs/minimums.md) in {over}:\n" + "\n".join(lines)
        return made


@pytest.fixture(scope="module", autouse=True)
def _print_call_table(request) -> Iterator[None]:
    yield
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or not Budget.rows:
        return
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled():  # shown on the terminal, not in captured output
        reporter.write_line("")
        reporter.write_line("API calls per scenario (used / argued, docs/minimums.md):")
        current = None
        for scenario, method, used, argued, excess, reason in Budget.rows:
            if scenario != current:
                reporter.write_line(f"  {scenario}")
                current = scenario
            flag = "" if used <= argued else f"   <-- above argued by {used - argued} (ABOVE_ARGUED allows {excess})"
            reporter.write_line(f"    {method:48} {used:>3} / {argued:<3} {reason}{flag}")


# ---------------------------------------------------------------------------------------------
# fixtures: real clients as the user, contexts as each guardrail's service account
# ---------------------------------------------------------------------------------------------
class User:
    """The real clients, calling as localcloud's default principal (a person)."""

    def __init__(self, url: str) -> None:
        creds = AnonymousCredentials()

        def opts(suffix: str = "") -> dict[str, str]:
            return {"api_endpoint": url + suffix}

        self.networks = compute_v1.NetworksClient(credentials=creds, client_options=opts())
        self.subnets = compute_v1.SubnetworksClient(credentials=creds, client_options=opts())
        self.routers = compute_v1.RoutersClient(credentials=creds, client_options=opts())
        self.firewalls = compute_v1.FirewallsClient(credentials=creds, client_options=opts())
        self.global_ops = compute_v1.GlobalOperationsClient(credentials=creds, client_options=opts())
        self.region_ops = compute_v1.RegionOperationsClient(credentials=creds, client_options=opts())
        self.vpcaccess = vpcaccess_v1.VpcAccessServiceClient(transport="rest", credentials=creds,
                                                             client_options=opts("/vpcaccess"))
        self.services = run_v2.ServicesClient(transport="rest", credentials=creds, client_options=opts("/run"))
        self.jobs = run_v2.JobsClient(transport="rest", credentials=creds, client_options=opts("/run"))

    def network(self, name: str = "net-a") -> None:
        op = self.networks.insert(project=P, network_resource=compute_v1.Network(name=name, auto_create_subnetworks=False))
        self.global_ops.wait(project=P, operation=op.name, timeout=TIMEOUT)

    def subnet(self, name: str, cidr: str, network: str = "net-a") -> None:
        op = self.subnets.insert(project=P, region=R, subnetwork_resource=compute_v1.Subnetwork(
            name=name, network=f"projects/{P}/global/networks/{network}", ip_cidr_range=cidr))
        self.region_ops.wait(project=P, region=R, operation=op.name, timeout=TIMEOUT)

    def connector(self, name: str, *, subnet: str | None = None, cidr: str | None = None, wait: bool = True) -> Any:
        fields: dict[str, Any] = {"min_instances": 2, "max_instances": 3}
        if subnet:
            fields["subnet"] = vpcaccess_v1.Connector.Subnet(name=subnet)
        else:
            fields.update(network="net-a", ip_cidr_range=cidr)
        op = self.vpcaccess.create_connector(parent=f"projects/{P}/locations/{R}", connector_id=name,
                                             connector=vpcaccess_v1.Connector(**fields))
        return op.result(timeout=TIMEOUT) if wait else op

    def job(self, name: str, connector: str, egress: int = run_v2.VpcAccess.VpcEgress.ALL_TRAFFIC) -> None:
        job = run_v2.Job(template=run_v2.ExecutionTemplate(template=run_v2.TaskTemplate(
            containers=[run_v2.Container(image="us-docker.pkg.dev/cloudrun/container/job")],
            vpc_access=run_v2.VpcAccess(connector=f"projects/{P}/locations/{R}/connectors/{connector}", egress=egress))))
        self.jobs.create_job(parent=f"projects/{P}/locations/{R}", job_id=name, job=job).result(timeout=TIMEOUT)

    def service(self, name: str, vpc_access: run_v2.VpcAccess) -> None:
        service = run_v2.Service(template=run_v2.RevisionTemplate(
            containers=[run_v2.Container(image="us-docker.pkg.dev/cloudrun/container/hello")], vpc_access=vpc_access))
        self.services.create_service(parent=f"projects/{P}/locations/{R}", service_id=name,
                                     service=service).result(timeout=TIMEOUT)

    def router(self, name: str, *nats: dict[str, Any]) -> None:
        body = {"name": name, "network": f"projects/{P}/global/networks/net-a", "nats": list(nats)}
        op = self.routers.insert(project=P, region=R, router_resource=compute_v1.Router.from_json(json.dumps(body)))
        self.region_ops.wait(project=P, region=R, operation=op.name, timeout=TIMEOUT)


@pytest.fixture
def user(localcloud_url) -> User:
    return User(localcloud_url)


@pytest.fixture
def budget(localcloud) -> Budget:
    return Budget(localcloud)


class Guardrails:
    """Contexts for both guardrails, each calling as its own service account; findings collected."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.findings: list[Finding] = []
        self._lock = threading.Lock()
        self._contexts: dict[tuple[str, int], Context] = {}

    def _publish(self, finding: Finding) -> None:
        with self._lock:
            self.findings.append(finding)

    def context(self, principal: str, policy: Policy) -> Context:
        """One context per guardrail and policy, as a function instance builds one at cold start."""
        key = (principal, id(policy))
        if key not in self._contexts:
            self._contexts[key] = self._new_context(principal, policy)
        return self._contexts[key]

    def _new_context(self, principal: str, policy: Policy) -> Context:
        env = {"LOCALCLOUD_URL": self.url, "GOOGLE_CLOUD_PROJECT": P, "EGRESS_GUARD_PRINCIPAL": principal,
               "EGRESS_GUARD_SELF_PRINCIPALS": f"{NAT_SA},{FW_SA}", "EGRESS_GUARD_OPERATION_TIMEOUT_SECONDS": "20"}
        return Context.from_env(env, policy=policy, publish=self._publish, remember_decisions=True)

    def nat(self, entry: Any, policy: Policy = Policy()) -> list[Finding]:
        return handle(entry, NAT, self.context(NAT_SA, policy))

    def firewalls(self, entry: Any, policy: Policy = ENFORCE_FIREWALLS) -> list[Finding]:
        return handle(entry, FIREWALLS, self.context(FW_SA, policy))


@pytest.fixture
def guardrails(localcloud_url) -> Guardrails:
    return Guardrails(localcloud_url)


def entries(localcloud, method: str, *, resource: str = "", first: bool | None = None,
            last: bool | None = None, by: str | None = None) -> list[dict[str, Any]]:
    """Audit entries localcloud wrote, by methodName (and resourceName suffix, first/last, principal)."""
    found = []
    for entry in localcloud.request("GET", "entries")["entries"]:
        payload = entry["protoPayload"]
        operation = entry.get("operation") or {}
        if payload["methodName"] != method or not payload.get("resourceName", "").endswith(resource):
            continue
        if first is not None and bool(operation.get("first")) != first:
            continue
        if last is not None and bool(operation.get("last")) != last:
            continue
        if by is not None and payload.get("authenticationInfo", {}).get("principalEmail") != by:
            continue
        found.append(entry)
    return found


def one(localcloud, method: str, **kw: Any) -> dict[str, Any]:
    found = entries(localcloud, method, **kw)
    assert len(found) == 1, f"{len(found)} entries of {method} {kw}"
    return found[0]


def as_pubsub(entry: dict[str, Any]) -> CloudEvent:
    """The delivery a Logging sink -> Pub/Sub -> function sends."""
    data = {"message": {"data": base64.b64encode(json.dumps(entry).encode()).decode(), "messageId": "1",
                        "attributes": {"logging.googleapis.com/timestamp": entry["timestamp"]}},
            "subscription": f"projects/{P}/subscriptions/egress-guard-audit-push"}
    return CloudEvent({"type": "google.cloud.pubsub.topic.v1.messagePublished", "id": "1",
                       "source": f"//pubsub.googleapis.com/projects/{P}/topics/egress-guard-audit"}, data)


def as_eventarc(entry: dict[str, Any]) -> CloudEvent:
    """The delivery an Eventarc audit-log trigger sends."""
    payload = entry["protoPayload"]
    return CloudEvent({"type": "google.cloud.audit.log.v1.written", "id": entry["insertId"],
                       "source": f"//cloudaudit.googleapis.com/projects/{P}/logs/activity",
                       "subject": f"{payload['serviceName']}/{payload['resourceName']}"}, entry)


CONNECTOR_CREATE = "google.cloud.vpcaccess.v1.VpcAccessService.CreateConnector"


def state(localcloud) -> tuple[dict[str, Any], dict[str, Any]]:
    """(routers by name, firewall rules by name) as localcloud holds them."""
    dump = localcloud.state()
    routers = {key.rsplit("/", 1)[1]: body for key, body in dump.get("compute.routers", {}).items()}
    rules = {key.rsplit("/", 1)[1]: body for key, body in dump.get("compute.firewalls", {}).items()}
    return routers, rules


def managed(rules: dict[str, Any]) -> dict[str, Any]:
    return {name: body for name, body in rules.items() if name.startswith("egress-guard-")}


@pytest.fixture
def subnet_connector(user, localcloud) -> dict[str, Any]:
    """net-a, a /28 subnet sub28, connector conn-a on it (READY), and its CreateConnector first entry."""
    user.network()
    user.subnet("sub28", "10.0.1.0/28")
    user.connector("conn-a", subnet="sub28")
    return one(localcloud, CONNECTOR_CREATE, first=True)


# ---------------------------------------------------------------------------------------------
# scenarios
# ---------------------------------------------------------------------------------------------
def test_subnet_connector_gets_one_router_one_nat_and_the_managed_rules(subnet_connector, guardrails, localcloud,
                                                                         budget):
    aet_before = {n: b for n, b in state(localcloud)[1].items() if n.startswith("aet-")}
    budget.start()
    (finding,) = guardrails.nat(as_pubsub(subnet_connector))
    budget.check("nat: subnet connector created, no router", NAT_SA)
    assert finding.outcome is Outcome.REMEDIATED and finding.guardrail == "ensure_nat"
    assert [c.action for c in finding.changes] == ["compute.routers.insert"]

    budget.start()
    (fw_finding,) = guardrails.firewalls(as_eventarc(subnet_connector))
    budget.check("firewalls: connector created, keep auto rules", FW_SA)
    assert fw_finding.outcome is Outcome.REMEDIATED

    routers, rules = state(localcloud)
    assert list(routers) == [f"egress-guard-{R}"]
    (nat,) = routers[f"egress-guard-{R}"]["nats"]
    assert nat["sourceSubnetworkIpRangesToNat"] == "LIST_OF_SUBNETWORKS"
    assert [s["name"].rsplit("/", 1)[1] for s in nat["subnetworks"]] == ["sub28"]
    assert nat["logConfig"] == {"enable": True, "filter": "ERRORS_ONLY"} and nat["minPortsPerVm"] == 64
    deny, allow = managed(rules)["egress-guard-conn-a-euw2-deny"], managed(rules)["egress-guard-conn-a-euw2-allow0"]
    assert (deny["priority"], deny["sourceTags"], deny["denied"]) == (990, [TAG], [{"IPProtocol": "all"}])
    assert (allow["priority"], allow["sourceTags"], allow["targetTags"]) == (980, [TAG], ["db"])
    assert allow["allowed"] == [{"IPProtocol": "tcp", "ports": ["5432"]}]
    assert {n: b for n, b in rules.items() if n.startswith("aet-")} == aet_before  # the six aet-* rules unchanged
    assert len(aet_before) == 6


def test_disable_auto_rules_after_the_managed_rules_are_made(subnet_connector, guardrails, localcloud, budget):
    budget.start()
    (finding,) = guardrails.firewalls(subnet_connector, DISABLE_AUTO_RULES)
    budget.check("firewalls: connector created, disable auto rules", FW_SA)
    _, rules = state(localcloud)
    assert rules["aet-europewest2-conn--a-sbntfw"]["disabled"] and rules["aet-europewest2-conn--a-tagfw"]["disabled"]
    for suffix in ("hcfw", "rsgfw", "earfw", "egrfw"):
        assert not rules[f"aet-europewest2-conn--a-{suffix}"].get("disabled")
    patches = [c for c in finding.changes if c.action == "compute.firewalls.patch"]
    assert [c.after for c in patches] == [{"disabled": True}] * 2
    assert all(c.before["priority"] == 1000 and not c.before.get("disabled") for c in patches)  # undo by hand
    calls = [c["method_id"] for c in localcloud.calls(principal=FW_SA)["calls"]]
    first_patch = calls.index(FIREWALLS_PATCH)
    # Make-before-break: both managed rules inserted and waited for (DONE) before any broad rule goes.
    assert calls[:first_patch].count(FIREWALLS_INSERT) == 2 and calls[:first_patch].count(GLOBAL_WAIT) == 2


def test_implicit_broad_rules_the_managed_rules_still_do_the_job(user, guardrails, localcloud, budget):
    localcloud.config(connector_broad_rules="implicit")
    user.network()
    user.subnet("sub28", "10.0.1.0/28")
    user.connector("conn-a", subnet="sub28")
    budget.start()
    (finding,) = guardrails.firewalls(one(localcloud, CONNECTOR_CREATE, first=True), DISABLE_AUTO_RULES)
    budget.check("firewalls: implicit broad rules, disable auto rules", FW_SA)
    assert finding.outcome is Outcome.REMEDIATED and "nothing to disable" in finding.reason
    assert set(managed(state(localcloud)[1])) == {"egress-guard-conn-a-euw2-allow0", "egress-guard-conn-a-euw2-deny"}


def test_range_connector_gets_an_all_subnetworks_nat(user, guardrails, localcloud, budget):
    user.network()
    user.connector("conn-r", cidr="10.8.0.0/28")
    budget.start()
    (finding,) = guardrails.nat(one(localcloud, CONNECTOR_CREATE, last=True))
    budget.check("nat: range connector created, no NAT", NAT_SA)
    assert finding.outcome is Outcome.REMEDIATED
    (nat,) = state(localcloud)[0][f"egress-guard-{R}"]["nats"]
    assert nat["sourceSubnetworkIpRangesToNat"] == "ALL_SUBNETWORKS_ALL_IP_RANGES"


def test_range_connector_next_to_a_list_nat_is_blocked_and_nothing_is_written(user, guardrails, localcloud, budget):
    user.network()
    user.subnet("apps", "10.0.0.0/24")
    user.router("user-router", {"name": "user-nat", "natIpAllocateOption": "AUTO_ONLY",
                                "sourceSubnetworkIpRangesToNat": "LIST_OF_SUBNETWORKS",
                                "subnetworks": [{"name": f"projects/{P}/regions/{R}/subnetworks/apps",
                                                 "sourceIpRangesToNat": ["ALL_IP_RANGES"]}]})
    user.connector("conn-r", cidr="10.8.0.0/28")
    before = state(localcloud)[0]
    budget.start()
    (finding,) = guardrails.nat(one(localcloud, CONNECTOR_CREATE, first=True))
    budget.check("nat: range connector blocked by a LIST NAT", NAT_SA)
    assert finding.outcome is Outcome.BLOCKED and finding.changes == ()
    assert "user-nat" in finding.reason and "--subnet=SUBNET" in finding.reason and "changed nothing" in finding.reason
    assert state(localcloud)[0] == before


def test_job_through_a_covered_connector_is_compliant(subnet_connector, user, guardrails, localcloud, budget):
    guardrails.nat(subnet_connector)
    user.job("nightly", "conn-a")
    budget.start()
    (finding,) = guardrails.nat(one(localcloud, "google.cloud.run.v2.Jobs.CreateJob", first=True))
    budget.check("nat: job (v2) through a covered connector", NAT_SA)
    assert finding.outcome is Outcome.COMPLIANT and finding.resource.type == "run.job"


def test_job_through_a_connector_an_all_subnetworks_nat_covers_is_compliant(user, guardrails, localcloud, budget):
    user.network()
    user.subnet("sub28", "10.0.1.0/28")
    user.connector("conn-a", subnet="sub28")
    user.router("user-router", {"name": "user-nat", "natIpAllocateOption": "AUTO_ONLY",
                                "sourceSubnetworkIpRangesToNat": "ALL_SUBNETWORKS_ALL_IP_RANGES"})
    user.job("nightly", "conn-a")
    budget.start()
    (finding,) = guardrails.nat(one(localcloud, "google.cloud.run.v2.Jobs.CreateJob", first=True))
    budget.check("nat: job (v2) through a connector an ALL_SUBNETWORKS NAT covers", NAT_SA)
    assert finding.outcome is Outcome.COMPLIANT and "user-nat" in finding.reason


def test_v1_job_deployed_with_gcloud_gets_the_nat_added_to_an_existing_router(user, guardrails, localcloud, budget,
                                                                              localcloud_url):
    from tests.gcloud import gcloud

    user.network()
    user.subnet("sub28", "10.0.1.0/28")
    user.connector("conn-a", subnet="sub28")
    user.router("user-router")
    gcloud(localcloud_url, P, "run", "jobs", "deploy", "nightly", "--image=us-docker.pkg.dev/cloudrun/container/job",
           f"--region={R}", "--vpc-connector=conn-a", "--vpc-egress=all-traffic")
    entry = one(localcloud, "google.cloud.run.v1.Jobs.CreateJob")
    budget.start()
    (finding,) = guardrails.nat(entry)
    budget.check("nat: job (v1, gcloud) through an uncovered connector", NAT_SA)
    assert finding.outcome is Outcome.REMEDIATED
    (change,) = finding.changes
    assert change.action == "compute.routers.patch" and change.before["name"] == "user-router"
    routers, _ = state(localcloud)
    assert list(routers) == ["user-router"] and [n["name"] for n in routers["user-router"]["nats"]] == [
        f"egress-guard-nat-{R}"]


def test_service_with_private_ranges_only_is_compliant_without_a_write(subnet_connector, user, guardrails, localcloud,
                                                                       budget):
    user.service("web", run_v2.VpcAccess(connector=f"projects/{P}/locations/{R}/connectors/conn-a",
                                         egress=run_v2.VpcAccess.VpcEgress.PRIVATE_RANGES_ONLY))
    budget.start()
    (finding,) = guardrails.nat(one(localcloud, "google.cloud.run.v2.Services.CreateService", last=True))
    budget.check("nat: service private-ranges-only", NAT_SA)
    assert finding.outcome is Outcome.COMPLIANT and "private-ranges-only" in finding.reason
    assert state(localcloud)[0] == {}


def test_direct_vpc_service_gets_a_nat_for_the_subnet_named_like_the_network(user, guardrails, localcloud, budget):
    user.network()
    user.subnet("net-a", "10.0.0.0/24")
    user.service("web", run_v2.VpcAccess(network_interfaces=[run_v2.VpcAccess.NetworkInterface(network="net-a")],
                                         egress=run_v2.VpcAccess.VpcEgress.ALL_TRAFFIC))
    budget.start()
    (finding,) = guardrails.nat(one(localcloud, "google.cloud.run.v2.Services.CreateService", first=True))
    budget.check("nat: service with Direct VPC egress (network only)", NAT_SA)
    assert finding.outcome is Outcome.REMEDIATED
    (nat,) = state(localcloud)[0][f"egress-guard-{R}"]["nats"]
    assert [s["name"].rsplit("/", 1)[1] for s in nat["subnetworks"]] == ["net-a"]


def test_dry_run_plans_exactly_what_enforce_does_with_zero_mutating_calls(subnet_connector, guardrails, localcloud,
                                                                          budget):
    dry = parse_policy_text("""
nat: {mode: dry-run}
firewall: {mode: dry-run, allow: [{target_tags: [db], ports: [tcp:5432]}], auto_rules: disable}
""")
    budget.start()
    (nat_plan,) = guardrails.nat(subnet_connector, dry)
    budget.check("nat dry-run: subnet connector created", NAT_SA)
    budget.start()
    (fw_plan,) = guardrails.firewalls(subnet_connector, dry)
    budget.check("firewalls dry-run: connector created", FW_SA)
    assert nat_plan.outcome is Outcome.PLANNED and fw_plan.outcome is Outcome.PLANNED
    assert state(localcloud)[0] == {} and managed(state(localcloud)[1]) == {}

    (nat_done,) = guardrails.nat(subnet_connector)
    (fw_done,) = guardrails.firewalls(subnet_connector, DISABLE_AUTO_RULES)
    assert [(c.action, c.resource, c.after) for c in nat_plan.changes] == [
        (c.action, c.resource, c.after) for c in nat_done.changes]
    assert [(c.action, c.resource, c.after) for c in fw_plan.changes] == [
        (c.action, c.resource, c.after) for c in fw_done.changes]


def test_nat_removed_by_a_user_comes_back(subnet_connector, user, guardrails, localcloud, budget):
    guardrails.nat(subnet_connector)
    router = user.routers.get(project=P, region=R, router=f"egress-guard-{R}")
    bare = compute_v1.Router(name=router.name, network=router.network, description=router.description)
    op = user.routers.update(project=P, region=R, router=router.name, router_resource=bare)  # like `nats delete`
    user.region_ops.wait(project=P, region=R, operation=op.name, timeout=TIMEOUT)
    assert not state(localcloud)[0][f"egress-guard-{R}"].get("nats")
    budget.start()
    (finding,) = guardrails.nat(one(localcloud, "v1.compute.routers.update", last=True))
    budget.check("nat drift: NAT removed (routers.update)", NAT_SA)
    assert finding.outcome is Outcome.REMEDIATED and finding.resource.type == "vpcaccess.connector"
    assert "was changed" in finding.reason
    assert [n["name"] for n in state(localcloud)[0][f"egress-guard-{R}"]["nats"]] == [f"egress-guard-nat-{R}"]


def test_nat_removed_with_three_connectors_costs_what_one_costs(user, guardrails, localcloud, budget):
    user.network()
    for i in range(3):
        user.subnet(f"sub{i}", f"10.0.{i}.0/28")
        user.connector(f"conn-{i}", subnet=f"sub{i}")
    for i in range(3):
        guardrails.nat(one(localcloud, CONNECTOR_CREATE, first=True, resource=f"/conn-{i}"))
    router = user.routers.get(project=P, region=R, router=f"egress-guard-{R}")
    bare = compute_v1.Router(name=router.name, network=router.network, description=router.description)
    op = user.routers.update(project=P, region=R, router=router.name, router_resource=bare)
    user.region_ops.wait(project=P, region=R, operation=op.name, timeout=TIMEOUT)
    budget.start()
    findings = guardrails.nat(one(localcloud, "v1.compute.routers.update", last=True))
    budget.check("nat drift: NAT removed, three connectors in the region", NAT_SA)
    assert sorted(f.resource.name.rsplit("/", 1)[1] for f in findings) == ["conn-0", "conn-1", "conn-2"]
    assert all(f.outcome is Outcome.REMEDIATED and "was changed" in f.reason for f in findings)
    (nat,) = state(localcloud)[0][f"egress-guard-{R}"]["nats"]
    assert sorted(s["name"].rsplit("/", 1)[1] for s in nat["subnetworks"]) == ["sub0", "sub1", "sub2"]


def test_router_deleted_by_a_user_comes_back(subnet_connector, user, guardrails, localcloud, budget):
    guardrails.nat(subnet_connector)
    op = user.routers.delete(project=P, region=R, router=f"egress-guard-{R}")
    user.region_ops.wait(project=P, region=R, operation=op.name, timeout=TIMEOUT)
    budget.start()
    (finding,) = guardrails.nat(one(localcloud, "v1.compute.routers.delete", last=True))
    budget.check("nat drift: router deleted", NAT_SA)
    assert finding.outcome is Outcome.REMEDIATED and "was deleted" in finding.reason
    assert list(state(localcloud)[0]) == [f"egress-guard-{R}"]


def test_managed_rule_deleted_by_a_user_comes_back(subnet_connector, user, guardrails, localcloud, budget):
    guardrails.firewalls(subnet_connector)
    op = user.firewalls.delete(project=P, firewall="egress-guard-conn-a-euw2-deny")
    user.global_ops.wait(project=P, operation=op.name, timeout=TIMEOUT)
    budget.start()
    (finding,) = guardrails.firewalls(one(localcloud, "v1.compute.firewalls.delete", last=True))
    budget.check("firewalls drift: managed rule deleted", FW_SA)
    assert finding.outcome is Outcome.REMEDIATED and "was deleted" in finding.reason
    assert "egress-guard-conn-a-euw2-deny" in managed(state(localcloud)[1])


def test_managed_rule_edited_by_a_user_is_put_back(subnet_connector, user, guardrails, localcloud, budget):
    guardrails.firewalls(subnet_connector)
    op = user.firewalls.patch(project=P, firewall="egress-guard-conn-a-euw2-deny",
                              firewall_resource=compute_v1.Firewall(priority=5000))
    user.global_ops.wait(project=P, operation=op.name, timeout=TIMEOUT)
    budget.start()
    (finding,) = guardrails.firewalls(one(localcloud, "v1.compute.firewalls.patch", last=True))
    budget.check("firewalls drift: managed rule edited", FW_SA)
    (change,) = finding.changes
    assert change.action == "compute.firewalls.update" and change.before["priority"] == 5000
    assert state(localcloud)[1]["egress-guard-conn-a-euw2-deny"]["priority"] == 990


def test_reenabled_broad_rule_is_disabled_again(subnet_connector, user, guardrails, localcloud, budget):
    guardrails.firewalls(subnet_connector, DISABLE_AUTO_RULES)
    op = user.firewalls.patch(project=P, firewall="aet-europewest2-conn--a-tagfw",
                              firewall_resource=compute_v1.Firewall.from_json('{"disabled": false}'))
    user.global_ops.wait(project=P, operation=op.name, timeout=TIMEOUT)
    assert not state(localcloud)[1]["aet-europewest2-conn--a-tagfw"].get("disabled")
    budget.start()
    (finding,) = guardrails.firewalls(one(localcloud, "v1.compute.firewalls.patch", last=True,
                                          resource="aet-europewest2-conn--a-tagfw", by=USER), DISABLE_AUTO_RULES)
    budget.check("firewalls drift: aet-*-tagfw re-enabled", FW_SA)
    assert finding.outcome is Outcome.REMEDIATED
    assert state(localcloud)[1]["aet-europewest2-conn--a-tagfw"]["disabled"] is True


def test_aet_rule_insert_entry_is_treated_as_the_connector_existing(subnet_connector, guardrails, localcloud):
    entry = one(localcloud, "v1.compute.firewalls.insert", resource="aet-europewest2-conn--a-sbntfw", last=True)
    (finding,) = guardrails.firewalls(entry)
    assert finding.outcome is Outcome.REMEDIATED and finding.resource.name.endswith("/connectors/conn-a")
    assert len(managed(state(localcloud)[1])) == 2


def test_compute_first_entries_and_infrastructure_aet_rules_cost_no_call(subnet_connector, guardrails, localcloud,
                                                                          budget):
    """A Compute operation's first entry waits for its last (docs/gcp-facts.md §3.3); the priority-100 aet
    rules never concern egress-guard; both are acknowledged without an API call."""
    budget.start()
    first = one(localcloud, "v1.compute.firewalls.insert", resource="aet-europewest2-conn--a-sbntfw", first=True)
    infra = one(localcloud, "v1.compute.firewalls.insert", resource="aet-europewest2-conn--a-hcfw", last=True)
    assert guardrails.firewalls(first) == [] and guardrails.firewalls(infra) == []
    budget.check("firewalls: first entry / infrastructure rule", FW_SA)


def test_duplicates_and_concurrency_end_in_one_router_one_nat_two_rules(subnet_connector, guardrails, localcloud,
                                                                         budget):
    last = one(localcloud, CONNECTOR_CREATE, last=True)
    deliveries = [copy.deepcopy(subnet_connector) for _ in range(10)] + [subnet_connector, last]
    for run, principal, scenario in ((guardrails.nat, NAT_SA, "duplicates: 10 concurrent + first + last, ensure_nat"),
                                     (guardrails.firewalls, FW_SA,
                                      "duplicates: 10 concurrent + first + last, replace_connector_firewalls")):
        budget.start()
        with ThreadPoolExecutor(max_workers=10) as pool:
            results = list(pool.map(run, deliveries))  # raises here if any delivery failed
        budget.check(scenario, principal)
        outcomes = sorted(f.outcome.value for found in results for f in found)
        assert outcomes == ["remediated"]  # the 11 repeats of the decided change: acknowledged, no finding
    routers, rules = state(localcloud)
    assert list(routers) == [f"egress-guard-{R}"] and len(routers[f"egress-guard-{R}"]["nats"]) == 1
    assert len(managed(rules)) == 2


def test_creating_connector_both_guardrails_act_before_ready(user, guardrails, localcloud):
    """The first entry is enough: the NAT needs the subnet and the managed rules the connector's
    tag (from its name), both known while CREATING; nothing waits for READY or for a redelivery."""
    localcloud.config(connector_ready_delay_s=30.0)
    user.network()
    user.subnet("sub28", "10.0.1.0/28")
    user.connector("conn-a", subnet="sub28", wait=False)
    entry = one(localcloud, CONNECTOR_CREATE, first=True)
    (fw_finding,) = guardrails.firewalls(entry)
    (finding,) = guardrails.nat(entry)
    assert finding.outcome is Outcome.REMEDIATED and fw_finding.outcome is Outcome.REMEDIATED
    assert "is CREATING" in fw_finding.reason
    assert set(managed(state(localcloud)[1])) == {"egress-guard-conn-a-euw2-allow0", "egress-guard-conn-a-euw2-deny"}
    connector = user.vpcaccess.get_connector(name=f"projects/{P}/locations/{R}/connectors/conn-a")
    assert connector.state.name == "CREATING"  # the rules exist before the connector's VMs run


def test_bad_entries_are_acknowledged_without_any_api_call(subnet_connector, guardrails, localcloud, budget):
    good = subnet_connector
    failed = copy.deepcopy(good)
    failed["protoPayload"]["status"] = {"code": 7, "message": "PERMISSION_DENIED"}
    foreign = copy.deepcopy(good)
    foreign["protoPayload"].update(serviceName="sqladmin.googleapis.com", methodName="cloudsql.instances.create")
    bad_name = copy.deepcopy(good)
    bad_name["protoPayload"]["resourceName"] = f"projects/{P}/locations/{R}/connectors/..%2F..%2Fevil"
    stale = copy.deepcopy(good)
    stale["timestamp"] = (datetime.now(timezone.utc) - timedelta(hours=2)).isoformat().replace("+00:00", "Z")
    guardrails.firewalls(good)  # writes by egress-guard itself, which must never trigger it again
    own = one(localcloud, "v1.compute.firewalls.insert", resource="egress-guard-conn-a-euw2-deny", first=True)
    assert own["protoPayload"]["authenticationInfo"]["principalEmail"] == FW_SA
    corrupted = CloudEvent({"type": "google.cloud.pubsub.topic.v1.messagePublished", "id": "9",
                            "source": "//pubsub.googleapis.com/x"}, {"message": {"data": "not base64 !!"}})
    truncated = json.dumps(good)[:200]
    before = len(guardrails.findings)
    budget.start()
    for delivery in (corrupted, truncated, foreign, failed, bad_name, stale, own):
        assert guardrails.nat(delivery) == []
        assert guardrails.firewalls(delivery) == []
    budget.check("bad entries (corrupted, foreign, failed, bad name, stale, own principal)", NAT_SA, FW_SA)
    assert len(guardrails.findings) == before


def test_a_5xx_on_a_write_raises_for_the_platform_and_the_redelivery_converges(subnet_connector, guardrails,
                                                                                localcloud):
    localcloud.set_faults([{"methods": "compute.routers.insert", "error_rate": 1.0, "code": 503, "count": 1}])
    with pytest.raises(TransientError, match="503"):
        guardrails.nat(subnet_connector)
    (finding,) = guardrails.nat(subnet_connector)  # the platform's redelivery
    assert finding.outcome is Outcome.REMEDIATED and list(state(localcloud)[0]) == [f"egress-guard-{R}"]


def test_an_operation_that_ends_in_error_raises_and_keeps_the_broad_rules(subnet_connector, guardrails, localcloud):
    localcloud.set_faults([{"methods": "compute.firewalls.insert", "operation_error_rate": 1.0}])
    with pytest.raises(TransientError, match="operation failed"):
        guardrails.firewalls(subnet_connector, DISABLE_AUTO_RULES)
    rules = state(localcloud)[1]
    assert not rules["aet-europewest2-conn--a-sbntfw"].get("disabled")  # never broken before it is made
    localcloud.clear_faults()
    (finding,) = guardrails.firewalls(subnet_connector, DISABLE_AUTO_RULES)
    assert finding.outcome is Outcome.REMEDIATED and state(localcloud)[1]["aet-europewest2-conn--a-sbntfw"]["disabled"]


def test_a_409_on_insert_rereads_and_replans(subnet_connector, guardrails, localcloud):
    localcloud.set_faults([{"methods": "compute.firewalls.insert", "error_rate": 1.0, "code": 409, "count": 1}])
    (finding,) = guardrails.firewalls(subnet_connector)
    assert finding.outcome is Outcome.REMEDIATED
    assert [c.resource.rsplit("/", 1)[1] for c in finding.changes] == ["egress-guard-conn-a-euw2-allow0",
                                                                       "egress-guard-conn-a-euw2-deny"]
    counts = localcloud.calls(principal=FW_SA)["counts"]
    assert counts[FIREWALLS_LIST] == 2 and counts[FIREWALLS_INSERT] == 3  # 409, re-read, then both inserts
