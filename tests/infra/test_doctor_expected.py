"""What doctor expects of a deployment (``egress_guard/doctor/expected.py``) is what ``infra/`` deploys:
the sink filter, the functions' identities and triggers, and their custom roles' permissions."""

from __future__ import annotations

import pytest

from egress_guard.doctor import expected
from egress_guard.events import TRIGGER_METHODS
from localcloud.infra_sink import functions_from_terraform, sink_filter_from_terraform
from tests.infra.hcl import INFRA, example_functions
from tests.infra.test_iam import declared_methods, role_permissions_for

pytestmark = pytest.mark.infra


@pytest.mark.parametrize("project", ["eg-demo-project", "another-project-1"])
def test_doctor_expected_sink_filter_equals_the_terraform_one(project):
    assert expected.sink_filter(TRIGGER_METHODS, expected.self_principals(project)) == \
        sink_filter_from_terraform(INFRA, project_id=project)


def test_doctor_expected_functions_are_the_examples():
    functions = example_functions()
    assert {f.key for f in expected.FUNCTIONS} == set(functions)
    for spec in expected.FUNCTIONS:
        assert spec.service_account_id == functions[spec.key]["service_account_id"]
        assert spec.trigger == functions[spec.key]["trigger"]


def test_doctor_expected_role_permissions_are_the_terraform_roles():
    table = expected.role_permissions(INFRA)
    deployed = functions_from_terraform(INFRA)
    for spec in expected.FUNCTIONS:
        assert table[spec.key] == frozenset(deployed[spec.key]["permissions"]), spec.key
        assert table[spec.key] == role_permissions_for(declared_methods()[spec.key])


def test_doctor_expected_permission_table_missing_is_said(tmp_path):
    with pytest.raises(expected.PermissionTableMissing, match="--infra"):
        expected.role_permissions(tmp_path)


def test_doctor_expected_names_follow_the_modules():
    text = (INFRA / "modules" / "notifications" / "main.tf").read_text()
    names = expected.Names("PFX")
    assert '"${var.name_prefix}-dead-letter-inbox"' in text and names.dead_letter_subscription == "PFX-dead-letter-inbox"
    assert '"${var.name_prefix}-slack-webhook"' in text and names.slack_secret == "PFX-slack-webhook"
    assert '"${var.name_prefix}-findings"' in text and names.findings_topic == "PFX-findings"
    main = (INFRA / "examples" / "single-project" / "main.tf").read_text()
    assert 'name                = "${var.name_prefix}-audit"' in main and names.sink == names.audit_topic == "PFX-audit"
    assert '"${var.name_prefix}-${replace(each.key, "_", "-")}"' in main
    assert expected.FUNCTIONS[0].name("PFX") == "PFX-ensure-nat" and expected.FUNCTIONS[0].role_id("PFX") == "PFX_ensure_nat"
