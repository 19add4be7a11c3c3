"""App Engine versions against localcloud, through Google's discovery client (``build("appengine", "v1")``):
the version's request is logged under ``protoPayload.serviceData`` (docs/gcp-facts.md §12.4), and
ensure_nat covers a version whose connector egress is ``ALL_TRAFFIC``, in the connector's network
project; private egress, an exempt version and a failed deploy change nothing."""

from __future__ import annotations

import time

import httplib2
import pytest
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

from egress_guard.findings import Outcome
from egress_guard.policy import Policy, parse_policy_text
from localcloud.identities import NAT_SA, PROJECT, REGION
from tests.contract.test_guardrails_localcloud import Guardrails, User, entries, one, state

pytestmark = pytest.mark.contract

P, R = PROJECT, REGION
CREATE = "google.appengine.v1.Versions.CreateVersion"
CONNECTOR = f"projects/{P}/locations/{R}/connectors/ae-conn"
MUTATING = {"compute.routers.insert", "compute.routers.patch"}


class AppEngine:
    def __init__(self, url: str) -> None:
        self.api = build("appengine", "v1", http=httplib2.Http(), static_discovery=True,
                         client_options={"api_endpoint": url + "/appengine/"})

    def deploy(self, service: str, version: str, connector: dict | None) -> dict:
        body = {"id": version, "runtime": "python312", "env": "standard",
                **({"vpcAccessConnector": connector} if connector else {})}
        operation = self.api.apps().services().versions().create(appsId=P, servicesId=service, body=body).execute()
        deadline = time.monotonic() + 30
        while not operation.get("done"):
            assert time.monotonic() < deadline
            time.sleep(0.05)
            operation = self.api.apps().operations().get(appsId=P, operationsId=operation["name"].rsplit("/", 1)[1]
                                                         ).execute()
        return operation


@pytest.fixture
def app(localcloud_url) -> AppEngine:
    user = User(localcloud_url)
    user.network()
    user.subnet("ae-28", "10.0.9.0/28")
    user.connector("ae-conn", subnet="ae-28")
    return AppEngine(localcloud_url)


def nat_subnets(localcloud) -> list[str]:
    return [s["name"].rsplit("/", 1)[1] for r in state(localcloud)[0].values() for n in r.get("nats", [])
            for s in n.get("subnetworks", [])]


def test_version_with_all_traffic_is_logged_in_service_data_and_gets_a_nat(app, localcloud, localcloud_url):
    done = app.deploy("default", "v1", {"name": CONNECTOR, "egressSetting": "ALL_TRAFFIC"})
    assert done["response"]["vpcAccessConnector"] == {"name": CONNECTOR, "egressSetting": "ALL_TRAFFIC"}
    first, last = one(localcloud, CREATE, first=True), one(localcloud, CREATE, last=True)
    payload = first["protoPayload"]
    assert "request" not in payload and payload["serviceData"]["@type"] == "type.googleapis.com/google.appengine.v1.AuditData"
    assert payload["serviceData"]["createVersion"]["request"]["version"]["vpcAccessConnector"]["egressSetting"] == \
        "ALL_TRAFFIC"
    assert first["resource"]["type"] == "gae_app" and first["resource"]["labels"]["module_id"] == "default"
    assert not {"request", "response", "serviceData"} & set(last["protoPayload"])  # the last entry: no payload

    localcloud.clear_calls()
    (finding,) = Guardrails(localcloud_url).nat(first)
    assert finding.outcome is Outcome.REMEDIATED and finding.resource.type == "appengine.version", finding.reason
    assert nat_subnets(localcloud) == ["ae-28"]
    counts = localcloud.calls(principal=NAT_SA)["counts"]
    print(f"\nApp Engine version: {sum(counts.values())} calls {counts}")
    assert counts["appengine.apps.services.versions.get"] == 1


# App Engine versions carry no labels (the v1 Version has no such field), so the label exemption
# cannot reach them; exempting their connector (or network, or project) does.
EXEMPT_CONNECTOR = parse_policy_text(f"exemptions:\n  connectors: [{CONNECTOR}]\n")


@pytest.mark.parametrize("connector,policy,outcome", [
    ({"name": CONNECTOR}, Policy(), Outcome.COMPLIANT),  # the default: PRIVATE_IP_RANGES
    ({"name": CONNECTOR, "egressSetting": "PRIVATE_IP_RANGES"}, Policy(), Outcome.COMPLIANT),
    ({"name": CONNECTOR, "egressSetting": "ALL_TRAFFIC"}, EXEMPT_CONNECTOR, Outcome.EXEMPT),
], ids=["default", "private", "exempt-connector"])
def test_private_or_exempt_versions_change_nothing(connector, policy, outcome, app, localcloud, localcloud_url):
    app.deploy("default", "v2", connector)
    (finding,) = Guardrails(localcloud_url).nat(one(localcloud, CREATE, first=True), policy)
    assert finding.outcome is outcome and nat_subnets(localcloud) == []


def test_a_failed_version_deploy_is_acknowledged_and_changes_nothing(app, localcloud, localcloud_url):
    with pytest.raises(HttpError, match="does not exist"):
        app.deploy("default", "bad", {"name": f"projects/eg-no-such-project/locations/{R}/connectors/ae-conn",
                                      "egressSetting": "ALL_TRAFFIC"})
    (failed,) = entries(localcloud, CREATE)
    assert failed["protoPayload"]["status"]["code"] == 3
    localcloud.clear_calls()
    assert Guardrails(localcloud_url).nat(failed) == []
    assert localcloud.calls(principal=NAT_SA)["calls"] == [] and nat_subnets(localcloud) == []


def test_sweep_lists_app_engine_versions_on_connectors(app, localcloud, localcloud_url):
    from tests.contract.test_sweep import cli

    app.deploy("default", "v-all", {"name": CONNECTOR, "egressSetting": "ALL_TRAFFIC"})
    app.deploy("api", "v-private", {"name": CONNECTOR})
    table = cli(localcloud_url, "--project", P, "--region", R, "--dry-run", "--all")
    print("\n" + table.stdout)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert any("app engine version default/v-all" in line and "planned" in line for line in lines)
    assert any("app engine version api/v-private" in line and "compliant" in line for line in lines)
    assert "2 App Engine versions" in table.stdout
