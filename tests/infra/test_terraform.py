"""infra/ checked without a cloud: formatting, module conventions, security properties, checkov.

`terraform init/validate` need the provider, which cannot be downloaded here; everything below
reads the .tf files (python-hcl2) or runs tools that work offline.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.infra.hcl import (
    EXAMPLE,
    INFRA,
    REPO,
    blocks,
    example_functions,
    load,
    locals_of,
    module_dirs,
    resources,
    tf_files,
)

pytestmark = pytest.mark.infra

MODULES = INFRA / "modules"
CHECKOV_VERSION = "3.3.30"
CHECKOV_HOME = REPO / ".local" / "tools" / "checkov"


def _terraform() -> str:
    path = shutil.which("terraform")
    if path is None:
        pytest.skip("terraform is not installed on this machine (needed for `terraform fmt` only)")
    return path


def test_terraform_fmt_check():
    result = subprocess.run(
        [_terraform(), "fmt", "-check", "-recursive", "-diff", str(INFRA)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, f"terraform fmt would change:\n{result.stdout}\n{result.stderr}"


def test_every_tf_file_parses():
    assert tf_files(), "no .tf files under infra/"
    for tf in tf_files():
        load(tf)  # raises on a syntax error, naming the file


def test_layout_one_module_per_concern_plus_the_example():
    assert {p.name for p in MODULES.iterdir() if p.is_dir()} == {"log-routing", "guardrail-function", "notifications",
                                                                 "monitoring", "scheduled-sweep"}
    for directory in module_dirs():
        for required in ("variables.tf", "outputs.tf", "versions.tf", "README.md"):
            assert (directory / required).is_file(), f"{directory.relative_to(REPO)} has no {required}"


@pytest.mark.parametrize("directory", module_dirs(), ids=lambda p: str(p.relative_to(INFRA)))
def test_every_variable_has_a_type_and_a_description(directory):
    variables = list(blocks(directory, "variable"))
    assert variables, f"{directory} declares no variable"
    for name, body in variables:
        assert body.get("type"), f"{directory.name}: variable {name} has no type"
        assert str(body.get("description", "")).strip(), f"{directory.name}: variable {name} has no description"


@pytest.mark.parametrize("directory", module_dirs(), ids=lambda p: str(p.relative_to(INFRA)))
def test_every_output_has_a_description(directory):
    for name, body in blocks(directory, "output"):
        assert str(body.get("description", "")).strip(), f"{directory.name}: output {name} has no description"


@pytest.mark.parametrize("directory", module_dirs(), ids=lambda p: str(p.relative_to(INFRA)))
def test_every_variable_is_explained_in_the_readme(directory):
    readme = (directory / "README.md").read_text(encoding="utf-8")
    for name, _ in blocks(directory, "variable"):
        assert f"`{name}`" in readme, f"{directory.relative_to(REPO)}/README.md does not explain `{name}`"


def test_google_provider_is_pinned_to_6_x_everywhere():
    for directory in module_dirs():
        (terraform,) = load(directory / "versions.tf")["terraform"]
        google = terraform["required_providers"][0]["google"]
        assert google["source"] == "hashicorp/google"
        assert re.fullmatch(r"~> 6\.\d+", google["version"]), f"{directory.name}: google {google['version']}"


def test_example_validates_the_inputs_people_get_wrong():
    validated = {name for name, body in blocks(EXAMPLE, "variable") if body.get("validation")}
    assert {"project_id", "region", "scope", "enabled_functions", "instances", "kms_key_name", "deployers"} <= validated


# --- Security properties ------------------------------------------------------------------------


def test_nothing_is_public():
    for tf in tf_files():
        code = "\n".join(line.split("#", 1)[0] for line in tf.read_text(encoding="utf-8").splitlines())
        for public in ("allUsers", "allAuthenticatedUsers"):
            assert public not in code, f"{tf.relative_to(REPO)} grants {public}"


def _function_resource() -> dict:
    (function,) = resources(MODULES / "guardrail-function", "google_cloudfunctions2_function").values()
    return function


def test_functions_are_internal_only():
    (service,) = _function_resource()["service_config"]
    assert service["ingress_settings"] == "ALLOW_INTERNAL_ONLY"


def test_functions_retry_on_failure():
    (trigger,) = _function_resource()["event_trigger"]
    assert trigger["retry_policy"] == "RETRY_POLICY_RETRY"
    assert trigger["event_type"] == "google.cloud.pubsub.topic.v1.messagePublished"


def test_functions_have_a_dead_letter_topic():
    module_dir = MODULES / "guardrail-function"
    variables = dict(blocks(module_dir, "variable"))
    assert "default" not in variables["dead_letter"], "dead_letter must be required, never silently off"
    (dead_letter,) = resources(module_dir, "terraform_data")["dead_letter"]["provisioner"]
    command = dead_letter["local-exec"]["command"]
    assert "--dead-letter-topic" in command and "--max-delivery-attempts" in command
    # The ack deadline too: notify_slack's Slack budget ends before it, so no finding is pushed to a
    # second instance while the first still posts it (a duplicate across instances).
    from egress_guard.notify.settings import DEFAULT_BUDGET_S

    assert '--ack-deadline="$ACK_DEADLINE"' in command
    assert dead_letter["local-exec"]["environment"]["ACK_DEADLINE"] == "${tostring(var.ack_deadline_seconds)}"
    assert DEFAULT_BUDGET_S < variables["ack_deadline_seconds"]["default"] <= variables["timeout_seconds"]["default"]
    (call,) = [body for name, body in blocks(EXAMPLE, "module") if name == "functions"]
    assert "module.notifications.dead_letter_topic_id" in str(call["dead_letter"])
    # Pub/Sub's service agent may publish to the dead-letter topic (and a subscription keeps them).
    notifications = MODULES / "notifications"
    grant = resources(notifications, "google_pubsub_topic_iam_member")["dead_letter_publisher"]
    assert grant["role"] == "roles/pubsub.publisher" and "gcp-sa-pubsub" in locals_of(notifications)["pubsub_service_agent"]
    assert "dead_letter_inbox" in resources(notifications, "google_pubsub_subscription")


def test_each_function_has_its_own_service_account_and_no_predefined_project_role():
    module_dir = MODULES / "guardrail-function"
    assert resources(module_dir, "google_service_account")["function"]["account_id"] == "${var.service_account_id}"
    ids = [f["service_account_id"] for f in example_functions().values()]
    assert len(set(ids)) == len(ids), "functions share a service account"
    for kind in ("google_project_iam_member", "google_folder_iam_member", "google_organization_iam_member"):
        for name, grant in resources(module_dir, kind).items():
            assert grant["role"] == "${local.role_name}", f"{kind}.{name} grants {grant['role']}, not the custom role"


def test_function_roles_give_every_permission_a_comment():
    text = (EXAMPLE / "functions.tf").read_text(encoding="utf-8")
    lists = re.findall(r"permissions\s*=\s*\[(.*?)\]", text, flags=re.DOTALL)
    assert len(lists) == len(example_functions())
    for body in lists:
        for line in body.splitlines():
            if '"' in line:
                assert re.search(r'^\s*"[a-zA-Z.]+",?\s*#\s*\S', line), f"permission without a why-comment: {line.strip()}"


def test_sink_is_unique_writer_and_aggregated_sinks_include_children():
    module_dir = MODULES / "log-routing"
    assert resources(module_dir, "google_logging_project_sink")["sink"]["unique_writer_identity"] is True
    assert resources(module_dir, "google_logging_folder_sink")["sink"]["include_children"] is True
    assert resources(module_dir, "google_logging_organization_sink")["sink"]["include_children"] is True


def test_sink_writer_may_publish_to_the_audit_topic_only():
    module_dir = MODULES / "log-routing"
    (grant,) = resources(module_dir, "google_pubsub_topic_iam_member").values()
    assert grant == {
        "project": "${var.project_id}",
        "topic": "${google_pubsub_topic.audit.name}",
        "role": "roles/pubsub.publisher",
        "member": "${local.writer_identity}",
    }
    for kind in ("google_project_iam_member", "google_project_iam_binding", "google_pubsub_topic_iam_binding"):
        assert not resources(module_dir, kind), f"log-routing must not use {kind}"


def test_each_slack_destination_is_its_own_secret_given_to_notify_slack():
    from egress_guard.policy import webhook_variable

    (secret,) = [body for name, body in resources(MODULES / "notifications", "google_secret_manager_secret").items()
                 if name == "slack_destination"]
    assert secret["for_each"] == "${toset(var.slack_destinations)}"
    assert "-slack-webhook-${each.value}" in secret["secret_id"]
    (call,) = [body for name, body in blocks(EXAMPLE, "module") if name == "functions"]
    secrets = str(call["secret_environment_variables"])
    # The default destination keeps the single-webhook variable; each team destination its own.
    assert "module.notifications.slack_webhook_secret_id" in secrets
    assert "module.notifications.slack_destination_secret_ids" in secrets
    assert 'SLACK_WEBHOOK_URL_${upper(replace(name, "-", "_"))}' in secrets
    assert webhook_variable("team-a") == "SLACK_WEBHOOK_URL_TEAM_A" and webhook_variable("default") == "SLACK_WEBHOOK_URL"


def test_alerts_watch_the_dead_letter_inbox_and_function_errors():
    policies = resources(MODULES / "monitoring", "google_monitoring_alert_policy")
    assert set(policies) == {"dead_letters", "function_errors"}
    (dead,) = policies["dead_letters"]["conditions"]
    (threshold,) = dead["condition_threshold"]
    assert "pubsub.googleapis.com/subscription/num_undelivered_messages" in threshold["filter"]
    assert "local.dead_letter_subscription" in threshold["filter"]
    (errors,) = policies["function_errors"]["conditions"]
    assert "5xx" in errors["condition_threshold"][0]["filter"]
    for body in policies.values():
        assert body["notification_channels"] == "${var.notification_channels}"
        assert "Runbook" in str(load(MODULES / "monitoring" / "main.tf")["locals"])
    (call,) = [body for name, body in blocks(EXAMPLE, "module") if name == "monitoring"]
    assert call["count"] == "${var.alerts.enabled ? 1 : 0}", "alerts are optional in the example"
    assert call["dead_letter_subscription"] == "${module.notifications.dead_letter_inbox}"
    assert "When an alert fires" in (INFRA / "README.md").read_text(encoding="utf-8")


def test_slack_webhook_is_a_secret_environment_variable_and_never_in_state():
    (call,) = [body for name, body in blocks(EXAMPLE, "module") if name == "functions"]
    assert "SLACK_WEBHOOK_URL" in str(call["secret_environment_variables"])
    assert "SLACK_WEBHOOK_URL" not in str(call["environment_variables"])
    assert [name for name, f in example_functions().items() if f["uses_slack"]] == ["notify_slack"]
    notifications = MODULES / "notifications"
    (version,) = resources(notifications, "google_secret_manager_secret_version").values()
    assert "secret_data" not in version and "secret_data_wo" in version, "a secret value would be stored in the state"
    variables = dict(blocks(notifications, "variable"))
    assert variables["slack_webhook_url"]["sensitive"] is True and variables["slack_webhook_url"]["ephemeral"] is True


# --- checkov --------------------------------------------------------------------------------------


def _checkov() -> Path:
    """checkov in its own virtualenv (its pins clash with .venv), installed once per version."""
    executable = CHECKOV_HOME / "bin" / "checkov"
    stamp = CHECKOV_HOME / f".installed-{CHECKOV_VERSION}"
    if stamp.is_file() and executable.is_file():
        return executable
    if CHECKOV_HOME.exists():
        shutil.rmtree(CHECKOV_HOME)
    steps = [
        [sys.executable, "-m", "venv", str(CHECKOV_HOME)],
        [str(CHECKOV_HOME / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
         f"checkov=={CHECKOV_VERSION}"],
    ]
    for step in steps:
        result = subprocess.run(step, capture_output=True, text=True, timeout=900)
        if result.returncode != 0:
            pytest.skip(f"could not install checkov {CHECKOV_VERSION} into {CHECKOV_HOME}: {result.stderr[-500:]}")
    stamp.write_text(CHECKOV_VERSION + "\n", encoding="utf-8")
    return executable


def test_checkov_finds_no_failed_check():
    checkov = _checkov()
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"}
    result = subprocess.run(
        [str(checkov), "-d", str(INFRA), "--framework", "terraform", "--output", "json", "--skip-download"],
        capture_output=True, text=True, timeout=600, env=env,
    )
    assert result.stdout.strip(), f"checkov printed nothing: {result.stderr[-2000:]}"
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    failed = [c for r in reports for c in r["results"]["failed_checks"]]
    summary = [r["summary"] for r in reports]
    print(f"checkov {CHECKOV_VERSION}: {summary}")
    assert sum(s["passed"] for s in summary) > 0, "checkov checked nothing"
    assert not failed, "\n".join(f"{c['check_id']} {c['resource']} ({c['file_path']}): {c['check_name']}" for c in failed)
    assert all(s["parsing_errors"] == 0 for s in summary)


def test_every_checkov_skip_says_why():
    for tf in tf_files():
        for line in tf.read_text(encoding="utf-8").splitlines():
            if "checkov:skip" in line:
                assert re.search(r"#checkov:skip=CKV2?_[A-Z]+_\d+:\S.{10,}", line), f"{tf.name}: skip without a reason: {line.strip()}"


def test_infra_holds_sources_only():
    # No state, plan, lock or provider cache committed next to the modules (checkov scans it all).
    stray = [p for p in INFRA.rglob("*") if p.is_file() and p.suffix not in {".tf", ".md", ".yaml", ".example"}]
    assert not stray, f"unexpected files under infra/: {stray}"


def test_environment_names_are_the_ones_egress_guard_reads():
    # The Terraform and egress_guard's settings must agree on every variable name.
    main_tf = (EXAMPLE / "main.tf").read_text(encoding="utf-8")
    names = set(re.findall(r"\b((?:EGRESS_GUARD|SLACK)_[A-Z_]+)\s*=", main_tf))
    assert {"EGRESS_GUARD_PROJECT", "EGRESS_GUARD_SELF_PRINCIPALS", "EGRESS_GUARD_POLICY",
            "EGRESS_GUARD_FINDINGS_TOPIC", "SLACK_WEBHOOK_URL"} <= names
    package = REPO / "functions" / "egress_guard"
    source = "\n".join(p.read_text(encoding="utf-8") for p in package.rglob("*.py"))
    for name in sorted(names):
        assert f'"{name}"' in source, f"the Terraform sets {name}, which egress_guard never reads"


def test_policy_file_is_mounted_where_egress_guard_policy_points():
    policy = locals_of(EXAMPLE)
    assert policy["policy_file"] == "${local.policy_mount}/policy.yaml"
    assert policy["policy_mount"].startswith("/etc/secrets/")
    assert "local.policy_file" in str(policy["common_environment"])
    (call,) = [body for name, body in blocks(EXAMPLE, "module") if name == "functions"]
    assert call["secret_volumes"] == "${local.policy_volumes}"
    assert "google_secret_manager_secret_version.policy" in str(call["depends_on"])


def test_functions_deploy_the_shape_the_reliability_tests_run():
    """Concurrency 1 and, by default, at most 3 instances per function: the local stacks the reliability
    tests start (gunicorn WORKERS=N THREADS=1) are that shape. The SIGKILL and Slack tests run exactly the
    default 3; the router race runs 5, at least the default: the fix it proves (verify after write) holds for
    any number of instances, and more writers on one router make the race harder, not easier."""
    from tests.reliability.test_function_crash import INSTANCES
    from tests.reliability.test_router_race import INSTANCES as RACE_INSTANCES
    from tests.reliability.test_slack_outage import INSTANCES as SLACK_INSTANCES

    assert INSTANCES == SLACK_INSTANCES and RACE_INSTANCES >= INSTANCES

    (function,) = resources(MODULES / "guardrail-function", "google_cloudfunctions2_function").values()
    (service,) = function["service_config"]
    assert service["max_instance_request_concurrency"] == 1
    main = (EXAMPLE / "main.tf").read_text()
    defaults = set(re.findall(r"lookup\(var\.instances, each\.key, \{ min = 0, max = (\d+) \}\)\.max", main))
    assert defaults == {str(INSTANCES)}, defaults
    assert f"max = optional(number, {INSTANCES})" in (EXAMPLE / "variables.tf").read_text()
