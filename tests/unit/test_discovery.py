"""localcloud.discovery: bodies checked against the discovery documents as Google's parser would."""

from __future__ import annotations

import copy
import json
import re
import threading
import time
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import unquote, urlsplit

import pytest

from localcloud import discovery
from localcloud.discovery import SchemaError, validate
from tests.paths import HTTP_RECORDINGS

P = "eg-demo-project"
R = "europe-west2"
COMPUTE = "http://127.0.0.1:8790/compute/v1"  # gcloud builds links from the endpoint override

FIREWALL = {
    "name": "allow-ssh",
    "network": f"{COMPUTE}/projects/{P}/global/networks/net-a",
    "direction": "INGRESS",
    "priority": 1000,
    "sourceRanges": ["35.235.240.0/20"],
    "allowed": [{"IPProtocol": "tcp", "ports": ["22", "8000-8080"]}],
    "targetTags": ["ssh"],
    "logConfig": {"enable": False},
}

# What `gcloud compute routers nats create` writes back: the router exactly as read (output-only
# fields included) with the new NAT appended.
GCLOUD_ROUTER = {
    "creationTimestamp": "2024-04-01T05:34:56.123-07:00",
    "encryptedInterconnectRouter": False,
    "id": "4753263093454262718",
    "kind": "compute#router",
    "name": "nat-router",
    "network": f"https://www.googleapis.com/compute/v1/projects/{P}/global/networks/net-a",
    "region": f"https://www.googleapis.com/compute/v1/projects/{P}/regions/{R}",
    "selfLink": f"https://www.googleapis.com/compute/v1/projects/{P}/regions/{R}/routers/nat-router",
    "bgp": {"advertiseMode": "DEFAULT", "asn": 64514, "keepaliveInterval": 20},
    "nats": [
        {
            "name": "nat-config",
            "natIpAllocateOption": "AUTO_ONLY",
            "sourceSubnetworkIpRangesToNat": "ALL_SUBNETWORKS_ALL_IP_RANGES",
            "enableEndpointIndependentMapping": False,
            "endpointTypes": ["ENDPOINT_TYPE_VM"],
            "logConfig": {"enable": True, "filter": "ERRORS_ONLY"},
            "minPortsPerVm": 64,
            "type": "PUBLIC",
        }
    ],
}

SUBNETWORK = {
    "creationTimestamp": "2024-04-01T05:34:56.123-07:00",
    "fingerprint": "cvGC1nGmVqk=",
    "gatewayAddress": "10.10.0.1",
    "id": "1234567890123456789",
    "ipCidrRange": "10.10.0.0/28",
    "kind": "compute#subnetwork",
    "name": "conn-subnet",
    "network": f"https://www.googleapis.com/compute/v1/projects/{P}/global/networks/net-a",
    "privateIpGoogleAccess": False,
    "privateIpv6GoogleAccess": "DISABLE_GOOGLE_ACCESS",
    "purpose": "PRIVATE",
    "region": f"https://www.googleapis.com/compute/v1/projects/{P}/regions/{R}",
    "selfLink": f"https://www.googleapis.com/compute/v1/projects/{P}/regions/{R}/subnetworks/conn-subnet",
    "stackType": "IPV4_ONLY",
    "logConfig": {"enable": False},
}

NETWORK = {
    "name": "net-a",
    "autoCreateSubnetworks": False,
    "routingConfig": {"routingMode": "REGIONAL"},
    "networkFirewallPolicyEnforcementOrder": "AFTER_CLASSIC_FIREWALL",
    "mtu": 1460,
}

CONNECTOR = {  # what gcloud sends for `vpc-access connectors create --range` (docs/gcp-facts.md §10)
    "ipCidrRange": "10.8.0.0/28",
    "maxInstances": 10,
    "minInstances": 2,
    "network": "net-a",
}

RUN_V2_JOB = {
    "labels": {"team": "data"},
    "launchStage": "GA",
    "template": {
        "taskCount": 1,
        "template": {
            "containers": [{"image": "us-docker.pkg.dev/cloudrun/container/job:latest",
                            "resources": {"limits": {"cpu": "1", "memory": "512Mi"}}}],
            "maxRetries": 3,
            "timeout": "600s",
            "vpcAccess": {"connector": f"projects/{P}/locations/{R}/connectors/conn-a", "egress": "ALL_TRAFFIC"},
        },
    },
}

RUN_V2_SERVICE = {
    "ingress": "INGRESS_TRAFFIC_ALL",
    "launchStage": "GA",
    "template": {
        "containers": [{"image": "us-docker.pkg.dev/cloudrun/container/hello", "ports": [{"containerPort": 8080}]}],
        "scaling": {"maxInstanceCount": 3},
        "executionEnvironment": "EXECUTION_ENVIRONMENT_GEN2",
        "vpcAccess": {"connector": f"projects/{P}/locations/{R}/connectors/conn-a", "egress": "ALL_TRAFFIC"},
    },
    "traffic": [{"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", "percent": 100}],
}

RUN_V1_JOB = {  # the shape `gcloud run jobs deploy --vpc-connector --vpc-egress=all-traffic` sends
    "apiVersion": "run.googleapis.com/v1",
    "kind": "Job",
    "metadata": {
        "name": "egress-job",
        "namespace": P,
        "annotations": {"run.googleapis.com/client-name": "gcloud", "run.googleapis.com/client-version": "528.0.0"},
    },
    "spec": {
        "template": {
            "metadata": {
                "annotations": {
                    "run.googleapis.com/vpc-access-connector": "conn-a",
                    "run.googleapis.com/vpc-access-egress": "all-traffic",
                    "run.googleapis.com/execution-environment": "gen2",
                }
            },
            "spec": {
                "taskCount": 1,
                "template": {
                    "spec": {
                        "containers": [{"image": "us-docker.pkg.dev/cloudrun/container/job:latest",
                                        "resources": {"limits": {"cpu": "1000m", "memory": "512Mi"}}}],
                        "maxRetries": 3,
                        "timeoutSeconds": "600",
                    }
                },
            },
        }
    },
}


def refused(api: str, schema: str, body: Any, **kwargs: Any) -> SchemaError:
    with pytest.raises(SchemaError) as caught:
        validate(api, schema, body, **kwargs)
    return caught.value


def with_path(body: dict, path: str, value: Any) -> dict:
    """A deep copy of ``body`` with the value at ``a.b[0].c`` replaced (or added)."""
    out = copy.deepcopy(body)
    parts = re.findall(r"[^.\[\]]+|\[\d+\]", path)
    node: Any = out
    for part in parts[:-1]:
        node = node[int(part[1:-1])] if part.startswith("[") else node[part]
    last = parts[-1]
    if last.startswith("["):
        node[int(last[1:-1])] = value
    else:
        node[last] = value
    return out


# ---- resources that must pass -----------------------------------------------------------------
@pytest.mark.parametrize(
    "api, schema, body",
    [
        ("compute.v1", "Firewall", FIREWALL),
        ("compute.v1", "Router", GCLOUD_ROUTER),
        ("compute.v1", "Subnetwork", SUBNETWORK),
        ("compute.v1", "Network", NETWORK),
        ("vpcaccess.v1", "Connector", CONNECTOR),
        ("vpcaccess.v1", "Connector", {"machineType": "e2-micro", "maxInstances": 3, "minInstances": 2,
                                       "network": "default", "subnet": {"name": "conn-subnet"}}),
        ("vpcaccess.v1beta1", "Connector", CONNECTOR),
        ("run.v2", "GoogleCloudRunV2Job", RUN_V2_JOB),
        ("run.v2", "GoogleCloudRunV2Service", RUN_V2_SERVICE),
        ("run.v1", "Job", RUN_V1_JOB),
        ("logging.v2", "ListLogEntriesRequest",
         {"resourceNames": [f"projects/{P}"], "filter": 'protoPayload.methodName="v1.compute.routers.patch"',
          "orderBy": "timestamp desc", "pageSize": 50}),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_validate_accepts_real_resource_bodies(api: str, schema: str, body: dict) -> None:
    validate(api, schema, body)


def test_validate_accepts_output_only_fields_gcloud_sends_back() -> None:
    output_only = discovery.output_only_fields("compute.v1", "Router")
    assert {"id", "selfLink", "kind", "creationTimestamp", "region"} <= output_only
    discovery.validate_request("compute.v1", "compute.routers.patch", GCLOUD_ROUTER)
    discovery.validate_request("compute.v1", "compute.subnetworks.patch", SUBNETWORK)


def test_output_only_fields_reads_read_only_and_output_only_descriptions() -> None:
    assert "fingerprint" not in discovery.output_only_fields("compute.v1", "Subnetwork")  # sent back on patch
    assert {"gatewayAddress", "selfLink", "id"} <= discovery.output_only_fields("compute.v1", "Subnetwork")
    assert {"state", "connectedProjects"} <= discovery.output_only_fields("vpcaccess.v1", "Connector")
    service = discovery.output_only_fields("run.v2", "GoogleCloudRunV2Service")
    assert {"uid", "generation", "terminalCondition", "uri"} <= service
    assert "template" not in service and "ingress" not in service


# ---- unknown fields -----------------------------------------------------------------------------
def test_unknown_field_at_root_uses_googles_words() -> None:
    error = refused("compute.v1", "Firewall", {**FIREWALL, "foo": 1})
    assert str(error) == 'Invalid JSON payload received. Unknown name "foo" at \'firewall\': Cannot find field.'
    assert error.path == "foo"
    assert error.message == str(error)
    assert error.field_violation == {"field": "firewall", "description": str(error)}


@pytest.mark.parametrize(
    "api, schema, body, path, where",
    [
        ("compute.v1", "Firewall", with_path(FIREWALL, "allowed[0].protocol", "tcp"),
         "allowed[0].protocol", "firewall.allowed[0]"),
        ("compute.v1", "Router", with_path(GCLOUD_ROUTER, "nats[0].logConfig.level", "ALL"),
         "nats[0].logConfig.level", "router.nats[0].log_config"),
        ("run.v2", "GoogleCloudRunV2Service", with_path(RUN_V2_SERVICE, "template.vpcAccess.egressMode", "ALL"),
         "template.vpcAccess.egressMode", "service.template.vpc_access"),
        ("run.v2", "GoogleCloudRunV2Job", with_path(RUN_V2_JOB, "template.template.containers[0].img", "x"),
         "template.template.containers[0].img", "job.template.template.containers[0]"),
        ("run.v1", "Job", with_path(RUN_V1_JOB, "spec.template.spec.template.spec.vpcAccess", {}),
         "spec.template.spec.template.spec.vpcAccess", "job.spec.template.spec.template.spec"),
        ("vpcaccess.v1", "Connector", with_path(CONNECTOR, "subnet", {"name": "s", "region": R}),
         "subnet.region", "connector.subnet"),
    ],
)
def test_unknown_field_at_depth_is_refused_with_its_location(api, schema, body, path, where) -> None:
    error = refused(api, schema, body)
    name = path.rsplit(".", 1)[-1]
    assert str(error) == f'Invalid JSON payload received. Unknown name "{name}" at \'{where}\': Cannot find field.'
    assert error.path == path


def test_unknown_field_in_whole_request_message_has_no_root() -> None:
    error = refused("logging.v2", "ListLogEntriesRequest", {"resourceNames": [f"projects/{P}"], "x": 1})
    assert str(error) == 'Invalid JSON payload received. Unknown name "x": Cannot find field.'


# ---- wrong types --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "path, value, expected",
    [
        ("priority", "abc", "Invalid value at 'firewall.priority' (TYPE_INT32), \"abc\""),
        ("priority", 1.5, "Invalid value at 'firewall.priority' (TYPE_INT32), 1.5"),
        ("priority", True, "Invalid value at 'firewall.priority' (TYPE_INT32), true"),
        ("priority", 2**31, f"Invalid value at 'firewall.priority' (TYPE_INT32), {2**31}"),
        ("name", 5, "Invalid value at 'firewall.name' (TYPE_STRING), 5"),
        ("disabled", "false", "Invalid value at 'firewall.disabled' (TYPE_BOOL), \"false\""),
        ("allowed[0].ports[1]", 8080, "Invalid value at 'firewall.allowed[0].ports[1]' (TYPE_STRING), 8080"),
        ("sourceRanges", "0.0.0.0/0", "Invalid value at 'firewall.source_ranges' (TYPE_STRING), \"0.0.0.0/0\""),
        ("logConfig", "on",
         "Invalid value at 'firewall.log_config' (type.googleapis.com/google.cloud.compute.v1.FirewallLogConfig), \"on\""),
        ("priority", [1000],
         'Invalid JSON payload received. Unknown name "priority" at \'firewall\': Proto field is not repeating, cannot start list.'),
        ("name", {"value": "x"}, "Invalid value at 'firewall' (name), Starting an object on a scalar field"),
        ("allowed[0].IPProtocol", {"p": 1},
         "Invalid value at 'firewall.allowed[0]' (ip_protocol), Starting an object on a scalar field"),
        ("direction", "UP", "Invalid value at 'firewall.direction' (TYPE_ENUM), \"UP\""),
        ("id", "12a", "Invalid value at 'firewall.id' (TYPE_UINT64), \"12a\""),
        ("id", -1, "Invalid value at 'firewall.id' (TYPE_UINT64), -1"),
        ("allowed", [None], "Invalid value at 'firewall.allowed[0]' (type.googleapis.com/google.cloud.compute.v1.Allowed), null"),
    ],
)
def test_wrong_types_are_refused_like_google(path: str, value: Any, expected: str) -> None:
    error = refused("compute.v1", "Firewall", with_path(FIREWALL, path, value))
    assert str(error) == expected
    assert error.path == (path + "[0]" if value == [None] else path)


def test_root_must_be_an_object() -> None:
    for body in ([], "firewall", 3, None):
        assert str(refused("compute.v1", "Firewall", body)) == \
            'Invalid JSON payload received. Unknown name "": Root element must be a message.'


def test_maps_check_their_values() -> None:
    validate("run.v2", "GoogleCloudRunV2Service", {**RUN_V2_SERVICE, "labels": {"a": "b", "c": None}})
    error = refused("run.v2", "GoogleCloudRunV2Service", {**RUN_V2_SERVICE, "labels": {"env": 3}})
    assert str(error) == "Invalid value at 'service.labels[\"env\"]' (TYPE_STRING), 3"
    assert error.path == 'labels["env"]'
    error = refused("run.v2", "GoogleCloudRunV2Service", {**RUN_V2_SERVICE, "labels": ["a"]})
    assert "Proto field is not repeating" in str(error)


def test_null_means_not_set() -> None:
    validate("compute.v1", "Router", {**GCLOUD_ROUTER, "bgp": None, "description": None})


def test_well_known_string_formats_are_checked() -> None:
    validate("run.v2", "GoogleCloudRunV2Job", with_path(RUN_V2_JOB, "template.template.timeout", "3.5s"))
    error = refused("run.v2", "GoogleCloudRunV2Job", with_path(RUN_V2_JOB, "template.template.timeout", "10 minutes"))
    assert "(type.googleapis.com/google.protobuf.Duration)" in str(error)
    validate("run.v2", "GoogleCloudRunV2Service", {**RUN_V2_SERVICE, "createTime": "2024-04-01T12:34:56.123456Z"})
    error = refused("run.v2", "GoogleCloudRunV2Service", {**RUN_V2_SERVICE, "createTime": "yesterday"})
    assert str(error) == "Invalid value at 'service.create_time' (type.googleapis.com/google.protobuf.Timestamp), \"yesterday\""
    assert "(TYPE_BYTES)" in str(refused("compute.v1", "Subnetwork", {**SUBNETWORK, "fingerprint": "not base64!"}))


# ---- integers -----------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["4753263093454262718", 4753263093454262718, "0", 18446744073709551615])
def test_uint64_accepts_number_or_decimal_string(value: Any) -> None:
    validate("compute.v1", "Router", {**GCLOUD_ROUTER, "id": value})


@pytest.mark.parametrize("value", ["4.5", "", " 12", "0x10", "18446744073709551616", 1.5, True, {"v": 1}])
def test_uint64_refuses_anything_else(value: Any) -> None:
    refused("compute.v1", "Router", {**GCLOUD_ROUTER, "id": value})


def test_int64_accepts_strings_and_negative_numbers() -> None:
    validate("run.v2", "GoogleCloudRunV2Service", {**RUN_V2_SERVICE, "generation": "12345678901234"})
    validate("run.v2", "GoogleCloudRunV2Service", {**RUN_V2_SERVICE, "generation": -3})
    assert "(TYPE_INT64)" in str(refused("run.v2", "GoogleCloudRunV2Service", {**RUN_V2_SERVICE, "generation": "1e3"}))


def test_int32_accepts_integral_numbers_and_decimal_strings() -> None:
    for value in (1000, 1000.0, "1000"):
        validate("compute.v1", "Firewall", {**FIREWALL, "priority": value})


# ---- enums --------------------------------------------------------------------------------------
def test_enum_names_are_checked_and_numbers_need_enum_encoding_int() -> None:
    body = with_path(RUN_V2_SERVICE, "template.vpcAccess.egress", 1)
    error = refused("run.v2", "GoogleCloudRunV2Service", body)
    assert str(error) == "Invalid value at 'service.template.vpc_access.egress' (TYPE_ENUM), 1"
    validate("run.v2", "GoogleCloudRunV2Service", body, enums_as_int=True)
    validate("run.v2", "GoogleCloudRunV2Service", RUN_V2_SERVICE, enums_as_int=True)  # names still accepted
    for value, ints in ((9, True), ("all-traffic", False), ("all-traffic", True), (True, True)):
        refused("run.v2", "GoogleCloudRunV2Service", with_path(RUN_V2_SERVICE, "template.vpcAccess.egress", value),
                enums_as_int=ints)


def test_enum_numbers_are_proto_numbers_not_list_positions() -> None:
    # google.api.LaunchStage GA is 4 although it is 7th in the discovery list.
    validate("run.v2", "GoogleCloudRunV2Service", {**RUN_V2_SERVICE, "launchStage": 4}, enums_as_int=True)
    refused("run.v2", "GoogleCloudRunV2Service", {**RUN_V2_SERVICE, "launchStage": 8}, enums_as_int=True)
    assert discovery.encode_enums("run.v2", "GoogleCloudRunV2Service", {"launchStage": "GA"}) == {"launchStage": 4}
    # google.cloud.run.v2.Condition.CommonReason skips 2 and 5.
    assert discovery.encode_enums("run.v2", "GoogleCloudRunV2Condition", {"reason": "VPC_NETWORK_NOT_FOUND"}) \
        == {"reason": 17}


def _proto_message(api: str, schema_name: str):
    """The protobuf descriptor the installed client library uses for a discovery schema, if any."""
    from google.cloud import run_v2, vpcaccess_v1
    from google.iam.v1 import policy_pb2

    if api == "vpcaccess.v1":
        found = getattr(vpcaccess_v1, schema_name, None)
    elif schema_name.startswith("GoogleCloudRunV2"):
        found = getattr(run_v2, schema_name[len("GoogleCloudRunV2"):], None)
    elif schema_name.startswith("GoogleIamV1"):
        found = getattr(policy_pb2, schema_name[len("GoogleIamV1"):], None)
    else:
        found = None
    if found is None:
        return None
    return found.pb().DESCRIPTOR if hasattr(found, "pb") else found.DESCRIPTOR


def _enum_fields(api: str) -> Iterator[tuple[str, str, tuple[str, ...], bool]]:
    for name in sorted(json.load(open(f"{discovery.documents_dir()}/{api}.json"))["schemas"]):
        for field_name, prop in discovery.schema(api, name).get("properties", {}).items():
            if "enum" in prop:
                yield name, field_name, tuple(prop["enum"]), False
            elif "enum" in prop.get("items", {}):
                yield name, field_name, tuple(prop["items"]["enum"]), True


@pytest.mark.parametrize("api", ["run.v2", "vpcaccess.v1"])
def test_enum_codec_numbers_match_the_installed_protos(api: str) -> None:
    """Every enum the installed REST client can read gets the number its proto declares."""
    checked, without_proto = 0, []
    for schema_name, field_name, values, repeated in _enum_fields(api):
        descriptor = _proto_message(api, schema_name)
        proto_field = descriptor.fields_by_camelcase_name.get(field_name) if descriptor else None
        if proto_field is None or proto_field.enum_type is None:
            without_proto.append(f"{schema_name}.{field_name}")  # the installed client cannot see it
            continue
        numbers = {v.name: v.number for v in proto_field.enum_type.values}
        for value in values:
            if value not in numbers:
                continue  # newer than the installed proto: the client skips it
            body = {field_name: [value] if repeated else value}
            encoded = discovery.encode_enums(api, schema_name, body)
            assert encoded == {field_name: [numbers[value]] if repeated else numbers[value]}, \
                f"{schema_name}.{field_name} {value}: proto number {numbers[value]}"
            assert discovery.decode_enums(api, schema_name, encoded) == body
            checked += 1
    print(f"\n{api}: {checked} enum values checked against the protos; no proto for {without_proto}")
    assert checked >= (100 if api == "run.v2" else 6)


def test_codec_reaches_every_depth_and_leaves_the_input_alone() -> None:
    ints = {
        "launchStage": 4,
        "ingress": 1,
        "template": {"executionEnvironment": 2, "vpcAccess": {"connector": "c", "egress": 1}},
        "traffic": [{"type": 1, "percent": 100}],
        "terminalCondition": {"state": 4, "reason": 17},
        "conditions": [{"type": "Ready", "revisionReason": 9}],
    }
    before = copy.deepcopy(ints)
    names = discovery.decode_enums("run.v2", "GoogleCloudRunV2Service", ints)
    assert ints == before
    assert names == {
        "launchStage": "GA",
        "ingress": "INGRESS_TRAFFIC_ALL",
        "template": {"executionEnvironment": "EXECUTION_ENVIRONMENT_GEN2",
                     "vpcAccess": {"connector": "c", "egress": "ALL_TRAFFIC"}},
        "traffic": [{"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", "percent": 100}],
        "terminalCondition": {"state": "CONDITION_SUCCEEDED", "reason": "VPC_NETWORK_NOT_FOUND"},
        "conditions": [{"type": "Ready", "revisionReason": "ACTIVE_REVISION_LIMIT_REACHED"}],
    }
    validate("run.v2", "GoogleCloudRunV2Service", names)
    assert discovery.encode_enums("run.v2", "GoogleCloudRunV2Service", names) == ints


def test_codec_follows_the_type_inside_operations() -> None:
    operation = {
        "name": f"projects/{P}/locations/{R}/operations/op-1",
        "done": True,
        "metadata": {"@type": "type.googleapis.com/google.cloud.run.v2.Service", "launchStage": "BETA"},
        "response": {"@type": "type.googleapis.com/google.cloud.run.v2.Service", **RUN_V2_SERVICE},
    }
    validate("run.v2", "GoogleLongrunningOperation", operation)
    encoded = discovery.encode_enums("run.v2", "GoogleLongrunningOperation", operation)
    assert encoded["metadata"]["launchStage"] == 3
    assert encoded["response"]["template"]["vpcAccess"]["egress"] == 1
    assert encoded["response"]["@type"] == "type.googleapis.com/google.cloud.run.v2.Service"
    validate("run.v2", "GoogleLongrunningOperation", encoded, enums_as_int=True)
    bad = with_path(operation, "response.template.vpcAccess.egress", "SOME")
    assert "(TYPE_ENUM)" in str(refused("run.v2", "GoogleLongrunningOperation", bad))

    connector_op = {"name": "o", "done": True,
                    "response": {"@type": "type.googleapis.com/google.cloud.vpcaccess.v1.Connector", "state": "READY"}}
    assert discovery.encode_enums("vpcaccess.v1", "Operation", connector_op)["response"]["state"] == 1


def test_codec_leaves_unknown_values_for_validation_to_refuse() -> None:
    body = {"template": {"vpcAccess": {"egress": 42}}, "ingress": "NOT_AN_ENUM"}
    assert discovery.decode_enums("run.v2", "GoogleCloudRunV2Service", body) == body
    assert discovery.encode_enums("run.v2", "GoogleCloudRunV2Service", body) == body


# ---- methods ------------------------------------------------------------------------------------
def test_method_is_keyed_by_api_and_id() -> None:
    v2 = discovery.method("run.v2", "run.projects.locations.jobs.create")
    assert (v2.http_method, v2.request_schema, v2.response_schema) == \
        ("POST", "GoogleCloudRunV2Job", "GoogleLongrunningOperation")
    assert v2.parameters["jobId"].location == "query"
    v1 = discovery.method("run.v1", "run.namespaces.jobs.create")
    assert (v1.flat_path, v1.request_schema) == ("apis/run.googleapis.com/v1/namespaces/{namespacesId}/jobs", "Job")
    fw = discovery.method("compute.v1", "compute.firewalls.insert")
    assert (fw.service_path, fw.path, fw.request_schema) == \
        ("compute/v1/", "projects/{project}/global/firewalls", "Firewall")
    with pytest.raises(KeyError):
        discovery.method("run.v1", "run.projects.locations.jobs.create")
    with pytest.raises(ValueError):
        discovery.method("compute.beta", "compute.firewalls.insert")


@pytest.mark.parametrize(
    "api, verb, path, method_id",
    [
        ("compute.v1", "POST", f"/compute/v1/projects/{P}/global/firewalls", "compute.firewalls.insert"),
        ("compute.v1", "PATCH", f"compute/v1/projects/{P}/regions/{R}/routers/r1", "compute.routers.patch"),
        ("compute.v1", "GET", f"compute/v1/projects/{P}/aggregated/routers", "compute.routers.aggregatedList"),
        ("compute.v1", "GET", f"compute/v1/projects/{P}/regions/{R}/operations/op-1", "compute.regionOperations.get"),
        ("run.v2", "POST", f"v2/projects/{P}/locations/{R}/jobs/j:run", "run.projects.locations.jobs.run"),
        ("run.v2", "GET", f"v2/projects/{P}/locations/{R}/jobs/j", "run.projects.locations.jobs.get"),
        ("run.v1", "POST", f"apis/run.googleapis.com/v1/namespaces/{P}/jobs", "run.namespaces.jobs.create"),
        ("run.v1", "PUT", f"apis/serving.knative.dev/v1/namespaces/{P}/services/s", "run.namespaces.services.replaceService"),
        ("vpcaccess.v1", "POST", f"v1/projects/{P}/locations/{R}/connectors", "vpcaccess.projects.locations.connectors.create"),
        ("logging.v2", "POST", "v2/entries:list", "logging.entries.list"),
    ],
)
def test_find_method_matches_request_paths(api: str, verb: str, path: str, method_id: str) -> None:
    found = discovery.find_method(api, verb, path)
    assert found is not None and found.id == method_id


def test_find_method_answers_none_for_unknown_paths() -> None:
    assert discovery.find_method("compute.v1", "GET", "compute/v1/projects/p/global/nothing/x/y") is None


def test_validate_request_and_response_use_the_methods_schemas() -> None:
    discovery.validate_request("vpcaccess.v1", "vpcaccess.projects.locations.connectors.create", CONNECTOR)
    discovery.validate_request("compute.v1", "compute.firewalls.get", None)
    discovery.validate_request("compute.v1", "compute.firewalls.delete", {})
    error = pytest.raises(SchemaError, discovery.validate_request, "compute.v1", "compute.firewalls.get", {"name": "x"})
    assert str(error.value) == 'Invalid JSON payload received. Unknown name "name": Cannot find field.'
    with pytest.raises(SchemaError):
        discovery.validate_request("compute.v1", "compute.firewalls.insert", {**FIREWALL, "foo": 1})
    discovery.validate_response("compute.v1", "compute.firewalls.insert", {
        "kind": "compute#operation", "id": "123", "name": "operation-1", "operationType": "insert",
        "progress": 0, "status": "RUNNING", "targetId": "456", "user": "user@example.com",
        "insertTime": "2024-04-01T05:34:56.123-07:00",
    })
    with pytest.raises(SchemaError):
        discovery.validate_response("compute.v1", "compute.firewalls.insert", {"status": "WAITING"})


# ---- recorded Google traffic --------------------------------------------------------------------
RECORDINGS = HTTP_RECORDINGS
# Recorded through compute/beta (reference/gcp-http-logs/NOTES.md §0): fields v1 does not have.
BETA_ONLY_FIELDS = {"enableLogging"}


def _recorded_exchanges() -> Iterator[tuple[str, str, str, str, int | None, str]]:
    for log in sorted(RECORDINGS.glob("*.log")):
        for block in log.read_text().split("\n---\n"):
            lines = block.strip("\n").split("\n")
            first = re.match(r"(GET|POST|PUT|PATCH|DELETE) (\S+)", lines[0])
            if not first:
                continue
            rest = "\n".join(lines[lines.index("") if "" in lines else len(lines):]).strip("\n")
            status = re.search(r"^(\d{3}) [^\n]*$", rest, re.M)
            request_body = rest[: status.start()].strip() if status else rest
            response = rest[status.end():].lstrip("\n") if status else ""
            response_body = response[response.find("\n\n"):].strip() if "\n\n" in response else ""
            yield (log.name, first.group(1), first.group(2), request_body,
                   int(status.group(1)) if status else None, response_body)


def _api_of(url: str) -> str | None:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if host.startswith("compute."):
        return "compute.v1"
    if host.startswith("vpcaccess."):
        return "vpcaccess.v1beta1" if "/v1beta1/" in parts.path else "vpcaccess.v1"
    if host.startswith("run."):
        return "run.v2" if parts.path.startswith("/v2/") else "run.v1"
    return None


def test_recorded_google_traffic_validates() -> None:
    """Bodies Google (and Config Connector's mock of it) really sent pass, byte for byte."""
    checked, refusals = 0, []
    for log, verb, url, request_body, status, response_body in _recorded_exchanges():
        api = _api_of(url)
        if api is None:
            continue
        info = discovery.find_method(api, verb, unquote(urlsplit(url).path))
        assert info is not None, f"{log}: no method for {verb} {url}"
        enums_as_int = "enum-encoding=int" in unquote(urlsplit(url).query)
        for check, text in ((discovery.validate_request, request_body),
                            (discovery.validate_response, response_body if status == 200 else "")):
            if not text:
                continue
            body = json.loads(re.sub(r"\$\{\w+\}", "123", text))  # placeholders stood for ids
            try:
                check(api, info.id, body, enums_as_int=enums_as_int)
                checked += 1
            except SchemaError as error:
                refusals.append((log, info.id, error.path.rsplit(".", 1)[-1], str(error)))
    assert checked > 300
    assert {name for _, _, name, _ in refusals} <= BETA_ONLY_FIELDS, refusals


# ---- laziness, threads, speed -------------------------------------------------------------------
def test_documents_load_only_when_first_needed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(discovery, "_apis", {})
    validate("vpcaccess.v1", "Connector", CONNECTOR)
    assert set(discovery._apis) == {"vpcaccess.v1"}


def test_first_use_from_many_threads_sees_complete_schemas(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(discovery, "_apis", {})
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def work() -> None:
        start.wait()
        try:
            for _ in range(20):
                validate("run.v2", "GoogleCloudRunV2Job", RUN_V2_JOB)
                discovery.encode_enums("run.v2", "GoogleCloudRunV2Job", RUN_V2_JOB)
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_validation_speed_is_reported(capsys: pytest.CaptureFixture[str]) -> None:
    """Not an assertion: prints how many bodies a second one core checks."""
    cases = [("compute.v1", "Firewall", FIREWALL), ("compute.v1", "Router", GCLOUD_ROUTER),
             ("run.v2", "GoogleCloudRunV2Service", RUN_V2_SERVICE), ("run.v1", "Job", RUN_V1_JOB)]
    lines = []
    for api, schema, body in cases:
        validate(api, schema, body)  # compile outside the timing
        rounds = 5000
        started = time.perf_counter()
        for _ in range(rounds):
            validate(api, schema, body)
        elapsed = time.perf_counter() - started
        lines.append(f"{api} {schema}: {rounds / elapsed:,.0f} validations/s ({elapsed / rounds * 1e6:.1f} µs each)")
    started = time.perf_counter()
    for _ in range(5000):
        discovery.encode_enums("run.v2", "GoogleCloudRunV2Service", RUN_V2_SERVICE)
    lines.append(f"run.v2 encode_enums Service: {(time.perf_counter() - started) / 5000 * 1e6:.1f} µs each")
    with capsys.disabled():
        print("\n" + "\n".join(lines))
