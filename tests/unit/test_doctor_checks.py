"""doctor's checks are pure: hand-made readings in, lines of ✓ / ✗ / ? out, each ✗ with its fix."""

from __future__ import annotations

import dataclasses

import pytest

from egress_guard.doctor import expected
from egress_guard.doctor.checks import Status, filter_diff, judge
from egress_guard.doctor.readings import (Function, PolicyFile, Readings, Role, Scope, Secret, Sink, Subscription,
                                          SweepSummary, Unreadable, Waiting)

P = "eg-demo-project"
NAMES = expected.Names()
ROLES = {"ensure_nat": frozenset({"compute.routers.get", "compute.routers.create"}),
         "replace_connector_firewalls": frozenset({"compute.firewalls.list"}), "notify_slack": frozenset()}
WRITER = "serviceAccount:service-1@gcp-sa-logging.iam.gserviceaccount.com"
DEAD_LETTER = f"projects/{P}/topics/{NAMES.dead_letter_topic}"


def push(name: str, topic: str) -> Subscription:
    return Subscription(f"projects/{P}/subscriptions/{name}", f"projects/{P}/topics/{topic}", f"http://x/{name}",
                        DEAD_LETTER, 10)


def healthy() -> Readings:
    wanted = expected.sink_filter(excluded_principals=expected.self_principals(P))
    role_names = {spec.key: f"projects/{P}/roles/{spec.role_id()}" for spec in expected.FUNCTIONS}
    return Readings(
        scope=Scope("project", P), host_project=P, prefix=expected.NAME_PREFIX, expected_filter=wanted,
        expected_roles=ROLES,
        sink=Sink(f"projects/{P}/sinks/{NAMES.sink}", wanted, f"pubsub.googleapis.com/projects/{P}/topics/{NAMES.audit_topic}",
                  WRITER, False),
        audit_topic_publishers=frozenset({WRITER}),
        topics={NAMES.audit_topic: True, NAMES.findings_topic: True, NAMES.dead_letter_topic: True},
        push_subscriptions={NAMES.audit_topic: (push("a", NAMES.audit_topic), push("b", NAMES.audit_topic)),
                            NAMES.findings_topic: (push("c", NAMES.findings_topic),)},
        dead_letter_subscription=Subscription(f"projects/{P}/subscriptions/{NAMES.dead_letter_subscription}",
                                              DEAD_LETTER, "", "", 0),
        dead_letters=Waiting(0, False),
        functions={spec.key: Function(f"projects/{P}/locations/europe-west2/functions/{spec.name()}", "ACTIVE",
                                      spec.service_account(P)) for spec in expected.FUNCTIONS},
        roles={key: Role(role_names[key], ROLES[key]) for key in ("ensure_nat", "replace_connector_firewalls")},
        role_parent=f"projects/{P}",
        scope_bindings={role_names[spec.key]: frozenset({f"serviceAccount:{spec.service_account(P)}"})
                        for spec in expected.FUNCTIONS},
        policy=PolicyFile("built-in defaults"),
        secret=Secret(f"projects/{P}/secrets/{NAMES.slack_secret}", ("v/1",), ()),
        sweep=SweepSummary(P, (), (), 0, ()),
    )


def failures(readings: Readings) -> list:
    return [c for c in judge(readings) if c.status is not Status.OK]


def test_doctor_checks_a_healthy_deployment_is_all_ok():
    checks = judge(healthy())
    assert [c for c in checks if c.status is not Status.OK] == []
    assert len(checks) >= 20


def test_doctor_checks_a_changed_filter_fails_with_a_diff_and_the_update_command():
    r = healthy()
    broken = r.sink.filter.replace(' OR "v1.compute.routers.patch"', "")
    (check,) = failures(dataclasses.replace(r, sink=dataclasses.replace(r.sink, filter=broken)))
    assert check.title == "its filter equals the one rendered from the trigger list"
    assert "+v1.compute.routers.patch" in [d.replace('"', "") for d in check.detail]
    assert check.fix.startswith(f"gcloud logging sinks update {NAMES.sink} --project={P} --log-filter=")
    assert "v1.compute.routers.patch" in check.fix


def test_doctor_checks_a_filter_without_self_exclusion_fails_twice():
    r = healthy()
    bare = expected.sink_filter()
    found = failures(dataclasses.replace(r, sink=dataclasses.replace(r.sink, filter=bare)))
    assert [c.title for c in found] == ["its filter equals the one rendered from the trigger list",
                                        "it excludes egress-guard's own service accounts"]
    assert len(found[1].detail) == 3


def test_doctor_checks_a_missing_permission_fails_with_the_exact_role_update():
    r = healthy()
    role = r.roles["ensure_nat"]
    short = dataclasses.replace(role, permissions=role.permissions - {"compute.routers.create"})
    (check,) = failures(dataclasses.replace(r, roles={**r.roles, "ensure_nat": short}))
    assert check.detail == ("missing compute.routers.create",)
    assert check.fix == (f"gcloud iam roles update egress_guard_ensure_nat --project={P} "
                         "--permissions=compute.routers.create,compute.routers.get")


def test_doctor_checks_an_extra_permission_fails_as_least_privilege():
    r = healthy()
    role = r.roles["replace_connector_firewalls"]
    more = dataclasses.replace(role, permissions=role.permissions | {"compute.firewalls.delete"})
    (check,) = failures(dataclasses.replace(r, roles={**r.roles, "replace_connector_firewalls": more}))
    assert check.detail == ("extra compute.firewalls.delete (least privilege)",)


def test_doctor_checks_a_role_not_granted_fails_with_the_binding_command():
    r = healthy()
    found = failures(dataclasses.replace(r, scope_bindings={}))  # two roles; notify_slack has none to grant
    assert [c.title for c in found] == [f"the role is granted to egress-guard-nat on projects/{P}",
                                        f"the role is granted to egress-guard-firewalls on projects/{P}"]
    assert found[0].fix == (f"gcloud projects add-iam-policy-binding {P} "
                            f"--member=serviceAccount:egress-guard-nat@{P}.iam.gserviceaccount.com "
                            f"--role=projects/{P}/roles/egress_guard_ensure_nat --condition=None")


def test_doctor_checks_secret_without_enabled_version_fails_and_never_names_a_value():
    r = healthy()
    (check,) = failures(dataclasses.replace(r, secret=Secret(r.secret.name, (), ("v/1",))))
    assert check.title == "it has an enabled version (its value is not read)"
    assert check.fix.startswith('printf %s "$SLACK_WEBHOOK_URL" | gcloud secrets versions add egress-guard-slack-webhook')


def test_doctor_checks_dead_letters_fail_with_the_pull_and_replay_command():
    (check,) = failures(dataclasses.replace(healthy(), dead_letters=Waiting(3, False)))
    assert check.title == f"no message waits in {NAMES.dead_letter_subscription}"
    assert check.detail[0].startswith("3 message(s) wait")
    assert f"egress-guard dead-letters --subscription projects/{P}/subscriptions/{NAMES.dead_letter_subscription} --redrive" in check.fix


def test_doctor_checks_writer_without_publish_fails_with_the_grant():
    (check,) = failures(dataclasses.replace(healthy(), audit_topic_publishers=frozenset()))
    assert check.fix == (f"gcloud pubsub topics add-iam-policy-binding {NAMES.audit_topic} --project={P} "
                         f"--member={WRITER} --role=roles/pubsub.publisher")


def test_doctor_checks_a_function_not_active_or_under_another_account_fails():
    r = healthy()
    fn = r.functions["ensure_nat"]
    found = failures(dataclasses.replace(r, functions={**r.functions, "ensure_nat": dataclasses.replace(
        fn, state="FAILED", service_account="123-compute@developer.gserviceaccount.com")}))
    assert [c.title for c in found] == ["function egress-guard-ensure-nat exists and is ACTIVE",
                                        f"egress-guard-ensure-nat runs as egress-guard-nat@{P}.iam.gserviceaccount.com"]


def test_doctor_checks_a_push_subscription_without_dead_letter_fails():
    r = healthy()
    bare = dataclasses.replace(push("a", NAMES.audit_topic), dead_letter_topic="")
    (check,) = failures(dataclasses.replace(r, push_subscriptions={**r.push_subscriptions, NAMES.audit_topic: (
        bare, push("b", NAMES.audit_topic))}))
    assert "--dead-letter-topic=" + DEAD_LETTER in check.fix


def test_doctor_checks_a_bad_policy_names_the_key():
    (check,) = failures(dataclasses.replace(healthy(), policy=PolicyFile("p.yaml", "firewall.mode: 'x' is not ...")))
    assert check.detail == ("firewall.mode: 'x' is not ...",) and check.fix


@pytest.mark.parametrize("code, status", [(404, Status.FAIL), (403, Status.UNKNOWN), (None, Status.UNKNOWN)])
def test_doctor_checks_an_unreadable_sink_is_missing_or_unknown_with_its_reason(code, status):
    r = dataclasses.replace(healthy(), sink=Unreadable("logging.sinks.get x: why", code))
    first = judge(r)[0]
    assert first.status is status and "why" in first.detail[0]
    assert (first.fix is not None) == (status is Status.FAIL)


def test_doctor_checks_every_failure_has_a_fix():
    r = healthy()
    broken = dataclasses.replace(r, sink=Unreadable("gone", 404), topics={t: False for t in r.topics},
                                 dead_letter_subscription=Unreadable("gone", 404), secret=Unreadable("gone", 404),
                                 roles={k: Unreadable("gone", 404) for k in r.roles},
                                 functions={k: Unreadable("gone", 404) for k in r.functions},
                                 sweep=SweepSummary(P, ("x",), (), 1, ()))
    found = [c for c in judge(broken) if c.status is Status.FAIL]
    assert len(found) >= 10 and all(c.fix for c in found)


def test_doctor_checks_filter_diff_shows_one_method_per_line():
    diff = filter_diff('a AND b=("x" OR "y")', 'a AND b=("x" OR "z")')
    assert '-"y"' in diff and '+"z"' in diff
