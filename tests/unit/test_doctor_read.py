"""doctor's reader turns every failed read into a reason (``Unreadable`` with its HTTP code) and a bug
into a traceback; the policy file is read as the functions read it, its errors naming the key."""

from __future__ import annotations

from types import SimpleNamespace

import httplib2
import pytest
from google.api_core import exceptions as gexc
from googleapiclient.errors import HttpError

from egress_guard.config import Settings
from egress_guard.doctor.read import Reader, attempt
from egress_guard.doctor.readings import Scope, Unreadable


def raises(exc: BaseException):
    def read():
        raise exc
    return read


@pytest.mark.parametrize("exc, code", [
    (gexc.NotFound("Sink x does not exist"), 404),
    (gexc.Forbidden("The caller does not have permission"), 403),
    (HttpError(httplib2.Response({"status": 404}), b'{"error": {"message": "The role named r was not found."}}'), 404),
    (ConnectionRefusedError("connection refused"), None),
])
def test_doctor_read_a_failed_read_is_a_reason_with_its_code(exc, code):
    found = attempt("iam.roles.get r", raises(exc))
    assert isinstance(found, Unreadable) and found.code == code
    assert found.reason.startswith("iam.roles.get r: ")


def test_doctor_read_a_bug_is_not_swallowed():
    with pytest.raises(KeyError):
        attempt("x", raises(KeyError("bug")))


def test_doctor_read_policy_errors_name_the_key(tmp_path):
    bad = tmp_path / "policy.yaml"
    bad.write_text("firewall:\n  mode: sometimes\n")
    reader = Reader(SimpleNamespace(settings=Settings()), policy_path=str(bad), sweep=False)
    policy = reader.policy()
    assert policy.source == str(bad) and "firewall.mode" in policy.error
    good = tmp_path / "good.yaml"
    good.write_text("firewall:\n  mode: enforce\n  allow: [{target_tags: [db], ports: ['tcp:5432']}]\n")
    assert Reader(SimpleNamespace(settings=Settings()), policy_path=str(good)).policy().error is None
    assert Reader(SimpleNamespace(settings=Settings())).policy().source == "built-in defaults"


def test_doctor_read_the_host_project_comes_from_the_sink_or_is_asked_for():
    reader = Reader(SimpleNamespace(settings=Settings()))
    from egress_guard.doctor.readings import Sink
    sink = Sink("organizations/1/sinks/s", "", "pubsub.googleapis.com/projects/host-project/topics/t", "", True)
    assert reader.host_project(Scope("organization", "1"), sink) == "host-project"
    assert reader.host_project(Scope("project", "p-123456"), Unreadable("x", 404)) == "p-123456"
    unknown = reader.host_project(Scope("folder", "2"), Unreadable("x", 403))
    assert isinstance(unknown, Unreadable) and "--host-project" in unknown.reason
    folder = reader.role_parent(Scope("folder", "2"), "host-project")
    assert isinstance(folder, Unreadable) and "--role-organization" in folder.reason
