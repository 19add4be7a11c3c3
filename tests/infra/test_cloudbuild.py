"""cloudbuild.yaml: every function packaged and deployed on its own, consistent with the Terraform."""

from __future__ import annotations

import re
import shlex
from typing import Any

import pytest
import yaml
from egress_guard.packaging import discover_functions

from tests.infra.hcl import EXAMPLE, REPO, blocks, example_functions

pytestmark = pytest.mark.infra

EXPECTED_FUNCTIONS = ("ensure_nat", "replace_connector_firewalls", "notify_slack")


@pytest.fixture(scope="module")
def build() -> dict[str, Any]:
    return yaml.safe_load((REPO / "cloudbuild.yaml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def steps(build) -> dict[str, dict[str, Any]]:
    ids = [s.get("id") for s in build["steps"]]
    assert all(ids), "every step has an id"
    assert len(set(ids)) == len(ids), "step ids are unique"
    return {s["id"]: s for s in build["steps"]}


def _kebab(name: str) -> str:
    return name.replace("_", "-")


def _script(step: dict[str, Any]) -> str:
    assert step.get("entrypoint") == "bash"
    return step["args"][-1]


def _functions_under_test() -> list[str]:
    # The three the design names, plus any other functions/<name>/main.py that appears.
    return sorted(set(EXPECTED_FUNCTIONS) | set(discover_functions()))


def test_default_substitution_deploys_all_three(build):
    assert build["substitutions"]["_FUNCTIONS"].split(",") == list(EXPECTED_FUNCTIONS)


def test_lint_and_tests_run_before_any_packaging(steps):
    assert "ruff check" in _script(steps["lint"])
    assert "make test" in _script(steps["test"])
    assert "google-cloud-cli" in steps["test"]["name"] or steps["test"]["name"] == "${_CLI_IMAGE}"


@pytest.mark.parametrize("name", _functions_under_test())
def test_function_has_its_package_step(steps, name):
    step = steps.get(f"package-{_kebab(name)}")
    assert step is not None, f"cloudbuild.yaml has no package-{_kebab(name)} step for functions/{name}"
    assert set(step["waitFor"]) == {"lint", "test"}
    assert f"-m egress_guard.packaging dist/functions --only {name}" in _script(step)


@pytest.mark.parametrize("name", _functions_under_test())
def test_function_has_a_deploy_step_waiting_only_on_its_package_step(steps, name):
    step = steps.get(f"deploy-{_kebab(name)}")
    assert step is not None, f"cloudbuild.yaml has no deploy-{_kebab(name)} step for functions/{name}"
    assert step["waitFor"] == [f"package-{_kebab(name)}"], "a deploy waits on its own packaging, nothing else"
    script = _script(step)
    assert f'",${{_FUNCTIONS}}," != *",{name},"*' in script, "deploy is skipped unless named in _FUNCTIONS"
    assert re.search(r"exit 0", script)


@pytest.mark.parametrize("name", _functions_under_test())
def test_deploy_command_matches_the_terraform(steps, name):
    script = _script(steps[f"deploy-{_kebab(name)}"])
    command = shlex.split(script[script.index("gcloud functions deploy"):].replace("\\\n", " "))
    assert command[:3] == ["gcloud", "functions", "deploy"]
    flags = dict(arg.split("=", 1) for arg in command[4:] if "=" in arg)
    assert "--gen2" in command and "--no-allow-unauthenticated" in command
    assert flags["--source"] == f"dist/functions/{name}"
    assert flags["--runtime"] == "python312"
    assert flags["--ingress-settings"] == "internal-only"
    function = example_functions()[name]
    assert flags["--entry-point"] == function["entry_point"]
    assert flags["--service-account"] == f"{function['service_account_id']}@${{PROJECT_ID}}.iam.gserviceaccount.com"
    # Same name as the Terraform gives it: "${var.name_prefix}-${replace(each.key, "_", "-")}".
    (call,) = [body for label, body in blocks(EXAMPLE, "module") if label == "functions"]
    assert call["name"] == '${var.name_prefix}-${replace(each.key, "_", "-")}'
    assert command[3] == f"${{_NAME_PREFIX}}-{_kebab(name)}"


def test_deploy_steps_never_wait_on_each_other(steps):
    deploys = {i for i in steps if i.startswith("deploy-")}
    for step_id in deploys:
        assert not set(steps[step_id]["waitFor"]) & deploys


def test_only_declared_substitutions_are_used(build):
    text = (REPO / "cloudbuild.yaml").read_text(encoding="utf-8")
    used = set(re.findall(r"\$\{(_[A-Z0-9_]+)\}", text))
    assert used <= set(build["substitutions"]), used - set(build["substitutions"])
