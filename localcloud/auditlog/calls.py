"""An API call in audit-log terms: the HTTP layer's request and answer become an ``AuditRecord``.

The resource is described from the route's ``AuditInfo`` when the handler gave one, else from the
URL (what a failed call is logged with, so both agree on the resource name); the request is the
RPC request message Google logs for the method's style (Compute, google.longrunning, Knative).
Nothing here raises into the call being logged: a record that cannot be built is logged and
skipped.
"""

from __future__ import annotations

import copy
import logging
from typing import Any, Mapping
from urllib.parse import unquote

from localcloud.auditlog.methods import MethodSpec, method_spec
from localcloud.auditlog.record import (
    AuditOrigin,
    AuditRecord,
    Target,
    compute_operation_response,
    compute_request,
    default_labels,
    grpc_code,
    longrunning_response,
    operation_mark,
    segment_after,
    typed,
    with_info,
)

log = logging.getLogger("localcloud.auditlog")


def record_of_call(call: Any, route: Any, result: Any = None, error: Any = None) -> AuditRecord | None:
    """The record of a mutating call that answered ``result`` or failed with ``error`` (an
    ApiError); None when it cannot be built (logged: an emulator bug, never the caller's)."""
    try:
        return _record_of_call(call, route, result, error)
    except Exception:
        log.exception("localcloud audit: could not log %s", getattr(route, "method_id", route))
        return None


def origin_of_call(call: Any, info: Any) -> AuditOrigin:
    """Who called which method on which resource, for the last entry of the operation it started."""
    spec = method_spec(call.api, call.method_id)
    return AuditOrigin(spec, derive_target(call, call.api, spec, info), call.principal, call.caller_ip,
                       call.user_agent)


def _record_of_call(call: Any, route: Any, result: Any, error: Any) -> AuditRecord:
    spec = method_spec(route.api, route.method_id)
    info = getattr(result, "audit", None) if result is not None else getattr(error, "audit", None)
    target = derive_target(call, route.api, spec, info)
    common = dict(method=spec, resource=target, principal=call.principal, request=request_of(spec, call, target),
                  caller_ip=call.caller_ip, user_agent=call.user_agent)
    if error is not None:
        return AuditRecord(**common, status=(grpc_code(error), getattr(error, "message", str(error))),
                           granted=getattr(error, "code", 0) != 403)
    body = getattr(result, "body", None)
    operation = getattr(info, "operation", None)
    if operation is None:  # synchronous (Cloud Run v1), or a route that started no operation
        response = (compute_operation_response(body) if spec.style == "compute" and isinstance(body, dict)
                    else typed(body, spec.response_type))
        return AuditRecord(**common, response=response)
    response = compute_operation_response(body) if spec.style == "compute" else longrunning_response(body)
    return AuditRecord(**common, response=response, operation=operation_mark(operation))


# ---- the audited resource, from the URL ---------------------------------------------------------
_API_PATH_PREFIXES: Mapping[str, tuple[str, ...]] = {
    "compute.v1": ("/compute/v1/",),
    "vpcaccess.v1": ("/vpcaccess/v1/",),
    "vpcaccess.v1beta1": ("/vpcaccess/v1beta1/",),
    "run.v2": ("/run/v2/",),
    "run.v1": ("/run/apis/serving.knative.dev/v1/", "/run/apis/run.googleapis.com/v1/", "/run/v1/"),
    "cloudfunctions.v2": ("/cloudfunctions/v2/",),
    "cloudfunctions.v1": ("/cloudfunctions/v1/",),
    "appengine.v1": ("/appengine/v1/",),
}



def derive_target(call: Any, api: str, spec: MethodSpec, info: Any = None) -> Target:
    """Service, method, resource name, resource type/labels, project and location of a call.

    ``info`` (the route's AuditInfo) wins field by field; the derivation from the URL is what a
    failed call (no AuditInfo) is logged with, so both agree on the resource name.
    """
    segments = _relative_segments(call.path, api)
    if segments and ":" in segments[-1]:  # custom verb (jobs/J:run)
        segments[-1] = segments[-1].split(":", 1)[0]
    body = call.body if isinstance(call.body, dict) else {}
    if spec.verb == "create" and segments and _is_collection(segments):
        new_name = _created_name(spec, call, body, segments)
        if new_name:
            segments.append(new_name)
    resource_name = "/".join(segments)
    if api == "run.v1" and len(segments) >= 4 and segments[0] == "projects" and segments[2] == "locations":
        resource_name = "/".join(["namespaces", segments[1], *segments[4:]])  # as the real v1 sample
    project = segment_after(segments, "projects") or segment_after(segments, "namespaces") or ""
    location = (segment_after(segments, "locations") or segment_after(segments, "regions")
                or segment_after(segments, "zones") or ("global" if "global" in segments else None))
    if api == "run.v1" and location is None:
        location = _run_v1_region(call, body)
    labels = default_labels(spec, project, location, segments)
    target = Target(spec.service, spec.method_name, resource_name, spec.resource_type, labels, project, location)
    return with_info(target, info)


def _relative_segments(path: str, api: str) -> list[str]:
    for prefix in _API_PATH_PREFIXES.get(api, ()):
        if path.startswith(prefix):
            rest = path[len(prefix):]
            return [unquote(s) for s in rest.split("/") if s]
    # Unknown layout: drop "/<family>/<version>/" and hope for a resource path.
    parts = [unquote(s) for s in path.split("/") if s]
    return parts[2:] if len(parts) > 2 else parts


def _is_collection(segments: list[str]) -> bool:
    """``projects/P/global/firewalls`` (odd length past the leading pairs) names a collection."""
    if segments[0] == "projects" and len(segments) >= 3 and segments[2] == "global":
        return len(segments) % 2 == 0
    return len(segments) % 2 == 1


def _created_name(spec: MethodSpec, call: Any, body: dict, segments: list[str]) -> str:
    if spec.style == "compute":
        return str(body.get("name") or "")
    if spec.style == "sync":  # Knative: the name is in metadata
        metadata = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
        return str(metadata.get("name") or "")
    if spec.named_in_body:  # Cloud Functions v1: the body's full name
        return str(body.get("name") or "").rsplit("/", 1)[-1]
    collection = segments[-1]
    id_param = f"{collection[:-1]}Id" if collection.endswith("s") else f"{collection}Id"
    return str(call.query.get(id_param) or "")



def _run_v1_region(call: Any, body: dict) -> str | None:
    """Cloud Run v1 paths carry no region: gcloud calls REGION-run.googleapis.com, and the
    object may say it in the cloud.googleapis.com/location label."""
    host = (getattr(call, "host", "") or "").split(":")[0]
    if host.endswith("-run.googleapis.com") or "-run." in host:
        return host.split("-run.", 1)[0]
    metadata = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
    labels = metadata.get("labels") if isinstance(metadata.get("labels"), dict) else {}
    return labels.get("cloud.googleapis.com/location")



# ---- the request message Google logs --------------------------------------------------------------
def request_of(spec: MethodSpec, call: Any, target: Target) -> dict[str, Any]:
    if spec.style == "compute":
        return compute_request(spec, call.body)
    if spec.style == "lro":
        return one_platform_request(spec, call, target)
    return run_v1_request(spec, call, target)


def one_platform_request(spec: MethodSpec, call: Any, target: Target) -> dict[str, Any]:
    """The RPC request message Google logs for a VPC Access / Cloud Run v2 call."""
    body = copy.deepcopy(call.body) if isinstance(call.body, dict) else None
    noun = _resource_noun(spec)
    request: dict[str, Any] = {"@type": spec.request_type}
    if spec.verb == "create" and spec.named_in_body:  # CreateFunctionRequest {location, function} (v1)
        request["location"] = target.resource_name.rsplit("/", 2)[0]
        if body is not None:
            request["function"] = body
    elif spec.verb == "create":
        request["parent"] = target.resource_name.rsplit("/", 2)[0]
        request[f"{noun}Id"] = target.resource_name.rsplit("/", 1)[-1]
        if body is not None:
            request[noun] = body
    elif spec.verb == "update":
        if body is not None:
            body.setdefault("name", target.resource_name)
            request[noun] = body
        if call.query.get("updateMask"):
            request["updateMask"] = call.query["updateMask"]
    else:
        request["name"] = target.resource_name
    for flag in ("validateOnly", "allowMissing"):
        if str(call.query.get(flag, "")).lower() == "true":
            request[flag] = True
    return request


def run_v1_request(spec: MethodSpec, call: Any, target: Target) -> dict[str, Any]:
    """As the real ReplaceService sample: ``name`` in projects/P/locations/R form, ``region``,
    and the Knative object. Create's ``parent`` form is UNCONFIRMED (mirrors ``name``)."""
    noun = _resource_noun(spec)
    region = target.location or ""
    name = target.resource_name.split("/")[-1]
    collection = "services" if noun == "service" else "jobs"
    request: dict[str, Any] = {"@type": spec.request_type}
    if spec.verb == "create":
        request["parent"] = f"projects/{target.project}/locations/{region}"
    else:
        request["name"] = f"projects/{target.project}/locations/{region}/{collection}/{name}"
    request["region"] = region
    if isinstance(call.body, dict) and spec.verb != "delete":
        request[noun] = copy.deepcopy(call.body)
    return request


def _resource_noun(spec: MethodSpec) -> str:
    """``connector`` / ``service`` / ``job``: the request field that holds the resource."""
    rpc = spec.method_name.rsplit(".", 1)[-1]
    for prefix in ("Create", "Update", "Delete", "Replace", "Run"):
        if rpc.startswith(prefix):
            return rpc[len(prefix):][:1].lower() + rpc[len(prefix):][1:]
    return "resource"

