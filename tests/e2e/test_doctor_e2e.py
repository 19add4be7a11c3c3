"""``egress-guard doctor`` on the local stack that ``make up`` wires: all ✓; then each of the four
breakages the issue names (the sink filter, one permission of a role, the webhook secret's version,
a dead-lettered message) is reported ✗ with its fix, and put back; bad input is ✗ or ? with its
reason, never a traceback; doctor changes nothing (the dead letter it counted is still there)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from egress_guard.doctor import expected
from localcloud.infra_sink import sink_filter_from_terraform
from tests.e2e.conftest import RunningStack, _start
from tests.paths import ROOT

pytestmark = pytest.mark.e2e

NAMES = expected.Names()


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[RunningStack]:
    yield from _start(tmp_path_factory, "stack-doctor", None)


def doctor(stack: RunningStack, *args: str) -> tuple[int, dict[str, Any], str]:
    proc = subprocess.run([sys.executable, "-m", "egress_guard.cli", "doctor", *args, "--json"],
                          env={**os.environ, **stack.env}, capture_output=True, text=True, timeout=180, cwd=ROOT)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, json.loads(proc.stdout), proc.stderr


def by_status(report: dict[str, Any], status: str) -> list[dict[str, Any]]:
    return [c for c in report["checks"] if c["status"] == status]


def only_failure(stack: RunningStack) -> dict[str, Any]:
    code, report, _ = doctor(stack, "--project", stack.project, "--no-sweep")
    failed = by_status(report, "fail")
    assert code == 1 and len(failed) == 1, failed
    assert by_status(report, "unknown") == [c for c in report["checks"] if c["section"] == "sweep (dry run)"]
    return failed[0]


def test_doctor_on_make_up_is_all_ok_with_the_assumption_table(stack):
    before = stack.control.calls()["last_seq"]
    code, report, _ = doctor(stack, "--project", stack.project)
    made = stack.control.calls(since=before)["calls"]
    assert made and [c["method_id"] for c in made if c["mutating"]] == []  # read-only, sweep included
    assert by_status(report, "fail") == [] and by_status(report, "unknown") == []
    assert code == 0
    assert {a["constant"] for a in report["assumptions"]} >= {"VPCACCESS_RESOURCE_TYPE", "WAITS_FOR_LAST_ENTRY"}
    assert all(a["verdict"] in ("confirmed", "refuted", "not seen") for a in report["assumptions"])


def test_doctor_broken_sink_filter_is_reported_with_a_diff_and_the_update(stack):
    sink = next(s for s in stack.control.request("GET", "sinks")["sinks"] if s["name"] == NAMES.sink)
    broken = sink["filter"].replace(' OR "v1.compute.routers.patch"', "")
    assert broken != sink["filter"]
    body = {"name": NAMES.sink, "filter": broken, "destination": sink["destination"], "parent": sink["parent"]}
    stack.control.request("DELETE", f"sinks/{NAMES.sink}")
    stack.control.request("POST", "sinks", body)
    try:
        check = only_failure(stack)
        assert check["title"] == "its filter equals the one rendered from the trigger list"
        assert '+"v1.compute.routers.patch"' in check["detail"]
        assert check["fix"].startswith(f"gcloud logging sinks update {NAMES.sink} --project={stack.project} --log-filter=")
    finally:
        stack.control.request("DELETE", f"sinks/{NAMES.sink}")
        stack.control.request("POST", "sinks", {**body, "filter": sink_filter_from_terraform(ROOT / "infra")})


def test_doctor_missing_role_permission_is_reported_with_the_role_update(stack):
    spec = expected.FUNCTIONS[0]
    name = f"projects/{stack.project}/roles/{spec.role_id()}"
    wanted = sorted(expected.role_permissions()[spec.key])
    stack.control.request("PUT", "iam/roles", {"name": name, "permissions": wanted[1:]})
    try:
        check = only_failure(stack)
        assert check["detail"] == [f"missing {wanted[0]}"]
        assert check["fix"] == (f"gcloud iam roles update {spec.role_id()} --project={stack.project} "
                                f"--permissions={','.join(wanted)}")
    finally:
        stack.control.request("PUT", "iam/roles", {"name": name, "permissions": wanted})


def test_doctor_secret_without_version_is_reported_with_versions_add(stack):
    from egress_guard.clients import Clients
    from egress_guard.config import Settings

    secrets = Clients(Settings(project=stack.project, localcloud_url=stack.url)).secrets
    version = f"projects/{stack.project}/secrets/{NAMES.slack_secret}/versions/1"
    secrets.disable_secret_version(name=version)
    try:
        check = only_failure(stack)
        assert check["title"] == "it has an enabled version (its value is not read)"
        assert check["fix"].startswith(f'printf %s "$SLACK_WEBHOOK_URL" | gcloud secrets versions add '
                                       f"{NAMES.slack_secret} --project={stack.project} --data-file=-")
    finally:
        secrets.enable_secret_version(name=version)


def test_doctor_dead_lettered_message_is_counted_not_consumed(stack):
    from google.cloud import pubsub_v1

    os.environ["PUBSUB_EMULATOR_HOST"] = stack.env["PUBSUB_EMULATOR_HOST"]
    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    publisher.publish(publisher.topic_path(stack.project, NAMES.dead_letter_topic), b'{"dead": true}').result(timeout=30)
    inbox = subscriber.subscription_path(stack.project, NAMES.dead_letter_subscription)
    try:
        check = only_failure(stack)
        assert check["title"] == f"no message waits in {NAMES.dead_letter_subscription}"
        assert check["detail"][0].startswith("1 message(s) wait")
        assert f"egress-guard dead-letters --subscription projects/{stack.project}/subscriptions/{NAMES.dead_letter_subscription} --redrive" in check["fix"]
        again = only_failure(stack)  # doctor handed the message back: a second run still counts it
        assert again["detail"][0].startswith("1 message(s) wait")
    finally:
        response = subscriber.pull(request={"subscription": inbox, "max_messages": 10}, timeout=30)
        assert [m.message.data for m in response.received_messages] == [b'{"dead": true}']
        subscriber.acknowledge(request={"subscription": inbox, "ack_ids": [m.ack_id for m in response.received_messages]})


def test_doctor_bad_input_is_a_reason_never_a_traceback(stack):
    code, report, _ = doctor(stack, "--project", "no-such-project-1", "--no-sweep")
    assert code == 1
    first = report["checks"][0]
    assert first["status"] == "fail" and "does not exist" in first["detail"][0]
    grant = next(c for c in report["checks"] if c["title"].startswith("the role is granted"))
    assert grant["status"] == "unknown" and "403" in grant["detail"][0]
    code, report, _ = doctor(stack, "--organization", "4242")
    assert code == 1 and report["checks"][0]["status"] == "fail"
    assert any(c["status"] == "unknown" and "--host-project" in " ".join(c.get("detail", [])) for c in report["checks"])
    proc = subprocess.run([sys.executable, "-m", "egress_guard.cli", "doctor", "--folder", "not-a-number"],
                          env={**os.environ, **stack.env}, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 2 and "numeric id" in proc.stderr and "Traceback" not in proc.stderr


def test_doctor_no_permission_to_read_the_sink_is_unknown_with_its_reason(stack):
    stack.control.set_faults([{"methods": "logging.projects.sinks.get", "error_rate": 1.0, "code": 403}])
    try:
        code, report, _ = doctor(stack, "--project", stack.project, "--no-sweep")
    finally:
        stack.control.clear_faults()
    first = report["checks"][0]
    assert first["status"] == "unknown" and "403" in first["detail"][0]


def test_doctor_organization_scope_reads_the_org_sink_roles_and_grants(stack):
    """infra/ with scope organization: the sink and custom roles at the organization, the roles
    granted there; the topics, functions and secret stay in the host project (the sink's topic's)."""
    org = "123456789012"
    sink = next(s for s in stack.control.request("GET", "sinks")["sinks"] if s["name"] == NAMES.sink)
    roles = expected.role_permissions()
    stack.control.request("DELETE", f"sinks/{NAMES.sink}")
    stack.control.request("POST", "sinks", {"name": NAMES.sink, "filter": sink["filter"], "destination": sink["destination"],
                                            "parent": f"organizations/{org}", "include_children": True})
    try:
        code, report, _ = doctor(stack, "--organization", org)
        failed = by_status(report, "fail")
        # The org sink's writer identity is new and the organization holds no role yet: those are ✗; an
        # organization nobody created is not visible (403), so its grants are ? with the reason.
        assert sorted(c["title"].split(" ")[0] for c in failed) == ["its", "role", "role"], failed
        writer = next(c for c in failed if c["title"].startswith("its writer identity"))
        assert f"--member=serviceAccount:service-org-{org}@gcp-sa-logging.iam.gserviceaccount.com" in writer["fix"]
        role_fix = next(c for c in failed if c["title"].startswith("role "))["fix"]
        assert role_fix.startswith("gcloud iam roles create egress_guard_") and f"--organization={org}" in role_fix
        unknown = by_status(report, "unknown")
        assert [c["section"] for c in unknown] == ["functions", "functions", "sweep (dry run)"]
        assert all("403" in c["detail"][0] for c in unknown[:2])
        for spec in expected.FUNCTIONS:
            if roles[spec.key]:
                role = f"organizations/{org}/roles/{spec.role_id()}"
                stack.control.request("PUT", "iam/roles", {"name": role, "permissions": sorted(roles[spec.key])})
                stack.control.request("POST", "iam/bindings", {"resource": f"organizations/{org}", "role": role,
                                                               "member": f"serviceAccount:{spec.service_account(stack.project)}"})
        code, report, _ = doctor(stack, "--organization", org)
        assert [c["title"] for c in by_status(report, "fail")] == [f"its writer identity may publish to {NAMES.audit_topic}"]
        assert [c["section"] for c in by_status(report, "unknown")] == ["sweep (dry run)"]  # it runs per project
    finally:
        stack.control.request("DELETE", f"sinks/{NAMES.sink}")
        stack.control.request("POST", "sinks", {k: sink[k] for k in ("name", "filter", "destination", "parent")})


def test_doctor_judges_the_assumptions_on_real_entries_and_exports_them_anonymised(stack, tmp_path):
    """Last in the module (it leaves a connector and a job): a user's connector and v2 job write the
    audit entries doctor then reads; each verdict cites the entry, and the export hides the user."""
    from tests.contract.test_guardrails_localcloud import User

    user = User(stack.url)
    user.network()
    user.subnet("conn-28", "10.10.0.0/28")
    user.connector("conn-a", subnet="conn-28")
    user.job("nightly", "conn-a")
    written = {e["insertId"]: e for e in stack.control.request("GET", "entries")["entries"]}
    code, report, _ = doctor(stack, "--project", stack.project, "--no-sweep", "--export", str(tmp_path))
    verdicts = {a["constant"]: a for a in report["assumptions"]}
    for constant in ("VPCACCESS_RESOURCE_TYPE", "VPCACCESS_RESOURCE_NAME", "WAITS_FOR_LAST_ENTRY",
                     "OPERATION_PRODUCER_IS_SERVICE", "RUN_JOB_RESOURCE_TYPE", "RUN_V2_RESOURCE_NAME"):
        cited = verdicts[constant]
        assert cited["verdict"] == "confirmed", cited
        assert written[cited["insertId"]]["timestamp"] == cited["timestamp"]
    assert verdicts["RUN_V1_JOB_METHODS"]["verdict"] == "not seen"
    files = sorted(p.name for p in tmp_path.iterdir())
    assert "assumptions.json" in files and any("CreateConnector" in name for name in files)
    exported = " ".join(p.read_text() for p in tmp_path.iterdir())
    assert "developer@example.com" not in exported and "principal-1@example.com" in exported
    from localcloud.backends.vpcaccess import project_number
    assert project_number(stack.project) not in exported
