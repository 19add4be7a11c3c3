"""ensure_nat and 2nd gen Cloud Functions, against localcloud: a function deployed with a connector and
all-traffic egress, or with Direct VPC egress to all traffic, gets a NAT for the subnet its traffic
leaves from; private egress, a failed deploy, an exempt function and a function's own Cloud Run
service change nothing (docs/gcp-facts.md §12.3, §12.6)."""

from __future__ import annotations

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import run_v2

from egress_guard.findings import Outcome
from localcloud.identities import NAT_SA, PROJECT, REGION
from tests.contract.test_functions_localcloud import PARENT, FunctionsApi
from tests.contract.test_guardrails_localcloud import Guardrails, User, entries, one, state

pytestmark = pytest.mark.contract

P, R = PROJECT, REGION
CREATE = "google.cloud.functions.v2.FunctionService.CreateFunction"
FUNCTION_GET = "cloudfunctions.projects.locations.functions.get"
MUTATING = {"compute.routers.insert", "compute.routers.patch"}


@pytest.fixture
def net(localcloud_url) -> User:
    user = User(localcloud_url)
    user.network()
    user.subnet("fn-28", "10.0.7.0/28")
    user.subnet("apps", "10.0.8.0/24")
    user.connector("fn-conn", subnet="fn-28")
    return user


@pytest.fixture
def api(localcloud_url) -> FunctionsApi:
    return FunctionsApi(localcloud_url)


def deploy(api: FunctionsApi, name: str, service_config: dict, labels: dict | None = None) -> None:
    api.wait(api.create(name, {"buildConfig": {"runtime": "python312", "entryPoint": "hello"},
                               "serviceConfig": service_config, **({"labels": labels} if labels else {})}))


def nat_subnets(localcloud) -> list[str]:
    routers, _ = state(localcloud)
    return [s["name"].rsplit("/", 1)[1] for r in routers.values() for n in r.get("nats", [])
            for s in n.get("subnetworks", [])]


def test_function_on_a_connector_with_all_traffic_gets_a_nat_for_the_connector_subnet(net, api, localcloud,
                                                                                      localcloud_url):
    deploy(api, "fn-a", {"vpcConnector": "fn-conn", "vpcConnectorEgressSettings": "ALL_TRAFFIC"})
    localcloud.clear_calls()
    (finding,) = Guardrails(localcloud_url).nat(one(localcloud, CREATE, first=True))
    assert finding.outcome is Outcome.REMEDIATED, finding.reason
    assert finding.resource.type == "cloudfunctions.function" and "connector fn-conn" in finding.reason
    assert nat_subnets(localcloud) == ["fn-28"]
    counts = localcloud.calls(principal=NAT_SA)["counts"]
    print(f"\nfunction on a connector: {sum(counts.values())} calls {counts}")
    assert counts[FUNCTION_GET] == 1 and counts["compute.routers.insert"] == 1


def test_function_with_direct_vpc_all_traffic_gets_a_nat_for_its_subnet(net, api, localcloud, localcloud_url):
    deploy(api, "fn-direct", {"directVpcNetworkInterface": [{"network": "net-a", "subnetwork": "apps"}],
                              "directVpcEgress": "VPC_EGRESS_ALL_TRAFFIC"})
    (finding,) = Guardrails(localcloud_url).nat(one(localcloud, CREATE, last=True))
    assert finding.outcome is Outcome.REMEDIATED and "Direct VPC egress" in finding.reason
    assert nat_subnets(localcloud) == ["apps"]


@pytest.mark.parametrize("service_config", [
    {"vpcConnector": "fn-conn"},  # the connector's default: private ranges only
    {"vpcConnector": "fn-conn", "vpcConnectorEgressSettings": "PRIVATE_RANGES_ONLY"},
    {"directVpcNetworkInterface": [{"network": "net-a", "subnetwork": "apps"}]},
    {"directVpcNetworkInterface": [{"network": "net-a"}], "directVpcEgress": "VPC_EGRESS_PRIVATE_RANGES_ONLY"},
], ids=["connector-default", "connector-private", "direct-default", "direct-private"])
def test_private_egress_is_compliant_and_writes_nothing(service_config, net, api, localcloud, localcloud_url):
    deploy(api, "fn-p", service_config)
    localcloud.clear_calls()
    (finding,) = Guardrails(localcloud_url).nat(one(localcloud, CREATE, first=True))
    assert finding.outcome is Outcome.COMPLIANT and "private ranges" in finding.reason
    assert not MUTATING & set(localcloud.calls(principal=NAT_SA)["counts"]) and nat_subnets(localcloud) == []


def test_exempt_function_is_left_alone(net, api, localcloud, localcloud_url):
    deploy(api, "fn-x", {"vpcConnector": "fn-conn", "vpcConnectorEgressSettings": "ALL_TRAFFIC"},
           labels={"egress-guard": "skip"})
    (finding,) = Guardrails(localcloud_url).nat(one(localcloud, CREATE, first=True))
    assert finding.outcome is Outcome.EXEMPT and nat_subnets(localcloud) == []


def test_a_failed_deploy_is_acknowledged_and_changes_nothing(net, api, localcloud, localcloud_url):
    with pytest.raises(Exception, match="does not exist"):  # refused at once: a failed call is logged
        deploy(api, "fn-bad", {"vpcConnector": "no-such-conn", "vpcConnectorEgressSettings": "ALL_TRAFFIC"})
    localcloud.set_faults([{"methods": "cloudfunctions.projects.locations.functions.create",
                            "operation_error_rate": 1.0}])
    with pytest.raises(AssertionError):  # accepted, then the deploy fails: the function is FAILED
        deploy(api, "fn-fail", {"vpcConnector": "fn-conn", "vpcConnectorEgressSettings": "ALL_TRAFFIC"})
    localcloud.clear_faults()
    assert api.get("fn-fail")["state"] == "FAILED"
    guardrails = Guardrails(localcloud_url)
    localcloud.clear_calls()
    for entry in entries(localcloud, CREATE):
        assert guardrails.nat(entry) == [], entry["protoPayload"]["resourceName"]
    assert not MUTATING & set(localcloud.calls(principal=NAT_SA)["counts"]) and nat_subnets(localcloud) == []


def test_the_functions_own_cloud_run_service_is_not_decided_twice(net, localcloud, localcloud_url):
    """Whether Google logs the function's Cloud Run service too is UNCONFIRMED (docs/gcp-facts.md §12.3):
    if it does, that entry names a service labelled goog-managed-by=cloudfunctions, and only the
    function's own entry acts."""
    services = run_v2.ServicesClient(transport="rest", credentials=AnonymousCredentials(),
                                     client_options={"api_endpoint": localcloud_url + "/run"})
    services.create_service(parent=PARENT, service_id="fn-a", service=run_v2.Service(
        labels={"goog-managed-by": "cloudfunctions"}, template=run_v2.RevisionTemplate(
            containers=[run_v2.Container(image="us-docker.pkg.dev/cloudrun/container/hello")],
            vpc_access=run_v2.VpcAccess(connector=f"{PARENT}/connectors/fn-conn",
                                        egress=run_v2.VpcAccess.VpcEgress.ALL_TRAFFIC)))).result(timeout=30)
    localcloud.clear_calls()
    assert Guardrails(localcloud_url).nat(one(localcloud, "google.cloud.run.v2.Services.CreateService",
                                              first=True)) == []
    assert not MUTATING & set(localcloud.calls(principal=NAT_SA)["counts"]) and nat_subnets(localcloud) == []


def test_sweep_lists_functions_and_plans_them_as_the_guardrail_does(net, api, localcloud, localcloud_url):
    """``egress-guard sweep --dry-run`` on a project with a function of each kind: all-traffic on the
    connector and on Direct VPC (one NAT for each subnet, planned), private, exempt, FAILED (not listed),
    and a function's own Cloud Run service (decided through its function only)."""
    from tests.contract.test_sweep import cli

    net.router("user-router")
    deploy(api, "fn-conn-all", {"vpcConnector": "fn-conn", "vpcConnectorEgressSettings": "ALL_TRAFFIC"})
    deploy(api, "fn-direct-all", {"directVpcNetworkInterface": [{"network": "net-a", "subnetwork": "apps"}],
                                  "directVpcEgress": "VPC_EGRESS_ALL_TRAFFIC"})
    deploy(api, "fn-private", {"vpcConnector": "fn-conn"})
    deploy(api, "fn-skip", {"vpcConnector": "fn-conn", "vpcConnectorEgressSettings": "ALL_TRAFFIC"},
           labels={"egress-guard": "skip"})
    localcloud.clear_calls()
    table = cli(localcloud_url, "--project", P, "--region", R, "--dry-run", "--all")
    print("\n" + table.stdout)
    assert table.returncode == 0, table.stderr
    for line, outcome in (("function europe-west2/fn-conn-all", "planned"),
                          ("function europe-west2/fn-direct-all", "planned"),
                          ("function europe-west2/fn-private", "compliant"),
                          ("function europe-west2/fn-skip", "exempt")):
        assert any(line in row and outcome in row for row in table.stdout.splitlines()), (line, outcome)
    assert "4 functions" in table.stdout
    assert not [m for m in localcloud.calls()["counts"] if m.rsplit(".", 1)[1] in ("insert", "patch")]
