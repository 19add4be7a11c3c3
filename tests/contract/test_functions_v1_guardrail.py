"""ensure_nat and 1st gen Cloud Functions, against localcloud: a function deployed through the v1 API on a
connector with all-traffic egress gets a NAT for the connector's subnet, in the host project when the
connector is a Shared VPC host's; private egress, an exempt function, a failed deploy, a refused deploy
and an egress value the code does not know change nothing and are acknowledged with their reason
(docs/gcp-facts.md §12.2, §12.6). The decision is the 2nd gen path's: the entry parses into the same
``FunctionName`` and the function into the same ``Workload``."""

from __future__ import annotations

import logging

import pytest

from egress_guard.findings import Outcome
from egress_guard.policy import Policy
from localcloud.identities import NAT_SA, PROJECT, REGION
from tests.contract.test_functions_guardrail import MUTATING, nat_subnets
from tests.contract.test_functions_v1_localcloud import FunctionsV1Api
from tests.contract.test_guardrails_localcloud import Guardrails, User, entries, one, state
from tests.contract.test_shared_vpc import HOST, WORKLOADS_ONLY, host_connector  # noqa: F401 (a fixture)

pytestmark = pytest.mark.contract

P, R = PROJECT, REGION
CREATE = "google.cloud.functions.v1.CloudFunctionsService.CreateFunction"
UPDATE = "google.cloud.functions.v1.CloudFunctionsService.UpdateFunction"
FUNCTION_GET = "cloudfunctions.projects.locations.functions.get"


@pytest.fixture
def net(localcloud_url) -> User:
    user = User(localcloud_url)
    user.network()
    user.subnet("fn-28", "10.0.7.0/28")
    user.connector("fn-conn", subnet="fn-28")
    return user


@pytest.fixture
def api(localcloud_url) -> FunctionsV1Api:
    return FunctionsV1Api(localcloud_url)


def test_gen1_on_a_connector_with_all_traffic_gets_a_nat_then_private_changes_nothing(net, api, localcloud,
                                                                                     localcloud_url):
    api.wait(api.create("fn1", vpcConnector="fn-conn", vpcConnectorEgressSettings="ALL_TRAFFIC"))
    localcloud.clear_calls()
    guardrails = Guardrails(localcloud_url)
    (finding,) = guardrails.nat(one(localcloud, CREATE, first=True))
    assert finding.outcome is Outcome.REMEDIATED, finding.reason
    assert finding.resource.type == "cloudfunctions.function" and "connector fn-conn" in finding.reason
    assert nat_subnets(localcloud) == ["fn-28"]
    counts = localcloud.calls(principal=NAT_SA)["counts"]
    print(f"\n1st gen function on a connector: {sum(counts.values())} calls {counts}")
    assert counts[FUNCTION_GET] == 1 and counts["compute.routers.insert"] == 1
    assert [c["api"] for c in localcloud.calls(principal=NAT_SA)["calls"]
            if c["method_id"] == FUNCTION_GET] == ["cloudfunctions.v1"]  # read through the API that wrote it

    routers_before, _ = state(localcloud)
    api.wait(api.functions.patch(name=f"projects/{P}/locations/{R}/functions/fn1",
                                 updateMask="vpcConnectorEgressSettings",
                                 body={"vpcConnectorEgressSettings": "PRIVATE_RANGES_ONLY"}).execute())
    localcloud.clear_calls()
    (private,) = guardrails.nat(one(localcloud, UPDATE, first=True))
    assert private.outcome is Outcome.COMPLIANT and "private ranges" in private.reason
    assert not MUTATING & set(localcloud.calls(principal=NAT_SA)["counts"]) and state(localcloud)[0] == routers_before


@pytest.mark.parametrize("fields", [{"vpcConnector": "fn-conn"},
                                    {"vpcConnector": "fn-conn", "vpcConnectorEgressSettings": "PRIVATE_RANGES_ONLY"},
                                    {}], ids=["connector-default", "connector-private", "no-connector"])
def test_gen1_private_egress_is_compliant_and_writes_nothing(fields, net, api, localcloud, localcloud_url):
    api.wait(api.create("fn-p", **fields))
    localcloud.clear_calls()
    (finding,) = Guardrails(localcloud_url).nat(one(localcloud, CREATE, first=True))
    assert finding.outcome is Outcome.COMPLIANT, finding.reason
    assert not MUTATING & set(localcloud.calls(principal=NAT_SA)["counts"]) and nat_subnets(localcloud) == []


def test_gen1_exempt_function_is_left_alone(net, api, localcloud, localcloud_url):
    api.wait(api.create("fn-x", vpcConnector="fn-conn", vpcConnectorEgressSettings="ALL_TRAFFIC",
                        labels={"egress-guard": "skip"}))
    (finding,) = Guardrails(localcloud_url).nat(one(localcloud, CREATE, first=True))
    assert finding.outcome is Outcome.EXEMPT and nat_subnets(localcloud) == []


def test_gen1_on_a_shared_vpc_host_connector_gets_the_nat_in_the_host_project(host_connector, localcloud,
                                                                              localcloud_url, api):
    api.wait(api.create("fn-shared", vpcConnector=host_connector, vpcConnectorEgressSettings="ALL_TRAFFIC"))
    assert api.get("fn-shared")["vpcConnector"] == host_connector  # accepted as Google accepts it
    (finding,) = Guardrails(localcloud_url).nat(one(localcloud, CREATE, first=True), WORKLOADS_ONLY)
    assert finding.outcome is Outcome.REMEDIATED and finding.project == HOST, finding.reason
    routers = localcloud.state().get("compute.routers", {})
    assert [key.split("/")[0] for key in routers] == [HOST], "the NAT goes where the network is"


def test_gen1_bad_input_is_acknowledged_with_its_reason_and_changes_nothing(net, api, localcloud, localcloud_url,
                                                                           caplog):
    """A deploy refused at once (a connector of a project that does not exist), a deploy that fails after
    it was accepted (the function is OFFLINE), and an egress value egress-guard does not know."""
    with pytest.raises(Exception, match="does not exist"):
        api.create("fn-bad", vpcConnector=f"projects/no-such-project/locations/{R}/connectors/shared-conn",
                   vpcConnectorEgressSettings="ALL_TRAFFIC")
    localcloud.set_faults([{"methods": "cloudfunctions.projects.locations.functions.create",
                            "operation_error_rate": 1.0}])
    assert "error" in api.finish(api.create("fn-fail", vpcConnector="fn-conn", vpcConnectorEgressSettings="ALL_TRAFFIC"))
    localcloud.clear_faults()
    assert api.get("fn-fail")["status"] == "OFFLINE"
    guardrails = Guardrails(localcloud_url)
    localcloud.clear_calls()
    caplog.set_level(logging.INFO)
    for entry in entries(localcloud, CREATE):
        assert guardrails.nat(entry) == [], entry["protoPayload"]["resourceName"]
    assert "OFFLINE" in caplog.text

    # Google answers a value newer than this code: as a response the client cannot change, rewritten on its way.
    api.wait(api.create("fn-new", vpcConnector="fn-conn", vpcConnectorEgressSettings="ALL_TRAFFIC"))
    policy = Policy()
    context = guardrails.context(NAT_SA, policy)

    def newer_value(response, *args, **kwargs):
        if "/cloudfunctions/v1/" in response.url and response.request.method == "GET":
            response._content = response.content.replace(b'"ALL_TRAFFIC"', b'"ALL_TRAFFIC_AND_MORE"')
        return response

    context.clients.on_response(newer_value)
    caplog.clear()
    assert guardrails.nat(one(localcloud, CREATE, first=True, resource="/fn-new"), policy) == []
    assert "vpcConnectorEgressSettings: 'ALL_TRAFFIC_AND_MORE' is not" in caplog.text
    assert not MUTATING & set(localcloud.calls(principal=NAT_SA)["counts"]) and nat_subnets(localcloud) == []


def test_sweep_lists_gen1_functions_and_plans_them_as_the_guardrail_does(net, api, localcloud, localcloud_url):
    """``egress-guard sweep --dry-run`` on a project with 1st gen functions: all traffic on the connector
    (planned), private, exempt, OFFLINE (not listed), next to a 2nd gen one; one v1 list per region."""
    from tests.contract.test_functions_guardrail import deploy
    from tests.contract.test_functions_localcloud import FunctionsApi
    from tests.contract.test_sweep import cli

    api.wait(api.create("gen1-all", vpcConnector="fn-conn", vpcConnectorEgressSettings="ALL_TRAFFIC"))
    api.wait(api.create("gen1-private", vpcConnector="fn-conn"))
    api.wait(api.create("gen1-skip", vpcConnector="fn-conn", vpcConnectorEgressSettings="ALL_TRAFFIC",
                        labels={"egress-guard": "skip"}))
    localcloud.set_faults([{"methods": "cloudfunctions.projects.locations.functions.create",
                            "operation_error_rate": 1.0}])
    api.finish(api.create("gen1-offline", vpcConnector="fn-conn", vpcConnectorEgressSettings="ALL_TRAFFIC"))
    localcloud.clear_faults()
    deploy(FunctionsApi(localcloud_url), "gen2-private", {"vpcConnector": "fn-conn"})
    localcloud.clear_calls()
    table = cli(localcloud_url, "--project", P, "--region", R, "--dry-run", "--all")
    print("\n" + table.stdout)
    assert table.returncode == 0, table.stderr
    for line, outcome in (("function europe-west2/gen1-all", "planned"),
                          ("function europe-west2/gen1-private", "compliant"),
                          ("function europe-west2/gen1-skip", "exempt"),
                          ("function europe-west2/gen2-private", "compliant")):
        assert any(line in row and outcome in row for row in table.stdout.splitlines()), (line, outcome)
    assert "gen1-offline" not in table.stdout and "4 functions" in table.stdout
    lists = [c["api"] for c in localcloud.calls()["calls"]
             if c["method_id"] == "cloudfunctions.projects.locations.functions.list"]
    assert sorted(lists) == ["cloudfunctions.v1", "cloudfunctions.v2"]
    assert not [m for m in localcloud.calls()["counts"] if m.rsplit(".", 1)[1] in ("insert", "patch")]
