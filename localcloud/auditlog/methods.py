"""How Google logs each audited API method: its service, methodName, permission, request and
response types, and whether it writes Admin Activity entries at all (the method table).

Keyed by the discovery API and method id localcloud routes carry (``compute.v1``,
``compute.firewalls.insert``); a mutating method the table lacks gets a generic entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

COMPUTE_OPERATION_TYPE = "type.googleapis.com/operation"  # as the real Compute entries write it


# UNCONFIRMED (facts §3.2): the resource.type of vpcaccess entries, kept once in egress_guard's
# registry of assumptions so that the parser and localcloud cannot disagree.
from egress_guard.assumptions import RUN_WORKER_POOL_RESOURCE_TYPE, VPCACCESS_RESOURCE_TYPE  # noqa: E402

COMPUTE = "compute.googleapis.com"
VPCACCESS = "vpcaccess.googleapis.com"
RUN = "run.googleapis.com"
FUNCTIONS = "cloudfunctions.googleapis.com"
APPENGINE = "appengine.googleapis.com"


@dataclass(frozen=True)
class MethodSpec:
    """How Google logs one API method (keyed by the route's api and discovery method id)."""

    service: str
    method_name: str  # protoPayload.methodName for this API version
    permission: str  # authorizationInfo[].permission
    style: str  # "compute" (Compute operation) | "lro" (google.longrunning) | "sync"
    request_type: str  # request.@type
    response_type: str | None  # @type of the synchronous response or of the LRO's final resource
    resource_type: str  # resource.type when the route gives no AuditInfo (failed calls)
    verb: str  # create | update | delete | run
    data_access: bool = False  # DATA_WRITE: Data Access logs are off by default, nothing is written
    # App Engine logs the request in protoPayload.serviceData (AuditData), under this field, instead of
    # protoPayload.request, and its operation.last entry carries no payload (docs/gcp-facts.md §12.4).
    service_data: str | None = None
    # Cloud Functions v1 names a new function in the body (``CloudFunction.name``) and logs its create as
    # ``CreateFunctionRequest {location, function}`` (a real entry, docs/gcp-facts.md §12.2), not as
    # ``{parent, <noun>Id, <noun>}``.
    named_in_body: bool = False


def _compute_specs() -> dict[tuple[str, str], MethodSpec]:
    # Compute permissions: <resource>.<create|update|delete> (facts §3.1; real samples).
    kinds = {"firewalls": "gce_firewall_rule", "routers": "gce_router", "networks": "gce_network",
             "subnetworks": "gce_subnetwork", "addresses": "gce_reserved_address"}
    verbs = {"insert": "create", "patch": "update", "update": "update", "delete": "delete"}
    table = {}
    for kind, resource_type in kinds.items():
        for method, verb in verbs.items():
            table[("compute.v1", f"compute.{kind}.{method}")] = MethodSpec(
                COMPUTE, f"v1.compute.{kind}.{method}", f"compute.{kind}.{verb}", "compute",
                f"type.googleapis.com/compute.{kind}.{method}", COMPUTE_OPERATION_TYPE, resource_type,
                "create" if method == "insert" else verb)
    return table


def _vpcaccess_specs() -> dict[tuple[str, str], MethodSpec]:
    table = {}
    for version in ("v1", "v1beta1"):
        package = f"google.cloud.vpcaccess.{version}"
        for method, (rpc, verb, response) in {
            "create": ("CreateConnector", "create", "Connector"),
            "patch": ("UpdateConnector", "update", "Connector"),
            "delete": ("DeleteConnector", "delete", None),
        }.items():
            table[(f"vpcaccess.{version}", f"vpcaccess.projects.locations.connectors.{method}")] = MethodSpec(
                VPCACCESS, f"{package}.VpcAccessService.{rpc}", f"vpcaccess.connectors.{verb}", "lro",
                f"type.googleapis.com/{package}.{rpc}Request",
                f"type.googleapis.com/{package}.{response}" if response else "type.googleapis.com/google.protobuf.Empty",
                VPCACCESS_RESOURCE_TYPE, verb)
    return table


def _run_specs() -> dict[tuple[str, str], MethodSpec]:
    table = {}
    kinds = {"services": ("Services", "Service", "cloud_run_revision"),
             "jobs": ("Jobs", "Job", "cloud_run_job"),  # cloud_run_job: UNCONFIRMED (facts §3.2)
             "workerPools": ("WorkerPools", "WorkerPool", RUN_WORKER_POOL_RESOURCE_TYPE)}  # UNCONFIRMED (§12.5)
    for kind, (rpc_service, singular, resource_type) in kinds.items():
        v2 = "google.cloud.run.v2"
        for method, (rpc, verb) in {"create": (f"Create{singular}", "create"),
                                    "patch": (f"Update{singular}", "update"),
                                    "delete": (f"Delete{singular}", "delete")}.items():
            table[("run.v2", f"run.projects.locations.{kind}.{method}")] = MethodSpec(
                RUN, f"{v2}.{rpc_service}.{rpc}", f"run.{kind}.{verb}", "lro",
                f"type.googleapis.com/{v2}.{rpc}Request", f"type.googleapis.com/{v2}.{singular}", resource_type, verb)
        if kind == "workerPools":  # v2 only: the v1 (Knative) API has no worker pools
            continue
        v1 = "google.cloud.run.v1"
        for method, (rpc, verb) in {"create": (f"Create{singular}", "create"),
                                    f"replace{singular}": (f"Replace{singular}", "update"),
                                    "delete": (f"Delete{singular}", "delete")}.items():
            spec = MethodSpec(RUN, f"{v1}.{rpc_service}.{rpc}", f"run.{kind}.{verb}", "sync",
                              f"type.googleapis.com/{v1}.{rpc}Request",
                              f"type.googleapis.com/{v1}.{singular}" if verb != "delete"
                              else "type.googleapis.com/google.cloud.run.v1.Status", resource_type, verb)
            table[("run.v1", f"run.namespaces.{kind}.{method}")] = spec
            if kind == "services":  # v1 also serves services under projects/P/locations/L
                table[("run.v1", f"run.projects.locations.{kind}.{method}")] = spec
    # Jobs.RunJob is DATA_WRITE (Cloud Run audit page, facts §3.1): Data Access logs are off by
    # default, so a job run writes no Admin Activity entry.
    table[("run.v2", "run.projects.locations.jobs.run")] = MethodSpec(
        RUN, "google.cloud.run.v2.Jobs.RunJob", "run.jobs.run", "lro",
        "type.googleapis.com/google.cloud.run.v2.RunJobRequest", None, "cloud_run_job", "run", data_access=True)
    table[("run.v1", "run.namespaces.jobs.run")] = MethodSpec(
        RUN, "google.cloud.run.v1.Jobs.RunJob", "run.jobs.run", "sync",
        "type.googleapis.com/google.cloud.run.v1.RunJobRequest", None, "cloud_run_job", "run", data_access=True)
    return table


def _functions_specs() -> dict[tuple[str, str], MethodSpec]:
    # Cloud Functions v2: FunctionService, long-running (docs/gcp-facts.md §12.3); resource.type
    # cloud_function as the real 1st gen entry shows (§12.2).
    package = "google.cloud.functions.v2"
    table = {}
    for method, (rpc, verb, response) in {"create": ("CreateFunction", "create", "Function"),
                                          "patch": ("UpdateFunction", "update", "Function"),
                                          "delete": ("DeleteFunction", "delete", None)}.items():
        table[("cloudfunctions.v2", f"cloudfunctions.projects.locations.functions.{method}")] = MethodSpec(
            FUNCTIONS, f"{package}.FunctionService.{rpc}", f"cloudfunctions.functions.{verb}", "lro",
            f"type.googleapis.com/{package}.{rpc}Request",
            f"type.googleapis.com/{package}.{response}" if response else "type.googleapis.com/google.protobuf.Empty",
            "cloud_function", verb)
    return table


def _functions_v1_specs() -> dict[tuple[str, str], MethodSpec]:
    # Cloud Functions v1: CloudFunctionsService, long-running with first and last entries (Google's audit
    # page, docs/gcp-facts.md §12.2); resource.type cloud_function as the real CreateFunction entry shows.
    package = "google.cloud.functions.v1"
    table = {}
    for method, (rpc, verb, response) in {"create": ("CreateFunction", "create", "CloudFunction"),
                                          "patch": ("UpdateFunction", "update", "CloudFunction"),
                                          "delete": ("DeleteFunction", "delete", None)}.items():
        table[("cloudfunctions.v1", f"cloudfunctions.projects.locations.functions.{method}")] = MethodSpec(
            FUNCTIONS, f"{package}.CloudFunctionsService.{rpc}", f"cloudfunctions.functions.{verb}", "lro",
            f"type.googleapis.com/{package}.{rpc}Request",
            f"type.googleapis.com/{package}.{response}" if response else "type.googleapis.com/google.protobuf.Empty",
            "cloud_function", verb, named_in_body=True)
    return table


def _appengine_specs() -> dict[tuple[str, str], MethodSpec]:
    return {("appengine.v1", "appengine.apps.services.versions.create"): MethodSpec(
        APPENGINE, "google.appengine.v1.Versions.CreateVersion", "appengine.versions.create", "lro",
        "type.googleapis.com/google.appengine.v1.CreateVersionRequest", "type.googleapis.com/google.appengine.v1.Version",
        "gae_app", "create", service_data="createVersion")}


METHODS: Mapping[tuple[str, str], MethodSpec] = {**_compute_specs(), **_vpcaccess_specs(), **_run_specs(),
                                                 **_functions_specs(), **_functions_v1_specs(), **_appengine_specs()}

_SERVICE_BY_API_PREFIX = {"compute": COMPUTE, "vpcaccess": VPCACCESS, "run": RUN, "cloudfunctions": FUNCTIONS, "appengine": APPENGINE,
                          "logging": "logging.googleapis.com"}


def method_spec(api: str, method_id: str) -> MethodSpec:
    """The table entry, or a generic one (logged once) for a mutating method the table lacks."""
    spec = METHODS.get((api, method_id))
    if spec is not None:
        return spec
    family, _, version = api.partition(".")
    service = _SERVICE_BY_API_PREFIX.get(family, f"{family}.googleapis.com")
    parts = method_id.split(".")
    verb = {"insert": "create", "patch": "update"}.get(parts[-1], parts[-1])
    if family == "compute":
        return MethodSpec(service, f"{version}.{method_id}", f"{parts[0]}.{parts[-2]}.{verb}", "compute",
                          f"type.googleapis.com/{method_id}", COMPUTE_OPERATION_TYPE, "audited_resource", verb)
    style = "lro" if family in ("vpcaccess",) or api == "run.v2" else "sync"
    return MethodSpec(service, method_id, f"{family}.{parts[-2]}.{verb}", style,
                      f"type.googleapis.com/{method_id}", None, "audited_resource", verb)



def spec_for_method_name(method_name: str) -> MethodSpec:
    """The table entry with this protoPayload.methodName, or a placeholder."""
    for spec in METHODS.values():
        if spec.method_name == method_name:
            return spec
    return MethodSpec("unknown.googleapis.com", method_name or "unknown", "unknown", "lro",
                      "type.googleapis.com/google.protobuf.Empty", None, "audited_resource", "update")

