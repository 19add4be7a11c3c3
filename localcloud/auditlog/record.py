"""One audit entry's content, typed: what a call (or Google's own write) tells the audit writer.

The HTTP layer turns a request into an ``AuditRecord`` (``localcloud/auditlog/calls.py``); a
backend that writes as Google's own service agent builds one directly. The writer
(``localcloud/auditlog/writer.py``) only formats, orders and stores them, and pairs an
operation's first entry with its last. The pure shapes of logged requests and responses are here
too, because both producers need them.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Mapping

from localcloud.auditlog.methods import (COMPUTE_OPERATION_TYPE, RUN_WORKER_POOL_RESOURCE_TYPE, VPCACCESS_RESOURCE_TYPE,
                                         MethodSpec)

LONGRUNNING_OPERATION_TYPE = "type.googleapis.com/google.longrunning.Operation"

# Compute request field names as the audit log writes them: the internal proto pluralises
# repeated fields ("alloweds" in the real firewalls.insert sample, 2018, unverified provenance).
COMPUTE_REQUEST_RENAMES: Mapping[str, Mapping[str, str]] = {
    "firewalls": {"allowed": "alloweds", "denied": "denieds"},
}

# google.rpc.Code numbers of the canonical status names ApiError carries.
GRPC_CODES: Mapping[str, int] = {
    "OK": 0, "CANCELLED": 1, "UNKNOWN": 2, "INVALID_ARGUMENT": 3, "DEADLINE_EXCEEDED": 4, "NOT_FOUND": 5,
    "ALREADY_EXISTS": 6, "PERMISSION_DENIED": 7, "RESOURCE_EXHAUSTED": 8, "FAILED_PRECONDITION": 9,
    "ABORTED": 10, "OUT_OF_RANGE": 11, "UNIMPLEMENTED": 12, "INTERNAL": 13, "UNAVAILABLE": 14,
    "DATA_LOSS": 15, "UNAUTHENTICATED": 16,
}
HTTP_TO_GRPC = {400: 3, 401: 16, 403: 7, 404: 5, 409: 6, 412: 9, 429: 8, 499: 1, 500: 13, 501: 12,
                503: 14, 504: 4}


@dataclass(frozen=True)
class AuditInfo:
    """What a mutating handler tells the audit writer about its resource (the route knows the name,
    type and labels Google logs; a failed call, which has none, is described from its URL)."""

    service_name: str  # compute.googleapis.com, vpcaccess.googleapis.com, run.googleapis.com
    method_name: str  # as Google writes it, e.g. v1.compute.routers.patch
    resource_name: str  # e.g. projects/P/regions/R/routers/NAME
    resource_type: str  # LogEntry resource.type, e.g. gce_router
    resource_labels: Mapping[str, str] = field(default_factory=dict)
    operation: Any = None  # the Operation when the call is long-running (first/last entries)


@dataclass(frozen=True)
class Target:
    """The audited resource (and the service and method that touched it), as the entry names it."""

    service: str
    method_name: str
    resource_name: str
    resource_type: str
    resource_labels: Mapping[str, str]
    project: str
    location: str | None


@dataclass(frozen=True)
class OperationMark:
    """The long-running operation a call started: ``name`` pairs the operation.first entry with
    the operation.last one; ``id`` is what both entries write in ``operation.id``."""

    name: str
    id: str


@dataclass(frozen=True)
class AuditOrigin:
    """Who touched which resource with which method: what an operation's last entry repeats of
    the call that started it."""

    method: MethodSpec
    resource: Target
    principal: str  # empty: the world's default principal
    caller_ip: str = "127.0.0.1"
    user_agent: str = ""


@dataclass(frozen=True)
class AuditRecord:
    """One audited call: the entry to write now, and for a long-running call the operation whose
    completion writes the last entry. ``status`` (google.rpc code, message) marks a failed call."""

    method: MethodSpec
    resource: Target
    principal: str  # empty: the world's default principal
    request: dict[str, Any] | None
    response: dict[str, Any] | None = None
    status: tuple[int, str] | None = None
    operation: OperationMark | None = None
    caller_ip: str = "127.0.0.1"
    user_agent: str = ""
    granted: bool = True  # authorizationInfo[].granted (False for a 403)

    def origin(self) -> AuditOrigin:
        return AuditOrigin(self.method, self.resource, self.principal, self.caller_ip, self.user_agent)


# ---- the audited resource ---------------------------------------------------------------------
def with_info(target: Target, info: Any) -> Target:
    """``target`` with what the route's AuditInfo says, field by field (the info wins)."""
    if info is None:
        return target
    info_labels = dict(getattr(info, "resource_labels", None) or {})
    info_project = info_labels.get("project_id") or project_of(getattr(info, "resource_name", "") or "")
    return Target(
        service=getattr(info, "service_name", None) or target.service,
        method_name=getattr(info, "method_name", None) or target.method_name,
        resource_name=getattr(info, "resource_name", None) or target.resource_name,
        resource_type=getattr(info, "resource_type", None) or target.resource_type,
        resource_labels=info_labels or target.resource_labels,
        project=info_project or target.project,
        location=info_labels.get("location") or info_labels.get("region") or info_labels.get("zone") or target.location,
    )


def target_of_info(spec: MethodSpec, info: Any) -> Target:
    """The resource of an operation logged without any call: all from the AuditInfo."""
    return with_info(Target(spec.service, spec.method_name, "", spec.resource_type,
                            default_labels(spec, "", None, []), "", None), info)


def default_labels(spec: MethodSpec, project: str, location: str | None, segments: list[str]) -> dict[str, str]:
    name = segments[-1] if segments else ""
    if spec.resource_type == "cloud_run_revision":
        return {"configuration_name": "", "location": location or "", "project_id": project,
                "revision_name": "", "service_name": name}
    if spec.resource_type == "cloud_run_job":
        return {"job_name": name, "location": location or "", "project_id": project}
    if spec.resource_type == RUN_WORKER_POOL_RESOURCE_TYPE:  # UNCONFIRMED labels (docs/gcp-facts.md §12.5)
        return {"location": location or "", "project_id": project, "worker_pool_name": name}
    if spec.resource_type == VPCACCESS_RESOURCE_TYPE:
        return {"connector_name": name, "location": location or "", "project_id": project}
    if spec.resource_type == "cloud_function":  # a real 1st gen entry's labels (docs/gcp-facts.md §12.2)
        return {"function_name": name, "project_id": project, "region": location or ""}
    if spec.resource_type == "audited_resource":
        return {"method": spec.method_name, "project_id": project, "service": spec.service}
    labels = {"project_id": project}
    if spec.resource_type == "gce_router" and location:
        labels["region"] = location
    return labels


def segment_after(segments: list[str], key: str) -> str | None:
    for i, segment in enumerate(segments[:-1]):
        if segment == key:
            return segments[i + 1]
    return None


def project_of(resource_name: str) -> str:
    parts = resource_name.split("/")
    return segment_after(parts, "projects") or segment_after(parts, "namespaces") or ""


# ---- shapes of what is logged (pure) ------------------------------------------------------------
def grpc_code(error: Any) -> int:
    """google.rpc.Code of an ApiError (its canonical status name, else its HTTP code)."""
    status = getattr(error, "status", None)
    if status in GRPC_CODES:
        return GRPC_CODES[status]
    return HTTP_TO_GRPC.get(getattr(error, "code", 500), 2)


def compute_request(spec: MethodSpec, body: Any) -> dict[str, Any]:
    request: dict[str, Any] = {"@type": spec.request_type}
    if isinstance(body, dict):
        kind = spec.method_name.split(".")[-2]
        renames = COMPUTE_REQUEST_RENAMES.get(kind, {})
        for key, value in body.items():
            request[renames.get(key, key)] = copy.deepcopy(value)
    return request


def compute_operation_response(operation_body: Mapping[str, Any]) -> dict[str, Any]:
    """The Compute operation as the real entries write it: ``@type`` instead of ``kind``, int64s
    as strings, and ``selfLinkWithId``."""
    response: dict[str, Any] = {"@type": COMPUTE_OPERATION_TYPE}
    for key, value in operation_body.items():
        if key == "kind":
            continue
        response[key] = str(value) if key in ("progress", "id", "targetId") else copy.deepcopy(value)
    self_link, op_id = response.get("selfLink"), response.get("id")
    if isinstance(self_link, str) and op_id and "/operations/" in self_link:
        response.setdefault("selfLinkWithId", f"{self_link.rsplit('/', 1)[0]}/{op_id}")
    return response


def longrunning_response(operation_body: Any) -> dict[str, Any] | None:
    """A google.longrunning.Operation in proto3 JSON: ``done: false`` is a default, not written."""
    response = typed(operation_body, LONGRUNNING_OPERATION_TYPE)
    if response is not None and response.get("done") is False:
        del response["done"]
    return response


def typed(body: Any, type_url: str | None) -> dict[str, Any] | None:
    if not isinstance(body, dict):
        return None
    out = copy.deepcopy(body)
    if type_url and "@type" not in out:
        out = {"@type": type_url, **out}
    return out


def operation_id(operation: Any) -> str:
    """Compute writes the short ``operation-...`` name; google.longrunning the full name."""
    body = getattr(operation, "body", None)
    if getattr(operation, "kind", "") == "compute" and isinstance(body, dict) and body.get("name"):
        return str(body["name"])
    return str(getattr(operation, "name", ""))


def operation_mark(operation: Any) -> OperationMark:
    return OperationMark(str(getattr(operation, "name", "")), operation_id(operation))
