"""What doctor reads, served by localcloud and read with the real clients (responses checked against
the discovery documents): Logging sinks, IAM roles and policies, topics' IAM, Secret Manager
metadata; and Google's error envelopes for what is missing or not visible."""

from __future__ import annotations

import pytest
from google.api_core import exceptions as gexc
from googleapiclient.errors import HttpError

from egress_guard.clients import Clients
from egress_guard.config import Settings
from egress_guard.doctor.read import Reader
from egress_guard.doctor.readings import Scope, Sink, Unreadable

pytestmark = pytest.mark.contract

P = "eg-demo-project"
ROLE = f"projects/{P}/roles/egress_guard_ensure_nat"
SA = f"serviceAccount:egress-guard-nat@{P}.iam.gserviceaccount.com"


@pytest.fixture
def clients(localcloud_url: str) -> Clients:
    return Clients(Settings(project=P, localcloud_url=localcloud_url))


@pytest.fixture
def sink(localcloud):
    body = {"name": "egress-guard-audit", "filter": 'logName:"x"', "parent": "organizations/123456789012",
            "include_children": True, "destination": f"pubsub.googleapis.com/projects/{P}/topics/egress-guard-audit",
            "pubsub_emulator_host": "127.0.0.1:9"}
    created = localcloud.request("POST", "sinks", body)
    yield created
    localcloud.request("DELETE", "sinks/egress-guard-audit")


def test_localcloud_sinks_get_and_list_as_logging_v2(clients, sink):
    reader = Reader(clients, sweep=False)
    found = reader.sink(Scope("organization", "123456789012"))
    assert found == Sink("organizations/123456789012/sinks/egress-guard-audit", 'logName:"x"',
                         f"pubsub.googleapis.com/projects/{P}/topics/egress-guard-audit",
                         "serviceAccount:service-org-123456789012@gcp-sa-logging.iam.gserviceaccount.com", True)
    listed = list(clients.logging.list_sinks(parent="organizations/123456789012"))
    assert [s.name for s in listed] == ["egress-guard-audit"]
    assert list(clients.logging.list_sinks(parent=f"projects/{P}")) == []
    missing = reader.sink(Scope("project", P))
    assert isinstance(missing, Unreadable) and missing.code == 404 and "does not exist" in missing.reason


def test_localcloud_iam_roles_and_policies(clients, localcloud):
    localcloud.request("PUT", "iam/roles", {"name": ROLE, "permissions": ["compute.routers.get"]})
    localcloud.request("POST", "iam/bindings", {"resource": f"projects/{P}", "role": ROLE, "member": SA})
    role = clients.iam.projects().roles().get(name=ROLE).execute()
    assert role["includedPermissions"] == ["compute.routers.get"] and role["etag"]
    basic = clients.iam.projects().roles().list(parent=f"projects/{P}").execute()
    assert [r["name"] for r in basic["roles"]] == [ROLE] and "includedPermissions" not in basic["roles"][0]
    with pytest.raises(HttpError) as missing:
        clients.iam.projects().roles().get(name=f"projects/{P}/roles/nope").execute()
    assert missing.value.resp.status == 404
    policy = clients.projects.get_iam_policy(request={"resource": f"projects/{P}"})
    assert [(b.role, list(b.members)) for b in policy.bindings] == [(ROLE, [SA])]
    with pytest.raises(gexc.Forbidden):  # an organization nobody seeded: not visible, as Google says it
        clients.organizations.get_iam_policy(request={"resource": "organizations/42"})


def test_localcloud_topic_iam_policy_round_trip(clients):
    topic = f"projects/{P}/topics/egress-guard-audit"
    policy = clients.topic_iam.get_iam_policy(request={"resource": topic})
    policy.bindings.add(role="roles/pubsub.publisher", members=["serviceAccount:w@x.iam.gserviceaccount.com"])
    clients.topic_iam.set_iam_policy(request={"resource": topic, "policy": policy})
    again = clients.topic_iam.get_iam_policy(request={"resource": topic})
    assert [(b.role, list(b.members)) for b in again.bindings] == [
        ("roles/pubsub.publisher", ["serviceAccount:w@x.iam.gserviceaccount.com"])]


def test_localcloud_secret_metadata_and_version_states(clients, localcloud):
    localcloud.request("POST", "secrets", {"project": P, "secret": "hook", "versions": 2})
    name = f"projects/{P}/secrets/hook"
    secret = clients.secrets.get_secret(name=name)
    assert secret.name.startswith("projects/") and secret.name.endswith("/secrets/hook")
    versions = list(clients.secrets.list_secret_versions(parent=name))
    assert [v.name.rsplit("/", 1)[-1] for v in versions] == ["2", "1"]
    clients.secrets.disable_secret_version(name=f"{name}/versions/2")
    clients.secrets.destroy_secret_version(name=f"{name}/versions/1")
    states = {v.name.rsplit("/", 1)[-1]: v.state.name for v in clients.secrets.list_secret_versions(parent=name)}
    assert states == {"2": "DISABLED", "1": "DESTROYED"}
    with pytest.raises(gexc.NotFound):
        clients.secrets.get_secret(name=f"projects/{P}/secrets/none")
