"""Cloud Run's v1 (Knative) and v2 views of one resource (pure conversions)."""

from __future__ import annotations

import pytest

from localcloud.backends import run_knative as kn
from localcloud.errors import ApiError

GCLOUD_SERVICE = {  # the body gcloud 528 sends for `gcloud run deploy ... --vpc-connector c --vpc-egress all-traffic`
    "apiVersion": "serving.knative.dev/v1", "kind": "Service",
    "metadata": {"annotations": {"run.googleapis.com/client-name": "gcloud", "run.googleapis.com/client-version": "528.0.0"},
                 "labels": {}, "name": "svc-a", "namespace": "eg-demo-project"},
    "spec": {"template": {
        "metadata": {"annotations": {"run.googleapis.com/client-name": "gcloud",
                                     "run.googleapis.com/client-version": "528.0.0",
                                     "run.googleapis.com/startup-cpu-boost": "True",
                                     "run.googleapis.com/vpc-access-connector": "gc-conn",
                                     "run.googleapis.com/vpc-access-egress": "all-traffic"},
                     "labels": {"client.knative.dev/nonce": "xdvyaqdxta"}},
        "spec": {"containers": [{"image": "us-docker.pkg.dev/cloudrun/container/hello", "name": ""}], "nodeSelector": {}}}},
    "status": {"address": {}},
}


def test_v1_service_annotations_become_v2_fields():
    fields, sidecar = kn.v1_service_to_v2(GCLOUD_SERVICE)
    assert fields["client"] == "gcloud" and fields["clientVersion"] == "528.0.0"
    template = fields["template"]
    assert template["vpcAccess"] == {"connector": "gc-conn", "egress": "ALL_TRAFFIC"}
    assert template["containers"] == [{"image": "us-docker.pkg.dev/cloudrun/container/hello",
                                       "resources": {"startupCpuBoost": True}}]
    assert "annotations" not in template and "annotations" not in fields  # only system annotations were sent
    assert sidecar["template_labels"] == {"client.knative.dev/nonce": "xdvyaqdxta"}


def test_v1_connector_and_egress_read_back_as_written():
    fields, sidecar = kn.v1_service_to_v2(GCLOUD_SERVICE)
    fields["template"]["vpcAccess"]["connector"] = "projects/p/locations/europe-west2/connectors/gc-conn"  # stored full
    annotations = kn.v2_template_annotations(fields["template"], sidecar)
    assert annotations[kn.CONNECTOR] == "gc-conn"
    assert annotations[kn.EGRESS] == "all-traffic"


def test_v2_write_of_another_connector_shows_the_full_name_in_v1():
    fields, sidecar = kn.v1_service_to_v2(GCLOUD_SERVICE)
    fields["template"]["vpcAccess"] = {"connector": "projects/p/locations/europe-west2/connectors/other",
                                       "egress": "PRIVATE_RANGES_ONLY"}
    annotations = kn.v2_template_annotations(fields["template"], sidecar)
    assert annotations[kn.CONNECTOR] == "projects/p/locations/europe-west2/connectors/other"
    assert annotations[kn.EGRESS] == "private-ranges-only"


def test_deprecated_all_egress_is_all_traffic():
    body = {"spec": {"template": {"metadata": {"annotations": {kn.CONNECTOR: "c", kn.EGRESS: "all"}},
                                  "spec": {"containers": [{"image": "i"}]}}}}
    fields, sidecar = kn.v1_service_to_v2(body)
    assert fields["template"]["vpcAccess"]["egress"] == "ALL_TRAFFIC"
    assert kn.v2_template_annotations(fields["template"], sidecar)[kn.EGRESS] == "all"


def test_v1_job_vpc_annotations_are_on_the_execution_template():
    body = {"metadata": {"name": "job-a"}, "spec": {"template": {
        "metadata": {"annotations": {kn.CONNECTOR: "projects/p/locations/r/connectors/c", kn.EGRESS: "all-traffic",
                                     "team": "blue"}},
        "spec": {"taskCount": 2, "template": {"spec": {"containers": [{"image": "i"}], "maxRetries": 1,
                                                       "timeoutSeconds": "60"}}}}}}
    fields, _ = kn.v1_job_to_v2(body)
    task = fields["template"]["template"]
    assert task["vpcAccess"] == {"connector": "projects/p/locations/r/connectors/c", "egress": "ALL_TRAFFIC"}
    assert (task["maxRetries"], task["timeout"], fields["template"]["taskCount"]) == (1, "60s", 2)
    assert fields["template"]["annotations"] == {"team": "blue"}


@pytest.mark.parametrize("annotations", [
    {kn.EGRESS: "everything"}, {kn.MAX_SCALE: "many"}, {kn.EXECUTION_ENVIRONMENT: "gen3"},
    {kn.NETWORK_INTERFACES: "not json"}, {kn.NETWORK_INTERFACES: "[1]"}, {kn.CPU_THROTTLING: "maybe"},
])
def test_bad_v1_annotations_are_400(annotations):
    body = {"spec": {"template": {"metadata": {"annotations": annotations}, "spec": {"containers": [{"image": "i"}]}}}}
    with pytest.raises(ApiError) as err:
        kn.v1_service_to_v2(body)
    assert err.value.code == 400


def test_rendered_service_has_ready_conditions_and_urls():
    record = {"resource": {
        "name": "projects/p/locations/europe-west2/services/svc", "uid": "u", "generation": "2",
        "observedGeneration": "2", "createTime": "t0", "updateTime": "t1", "etag": '"e"', "ingress": "INGRESS_TRAFFIC_ALL",
        "template": {"containers": [{"image": "i"}], "vpcAccess": {"connector": "projects/p/locations/europe-west2/connectors/c",
                                                                     "egress": "ALL_TRAFFIC"}},
        "traffic": [{"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", "percent": 100}],
        "trafficStatuses": [{"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", "percent": 100}],
        "terminalCondition": {"type": "Ready", "state": "CONDITION_SUCCEEDED", "lastTransitionTime": "t1"},
        "latestReadyRevision": "projects/p/locations/europe-west2/services/svc/revisions/svc-00002-abc",
        "latestCreatedRevision": "projects/p/locations/europe-west2/services/svc/revisions/svc-00002-abc",
        "uri": "https://svc-x-nw.a.run.app", "urls": ["https://svc-1.europe-west2.run.app", "https://svc-x-nw.a.run.app"],
    }, "sidecar": {}, "revisions": []}
    v1 = kn.render_service_v1(record, project="p", project_number="123", region="europe-west2")
    assert v1["metadata"]["namespace"] == "123" and v1["metadata"]["generation"] == 2
    assert v1["metadata"]["labels"] == {"cloud.googleapis.com/location": "europe-west2"}
    assert {c["type"]: c["status"] for c in v1["status"]["conditions"]} == \
        {"Ready": "True", "ConfigurationsReady": "True", "RoutesReady": "True"}
    assert v1["status"]["latestReadyRevisionName"] == "svc-00002-abc"
    assert v1["status"]["traffic"] == [{"latestRevision": True, "revisionName": "svc-00002-abc", "percent": 100}]
    assert v1["status"]["url"] == "https://svc-x-nw.a.run.app"
    annotations = v1["spec"]["template"]["metadata"]["annotations"]
    assert annotations[kn.CONNECTOR] == "projects/p/locations/europe-west2/connectors/c"
    assert annotations[kn.EGRESS] == "all-traffic"


def test_system_keys():
    assert kn.is_system_key("run.googleapis.com/ingress") and kn.is_system_key("autoscaling.knative.dev/maxScale")
    assert not kn.is_system_key("team") and not kn.is_system_key("example.com/owner")
