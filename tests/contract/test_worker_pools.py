"""Cloud Run v2 worker pools in localcloud, through the real google-cloud-run ``WorkerPoolsClient``
(REST transport, built by egress-guard's client factory), and ensure_nat on their audit entries.

Worker pools have Direct VPC egress (``template.vpcAccess.networkInterfaces``) or a connector; only
all-traffic egress needs a NAT (docs/gcp-facts.md §12.5).
"""

from __future__ import annotations

import pytest
from google.api_core import exceptions
from google.cloud import compute_v1, run_v2

from egress_guard.clients import Clients
from egress_guard.config import Settings

pytestmark = pytest.mark.contract

TIMEOUT = 30


@pytest.fixture
def clients(localcloud_url, monkeypatch):
    monkeypatch.setenv("LOCALCLOUD_URL", localcloud_url)
    return Clients(Settings.from_env())


@pytest.fixture
def subnet(clients, project, region):
    op = clients.networks.insert(project=project, network_resource=compute_v1.Network(
        name="pool-net", auto_create_subnetworks=False))
    clients.global_operations.wait(project=project, operation=op.name, timeout=TIMEOUT)
    op = clients.subnetworks.insert(project=project, region=region, subnetwork_resource=compute_v1.Subnetwork(
        name="pool-sub", network=f"projects/{project}/global/networks/pool-net", ip_cidr_range="10.30.0.0/24"))
    clients.region_operations.wait(project=project, region=region, operation=op.name, timeout=TIMEOUT)
    return "pool-sub"


def _pool(egress, **template) -> run_v2.WorkerPool:
    return run_v2.WorkerPool(labels={"team": "a"}, template=run_v2.WorkerPoolRevisionTemplate(
        containers=[run_v2.Container(image="us-docker.pkg.dev/cloudrun/container/worker-pool")],
        vpc_access=run_v2.VpcAccess(egress=egress, **template)))


def test_worker_pool_create_get_list_update_delete_with_direct_vpc(clients, project, region, subnet):
    parent = f"projects/{project}/locations/{region}"
    interface = run_v2.VpcAccess.NetworkInterface(network="pool-net", subnetwork=subnet, tags=["egress"])
    op = clients.run_worker_pools.create_worker_pool(
        parent=parent, worker_pool_id="pool-a",
        worker_pool=_pool(run_v2.VpcAccess.VpcEgress.ALL_TRAFFIC, network_interfaces=[interface]))
    assert op.metadata.name == f"{parent}/workerPools/pool-a"  # the metadata is the WorkerPool
    pool = op.result(timeout=TIMEOUT)

    assert pool.terminal_condition.state == run_v2.Condition.State.CONDITION_SUCCEEDED
    assert pool.template.vpc_access.egress == run_v2.VpcAccess.VpcEgress.ALL_TRAFFIC
    assert pool.template.vpc_access.network_interfaces[0].subnetwork == subnet
    assert pool.latest_created_revision.startswith(f"{parent}/workerPools/pool-a/revisions/pool-a-00001-")
    assert pool.labels["team"] == "a"
    assert [p.name for p in clients.run_worker_pools.list_worker_pools(parent=parent)] == [pool.name]

    pool.template.vpc_access.egress = run_v2.VpcAccess.VpcEgress.PRIVATE_RANGES_ONLY
    updated = clients.run_worker_pools.update_worker_pool(worker_pool=pool).result(timeout=TIMEOUT)
    assert updated.generation == 2
    assert updated.template.vpc_access.egress == run_v2.VpcAccess.VpcEgress.PRIVATE_RANGES_ONLY

    clients.run_worker_pools.delete_worker_pool(name=pool.name).result(timeout=TIMEOUT)
    with pytest.raises(exceptions.NotFound, match="of kind 'WORKER_POOL'"):
        clients.run_worker_pools.get_worker_pool(name=pool.name)


def test_worker_pool_bad_input_is_refused_in_googles_envelope(clients, project, region, subnet):
    parent = f"projects/{project}/locations/{region}"
    both = run_v2.VpcAccess(connector="nope", egress=run_v2.VpcAccess.VpcEgress.ALL_TRAFFIC,
                            network_interfaces=[run_v2.VpcAccess.NetworkInterface(subnetwork=subnet)])
    with pytest.raises(exceptions.BadRequest, match="one and only one of connector and network_interfaces"):
        clients.run_worker_pools.create_worker_pool(parent=parent, worker_pool_id="pool-b", worker_pool=run_v2.WorkerPool(
            template=run_v2.WorkerPoolRevisionTemplate(containers=[run_v2.Container(image="x")], vpc_access=both)))
    with pytest.raises(exceptions.BadRequest, match="CreateWorkerPoolRequest.worker_pool.template.containers"):
        clients.run_worker_pools.create_worker_pool(parent=parent, worker_pool_id="pool-b",
                                                    worker_pool=run_v2.WorkerPool(template={}))
    with pytest.raises(exceptions.BadRequest, match="not a valid worker_pool name"):
        clients.run_worker_pools.create_worker_pool(parent=parent, worker_pool_id="Pool_B", worker_pool=_pool(
            run_v2.VpcAccess.VpcEgress.ALL_TRAFFIC))
    assert list(clients.run_worker_pools.list_worker_pools(parent=parent)) == []


# ---- ensure_nat on worker pool audit entries -------------------------------------------------------
CREATE = "google.cloud.run.v2.WorkerPools.CreateWorkerPool"
UPDATE = "google.cloud.run.v2.WorkerPools.UpdateWorkerPool"


@pytest.fixture
def guardrails(localcloud_url):
    from tests.contract.test_guardrails_localcloud import Guardrails

    return Guardrails(localcloud_url)


def _entry(localcloud, method: str, **kw):
    from tests.contract.test_guardrails_localcloud import one

    return one(localcloud, method, **kw)


def _routers(localcloud) -> dict:
    from tests.contract.test_guardrails_localcloud import state

    return state(localcloud)[0]


def _deploy(clients, project, region, name, egress, *, labels=None, subnet="pool-sub"):
    pool = _pool(egress, network_interfaces=[run_v2.VpcAccess.NetworkInterface(subnetwork=subnet)])
    pool.labels.update(labels or {})
    return clients.run_worker_pools.create_worker_pool(parent=f"projects/{project}/locations/{region}",
                                                       worker_pool_id=name, worker_pool=pool).result(timeout=TIMEOUT)


def test_ensure_nat_covers_a_direct_vpc_all_traffic_worker_pools_subnet_once(clients, project, region, subnet,
                                                                             localcloud, guardrails):
    from egress_guard.findings import Outcome

    _deploy(clients, project, region, "pool-a", run_v2.VpcAccess.VpcEgress.ALL_TRAFFIC)
    first = _entry(localcloud, CREATE, resource="workerPools/pool-a", first=True)
    assert first["resource"]["type"] == "cloud_run_worker_pool"
    assert first["protoPayload"]["request"]["workerPool"]["template"]["vpcAccess"]["egress"] == "ALL_TRAFFIC"

    (finding,) = guardrails.nat(first)
    assert finding.outcome is Outcome.REMEDIATED, finding.reason
    (nat,) = _routers(localcloud)[f"egress-guard-{region}"]["nats"]
    assert [s["name"].rsplit("/", 1)[1] for s in nat["subnetworks"]] == [subnet]
    # The operation's last entry is the same decision: acknowledged, no second write.
    routers = _routers(localcloud)
    assert guardrails.nat(_entry(localcloud, CREATE, resource="workerPools/pool-a", last=True)) == []
    assert _routers(localcloud) == routers


def test_ensure_nat_leaves_private_ranges_and_exempt_worker_pools_alone_with_a_reason(clients, project, region, subnet,
                                                                                     localcloud, guardrails):
    from egress_guard.findings import Outcome

    _deploy(clients, project, region, "pool-private", run_v2.VpcAccess.VpcEgress.PRIVATE_RANGES_ONLY)
    _deploy(clients, project, region, "pool-skip", run_v2.VpcAccess.VpcEgress.ALL_TRAFFIC,
            labels={"egress-guard": "skip"})
    (private,) = guardrails.nat(_entry(localcloud, CREATE, resource="workerPools/pool-private", first=True))
    (skipped,) = guardrails.nat(_entry(localcloud, CREATE, resource="workerPools/pool-skip", first=True))
    assert private.outcome is Outcome.COMPLIANT and "private-ranges-only" in private.reason
    assert "worker pool pool-private" in private.reason
    assert skipped.outcome is Outcome.EXEMPT and "egress-guard=skip" in skipped.reason
    assert _routers(localcloud) == {}


def test_ensure_nat_acknowledges_bad_worker_pool_entries_with_a_reason_and_changes_nothing(
        clients, project, region, subnet, localcloud, guardrails, caplog):
    import copy
    import logging

    _deploy(clients, project, region, "pool-a", run_v2.VpcAccess.VpcEgress.ALL_TRAFFIC)
    good = _entry(localcloud, CREATE, resource="workerPools/pool-a", first=True)
    failed = copy.deepcopy(good)
    failed["protoPayload"]["status"] = {"code": 3, "message": "INVALID_ARGUMENT: bad image"}
    bad_name = copy.deepcopy(good)
    bad_name["protoPayload"]["resourceName"] = f"projects/{project}/locations/{region}/workerPools/Pool_A"
    gone = copy.deepcopy(good)
    gone["protoPayload"]["resourceName"] = f"projects/{project}/locations/{region}/workerPools/pool-gone"
    caplog.set_level(logging.INFO)
    for delivery, reason in ((failed, "failed with status 3"), (bad_name, "Pool_A"),
                             (gone, "pool-gone does not exist")):
        caplog.clear()
        assert guardrails.nat(delivery) == []
        assert any("acknowledged" in r.getMessage() and reason in r.getMessage() for r in caplog.records), reason
    assert _routers(localcloud) == {}


def test_sweep_lists_worker_pools_and_plans_them_as_the_guardrail_does(clients, project, region, subnet, localcloud,
                                                                       localcloud_url):
    """``egress-guard sweep --dry-run``: an all-traffic Direct VPC worker pool is planned a NAT for its subnet,
    a private-ranges one is compliant, an exempt one exempt; nothing is written."""
    from tests.contract.test_sweep import cli

    _deploy(clients, project, region, "pool-all", run_v2.VpcAccess.VpcEgress.ALL_TRAFFIC)
    _deploy(clients, project, region, "pool-private", run_v2.VpcAccess.VpcEgress.PRIVATE_RANGES_ONLY)
    _deploy(clients, project, region, "pool-skip", run_v2.VpcAccess.VpcEgress.ALL_TRAFFIC,
            labels={"egress-guard": "skip"})
    localcloud.clear_calls()
    table = cli(localcloud_url, "--project", project, "--region", region, "--dry-run", "--all")
    print("\n" + table.stdout)
    assert table.returncode == 0, table.stderr
    for line, outcome in (("worker pool europe-west2/pool-all", "planned"),
                          ("worker pool europe-west2/pool-private", "compliant"),
                          ("worker pool europe-west2/pool-skip", "exempt")):
        assert any(line in row and outcome in row for row in table.stdout.splitlines()), (line, outcome)
    assert "3 worker pools" in table.stdout
    assert localcloud.calls()["counts"].get("run.projects.locations.workerPools.list") == 1
    assert not [m for m in localcloud.calls()["counts"] if m.rsplit(".", 1)[1] in ("insert", "patch")]


def test_backfill_replays_a_worker_pool_created_during_an_outage(clients, project, region, subnet, localcloud,
                                                                  localcloud_url):
    """The worker pool methods are in the one trigger list, so backfill reads and replays them."""
    from datetime import datetime, timedelta, timezone

    from egress_guard.backfill import backfill
    from egress_guard.guardrails import GUARDRAILS
    from egress_guard.policy import Policy
    from tests.contract.test_backfill import context

    since = datetime.now(timezone.utc) - timedelta(seconds=1)
    _deploy(clients, project, region, "pool-a", run_v2.VpcAccess.VpcEgress.ALL_TRAFFIC)
    findings: list = []
    report = backfill(context(localcloud_url, Policy(), findings), [GUARDRAILS["ensure_nat"]], project, since)

    replayed = {r.method: {x.guardrail: x.outcome for x in r.results} for r in report.replayed}
    assert replayed[CREATE] == {"ensure_nat": "remediated"}, report
    assert [s["name"].rsplit("/", 1)[1] for s in _routers(localcloud)[f"egress-guard-{region}"]["nats"][0]
            ["subnetworks"]] == [subnet]


# ---- the gRPC gateway gcloud's GAPIC client reaches --------------------------------------------------
@pytest.fixture
def grpc_pools(localcloud_url):
    """The real run_v2 WorkerPoolsClient on gRPC (TLS, trusting the CA localcloud hands out), through
    localcloud's proxy CONNECT to ``REGION-127.0.0.1:PORT``, as gcloud 528 connects."""
    import grpc
    import requests
    from google.auth.credentials import AnonymousCredentials
    from google.cloud.run_v2.services.worker_pools.transports import WorkerPoolsGrpcTransport

    port = int(localcloud_url.rsplit(":", 1)[1])
    ca = requests.get(f"{localcloud_url}/_localcloud/tls", timeout=30).content
    channel = grpc.secure_channel(f"europe-west2-127.0.0.1:{port}", grpc.ssl_channel_credentials(ca),
                                  options=[("grpc.http_proxy", f"http://127.0.0.1:{port}")])
    try:
        yield run_v2.WorkerPoolsClient(transport=WorkerPoolsGrpcTransport(channel=channel,
                                                                          credentials=AnonymousCredentials()))
    finally:
        channel.close()


def test_grpc_gateway_serves_worker_pools_and_their_operations_as_rest_does(grpc_pools, clients, project, region,
                                                                            subnet, localcloud):
    parent = f"projects/{project}/locations/{region}"
    with pytest.raises(exceptions.NotFound, match="of kind 'WORKER_POOL'"):
        grpc_pools.get_worker_pool(name=f"{parent}/workerPools/pool-g")
    pool = _pool(run_v2.VpcAccess.VpcEgress.ALL_TRAFFIC,
                 network_interfaces=[run_v2.VpcAccess.NetworkInterface(network="pool-net", subnetwork=subnet)])
    pool.name = f"{parent}/workerPools/pool-g"
    done = grpc_pools.update_worker_pool(request=run_v2.UpdateWorkerPoolRequest(
        worker_pool=pool, allow_missing=True)).result(timeout=TIMEOUT)

    assert done.terminal_condition.state == run_v2.Condition.State.CONDITION_SUCCEEDED
    assert clients.run_worker_pools.get_worker_pool(name=pool.name).template.vpc_access.egress == \
        run_v2.VpcAccess.VpcEgress.ALL_TRAFFIC  # one model: REST reads what gRPC wrote
    assert [p.name for p in grpc_pools.list_worker_pools(parent=parent)] == [pool.name]
    assert _entry(localcloud, CREATE, resource="workerPools/pool-g", first=True)  # audited as over REST
    with pytest.raises(exceptions.InvalidArgument, match="one and only one of connector and network_interfaces"):
        pool.template.vpc_access.connector = "conn-x"
        grpc_pools.update_worker_pool(worker_pool=pool)


def test_a_minimal_worker_pool_reads_back_with_the_fields_of_the_recorded_one(localcloud_url, project, region):
    """The recorded GET of a real minimal worker pool (reference/gcp-http-logs/run-runworkerpool-minimal,
    PROBABLY_REAL): the same fields, and the same server defaults (splits, scaling, limits, account)."""
    import json

    import requests

    from tests.paths import ROOT

    text = (ROOT / "reference/gcp-http-logs/run-runworkerpool-minimal._audit_probe.log").read_text()
    recorded = json.loads(text[text.index("\n{"):])  # the body after the status line and headers
    base = f"{localcloud_url}/run/v2/projects/{project}/locations/{region}/workerPools"
    query = {"$alt": "json;enum-encoding=int"}
    body = {"template": {"containers": [{"image": "us-docker.pkg.dev/cloudrun/container/hello"}]},
            "description": "d", "labels": {"a": "b"}}
    created = requests.post(base, params={**query, "workerPoolId": "pool-min"}, json=body, timeout=30)
    assert created.status_code == 200, created.text
    got = requests.get(f"{base}/pool-min", params=query, timeout=30).json()

    assert sorted(got) == sorted(recorded)
    for field in ("instanceSplits", "instanceSplitStatuses", "scaling", "launchStage"):
        assert got[field] == recorded[field], field
    assert got["template"]["containers"][0]["resources"] == recorded["template"]["containers"][0]["resources"]
    assert got["template"]["serviceAccount"].endswith("-compute@developer.gserviceaccount.com")
    assert got["terminalCondition"]["state"] == recorded["terminalCondition"]["state"]
