"""localcloud/infra_sink.py: the sink filter rendered from the Terraform, as Terraform would build it."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from localcloud.infra_sink import (
    LOCAL_PROJECT,
    TerraformError,
    UnsupportedTerraform,
    sink_filter_from_terraform,
)
from egress_guard.events import TRIGGER_METHODS
from tests.infra.hcl import INFRA, blocks, example_functions

pytestmark = pytest.mark.infra

DESIGN_TRIGGER_METHODS = list(TRIGGER_METHODS)  # docs/design.md §1, written once in egress_guard.events
LOG_ROUTING = INFRA / "modules" / "log-routing"


def _values_in(clause: str) -> list[str]:
    return re.findall(r'"([^"]*)"', clause)


def test_filter_has_exactly_the_three_clauses():
    text = sink_filter_from_terraform(INFRA)
    clauses = text.split(" AND ")
    assert clauses[0] == 'logName:"cloudaudit.googleapis.com%2Factivity"'
    assert clauses[1].startswith("protoPayload.methodName=(") and clauses[1].endswith(")")
    assert clauses[2].startswith("NOT protoPayload.authenticationInfo.principalEmail=(") and clauses[2].endswith(")")
    assert len(clauses) == 3


def test_the_terraform_default_trigger_list_is_the_python_one():
    # The sink routes variables.tf's default; the guardrails parse and backfill queries events.TRIGGERS.
    (default,) = [body["default"] for label, body in blocks(LOG_ROUTING, "variable") if label == "trigger_methods"]
    assert default == list(TRIGGER_METHODS)


def test_filter_lists_the_design_trigger_methods_in_order():
    text = sink_filter_from_terraform(INFRA)
    assert _values_in(text.split(" AND ")[1]) == DESIGN_TRIGGER_METHODS
    assert ' OR '.join(f'"{m}"' for m in DESIGN_TRIGGER_METHODS) in text


def test_filter_excludes_every_egress_guard_service_account():
    text = sink_filter_from_terraform(INFRA, project_id="my-guarded-project")
    expected = sorted(
        f"{f['service_account_id']}@my-guarded-project.iam.gserviceaccount.com"
        for _, f in sorted(example_functions().items())
    )
    assert sorted(_values_in(text.split(" AND ")[2])) == expected


def test_default_project_is_the_local_stacks():
    assert f"@{LOCAL_PROJECT}.iam.gserviceaccount.com" in sink_filter_from_terraform(INFRA)


def test_filter_is_well_formed():
    text = sink_filter_from_terraform(INFRA)
    assert text.count('"') % 2 == 0
    depth = 0
    for char in re.sub(r'"[^"]*"', '""', text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        assert depth >= 0
    assert depth == 0
    assert "\n" not in text and "  " not in text


def test_filter_follows_the_method_list_in_the_terraform_not_a_copy(tmp_path):
    infra = _copy_infra(tmp_path)
    variables = infra / "modules" / "log-routing" / "variables.tf"
    variables.write_text(variables.read_text().replace('"v1.compute.firewalls.delete",\n', ""), encoding="utf-8")
    assert "v1.compute.firewalls.delete" not in sink_filter_from_terraform(infra)
    assert "v1.compute.firewalls.delete" in sink_filter_from_terraform(INFRA)


def test_example_variables_can_be_overridden():
    with pytest.raises(TerraformError, match="no variable"):
        sink_filter_from_terraform(INFRA, variables={"not_a_variable": 1})


def test_module_default_matches_the_design_list():
    (default,) = [body["default"] for name, body in blocks(INFRA / "modules" / "log-routing", "variable")
                  if name == "trigger_methods"]
    assert default == DESIGN_TRIGGER_METHODS


# --- The evaluator on small modules ----------------------------------------------------------------


def _module(tmp_path: Path, module_locals: str, call_args: str = "", variables: str = "") -> Path:
    infra = tmp_path / "infra"
    (infra / "examples" / "single-project").mkdir(parents=True)
    (infra / "modules" / "log-routing").mkdir(parents=True)
    (infra / "examples" / "single-project" / "main.tf").write_text(textwrap.dedent(f"""
        variable "project_id" {{
          type = string
        }}
        {variables}
        module "log_routing" {{
          source = "../../modules/log-routing"
          {call_args}
        }}
    """), encoding="utf-8")
    sinks = "\n".join(
        f'resource "{kind}" "sink" {{\n  filter = local.filter\n}}'
        for kind in ("google_logging_project_sink", "google_logging_folder_sink", "google_logging_organization_sink")
    )
    (infra / "modules" / "log-routing" / "main.tf").write_text(
        textwrap.dedent(module_locals) + "\n" + sinks + "\n", encoding="utf-8"
    )
    return infra


def test_evaluator_handles_conditionals_objects_and_escapes(tmp_path):
    infra = _module(tmp_path, r'''
        variable "names" {
          type    = map(string)
          default = { b = "two", a = "one" }
        }
        variable "on" {
          type    = bool
          default = true
        }
        locals {
          pairs  = [for k, v in var.names : "${k}=\"${v}\"" if v != "zero"]
          filter = var.on ? "${join(" OR ", local.pairs)} AND x=$${literal}\u0021" : "off"
        }
    ''')
    assert sink_filter_from_terraform(infra) == 'a="one" OR b="two" AND x=${literal}!'


def test_evaluator_passes_call_arguments_from_the_root(tmp_path):
    infra = _module(
        tmp_path,
        '''
        variable "who" {
          type = list(string)
        }
        locals {
          filter = join(",", [for w in var.who : upper(w)])
        }
        ''',
        call_args="who = [for n in sort(keys(local.ids)) : \"${local.ids[n]}@${var.project_id}\"]",
        variables='locals {\n  ids = { z = "zed", a = "ay" }\n}',
    )
    assert sink_filter_from_terraform(infra, project_id="p-1") == "AY@P-1,ZED@P-1"


def test_evaluator_refuses_what_it_cannot_render(tmp_path):
    infra = _module(tmp_path, '''
        locals {
          filter = regex("a+", "aaa")
        }
    ''')
    with pytest.raises(UnsupportedTerraform, match="regex"):
        sink_filter_from_terraform(infra)


def test_evaluator_refuses_resource_references(tmp_path):
    infra = _module(tmp_path, '''
        locals {
          filter = google_pubsub_topic.audit.id
        }
    ''')
    with pytest.raises(UnsupportedTerraform, match="google_pubsub_topic"):
        sink_filter_from_terraform(infra)


def test_evaluator_reports_a_missing_variable(tmp_path):
    infra = _module(tmp_path, '''
        variable "methods" {
          type = list(string)
        }
        locals {
          filter = join(" OR ", var.methods)
        }
    ''')
    with pytest.raises(TerraformError, match="var.methods"):
        sink_filter_from_terraform(infra)


def test_sinks_that_disagree_are_an_error(tmp_path):
    infra = _module(tmp_path, '''
        locals {
          filter = "a"
        }
    ''')
    main = infra / "modules" / "log-routing" / "main.tf"
    main.write_text(main.read_text().replace(
        'resource "google_logging_folder_sink" "sink" {\n  filter = local.filter',
        'resource "google_logging_folder_sink" "sink" {\n  filter = "b"'), encoding="utf-8")
    with pytest.raises(TerraformError, match="different filters"):
        sink_filter_from_terraform(infra)


def _copy_infra(tmp_path: Path) -> Path:
    import shutil

    target = tmp_path / "infra"
    shutil.copytree(INFRA, target, ignore=shutil.ignore_patterns("*.md", ".terraform*"))
    return target


# --- The rendered text, evaluated by localcloud's Logging filter engine --------------------------------


def _entry(method: str, principal: str = "alice@example.com", log: str = "activity") -> dict:
    return {
        "logName": f"projects/{LOCAL_PROJECT}/logs/cloudaudit.googleapis.com%2F{log}",
        "protoPayload": {"methodName": method, "authenticationInfo": {"principalEmail": principal}},
    }


def test_localcloud_filter_engine_routes_exactly_what_the_sink_should():
    engine = pytest.importorskip("localcloud.auditlog.filter", reason="localcloud's filter engine is not there yet")
    sink = engine.parse(sink_filter_from_terraform(INFRA))
    for method in DESIGN_TRIGGER_METHODS:
        assert sink.matches(_entry(method)), method
    for method in ("v1.compute.instances.insert", "v1.compute.routers.insert", "google.cloud.run.v2.Jobs.RunJob"):
        assert not sink.matches(_entry(method)), method
    assert not sink.matches(_entry("v1.compute.firewalls.insert", log="data_access"))
    for function in example_functions().values():
        own = f"{function['service_account_id']}@{LOCAL_PROJECT}.iam.gserviceaccount.com"
        assert not sink.matches(_entry("v1.compute.firewalls.insert", principal=own)), own
