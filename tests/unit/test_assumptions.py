"""The UNCONFIRMED registry: one record per constant, judged against audit entries; the doc lists the
same constants; entries are exported with identities replaced by stable placeholders."""

from __future__ import annotations

import copy
import json
import re

import pytest

from egress_guard import assumptions
from egress_guard.assumptions import ASSUMPTIONS
from egress_guard.doctor.assumed import CONFIRMED, NOT_SEEN, REFUTED, anonymise, export, judge_assumptions
from egress_guard.events import TRIGGERS
from tests.paths import ROOT

FIXTURES = ROOT / "tests" / "fixtures"


def entry(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


CONNECTOR = "vpcaccess-google.cloud.vpcaccess.v1.VpcAccessService.CreateConnector.json"
V1_JOB = "run-google.cloud.run.v1.Jobs.CreateJob.json"


def verdicts(entries) -> dict[str, str]:
    return {r.assumption.key: r.verdict for r in judge_assumptions(entries)}


def test_assumptions_registry_holds_each_constant_once_with_its_value():
    keys = [a.key for a in ASSUMPTIONS]
    assert len(keys) == len(set(keys))
    for a in ASSUMPTIONS:
        assert getattr(assumptions, a.constant) == a.value, a.constant  # the old names keep working
        assert a.doc.startswith("docs/gcp-facts.md §")


def test_assumptions_unconfirmed_trigger_methods_are_the_registrys():
    assert {t.method_name for t in TRIGGERS if not t.confirmed} == {*assumptions.RUN_V1_JOB_METHODS,
                                                                    *assumptions.RUN_WORKER_POOL_METHODS}


def test_assumptions_doc_table_lists_exactly_the_registry():
    text = (ROOT / "docs" / "gcp-facts.md").read_text()
    section = text.split("### 8.9", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^\| `(\w+)` \| `(\w+)` \|", section, re.MULTILINE)
    assert listed == [(a.key, a.constant) for a in ASSUMPTIONS]


def test_assumptions_connector_entry_confirms_its_shape_and_cites_it():
    results = {r.assumption.key: r for r in judge_assumptions([entry(CONNECTOR)])}
    for key in ("vpcaccess_resource_type", "vpcaccess_resource_name", "first_entry_is_enough", "operation_producer"):
        assert results[key].verdict == CONFIRMED, key
        assert results[key].evidence.insert_id == entry(CONNECTOR)["insertId"]
        assert results[key].evidence.timestamp == entry(CONNECTOR)["timestamp"]
    assert results["run_job_resource_type"].verdict == NOT_SEEN and results["run_job_resource_type"].evidence is None


def test_assumptions_one_counter_example_refutes():
    other = copy.deepcopy(entry(CONNECTOR))
    other["resource"]["type"] = "audited_resource"
    other["insertId"] = "counter-example"
    result = next(r for r in judge_assumptions([entry(CONNECTOR), other]) if r.assumption.key == "vpcaccess_resource_type")
    assert (result.verdict, result.evidence.insert_id, result.confirming, result.refuting) == (REFUTED, "counter-example", 1, 1)


def test_assumptions_a_long_running_write_without_operation_refutes_first_entry():
    bare = copy.deepcopy(entry(CONNECTOR))
    del bare["operation"]
    assert verdicts([bare])["first_entry_is_enough"] == REFUTED


def test_assumptions_v1_job_entry_confirms_the_method_name():
    found = verdicts([entry(V1_JOB)])
    assert found["run_v1_job_methods"] == CONFIRMED
    assert found["run_v1_job_resource_name"] == CONFIRMED
    assert found["run_job_resource_type"] == CONFIRMED


def test_assumptions_a_function_services_run_entry_refutes_no_run_entry():
    service = entry("run-google.cloud.run.v2.Services.CreateService.json")
    assert verdicts([service])["functions_write_no_run_entry"] == "not seen"
    managed = copy.deepcopy(service)
    managed["protoPayload"]["request"].setdefault("service", {}).setdefault("labels", {})["goog-managed-by"] = "cloudfunctions"
    assert verdicts([managed])["functions_write_no_run_entry"] == REFUTED


def test_assumptions_compute_entries_say_nothing_about_them():
    assert set(verdicts([entry("compute-v1.compute.firewalls.insert.json")]).values()) == {NOT_SEEN}


def test_anonymise_replaces_emails_and_project_numbers_stably():
    a = {"protoPayload": {"authenticationInfo": {"principalEmail": "alice@corp.example.com"},
                          "resourceName": "projects/123456789012/locations/r/connectors/c",
                          "response": {"namespace": "123456789012", "id": "9876543210987654321"}},
         "resource": {"labels": {"project_id": "my-project"}}}
    b = {"protoPayload": {"authenticationInfo": {"principalEmail": "bob@corp.example.com"},
                          "serviceAccount": "service-123456789012@gcp-sa-logging.iam.gserviceaccount.com",
                          "other": "alice@corp.example.com"}}
    out_a, out_b = anonymise([a, b])
    text = json.dumps([out_a, out_b])
    assert "alice@" not in text and "bob@" not in text and "123456789012" not in text
    assert out_a["protoPayload"]["authenticationInfo"]["principalEmail"] == out_b["protoPayload"]["other"]
    assert out_b["protoPayload"]["authenticationInfo"]["principalEmail"] != out_b["protoPayload"]["other"]
    assert out_a["protoPayload"]["response"]["id"] == "9876543210987654321"  # a resource id is not a project number
    number = out_a["protoPayload"]["response"]["namespace"]
    assert out_a["protoPayload"]["resourceName"] == f"projects/{number}/locations/r/connectors/c"
    assert a["protoPayload"]["authenticationInfo"]["principalEmail"] == "alice@corp.example.com"  # copies


def test_export_writes_one_fixture_per_entry_and_the_verdicts(tmp_path):
    entries = [entry(CONNECTOR), entry(V1_JOB)]
    written = export(tmp_path, entries, judge_assumptions(entries))
    assert [p.name for p in written] == [
        "0001-google.cloud.vpcaccess.v1.VpcAccessService.CreateConnector.json",
        "0002-google.cloud.run.v1.Jobs.CreateJob.json", "assumptions.json"]
    summary = json.loads((tmp_path / "assumptions.json").read_text())
    assert {s["key"] for s in summary} == {a.key for a in ASSUMPTIONS}
    originals = {e["protoPayload"]["authenticationInfo"]["principalEmail"] for e in entries}
    for path in written[:2]:
        principal = json.loads(path.read_text())["protoPayload"]["authenticationInfo"]["principalEmail"]
        assert principal not in originals and principal.endswith("@example.com")


@pytest.mark.parametrize("assumption", ASSUMPTIONS, ids=lambda a: a.key)
def test_assumptions_judges_ignore_unrelated_entries(assumption):
    assert assumption.judge({"protoPayload": {"serviceName": "storage.googleapis.com", "methodName": "x"}}) is None
