"""Issue 3 and 4 acceptance on the whole local stack, driven by the real gcloud CLI.

Every scenario uses its own network so the scenarios of one stack do not see each other. Times
are printed (the issue's "within 10 s" is a figure to read, not a timed assertion); the bound
given to `eventually` only stops a hang.
"""

from __future__ import annotations

import base64
import json
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from localcloud.stack import AUDIT_TOPIC, FUNCTIONS, PROJECT, REGION
from tests.deliveries import outcomes
from tests.e2e.conftest import RunningStack, eventually

pytestmark = pytest.mark.e2e

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
FW_SA = FUNCTIONS["replace_connector_firewalls"]["sa"]
NAT_SA = FUNCTIONS["ensure_nat"]["sa"]
BOUND_S = 45.0


def _network(stack: RunningStack, name: str, *subnets: tuple[str, str]) -> None:
    stack.gcloud("compute", "networks", "create", name, "--subnet-mode=custom")
    for subnet, cidr in subnets:
        stack.gcloud("compute", "networks", "subnets", "create", subnet, f"--network={name}",
                     f"--region={REGION}", f"--range={cidr}")


def _routers(stack: RunningStack, network: str) -> list[dict]:
    return [r for r in stack.gcloud_json("compute", "routers", "list", f"--regions={REGION}") or []
            if r["network"].endswith(f"/networks/{network}")]


def _rules(stack: RunningStack, network: str) -> dict[str, dict]:
    return {r["name"]: r for r in stack.gcloud_json("compute", "firewall-rules", "list")
            if r["network"].endswith(f"/networks/{network}")}


def _findings_for(stack: RunningStack, seen: list[dict], connector: str) -> list[dict]:
    seen.extend(stack.pull_findings())
    return [f for f in seen if connector in json.dumps(f["resource"]) or connector in f.get("reason", "")]


def _mutating_calls(stack: RunningStack, principal: str, since: int) -> list[dict]:
    return [c for c in stack.control.calls(since=since, principal=principal)["calls"] if c["mutating"]]


def test_connector_and_all_traffic_job_get_nat_and_managed_rules(stack_enforce: RunningStack):
    stack, seen = stack_enforce, []
    _network(stack, "net-job", ("job-28", "10.30.0.0/28"))
    started = time.monotonic()
    stack.gcloud("compute", "networks", "vpc-access", "connectors", "create", "conn-job",
                 f"--region={REGION}", "--subnet=job-28")
    stack.gcloud("run", "jobs", "deploy", "job-all", "--image=us-docker.pkg.dev/cloudrun/container/job",
                 f"--region={REGION}", "--vpc-connector=conn-job", "--vpc-egress=all-traffic")
    tag = f"vpc-connector-{REGION}-conn-job"

    def converged():
        routers = _routers(stack, "net-job")
        rules = _rules(stack, "net-job")
        managed = [r for n, r in rules.items() if n.startswith("egress-guard-")]
        return (routers, rules, managed) if routers and len(managed) >= 2 else None

    routers, rules, managed = eventually(converged, BOUND_S)
    print(f"\nconnector + all-traffic job converged {time.monotonic() - started:.1f} s after the connector create "
          "(includes the connector's own creation time)")
    assert len(routers) == 1 and len(routers[0]["nats"]) == 1
    nat = routers[0]["nats"][0]
    assert nat["sourceSubnetworkIpRangesToNat"] == "LIST_OF_SUBNETWORKS"
    assert [s["name"].rsplit("/", 1)[-1] for s in nat["subnetworks"]] == ["job-28"]
    deny = [r for r in managed if r.get("denied")]
    allow = [r for r in managed if r.get("allowed")]
    assert [r["priority"] for r in deny] == [990] and deny[0]["sourceTags"] == [tag]
    assert [r["priority"] for r in allow] == [980] and allow[0]["sourceTags"] == [tag]
    assert allow[0]["targetTags"] == ["db"] and allow[0]["allowed"] == [{"IPProtocol": "tcp", "ports": ["5432"]}]
    aet = {n: r for n, r in rules.items() if n.startswith("aet-")}
    assert len(aet) == 6
    infra = {n: r for n, r in aet.items() if r["priority"] == 100}
    assert len(infra) == 4 and not any(r.get("disabled") for r in infra.values()), "never touched"
    broad = eventually(lambda: all(r.get("disabled") for n, r in _rules(stack, "net-job").items()
                                   if n.startswith("aet-") and n.endswith(("-sbntfw", "-tagfw"))), BOUND_S)
    assert broad, "auto_rules: disable turns the broad rules off once the managed rules exist"

    findings = eventually(lambda: [f for f in _findings_for(stack, seen, "conn-job") if f["outcome"] == "remediated"]
                          and _findings_for(stack, seen, "conn-job"), BOUND_S)
    remediated = {f["guardrail"] for f in findings if f["outcome"] == "remediated"}
    assert remediated == {"ensure_nat", "replace_connector_firewalls"}
    assert not [f for f in findings if f["outcome"] in ("failed", "blocked")]

    # Issue 4: one Slack message per posted finding, valid Block Kit naming the connector, NAT and rules.
    posted = [f for f in seen if f["outcome"] != "compliant"]
    messages = eventually(lambda: (m := stack.slack_messages()) and len(m) >= len(posted) and m, BOUND_S)
    text = json.dumps(messages)
    assert len(messages) == len({f["id"] for f in posted})
    assert "conn-job" in text and nat["name"] in text and deny[0]["name"] in text
    print(f"slack: {len(messages)} messages for {len(posted)} posted findings")


def test_range_connector_gets_all_subnetworks_nat(stack_enforce: RunningStack):
    stack = stack_enforce
    _network(stack, "net-range")
    stack.gcloud("compute", "networks", "vpc-access", "connectors", "create", "conn-range",
                 f"--region={REGION}", "--network=net-range", "--range=10.40.0.0/28")
    routers = eventually(lambda: _routers(stack, "net-range"), BOUND_S)
    assert len(routers) == 1 and [n["sourceSubnetworkIpRangesToNat"] for n in routers[0]["nats"]] == [
        "ALL_SUBNETWORKS_ALL_IP_RANGES"]


def test_range_connector_beside_a_list_nat_is_blocked_without_a_write(stack_enforce: RunningStack):
    stack, seen = stack_enforce, []
    _network(stack, "net-blk", ("blk-app", "10.50.0.0/24"))
    stack.gcloud("compute", "routers", "create", "user-router", "--network=net-blk", f"--region={REGION}")
    stack.gcloud("compute", "routers", "nats", "create", "user-nat", "--router=user-router", f"--region={REGION}",
                 "--auto-allocate-nat-external-ips", "--nat-custom-subnet-ip-ranges=blk-app")
    since = stack.control.calls()["last_seq"]
    stack.gcloud("compute", "networks", "vpc-access", "connectors", "create", "conn-blk",
                 f"--region={REGION}", "--network=net-blk", "--range=10.51.0.0/28")
    blocked = eventually(lambda: [f for f in _findings_for(stack, seen, "conn-blk")
                                  if f["guardrail"] == "ensure_nat" and f["outcome"] == "blocked"], BOUND_S)
    assert blocked, "ensure_nat must publish a blocked finding"
    reason = blocked[0]["reason"]
    print(f"\nblocked reason: {reason}")
    assert "ALL_SUBNETWORKS" in reason and "user-nat" in reason
    assert [c for c in _mutating_calls(stack, NAT_SA, since)] == []
    routers = _routers(stack, "net-blk")
    assert [n["name"] for r in routers for n in r["nats"]] == ["user-nat"]


def test_private_ranges_service_is_compliant_without_a_write(stack_enforce: RunningStack):
    stack, seen = stack_enforce, []
    _network(stack, "net-priv", ("priv-28", "10.60.0.0/28"))
    stack.gcloud("compute", "networks", "vpc-access", "connectors", "create", "conn-priv",
                 f"--region={REGION}", "--subnet=priv-28")
    eventually(lambda: _routers(stack, "net-priv"), BOUND_S)  # the connector itself got its NAT
    eventually(lambda: len([n for n in _rules(stack, "net-priv") if n.startswith("egress-guard-")]) >= 2, BOUND_S)
    time.sleep(1.0)  # let the connector's own follow-up entries drain before counting
    stack.pull_findings()
    since = stack.control.calls()["last_seq"]
    stack.gcloud("run", "deploy", "svc-priv", "--image=us-docker.pkg.dev/cloudrun/container/hello",
                 f"--region={REGION}", "--vpc-connector=conn-priv", "--vpc-egress=private-ranges-only",
                 "--no-allow-unauthenticated")
    compliant = eventually(lambda: [f for f in _findings_for(stack, seen, "svc-priv") if f["outcome"] == "compliant"],
                           BOUND_S)
    assert compliant and compliant[0]["guardrail"] == "ensure_nat"
    assert _mutating_calls(stack, NAT_SA, since) == []


def test_drift_managed_rule_and_nat_come_back(stack_enforce: RunningStack):
    stack = stack_enforce
    _network(stack, "net-drift", ("drift-28", "10.70.0.0/28"))
    stack.gcloud("compute", "networks", "vpc-access", "connectors", "create", "conn-drift",
                 f"--region={REGION}", "--subnet=drift-28")
    managed = eventually(lambda: sorted(n for n in _rules(stack, "net-drift") if n.startswith("egress-guard-")), BOUND_S)
    routers = eventually(lambda: _routers(stack, "net-drift"), BOUND_S)
    assert len(managed) >= 2 and routers

    allow = next(n for n in managed if "-allow" in n)
    started = time.monotonic()
    stack.gcloud("compute", "firewall-rules", "update", allow, "--priority=5000")
    put_back = eventually(lambda: _rules(stack, "net-drift")[allow]["priority"] == 980, BOUND_S)
    print(f"\nmanaged rule {allow} edited to priority 5000 was put back after {time.monotonic() - started:.1f} s")
    assert put_back

    deny = next(n for n in managed if n.endswith("-deny"))
    started = time.monotonic()
    stack.gcloud("compute", "firewall-rules", "delete", deny, "--quiet")
    back = eventually(lambda: deny in _rules(stack, "net-drift"), BOUND_S)
    print(f"\nmanaged rule {deny} came back after {time.monotonic() - started:.1f} s")
    assert back

    router, nat = routers[0]["name"], routers[0]["nats"][0]["name"]
    started = time.monotonic()
    stack.gcloud("compute", "routers", "nats", "delete", nat, f"--router={router}", f"--region={REGION}", "--quiet")
    restored = eventually(lambda: [n for r in _routers(stack, "net-drift") for n in r.get("nats", [])], BOUND_S)
    print(f"NAT {nat} came back after {time.monotonic() - started:.1f} s")
    assert restored


HOST = "eg-host-project"  # a Shared VPC host project; PROJECT is its service project here


def test_shared_vpc_job_on_a_host_connector_is_covered_by_a_nat_in_the_host_project(stack_enforce: RunningStack):
    """Issue 18: a job of the service project names the host's connector by its full path, as Google
    documents for Shared VPC; localcloud accepts it, and ensure_nat looks for (and puts) the NAT in the
    host project, where the network is."""
    stack, seen = stack_enforce, []
    stack.gcloud("compute", "networks", "create", "shared-net", "--subnet-mode=custom", f"--project={HOST}")
    stack.gcloud("compute", "networks", "subnets", "create", "shared-28", "--network=shared-net",
                 f"--region={REGION}", "--range=10.95.0.0/28", f"--project={HOST}")
    stack.gcloud("compute", "networks", "vpc-access", "connectors", "create", "host-conn", f"--region={REGION}",
                 "--subnet=shared-28", f"--project={HOST}")
    connector = f"projects/{HOST}/locations/{REGION}/connectors/host-conn"
    stack.gcloud("run", "jobs", "deploy", "svc-job", "--image=us-docker.pkg.dev/cloudrun/container/job",
                 f"--region={REGION}", f"--vpc-connector={connector}", "--vpc-egress=all-traffic")
    decided = eventually(lambda: [f for f in _findings_for(stack, seen, "svc-job") if f["guardrail"] == "ensure_nat"
                                  and f["outcome"] in ("remediated", "compliant")], BOUND_S)
    assert decided and decided[0]["project"] == HOST and "host-conn" in decided[0]["reason"], decided
    routers = stack.gcloud_json("compute", "routers", "list", f"--project={HOST}")
    print(f"\nShared VPC: {decided[0]['outcome']}: {decided[0]['reason']}")
    print(f"gcloud compute routers list --project={HOST}: "
          + json.dumps([{"name": r["name"], "nats": [n["name"] for n in r.get("nats", [])]} for r in routers]))
    assert [s["name"].rsplit("/", 1)[-1] for r in routers for n in r["nats"] for s in n.get("subnetworks", [])] == [
        "shared-28"]
    assert not [r for r in _routers(stack, "shared-net")], "no router for it in the service project"


def test_gen2_function_with_a_connector_and_all_traffic_gets_a_nat(stack_enforce: RunningStack, tmp_path):
    """Issue 18: the real gcloud functions deploy --gen2 (source upload included) with --vpc-connector and
    --egress-settings=all; ensure_nat reacts to the Cloud Functions entry. nat.on_connector_create gives
    the connector its NAT first, so the function's finding is compliant or remediated: either way it
    names the function and the NAT that covers it."""
    stack, seen = stack_enforce, []
    _network(stack, "net-fn", ("fn-28", "10.33.0.0/28"))
    stack.gcloud("compute", "networks", "vpc-access", "connectors", "create", "conn-fn", f"--region={REGION}",
                 "--subnet=fn-28")
    (tmp_path / "main.py").write_text("def hello(request):\n    return 'hi'\n")
    (tmp_path / "requirements.txt").write_text("")
    stack.gcloud("functions", "deploy", "fn-all", "--gen2", "--runtime=python312", f"--region={REGION}",
                 f"--source={tmp_path}", "--entry-point=hello", "--trigger-http", "--no-allow-unauthenticated",
                 "--vpc-connector=conn-fn", "--egress-settings=all", "--quiet")
    decided = eventually(lambda: [f for f in _findings_for(stack, seen, "fn-all") if f["guardrail"] == "ensure_nat"
                                  and f["outcome"] in ("remediated", "compliant")], BOUND_S)
    assert decided and decided[0]["resource"]["type"] == "cloudfunctions.function", decided
    routers = _routers(stack, "net-fn")
    print(f"\ngen2 function: {decided[0]['outcome']}: {decided[0]['reason']}")
    print("gcloud compute routers list (net-fn): " + json.dumps(
        [{"name": r["name"], "nats": [n["name"] for n in r.get("nats", [])]} for r in routers]))
    assert [s["name"].rsplit("/", 1)[-1] for r in routers for n in r["nats"] for s in n.get("subnetworks", [])] == [
        "fn-28"]


def test_worker_pool_with_direct_vpc_all_traffic_gets_a_nat_and_private_ranges_nothing(stack_enforce: RunningStack):
    """Issue 18: the real gcloud beta run worker-pools deploy (gcloud 528's GAPIC path: gRPC through
    localcloud's gateway, with the stack's never-refreshed access token) with Direct VPC egress. All
    traffic: a NAT covering its subnet appears; private ranges: a compliant finding, no write."""
    stack, seen = stack_enforce, []
    _network(stack, "net-wp", ("wp-24", "10.34.0.0/24"), ("wp-priv", "10.35.0.0/24"))
    image = "--image=us-docker.pkg.dev/cloudrun/container/worker-pool"
    stack.gcloud("beta", "run", "worker-pools", "deploy", "pool-all", image, f"--region={REGION}",
                 "--network=net-wp", "--subnet=wp-24", "--vpc-egress=all-traffic")
    remediated = eventually(lambda: [f for f in _findings_for(stack, seen, "pool-all")
                                     if f["guardrail"] == "ensure_nat" and f["outcome"] == "remediated"], BOUND_S)
    assert remediated and remediated[0]["resource"]["type"] == "run.workerPool", remediated
    routers = _routers(stack, "net-wp")
    print(f"\nworker pool: {remediated[0]['outcome']}: {remediated[0]['reason']}")
    print("gcloud compute routers list (net-wp): " + json.dumps(
        [{"name": r["name"], "nats": [n["name"] for n in r.get("nats", [])]} for r in routers]))
    assert [s["name"].rsplit("/", 1)[-1] for r in routers for n in r["nats"] for s in n.get("subnetworks", [])] == [
        "wp-24"]

    since = stack.control.calls()["last_seq"]
    stack.gcloud("beta", "run", "worker-pools", "deploy", "pool-priv", image, f"--region={REGION}",
                 "--network=net-wp", "--subnet=wp-priv", "--vpc-egress=private-ranges-only")
    compliant = eventually(lambda: [f for f in _findings_for(stack, seen, "pool-priv")
                                    if f["guardrail"] == "ensure_nat" and f["outcome"] == "compliant"], BOUND_S)
    assert compliant and "private-ranges-only" in compliant[0]["reason"], compliant
    assert _mutating_calls(stack, NAT_SA, since) == []
    assert [s["name"].rsplit("/", 1)[-1] for r in _routers(stack, "net-wp") for n in r["nats"]
            for s in n.get("subnetworks", [])] == ["wp-24"]


def test_app_engine_version_with_all_traffic_gets_a_nat(stack_enforce: RunningStack):
    """Issue 18: an App Engine version on a connector with egressSetting ALL_TRAFFIC, created with Google's
    discovery client (gcloud app deploy cannot work offline); its entry carries the request under
    protoPayload.serviceData, and ensure_nat re-reads the version."""
    import httplib2
    from googleapiclient.discovery import build

    stack, seen = stack_enforce, []
    _network(stack, "net-ae", ("ae-28", "10.34.0.0/28"))
    stack.gcloud("compute", "networks", "vpc-access", "connectors", "create", "conn-ae", f"--region={REGION}",
                 "--subnet=ae-28")
    api = build("appengine", "v1", http=httplib2.Http(), static_discovery=True,
                client_options={"api_endpoint": stack.url + "/appengine/"})
    api.apps().services().versions().create(appsId=PROJECT, servicesId="default", body={
        "id": "v-all", "runtime": "python312", "env": "standard",
        "vpcAccessConnector": {"name": f"projects/{PROJECT}/locations/{REGION}/connectors/conn-ae",
                               "egressSetting": "ALL_TRAFFIC"}}).execute()
    decided = eventually(lambda: [f for f in _findings_for(stack, seen, "v-all") if f["guardrail"] == "ensure_nat"
                                  and f["outcome"] in ("remediated", "compliant")], BOUND_S)
    assert decided and decided[0]["resource"]["type"] == "appengine.version", decided
    routers = _routers(stack, "net-ae")
    print(f"\nApp Engine version: {decided[0]['outcome']}: {decided[0]['reason']}")
    print("gcloud compute routers list (net-ae): " + json.dumps(
        [{"name": r["name"], "nats": [n["name"] for n in r.get("nats", [])]} for r in routers]))
    assert [s["name"].rsplit("/", 1)[-1] for r in routers for n in r["nats"] for s in n.get("subnetworks", [])] == [
        "ae-28"]


def _publish_raw(stack: RunningStack, data: bytes, copies: int = 1) -> list[str]:
    """Publish ``data`` ``copies`` times; the Pub/Sub message ids."""
    import os

    from google.cloud import pubsub_v1

    os.environ["PUBSUB_EMULATOR_HOST"] = stack.env["PUBSUB_EMULATOR_HOST"]
    publisher = pubsub_v1.PublisherClient()
    topic = publisher.topic_path(stack.project, AUDIT_TOPIC)
    futures = [publisher.publish(topic, data) for _ in range(copies)]
    return [future.result(timeout=30) for future in futures]


def test_duplicate_and_concurrent_deliveries_converge(stack_enforce: RunningStack):
    stack = stack_enforce
    _network(stack, "net-dup", ("dup-28", "10.80.0.0/28"))
    stack.gcloud("compute", "networks", "vpc-access", "connectors", "create", "conn-dup",
                 f"--region={REGION}", "--subnet=dup-28")
    eventually(lambda: len([n for n in _rules(stack, "net-dup") if n.startswith("egress-guard-")]) >= 2, BOUND_S)
    entries = [e for e in stack.control.request("GET", "entries")["entries"]
               if e["protoPayload"]["methodName"].endswith("CreateConnector")
               and e["protoPayload"]["resourceName"].endswith("/conn-dup")]
    assert len(entries) == 2, "first and last entries of the create operation"
    # The same entries again, ten copies each at once, as a redelivering Pub/Sub might.
    copies = [message_id for entry in entries for message_id in _publish_raw(stack, json.dumps(entry).encode(),
                                                                            copies=10)]

    def unhandled() -> dict[str, list[str]]:
        """Copies a function has not answered yet with an acknowledgement or a finding (its log lines
        carry the delivery's message id)."""
        left = {}
        for function in ("ensure_nat", "replace_connector_firewalls"):
            answered = outcomes(stack.stack, function)
            left[function] = [m for m in copies if not set(answered.get(m, ())) - {"retry"}]
        return {f: m for f, m in left.items() if m}

    eventually(lambda: not unhandled(), BOUND_S, interval=0.5)
    assert unhandled() == {}, "copies never acknowledged nor decided"
    for function in ("ensure_nat", "replace_connector_firewalls"):
        answered = outcomes(stack.stack, function)
        assert all(set(answered[m]) <= {"acknowledged", "compliant", "remediated", "retry"} for m in copies), answered
    routers = _routers(stack, "net-dup")
    managed = [n for n in _rules(stack, "net-dup") if n.startswith("egress-guard-")]
    assert len(routers) == 1 and len(routers[0]["nats"]) == 1
    assert len(managed) == 2
    dead = stack.control.request("GET", "sinks")  # nothing dropped on the way
    assert all(s["dropped"] == 0 for s in dead["sinks"])


BAD_ENTRIES = {
    "corrupted": b"{not json",
    "another service": json.dumps({"protoPayload": {"serviceName": "storage.googleapis.com",
                                                    "methodName": "storage.objects.create"},
                                   "logName": f"projects/{PROJECT}/logs/cloudaudit.googleapis.com%2Factivity",
                                   "timestamp": "2026-01-01T00:00:00Z"}).encode(),
}


def _fixture_entry(name: str, **changes) -> dict:
    entry = json.loads((FIXTURES / name).read_text())
    entry["timestamp"] = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
    for path, value in changes.items():
        node = entry
        keys = path.split(".")
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value
    return entry


def test_bad_entries_are_acknowledged_without_api_calls(stack_enforce: RunningStack):
    stack = stack_enforce
    connector_entry = "vpcaccess-google.cloud.vpcaccess.v1.VpcAccessService.CreateConnector.last.json"
    failed = _fixture_entry(connector_entry, **{"protoPayload.status": {"code": 6, "message": "already exists"}})
    bad_name = _fixture_entry(connector_entry, **{
        "protoPayload.resourceName": f"projects/{PROJECT}/locations/{REGION}/connectors/..%2Fx"})
    stale = _fixture_entry(connector_entry)
    stale["timestamp"] = (datetime.now(timezone.utc) - timedelta(hours=2)).isoformat().replace("+00:00", "Z")
    cases = dict(BAD_ENTRIES, **{name: json.dumps(e).encode() for name, e in
                                 {"failed call": failed, "bad name": bad_name, "stale": stale}.items()})
    since = stack.control.calls()["last_seq"]
    logs_before = {name: _log_size(stack, name) for name in ("ensure_nat", "replace_connector_firewalls")}
    for data in cases.values():
        _publish_raw(stack, data)
    time.sleep(3.0)
    calls = [c for c in stack.control.calls(since=since)["calls"] if c["principal"] in (NAT_SA, FW_SA)]
    assert calls == [], f"no API call for bad entries, got {calls}"
    for name, before in logs_before.items():
        text = (stack.stack.log_dir / f"{name}.log").read_text(errors="replace")[before:]
        lines = [line for line in text.splitlines() if line.startswith("{")]
        print(f"\n{name}: {len(lines)} log lines for {len(cases)} bad entries")
        for line in lines:
            print("  " + json.loads(line).get("message", line)[:160])
        assert len(lines) >= len(cases)
        assert "Traceback" not in text


def _log_size(stack: RunningStack, name: str) -> int:
    path = stack.stack.log_dir / f"{name}.log"
    return len(path.read_text(errors="replace")) if path.exists() else 0


def test_default_policy_plans_firewalls_without_mutating_calls(stack_default: RunningStack):
    stack, seen = stack_default, []
    _network(stack, "net-dry", ("dry-28", "10.90.0.0/28"))
    since = stack.control.calls()["last_seq"]
    stack.gcloud("compute", "networks", "vpc-access", "connectors", "create", "conn-dry",
                 f"--region={REGION}", "--subnet=dry-28")
    planned = eventually(lambda: [f for f in _findings_for(stack, seen, "conn-dry")
                                  if f["guardrail"] == "replace_connector_firewalls" and f["outcome"] == "planned"],
                         BOUND_S)
    assert planned and planned[0]["mode"] == "dry-run"
    actions = sorted(c["action"] for c in planned[0]["changes"])
    print(f"\nplanned changes: {actions}")
    assert actions == ["compute.firewalls.insert"], "one managed deny; no allow list in the default policy"
    time.sleep(1.0)
    assert _mutating_calls(stack, FW_SA, since) == []
    assert not [n for n in _rules(stack, "net-dry") if n.startswith("egress-guard-")]
    assert _routers(stack, "net-dry"), "ensure_nat enforces by default"


# Methods the functions may call that the scenarios above do not provoke, with where they are exercised.
NOT_PROVOKED_END_TO_END = {
    "compute.firewalls.delete": "only when the policy drops a managed rule; "
                                "tests/contract/test_guardrails_localcloud.py covers it",
}


def test_iam_custom_roles_equal_the_calls_made(stack_enforce: RunningStack):
    """Issue 5: each function's custom role grants exactly what it called in this end-to-end run."""
    from tests.infra.test_iam import check_function_grants, declared_methods

    calls = stack_enforce.control.calls()["calls"]
    for function, principal in (("ensure_nat", NAT_SA), ("replace_connector_firewalls", FW_SA)):
        called = {c["method_id"] for c in calls if c["principal"] == principal and c["status"] < 500}
        provoked = called | {"pubsub.projects.topics.publish"}  # findings went out (asserted above)
        unprovoked = declared_methods()[function] - provoked
        assert unprovoked <= set(NOT_PROVOKED_END_TO_END), f"{function}: nothing called {sorted(unprovoked)}"
        print(f"\n{function}: called {sorted(called)}")
        check_function_grants(function, provoked | (unprovoked & set(NOT_PROVOKED_END_TO_END)))
